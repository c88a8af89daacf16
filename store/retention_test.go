package store

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/snapshot"
)

// entriesAt makes entries with the given times, IDs from 1.
func entriesAt(times ...time.Time) []Entry {
	var out []Entry
	for i, t := range times {
		out = append(out, Entry{ID: uint64(i + 1), Meta: snapshot.Meta{Time: t}})
	}
	return out
}

func kept(plan []Decision) (ids []uint64) {
	for _, d := range plan {
		if d.Keep {
			ids = append(ids, d.ID)
		}
	}
	return ids
}

func TestPlan(t *testing.T) {
	base := time.Date(2026, 11, 25, 22, 50, 0, 0, time.UTC)
	var times []time.Time
	// Every 20 minutes for two days and a bit: 160 snapshots.
	for i := range 160 {
		times = append(times, base.Add(time.Duration(i)*20*time.Minute))
	}
	entries := entriesAt(times...)
	latest := times[len(times)-1] // 2026-11-28 03:50
	for _, tc := range []struct {
		name   string
		policy Policy
		want   []uint64
	}{
		{"last", Policy{Last: 3}, []uint64{158, 159, 160}},
		{"within", Policy{Within: time.Hour}, []uint64{157, 158, 159, 160}},
		{"hourly", Policy{Hourly: 3}, []uint64{154, 157, 160}},
		{"daily", Policy{Daily: 2}, []uint64{148, 160}},
		{"union", Policy{Last: 2, Daily: 2}, []uint64{148, 159, 160}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := kept(Plan(entries, tc.policy, time.UTC))
			if d := cmp.Diff(tc.want, got); d != "" {
				t.Errorf("kept (-want +got):\n%s\nlatest %v", d, latest)
			}
		})
	}
	plan := Plan(entries, Policy{Last: 1, Within: time.Hour, Hourly: 1, Daily: 1}, time.UTC)
	if got := strings.Join(plan[159].Reasons, ", "); got != "last 1, within 1h0m0s, hourly 2026-11-28 03h, daily 2026-11-28" {
		t.Errorf("reasons for the latest: %q", got)
	}
	if plan[0].Keep || plan[0].Reasons != nil {
		t.Errorf("oldest kept: %+v", plan[0])
	}
}

// TestForgetFreesChunksAndStacks: removing snapshots removes the chunks and
// stacks only they used, keeps what the others use, and the rest read back
// unchanged.
func TestForgetFreesChunksAndStacks(t *testing.T) {
	db := openTestDB(t)
	h := newIdleHost()
	var want []*snapshot.Snapshot
	for i := range 40 {
		if i > 0 {
			h.step()
		}
		s := h.snapshot()
		s.Meta.Time = time.Unix(1_700_000_000+int64(i)*60, 0).UTC()
		mustPut(t, db, s)
		want = append(want, s)
	}
	chunksBefore, stacksBefore := bucketLen(t, db, bucketChunks), bucketLen(t, db, bucketStacks)

	plan, err := db.Forget(Policy{Last: 5}, time.UTC, true)
	if err != nil || len(kept(plan)) != 5 || bucketLen(t, db, bucketSnapMeta) != 40 {
		t.Fatalf("dry run: %v, kept %v, %d snapshots left", err, kept(plan), bucketLen(t, db, bucketSnapMeta))
	}
	if _, err := db.Forget(Policy{Last: 5}, time.UTC, false); err != nil {
		t.Fatal(err)
	}
	if n := bucketLen(t, db, bucketSnapMeta); n != 5 {
		t.Errorf("%d snapshots left, want 5", n)
	}
	if n := recordCount(t, db); n != 5 {
		t.Errorf("%d records left, want 5", n)
	}
	chunksAfter, stacksAfter := bucketLen(t, db, bucketChunks), bucketLen(t, db, bucketStacks)
	if chunksAfter >= chunksBefore || stacksAfter > stacksBefore || bucketLen(t, db, bucketStackHash) != stacksAfter {
		t.Errorf("chunks %d -> %d, stacks %d -> %d, stack index %d", chunksBefore, chunksAfter, stacksBefore, stacksAfter, bucketLen(t, db, bucketStackHash))
	}
	for _, w := range want[35:] {
		got, err := db.Get(w.ID)
		if err != nil {
			t.Fatalf("Get(%d) after forget: %v", w.ID, err)
		}
		if d := cmp.Diff(w, got, cmpOpts); d != "" {
			t.Errorf("Get(%d) after forget (-want +got):\n%s", w.ID, d)
		}
	}
	// A take after forgetting reuses what is left, and gets a new ID.
	h.step()
	next := h.snapshot()
	if id := mustPut(t, db, next); id != 41 {
		t.Errorf("ID after forget %d, want 41", id)
	}
	if _, err := db.Forget(Policy{}, time.UTC, false); err == nil {
		t.Error("Forget with an empty policy succeeded")
	}
}

func TestCopyAndCompact(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "itersnap.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newIdleHost()
	var want []*snapshot.Snapshot
	for i := range 30 {
		if i > 0 {
			h.step()
		}
		s := h.snapshot()
		mustPut(t, db, s)
		want = append(want, s)
	}
	copyPath := filepath.Join(dir, "incident.db")
	if err := db.CopyTo(copyPath, []uint64{3, 4, 5, 20}); err != nil {
		t.Fatalf("CopyTo: %v", err)
	}
	if err := db.CopyTo(copyPath, []uint64{3}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Errorf("CopyTo an existing file: %v", err)
	}
	c, err := Open(copyPath, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := c.List()
	var ids []uint64
	for _, e := range entries {
		ids = append(ids, e.ID)
	}
	if d := cmp.Diff([]uint64{3, 4, 5, 20}, ids); d != "" {
		t.Errorf("copy holds (-want +got):\n%s", d)
	}
	for _, id := range ids {
		got, err := c.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want[id-1], got, cmpOpts); d != "" {
			t.Errorf("copy's snapshot %d (-want +got):\n%s", id, d)
		}
	}
	c.Close()

	// Forget most, compact: the file shrinks, the rest is intact, and IDs
	// are not reused.
	if _, err := db.Forget(Policy{Last: 2}, time.UTC, false); err != nil {
		t.Fatal(err)
	}
	path := db.Path()
	db.Close()
	before, after, err := Compact(path, Options{})
	if err != nil || after >= before {
		t.Fatalf("Compact: %v, %d -> %d bytes", err, before, after)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Errorf("compacted file mode %v", info.Mode().Perm())
	}
	db2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	for _, id := range []uint64{29, 30} {
		got, err := db2.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want[id-1], got, cmpOpts); d != "" {
			t.Errorf("compacted snapshot %d (-want +got):\n%s", id, d)
		}
	}
	if id := mustPut(t, db2, h.snapshot()); id != 31 {
		t.Errorf("ID after compact %d, want 31", id)
	}
	checkConsistent(t, db2)
}
