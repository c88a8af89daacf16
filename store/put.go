package store

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// Put stores s in one transaction, so a killed take leaves the whole
// snapshot or none, and sets s.ID to its new ID (any ID it had is ignored).
func (db *DB) Put(s *snapshot.Snapshot) (uint64, error) {
	r, err := db.Commit(s)
	return r.ID, err
}

// A Receipt is what Commit stored, for ReadBack: the snapshot's ID and
// metadata, and the chunks it shares with the snapshot before it. Commit
// compared each of those byte for byte with what it would have written,
// and the take that wrote them read them back, so ReadBack takes their
// records from here instead of decoding them again. A Receipt holds on to
// the snapshot's records.
type Receipt struct {
	ID     uint64
	Meta   snapshot.Meta
	shared map[uint64]chunk
}

// Commit is Put, returning the receipt to read s back with.
func (db *DB) Commit(s *snapshot.Snapshot) (Receipt, error) {
	var r Receipt
	err := db.update(func(tx *bolt.Tx) error {
		var err error
		r.ID, r.shared, err = put(tx, s, 0)
		return err
	})
	if err != nil {
		var se *storeError
		var bad corruptValue
		switch {
		case errors.As(err, &se):
			return Receipt{}, err
		case errors.As(err, &bad):
			// What the new snapshot builds on does not decode.
			return Receipt{}, db.corrupt(bad.err)
		}
		// bbolt's write errors name the file already ("write F: no
		// space left on device"): name it once.
		return Receipt{}, fmt.Errorf("cannot store the snapshot in %s: %w", db.path, pathErr(err))
	}
	s.ID = r.ID
	r.Meta = s.Meta
	return r, nil
}

// put writes s under id, or under the next ID when id is 0, in tx, and
// returns the ID and the chunks s shares with the latest snapshot
// (storeChunks).
func put(tx *bolt.Tx, s *snapshot.Snapshot, id uint64) (uint64, map[uint64]chunk, error) {
	if s == nil {
		return 0, nil, errors.New("nil snapshot")
	}
	for _, t := range s.Tasks {
		if int(t.Stack) >= len(s.Stacks) {
			return 0, nil, fmt.Errorf("task %d: stack index %d, but the snapshot has %d stacks", t.TID, t.Stack, len(s.Stacks))
		}
	}
	meta, err := encodeMeta(s.Meta)
	if err != nil {
		return 0, nil, err
	}
	metas, records := tx.Bucket(bucketSnapMeta), tx.Bucket(bucketRecords)
	if metas == nil || records == nil {
		return 0, nil, errors.New("buckets missing (database opened read-only?)")
	}
	// Keys only ever append: pack leaf pages instead of bbolt's
	// default half-full split, which suits random inserts.
	metas.FillPercent, records.FillPercent = appendFill, appendFill
	stackIDs, err := internStacks(tx, s.Stacks)
	if err != nil {
		return 0, nil, err
	}
	chunks := splitChunks(s, stackIDs)
	chunkIDs, bases, sockBases, shared, err := storeChunks(tx, chunks)
	if err != nil {
		return 0, nil, err
	}
	if id == 0 {
		if id, err = metas.NextSequence(); err != nil {
			return 0, nil, err
		}
	} else if id > metas.Sequence() {
		if err := metas.SetSequence(id); err != nil {
			return 0, nil, err
		}
	}
	key := idKey(id)
	if err := metas.Put(key, meta); err != nil {
		return 0, nil, err
	}
	return id, shared, putRecord(records, id, encodeRecord(chunkIDs, chunks, bases, sockBases))
}

// internStacks returns the database's stack ID for each of stacks, adding
// the ones it has never seen. An empty stack is ID 0 (IDs start at 1).
func internStacks(tx *bolt.Tx, stacks []snapshot.Stack) ([]uint64, error) {
	byID, byHash := tx.Bucket(bucketStacks), tx.Bucket(bucketStackHash)
	if byID == nil || byHash == nil {
		return nil, errors.New("stack buckets missing")
	}
	byID.FillPercent = appendFill
	ids := make([]uint64, len(stacks))
	for i, st := range stacks {
		if len(st) == 0 {
			continue
		}
		frames := encodeFrames(st)
		// Hash the length-prefixed frames, not Stack.Key(): a frame with
		// a newline in it cannot make two stacks collide.
		hash := sha256.Sum256(frames)
		if v := byHash.Get(hash[:]); v != nil {
			id, err := decodeID(v)
			if err != nil {
				return nil, corruptValue{fmt.Errorf("stack index: %w", err)}
			}
			ids[i] = id
			continue
		}
		id, err := byID.NextSequence()
		if err != nil {
			return nil, err
		}
		if err := byID.Put(idKey(id), append([]byte{encStack}, frames...)); err != nil {
			return nil, err
		}
		if err := byHash.Put(hash[:], encodeID(id)); err != nil {
			return nil, err
		}
		ids[i] = id
	}
	return ids, nil
}

// appendFill is the FillPercent for buckets whose keys come from
// NextSequence: a full page, since no key is ever inserted before the last
// one (0.95 left 120 bytes per idle-host snapshot and 7 kB per busy one
// empty; bbolt caps it at 1.0).
const appendFill = 1.0

// idKey is the big-endian key of a snapshot or stack ID: byte order is
// numeric order, so cursors walk IDs in order.
func idKey(id uint64) []byte { return binary.BigEndian.AppendUint64(nil, id) }

// keyID undoes idKey; ok is false for a key that is not 8 bytes.
func keyID(k []byte) (uint64, bool) {
	if len(k) != 8 {
		return 0, false
	}
	return binary.BigEndian.Uint64(k), true
}

// corruptValue marks a stored value that put could not decode: the
// database is corrupt, not the write failed.
type corruptValue struct{ err error }

func (e corruptValue) Error() string { return e.err.Error() }
func (e corruptValue) Unwrap() error { return e.err }
