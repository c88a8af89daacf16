package store

import (
	"bytes"
	"encoding/binary"
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

// Get returns the whole snapshot id: its tasks and fds in pid order, and
// Task.Stack indexing its Stacks.
func (db *DB) Get(id uint64) (*snapshot.Snapshot, error) {
	var s *snapshot.Snapshot
	err := db.view(func(tx *bolt.Tx) error {
		metaValue, recordValue, err := db.snapshotValues(tx, id)
		if err != nil {
			return err
		}
		if s, err = decodeSnapshot(id, metaValue, recordValue, txLookup(tx)); err != nil {
			return db.corrupt(fmt.Errorf("snapshot %d: %w", id, err))
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// snapshotValues returns snapshot id's metadata and record values, valid
// for tx's life.
func (db *DB) snapshotValues(tx *bolt.Tx, id uint64) (metaValue, recordValue []byte, err error) {
	metas, records := tx.Bucket(bucketSnapMeta), tx.Bucket(bucketRecords)
	if metas != nil {
		metaValue = metas.Get(idKey(id))
	}
	if metaValue == nil {
		return nil, nil, notFound(tx, id)
	}
	if records != nil {
		recordValue = getRecord(records, id)
	}
	if recordValue == nil {
		return nil, nil, db.corrupt(fmt.Errorf("snapshot %d has metadata but no record", id))
	}
	return metaValue, recordValue, nil
}

// txLookup reads stacks and chunks from tx's buckets, each with one
// getter.
func txLookup(tx *bolt.Tx) lookupFunc {
	var names [][]byte
	var getters []*getter
	return func(bucket []byte, id uint64) []byte {
		for i, name := range names {
			if bytes.Equal(name, bucket) {
				return getters[i].get(id)
			}
		}
		b := tx.Bucket(bucket)
		if b == nil {
			return nil
		}
		g := newGetter(b)
		names, getters = append(names, bucket), append(getters, g)
		return g.get(id)
	}
}

// getter reads a bucket's values by ID with one cursor: bbolt's
// Bucket.Get makes a cursor and grows its search stack on every call, and
// a take reads thousands of chunks (at 200,000 fds, a megabyte of
// allocations). What get returns is valid for the transaction, as Get's.
type getter struct {
	c   *bolt.Cursor
	key [8]byte
}

func newGetter(b *bolt.Bucket) *getter { return &getter{c: b.Cursor()} }

// get is b.Get(idKey(id)): nil when there is no such key, or when it
// names a nested bucket (Seek's value is nil then).
func (g *getter) get(id uint64) []byte {
	binary.BigEndian.PutUint64(g.key[:], id)
	k, v := g.c.Seek(g.key[:])
	if !bytes.Equal(k, g.key[:]) {
		return nil
	}
	return v
}

// List returns every snapshot's metadata in ID order, without reading the
// records.
func (db *DB) List() ([]Entry, error) {
	var entries []Entry
	err := db.view(func(tx *bolt.Tx) error {
		var err error
		entries, err = db.entries(tx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return entries, nil
}

func (db *DB) entries(tx *bolt.Tx) ([]Entry, error) {
	var entries []Entry
	metas := tx.Bucket(bucketSnapMeta)
	if metas == nil {
		return nil, nil
	}
	err := metas.ForEach(func(k, v []byte) error {
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
	return entries, err
}

// corrupt wraps a decoding failure as ErrUnreadable naming the file. A value
// from a newer itersnap is not corruption, and says so.
func (db *DB) corrupt(err error) error {
	if errors.Is(err, errNewerEncoding) {
		return newError(ErrUnreadable, err, "database %s: %v", db.path, err)
	}
	return newCorrupt(err, "database %s is corrupt: %v", db.path, err)
}
