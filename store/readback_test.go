package store

import (
	"errors"
	"testing"

	bolt "go.etcd.io/bbolt"
)

// TestReadBack: a snapshot that shares chunks with the one before reads
// back after Commit, the shared chunks taken from the receipt; a chunk the
// commit wrote that does not decode, a shared chunk that is gone, or a
// count that differs fail it as corrupt.
func TestReadBack(t *testing.T) {
	damageChunk := func(t *testing.T, db *DB, id uint64, garble bool) {
		t.Helper()
		err := db.update(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketChunks)
			if !garble {
				return b.Delete(idKey(id))
			}
			v := b.Get(idKey(id))
			return b.Put(idKey(id), append([]byte{v[0]}, "garbage"...))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, db *DB, r *Receipt, written, shared []uint64)
	}{
		{"intact", func(*testing.T, *DB, *Receipt, []uint64, []uint64) {}},
		{"written chunk garbled", func(t *testing.T, db *DB, _ *Receipt, written, _ []uint64) {
			damageChunk(t, db, written[len(written)/2], true)
		}},
		{"shared chunk gone", func(t *testing.T, db *DB, _ *Receipt, _, shared []uint64) {
			damageChunk(t, db, shared[len(shared)/2], false)
		}},
		{"one fd more stored than read", func(_ *testing.T, _ *DB, r *Receipt, _, _ []uint64) { r.Meta.FDs++ }},
		{"one thread fewer", func(_ *testing.T, _ *DB, r *Receipt, _, _ []uint64) { r.Meta.Threads-- }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openTestDB(t)
			first, err := db.Commit(syntheticSnapshot(400, 20, 4000, 1))
			if err != nil {
				t.Fatal(err)
			}
			if err := db.ReadBack(first); err != nil {
				t.Fatalf("first snapshot: %v", err)
			}
			if len(first.shared) != 0 {
				t.Fatalf("the first snapshot shares %d chunks", len(first.shared))
			}
			r, err := db.Commit(syntheticSnapshot(400, 20, 4000, 2))
			if err != nil {
				t.Fatal(err)
			}
			var written, shared []uint64
			for _, id := range recordChunkIDs(t, db, r.ID) {
				if _, ok := r.shared[id]; ok {
					shared = append(shared, id)
				} else {
					written = append(written, id)
				}
			}
			if len(written) == 0 || len(shared) == 0 {
				t.Fatalf("the second snapshot wrote %d chunks and shares %d: want some of each", len(written), len(shared))
			}
			tc.damage(t, db, &r, written, shared)
			err = db.ReadBack(r)
			if tc.name == "intact" {
				if err != nil {
					t.Fatalf("ReadBack: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("ReadBack = %v, want ErrCorrupt", err)
			}
		})
	}
}

// recordChunkIDs is the chunk table of snapshot id's record.
func recordChunkIDs(t *testing.T, db *DB, id uint64) []uint64 {
	t.Helper()
	var ids []uint64
	err := db.view(func(tx *bolt.Tx) error {
		r, err := decodeRecordHead(getRecord(tx.Bucket(bucketRecords), id))
		ids = r.chunkIDs
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}
