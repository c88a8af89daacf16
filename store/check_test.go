package store

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// checkTestDB writes snapshots of several pages each (chunks and records
// span branch pages), forgets some (so there are free pages), and returns
// the closed file's path and its bytes.
func checkTestDB(t *testing.T) (string, []byte) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range uint64(12) {
		mustPut(t, db, syntheticSnapshot(200, 10, 1500, i))
	}
	if _, err := db.Forget(Policy{Last: 8}, time.UTC, false); err != nil {
		t.Fatal(err)
	}
	mustPut(t, db, sampleSnapshot())
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, data
}

func TestCheckSound(t *testing.T) {
	path, _ := checkTestDB(t)
	r, err := Check(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 0 || r.Snapshots != 9 || r.Chunks == 0 || r.Stacks == 0 {
		t.Errorf("sound database: %+v", r)
	}
}

// usedPages lists the first page of every page (or run of overflow pages)
// in use: what a write of random bytes over it damages.
func usedPages(t *testing.T, path string) []int {
	t.Helper()
	bdb, err := bolt.Open(path, 0o600, nil) // read-write: the freelist is loaded
	if err != nil {
		t.Fatal(err)
	}
	defer bdb.Close()
	var pages []int
	err = bdb.View(func(tx *bolt.Tx) error {
		for id := 2; ; {
			info, err := tx.Page(id)
			if err != nil || info == nil {
				return err
			}
			if info.Type != "free" {
				pages = append(pages, id)
			}
			id += 1 + info.OverflowCount
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// TestCheckDamagedPages writes random bytes over each page in use in turn
// (branch, leaf, overflow, freelist): Check reports it and does not fault,
// and every open refuses the file as corrupt before reading a value.
func TestCheckDamagedPages(t *testing.T) {
	path, data := checkTestDB(t)
	pages := usedPages(t, path)
	pageSize := os.Getpagesize()
	rnd := rand.New(rand.NewPCG(1, 2))
	if len(pages) < 20 {
		t.Fatalf("only %d pages in use", len(pages))
	}
	for _, id := range pages {
		damaged := append([]byte(nil), data...)
		for i := id * pageSize; i < (id+1)*pageSize; i++ {
			damaged[i] = byte(rnd.Uint32())
		}
		// A file of its own: when bbolt panics opening a file to write
		// (here on a damaged freelist), its mapping, and so the lock,
		// stays until the process ends (openBolt).
		path := filepath.Join(t.TempDir(), "damaged.db")
		if err := os.WriteFile(path, damaged, 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := Check(path, Options{})
		if err != nil {
			t.Fatalf("page %d: Check: %v", id, err)
		}
		if len(r.Problems) == 0 {
			t.Errorf("page %d of random bytes: Check found nothing", id)
		}
		for _, readOnly := range []bool{true, false} {
			db, err := Open(path, Options{ReadOnly: readOnly})
			if err == nil {
				db.Close()
			}
			if !errors.Is(err, ErrCorrupt) || !errors.Is(err, ErrUnreadable) {
				t.Errorf("page %d of random bytes: Open(read-only %v): %v, want ErrCorrupt", id, readOnly, err)
			}
		}
	}
}

func TestCheckTruncated(t *testing.T) {
	path, data := checkTestDB(t)
	// Cut inside the pages in use: the file itself grows in steps of
	// bbolt's mmap, past its high-water mark.
	db, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	used := dbSize(t, db)
	db.Close()
	if err := os.WriteFile(path, data[:used*2/3], 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := Check(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Problems) != 1 || !strings.Contains(r.Problems[0], "truncated") {
		t.Errorf("truncated: %q", r.Problems)
	}
}

// TestCheckBadValues damages values, not pages: a record, a chunk, a
// stack, a stack index entry, metadata; each is one line naming it.
func TestCheckBadValues(t *testing.T) {
	for _, tc := range []struct {
		name   string
		bucket []byte
		want   string
	}{
		{"record", bucketRecords, "snapshot 13: "},
		{"chunk", bucketChunks, "chunk "},
		{"stack", bucketStacks, "stack "},
		{"stack index", bucketStackHash, "stack index "},
		{"metadata", bucketSnapMeta, "snapshot 13: metadata"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path, _ := checkTestDB(t)
			bdb, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = bdb.Update(func(tx *bolt.Tx) error {
				b := tx.Bucket(tc.bucket)
				k, v := b.Cursor().Last()
				bad := append([]byte{v[0]}, "garbage"...)
				return b.Put(k, bad)
			})
			bdb.Close()
			if err != nil {
				t.Fatal(err)
			}
			r, err := Check(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, p := range r.Problems {
				found = found || strings.HasPrefix(p, tc.want)
			}
			if !found {
				t.Errorf("problems %q, want one starting %q", r.Problems, tc.want)
			}
		})
	}
}

func TestCheckMissing(t *testing.T) {
	_, err := Check(filepath.Join(t.TempDir(), "missing.db"), Options{})
	if !errors.Is(err, ErrUnreadable) {
		t.Errorf("missing: %v", err)
	}
}

// BenchmarkWalkPages measures what every Open adds (the cheap page walk)
// and what Check costs, on 2,000 minutes of the idle host (about 8 MB; a
// week of minutes is five times that):
// go test -run '^$' -bench WalkPages ./store
func BenchmarkWalkPages(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "itersnap.db"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	h := newIdleHost()
	for i := range 2000 {
		if i > 0 {
			h.step()
		}
		mustPut(b, db, h.snapshot())
	}
	size := dbSize(b, db)
	b.Run("open", func(b *testing.B) {
		for b.Loop() {
			_ = db.view(func(tx *bolt.Tx) error {
				_, err := db.walkPages(tx, false, nil)
				return err
			})
		}
		b.ReportMetric(float64(size), "bytes")
	})
	path := db.Path()
	db.Close()
	b.Run("check", func(b *testing.B) {
		// Decoding every snapshot dominates: ~4 ms each for this host.
		for b.Loop() {
			if r, err := Check(path, Options{}); err != nil || len(r.Problems) > 0 {
				b.Fatal(err, r.Problems)
			}
		}
	})
}
