package store

import (
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// Entry is one snapshot as `list` shows it.
type Entry struct {
	ID   uint64
	Meta snapshot.Meta
}

// Get returns the whole snapshot id. Its Stacks are in the order they were
// stored, so Task.Stack indexes them as before; -1 stays -1.
func (db *DB) Get(id uint64) (*snapshot.Snapshot, error) {
	var s *snapshot.Snapshot
	err := db.view(func(tx *bolt.Tx) error {
		metas, records, stacks := tx.Bucket(bucketSnapMeta), tx.Bucket(bucketRecords), tx.Bucket(bucketStacks)
		if metas == nil {
			return notFound(tx, id)
		}
		key := idKey(id)
		metaValue := metas.Get(key)
		if metaValue == nil {
			return notFound(tx, id)
		}
		var recordValue []byte
		if records != nil {
			recordValue = records.Get(key)
		}
		if recordValue == nil {
			return db.corrupt(fmt.Errorf("snapshot %d has metadata but no record", id))
		}

		meta, err := decodeMeta(metaValue)
		if err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
		}
		stackIDs, body, err := decodeRecord(recordValue)
		if err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
		}
		s = &snapshot.Snapshot{ID: id, Meta: meta}
		if s.Stacks, err = loadStacks(stacks, stackIDs); err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
		}
		if err := decodeBody(body, s); err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// loadStacks reads the stacks a record refers to, each distinct ID once.
func loadStacks(b *bolt.Bucket, ids []uint64) ([]snapshot.Stack, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out := make([]snapshot.Stack, len(ids))
	seen := make(map[uint64]snapshot.Stack, len(ids))
	for i, id := range ids {
		if id == 0 {
			continue
		}
		if st, ok := seen[id]; ok {
			out[i] = st
			continue
		}
		var v []byte
		if b != nil {
			v = b.Get(idKey(id))
		}
		if v == nil {
			return nil, fmt.Errorf("stack %d is missing", id)
		}
		st, err := decodeFrames(v)
		if err != nil {
			return nil, fmt.Errorf("stack %d: %w", id, err)
		}
		seen[id] = st
		out[i] = st
	}
	return out, nil
}

// List returns every snapshot's metadata in ID order, without reading the
// records.
func (db *DB) List() ([]Entry, error) {
	var entries []Entry
	err := db.view(func(tx *bolt.Tx) error {
		metas := tx.Bucket(bucketSnapMeta)
		if metas == nil {
			return nil
		}
		return metas.ForEach(func(k, v []byte) error {
			id, ok := keyID(k)
			if !ok {
				return db.corrupt(fmt.Errorf("snapshot key of %d bytes", len(k)))
			}
			meta, err := decodeMeta(v)
			if err != nil {
				return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
			}
			entries = append(entries, Entry{ID: id, Meta: meta})
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

// corrupt wraps a decoding failure as ErrUnreadable naming the file. A value
// from a newer itersnap is not corruption, and says so.
func (db *DB) corrupt(err error) error {
	if errors.Is(err, errNewerEncoding) {
		return newError(ErrUnreadable, err, "database %s: %v", db.path, err)
	}
	return newError(ErrUnreadable, err, "database %s is corrupt: %v", db.path, err)
}
