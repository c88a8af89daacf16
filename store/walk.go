package store

import (
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// FileRun says where one stored chunk's fds are in a snapshot walked:
// s.Files[Start:End]. Consecutive snapshots with a run of the same ChunkID
// share that chunk, so they have the same fds there (see chunk.go).
type FileRun struct {
	// ChunkID is the stored chunk the fds come from; two runs with one
	// ChunkID hold the same fds in the same states. It is 0 when the run
	// must be compared fd by fd: its chunk's sockets changed state since
	// the chunk was stored (the record carries socket states apart, as
	// it does threads').
	ChunkID    uint64
	Start, End int
	// Files are the run's fds, the same as s.Files[Start:End]: the
	// decoded chunk, which the walk shares between the snapshots that
	// share it. They stay valid after fn returns, and must not be
	// changed.
	Files []snapshot.File
}

// Walk reads the snapshots ids one at a time, in the order given, and
// calls fn with each whole snapshot and the runs of its fds, in one read
// transaction. A chunk that consecutive snapshots share is decoded once,
// and so is a stack, so reading a range where little changes costs little
// more than its first snapshot; memory holds the snapshot being read and
// the chunks of the one before. A snapshot stored before schema 2 (no
// chunks) has no runs. fn's error ends the walk and is returned as it is.
//
// The arrays behind s.Tasks and s.Files are reused for the next snapshot
// (copying every fd into new memory was most of a walk's time): fn must
// copy what it keeps of them past its return, except from the last
// snapshot, which stays as it is.
func (db *DB) Walk(ids []uint64, fn func(s *snapshot.Snapshot, runs []FileRun) error) error {
	return db.walk(ids, true, fn)
}

// WalkRuns is Walk without s.Files: a snapshot's fds are its runs' Files,
// in order, and are not copied into one array (at 200,000 fds, copying
// them into s.Files, and collecting that array, was a tenth of a diff's
// time). A snapshot stored before schema 2 has no runs and its fds in
// s.Files.
func (db *DB) WalkRuns(ids []uint64, fn func(s *snapshot.Snapshot, runs []FileRun) error) error {
	return db.walk(ids, false, fn)
}

func (db *DB) walk(ids []uint64, files bool, fn func(s *snapshot.Snapshot, runs []FileRun) error) error {
	return db.view(func(tx *bolt.Tx) error {
		cache := &decodeCache{stacks: map[uint64]snapshot.Stack{}, noFiles: !files}
		lookup := txLookup(tx)
		var tasks []snapshot.Task
		var files []snapshot.File
		for _, id := range ids {
			metaValue, recordValue, err := db.snapshotValues(tx, id)
			if err != nil {
				return err
			}
			cache.tasks, cache.files = tasks[:0], files[:0]
			s, runs, err := decodeSnapshotCached(id, metaValue, recordValue, lookup, cache)
			if err != nil {
				return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
			}
			if err := fn(s, runs); err != nil {
				return err
			}
			tasks, files = s.Tasks, s.Files
		}
		return nil
	})
}

// Entries returns the metadata of the snapshots ids, in the order given,
// without reading their records.
func (db *DB) Entries(ids []uint64) ([]Entry, error) {
	entries := make([]Entry, 0, len(ids))
	err := db.view(func(tx *bolt.Tx) error {
		metas := tx.Bucket(bucketSnapMeta)
		for _, id := range ids {
			var v []byte
			if metas != nil {
				v = metas.Get(idKey(id))
			}
			if v == nil {
				return notFound(tx, id)
			}
			meta, err := decodeMeta(v)
			if err != nil {
				return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
			}
			entries = append(entries, Entry{ID: id, Meta: meta})
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// decodeCache keeps, between the snapshots of a walk, the chunks of the
// latest one (decoded, with their threads' doing as stored: the base) and
// every stack decoded.
type decodeCache struct {
	// ids are the latest snapshot's chunks, ascending as records list
	// them, and chunks the chunks decoded; spare is the array chunks had
	// before, for the next snapshot's.
	ids           []uint64
	chunks, spare []chunk
	stacks        map[uint64]snapshot.Stack
	tasks         []snapshot.Task // empty, to fill: the arrays of the snapshot before
	files         []snapshot.File
	noFiles       bool // leave s.Files empty: the fds are the runs' (WalkRuns)
	// count is ReadBack's: the record is decoded and checked, but its
	// threads and fds are only counted (nThreads, nFiles), not copied
	// out, and a chunk taken from the cache must still be in the
	// database.
	count            bool
	nThreads, nFiles int
}

func (c *decodeCache) counting() bool { return c != nil && c.count }

// chunkAt returns chunk id, decoded, with the base doing: shared, not to be
// changed. at is where to look in the latest snapshot's chunks: the IDs a
// record lists ascend, so a walk through one record finds the chunks the
// snapshot before had with comparisons, not hashing. A nil cache decodes
// the chunk.
func (c *decodeCache) chunkAt(id uint64, at *int, lookup lookupFunc, u *unpacker) (chunk, error) {
	if c != nil {
		for *at < len(c.ids) && c.ids[*at] < id {
			*at++
		}
		if *at < len(c.ids) && c.ids[*at] == id {
			if c.count && lookup(bucketChunks, id) == nil {
				return chunk{}, fmt.Errorf("chunk %d is missing", id)
			}
			return c.chunks[*at], nil
		}
	}
	cv := lookup(bucketChunks, id)
	if cv == nil {
		return chunk{}, fmt.Errorf("chunk %d is missing", id)
	}
	ch, err := decodeChunk(cv, u)
	if err != nil {
		return chunk{}, fmt.Errorf("chunk %d: %w", id, err)
	}
	return ch, nil
}

// keep keeps the chunks the latest snapshot used, ids, and drops the
// others.
func (c *decodeCache) keep(ids []uint64, chunks []chunk) {
	if c == nil {
		return
	}
	c.ids = ids
	c.chunks, c.spare = chunks, c.chunks
}
