package store

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// CheckResult is what Check found: one line per problem, none when the
// database is sound, and what it read.
type CheckResult struct {
	Problems                  []string
	Snapshots, Chunks, Stacks int
}

// maxProblems bounds Problems: past it, the last line counts the rest.
const maxProblems = 200

// Check reads the whole database at path, as restic check does a
// repository: the file's length against bbolt's high-water mark, every
// page of the tree (walked without trusting it, pages.go), bbolt's own
// consistency check (Tx.Check: every page reachable once or free, keys in
// order), and then every value decoded: each snapshot's metadata and
// record with the chunks and stacks it refers to, every chunk, every stack
// and every entry of the stack index. It opens the file read-only (a
// shared lock) and changes nothing.
//
// The error is for a database that could not be checked at all: missing,
// not a bbolt file, locked, not readable.
func Check(path string, opts Options) (*CheckResult, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	bdb, err := openBolt(path, true, false, timeout)
	if err != nil {
		return nil, atPath(openError(path, true, timeout, err), path)
	}
	db := &DB{bolt: bdb, path: path}
	defer db.Close()
	c := &checker{db: db, result: &CheckResult{}}
	err = db.view(func(tx *bolt.Tx) error {
		if err := db.checkSize(tx); err != nil {
			c.problem("%v", err)
			return nil // its pages cannot be read
		}
		problems, err := db.walkPages(tx, true, nil)
		if err != nil {
			return err
		}
		for _, p := range problems {
			c.problem("%s", p)
		}
		if len(problems) > 0 {
			c.problem("(values not decoded: bbolt would follow the damaged pages out of the file)")
			return nil
		}
		for err := range tx.Check() {
			c.problem("bbolt: %v", err)
		}
		c.values(tx)
		return nil
	})
	if err != nil {
		// A fault on a page the walk passed: report it as a problem.
		c.problem("%v", err)
	}
	if c.more > 0 {
		c.result.Problems = append(c.result.Problems, fmt.Sprintf("(and %d more problems)", c.more))
	}
	return c.result, nil
}

type checker struct {
	db     *DB
	result *CheckResult
	more   int
}

func (c *checker) problem(format string, args ...any) {
	if len(c.result.Problems) == maxProblems {
		c.more++
		return
	}
	c.result.Problems = append(c.result.Problems, fmt.Sprintf(format, args...))
}

// values decodes every value the buckets hold.
func (c *checker) values(tx *bolt.Tx) {
	if _, err := c.db.schemaVersion(tx); err != nil {
		c.problem("%v", err)
		return
	}
	metas, records := tx.Bucket(bucketSnapMeta), tx.Bucket(bucketRecords)
	if metas == nil || records == nil {
		return // a new database, or schema 0: nothing stored yet
	}
	withMeta := map[uint64]bool{}
	_ = metas.ForEach(func(k, v []byte) error {
		id, ok := keyID(k)
		if !ok {
			c.problem("snapshot key %x is not an ID", k)
			return nil
		}
		withMeta[id] = true
		rec := getRecord(records, id)
		if rec == nil {
			c.problem("snapshot %d has metadata but no record", id)
			return nil
		}
		if _, err := decodeSnapshot(id, v, rec, txLookup(tx)); err != nil {
			c.problem("snapshot %d: %v", id, err)
			return nil
		}
		c.result.Snapshots++
		return nil
	})
	err := forEachRecord(records, func(id uint64, _ []byte) error {
		if !withMeta[id] {
			c.problem("record %d has no snapshot metadata", id)
		}
		return nil
	})
	if err != nil {
		c.problem("records: %v", err)
	}

	if chunks := tx.Bucket(bucketChunks); chunks != nil {
		var u unpacker
		_ = chunks.ForEach(func(k, v []byte) error {
			id, ok := keyID(k)
			if !ok {
				c.problem("chunk key %x is not an ID", k)
			} else if _, err := decodeChunk(v, &u); err != nil {
				c.problem("chunk %d: %v", id, err)
			} else {
				c.result.Chunks++
			}
			return nil
		})
	}

	stacks, index := tx.Bucket(bucketStacks), tx.Bucket(bucketStackHash)
	if stacks != nil {
		_ = stacks.ForEach(func(k, v []byte) error {
			id, ok := keyID(k)
			if !ok {
				c.problem("stack key %x is not an ID", k)
			} else if _, err := decodeFrames(v); err != nil {
				c.problem("stack %d: %v", id, err)
			} else {
				c.result.Stacks++
			}
			return nil
		})
	}
	if stacks != nil && index != nil {
		_ = index.ForEach(func(k, v []byte) error {
			id, err := decodeID(v)
			if err != nil {
				c.problem("stack index %x: %v", k, err)
				return nil
			}
			frames := stacks.Get(idKey(id))
			if frames == nil {
				c.problem("stack index %x: stack %d is missing", k, id)
				return nil
			}
			// The key is the hash of the frames less their version
			// byte (internStacks).
			if len(frames) > 0 {
				if hash := sha256.Sum256(frames[1:]); !bytes.Equal(hash[:], k) {
					c.problem("stack index %x: stack %d has another hash", k, id)
				}
			}
			return nil
		})
	}
}

// ReadBack decodes the snapshot of r, just stored, in a transaction of its
// own, and checks that it holds the threads, fds and time that r's
// metadata says: a take reports success only for a snapshot that can be
// read. What r shares with the snapshot before it is taken from r, not
// decoded again (see Receipt): on a host where little changes, a take
// decodes only what it wrote.
func (db *DB) ReadBack(r Receipt) error {
	want := r.Meta
	var got snapshot.Meta
	cache := &decodeCache{stacks: map[uint64]snapshot.Stack{}, count: true}
	cache.ids = make([]uint64, 0, len(r.shared))
	for id := range r.shared {
		cache.ids = append(cache.ids, id)
	}
	slices.Sort(cache.ids)
	cache.chunks = make([]chunk, len(cache.ids))
	for i, id := range cache.ids {
		cache.chunks[i] = r.shared[id]
	}
	err := db.view(func(tx *bolt.Tx) error {
		metaValue, recordValue, err := db.snapshotValues(tx, r.ID)
		if err != nil {
			return err
		}
		s, _, err := decodeSnapshotCached(r.ID, metaValue, recordValue, txLookup(tx), cache)
		if err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", r.ID, err))
		}
		got = s.Meta
		return nil
	})
	if err != nil {
		return err
	}
	if cache.nThreads != want.Threads || cache.nFiles != want.FDs || !got.Time.Equal(want.Time) {
		return newCorrupt(nil, "database %s is corrupt: snapshot %d reads back with %d threads and %d fds, stored with %d and %d",
			db.path, r.ID, cache.nThreads, cache.nFiles, want.Threads, want.FDs)
	}
	return nil
}
