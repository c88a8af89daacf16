package store

import (
	"encoding/json"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// The synthetic host: 2,000 threads with 50 distinct 10-frame stacks and
// 15,000 fds, mostly sockets and pipes.
const (
	synthThreads = 2000
	synthStacks  = 50
	synthFDs     = 15000
)

// dbSize is bbolt's high-water mark: the bytes of pages in use or free for
// reuse, which is what the file grows by (the file itself grows in chunks).
func dbSize(t testing.TB, db *DB) int64 {
	var size int64
	if err := db.bolt.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return size
}

// valueSizes returns the stored sizes of one snapshot's metadata and record.
func valueSizes(t testing.TB, db *DB, id uint64) (meta, record, body int) {
	err := db.bolt.View(func(tx *bolt.Tx) error {
		meta = len(tx.Bucket(bucketSnapMeta).Get(idKey(id)))
		v := tx.Bucket(bucketRecords).Get(idKey(id))
		record = len(v)
		_, b, err := decodeRecord(v)
		body = len(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return meta, record, body
}

// TestSnapshotSize logs what one more snapshot of a busy host costs. It
// asserts only a loose bound, to catch an encoding that stops interning or
// compressing; the number itself is for people (and BenchmarkPut).
func TestSnapshotSize(t *testing.T) {
	db := openTestDB(t)
	mustPut(t, db, syntheticSnapshot(synthThreads, synthStacks, synthFDs, 0))
	start := dbSize(t, db)
	const more = 30
	var last uint64
	for i := uint64(1); i <= more; i++ {
		last = mustPut(t, db, syntheticSnapshot(synthThreads, synthStacks, synthFDs, i))
	}
	growth := (dbSize(t, db) - start) / more
	meta, record, body := valueSizes(t, db, last)
	asJSON, _ := json.Marshal(syntheticSnapshot(synthThreads, synthStacks, synthFDs, 0))
	t.Logf("%d threads, %d stacks, %d fds: database grows %d bytes per snapshot; values: meta %d + record %d (body %d before flate); the snapshot as JSON is %d bytes",
		synthThreads, synthStacks, synthFDs, growth, meta, record, body, len(asJSON))
	if growth > 150_000 {
		t.Errorf("database grows %d bytes per snapshot, want well under 150 kB", growth)
	}
}

func BenchmarkPut(b *testing.B) {
	db := openTestDB(b)
	// Snapshots that differ as consecutive takes do; generated up front.
	variants := make([]*snapshot.Snapshot, 8)
	for i := range variants {
		variants[i] = syntheticSnapshot(synthThreads, synthStacks, synthFDs, uint64(i))
	}
	mustPut(b, db, variants[0]) // the stacks are stored by the first take
	start := dbSize(b, db)
	n := 0
	for b.Loop() {
		mustPut(b, db, variants[n%len(variants)])
		n++
	}
	b.ReportMetric(float64(dbSize(b, db)-start)/float64(n), "bytes/snapshot")
}

func BenchmarkGet(b *testing.B) {
	db := openTestDB(b)
	id := mustPut(b, db, syntheticSnapshot(synthThreads, synthStacks, synthFDs, 0))
	for b.Loop() {
		if _, err := db.Get(id); err != nil {
			b.Fatal(err)
		}
	}
}
