package store

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/itersnap/itersnap/export"
	"github.com/itersnap/itersnap/snapshot"
)

// The Parquet side of the storage figures: what `itersnap export` writes
// per snapshot of the idle host and of the busy 2,000-thread host (the
// models of size_test.go), in files of many snapshots (export A..B) and of
// one each (export --new from cron every minute). Here, beside the
// models, though export does the writing.

// parquetBytes exports snaps into dir, perFile snapshots to a file, and
// returns the bytes of every file written.
func parquetBytes(t testing.TB, snaps []*snapshot.Snapshot, perFile int) int64 {
	dir := t.TempDir()
	for start := 0; start < len(snaps); start += perFile {
		d := export.NewDataset(dir, false)
		for _, s := range snaps[start:min(start+perFile, len(snaps))] {
			if err := d.Add(s); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := d.Close(); err != nil {
			t.Fatal(err)
		}
	}
	var total int64
	filepath.WalkDir(dir, func(path string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if info, err := e.Info(); err == nil {
				total += info.Size()
			}
		}
		return err
	})
	return total
}

func idleSnapshots(n int) []*snapshot.Snapshot {
	h := newIdleHost()
	var out []*snapshot.Snapshot
	for i := range n {
		if i > 0 {
			h.step()
		}
		s := h.snapshot()
		s.ID = uint64(i + 1)
		out = append(out, s)
	}
	return out
}

func busySnapshots(n int) []*snapshot.Snapshot {
	var out []*snapshot.Snapshot
	for i := range n {
		s := syntheticSnapshot(synthThreads, synthStacks, synthFDs, uint64(i))
		s.ID = uint64(i + 1)
		out = append(out, s)
	}
	return out
}

// TestParquetSize logs the Parquet bytes per snapshot; it asserts only a
// loose bound that catches lost compression or dictionaries.
func TestParquetSize(t *testing.T) {
	if testing.Short() {
		t.Skip("exports 160 snapshots")
	}
	for _, c := range []struct {
		name  string
		snaps []*snapshot.Snapshot
		bound int64
	}{
		{"idle host (~300 threads, ~3,200 fds)", idleSnapshots(100), 40_000},
		{"busy host (2,000 threads, 15,000 fds)", busySnapshots(30), 400_000},
	} {
		n := int64(len(c.snaps))
		many := parquetBytes(t, c.snaps, len(c.snaps)) / n
		one := parquetBytes(t, c.snaps, 1) / n
		t.Logf("%s: %d bytes per snapshot in one file of %d snapshots, %d in files of one snapshot", c.name, many, n, one)
		if many > c.bound || one > 2*c.bound {
			t.Errorf("%s: %d and %d bytes per snapshot, want under %d and %d", c.name, many, one, c.bound, 2*c.bound)
		}
	}
}

// BenchmarkExportDay exports a day of the busy host, 1,440 snapshots a
// minute apart, from a database, as `itersnap export 1..1440` does: each
// snapshot read on its own, one file per table. Building the database
// takes minutes first; run it on purpose:
//
//	go test -run '^$' -bench ExportDay -benchtime 1x -timeout 60m ./store
func BenchmarkExportDay(b *testing.B) {
	db := openTestDB(b)
	db.bolt.NoSync = true // the setup's 1,440 commits need not reach the disk
	const day = 1440
	var ids []uint64
	for i := range day {
		s := syntheticSnapshot(synthThreads, synthStacks, synthFDs, uint64(i))
		ids = append(ids, mustPut(b, db, s))
	}
	db.bolt.NoSync = false
	dir := b.TempDir()
	for b.Loop() {
		os.RemoveAll(dir)
		d := export.NewDataset(dir, false)
		for _, id := range ids {
			s, err := db.Get(id)
			if err != nil {
				b.Fatal(err)
			}
			if err := d.Add(s); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := d.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExportSnapshot is the Parquet side of BenchmarkExportDay: one
// busy snapshot's rows into open files, without the database.
func BenchmarkExportSnapshot(b *testing.B) {
	snaps := busySnapshots(8)
	d := export.NewDataset(b.TempDir(), false)
	i := 0
	for b.Loop() {
		s := *snaps[i%len(snaps)]
		i++
		s.ID = uint64(i)
		if err := d.Add(&s); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := d.Close(); err != nil {
		b.Fatal(err)
	}
}
