package store

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// putN stores n small snapshots labelled 1..n.
func putN(t *testing.T, db *DB, n int) {
	t.Helper()
	for i := 1; i <= n; i++ {
		s := sampleSnapshot()
		s.Meta.Label = fmt.Sprint(i)
		s.Tasks = s.Tasks[:i%len(s.Tasks)+1]
		s.Finish()
		if id := mustPut(t, db, s); id != uint64(i) {
			t.Fatalf("Put #%d got ID %d", i, id)
		}
	}
}

// deleteSnapshot removes one snapshot by hand, leaving a gap in the IDs.
func deleteSnapshot(t *testing.T, db *DB, id uint64) {
	t.Helper()
	err := db.bolt.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketSnapMeta).Delete(idKey(id)); err != nil {
			return err
		}
		return deleteRecord(tx.Bucket(bucketRecords), id)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestList(t *testing.T) {
	db := openTestDB(t)
	entries, err := db.List()
	if err != nil || len(entries) != 0 {
		t.Fatalf("List on an empty database = %v, %v; want nothing", entries, err)
	}
	putN(t, db, 5)
	entries, err = db.List()
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		ID      uint64
		Label   string
		Threads int
		FDs     int
	}
	var got, want []row
	for _, e := range entries {
		got = append(got, row{e.ID, e.Meta.Label, e.Meta.Threads, e.Meta.FDs})
	}
	for i := 1; i <= 5; i++ {
		want = append(want, row{uint64(i), fmt.Sprint(i), i%5 + 1, 8})
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("List() mismatch (-want +got):\n%s", d)
	}
	if d := cmp.Diff(sampleSnapshot().Meta.Filter, entries[0].Meta.Filter, cmpOpts); d != "" {
		t.Errorf("List() filter mismatch (-want +got):\n%s", d)
	}
}

func TestResolve(t *testing.T) {
	db := openTestDB(t)
	for _, ref := range []string{"latest", "latest~0", "1"} {
		if _, err := db.Resolve(ref); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "itersnap take") {
			t.Errorf("Resolve(%q) on an empty database: %v, want ErrNotFound saying to take one", ref, err)
		}
	}
	putN(t, db, 7)
	deleteSnapshot(t, db, 5) // IDs 1 2 3 4 6 7

	for _, tc := range []struct {
		ref  string
		want uint64
	}{
		{"latest", 7},
		{"latest~0", 7},
		{"latest~1", 6},
		{"latest~2", 4}, // counts snapshots, not IDs: 5 is gone
		{"latest~5", 1},
		{"latest~005", 1},
		{"3", 3},
		{"007", 7},
	} {
		got, err := db.Resolve(tc.ref)
		if err != nil || got != tc.want {
			t.Errorf("Resolve(%q) = %d, %v; want %d", tc.ref, got, err, tc.want)
		}
	}

	for _, tc := range []struct {
		ref     string
		want    error
		message string
	}{
		{"5", ErrNotFound, "snapshot 5 not found (database has 6 snapshots between 1 and 7)"},
		{"99", ErrNotFound, "snapshot 99 not found"},
		{"99999999999999999999999", ErrBadRef, "99999999999999999999999 is not a snapshot ID"},
		{"18446744073709551616", ErrBadRef, "is not a snapshot ID"},
		{"18446744073709551615", ErrNotFound, "not found"},
		{"latest~6", ErrNotFound, "latest~6: only 6 snapshots (the oldest is latest~5)"},
		{"latest~99999999999999999999999", ErrNotFound, "only 6 snapshots"},
		{"abc", ErrBadRef, `bad snapshot reference "abc"`},
		{"", ErrBadRef, "bad snapshot reference"},
		{"0", ErrBadRef, ""},
		{"-1", ErrBadRef, ""},
		{"+1", ErrBadRef, ""},
		{"1.5", ErrBadRef, ""},
		{" 1", ErrBadRef, ""},
		{"1 ", ErrBadRef, ""},
		{"0x1", ErrBadRef, ""},
		{"latest~", ErrBadRef, ""},
		{"latest~x", ErrBadRef, ""},
		{"latest~-1", ErrBadRef, ""},
		{"latest~1~1", ErrBadRef, ""},
		{"Latest", ErrBadRef, ""},
		{"latest-1", ErrBadRef, ""},
		{"~1", ErrBadRef, ""},
	} {
		got, err := db.Resolve(tc.ref)
		if !errors.Is(err, tc.want) || !strings.Contains(fmt.Sprint(err), tc.message) {
			t.Errorf("Resolve(%q) = %d, %v; want %v containing %q", tc.ref, got, err, tc.want, tc.message)
		}
	}
}

func TestNotFoundMessages(t *testing.T) {
	db := openTestDB(t)
	putN(t, db, 1)
	if _, err := db.Resolve("3"); err == nil || err.Error() != "snapshot 3 not found (database has only snapshot 1)" {
		t.Errorf("Resolve(3) = %v", err)
	}
	putN2 := func() { mustPut(t, db, &snapshot.Snapshot{}) }
	putN2()
	putN2()
	if _, err := db.Get(99); err == nil || err.Error() != "snapshot 99 not found (database has 1–3)" {
		t.Errorf("Get(99) = %v", err)
	}
	if _, err := db.Resolve("latest~3"); err == nil || err.Error() != "latest~3: only 3 snapshots (the oldest is latest~2)" {
		t.Errorf("Resolve(latest~3) = %v", err)
	}
}

func TestIDsNotReused(t *testing.T) {
	db := openTestDB(t)
	putN(t, db, 3)
	deleteSnapshot(t, db, 3)
	if id := mustPut(t, db, &snapshot.Snapshot{}); id != 4 {
		t.Errorf("Put after deleting the latest got ID %d, want 4", id)
	}
	if _, err := db.Get(3); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(3) after delete: %v, want ErrNotFound", err)
	}
}

func TestRange(t *testing.T) {
	db := openTestDB(t)
	putN(t, db, 7)
	deleteSnapshot(t, db, 4)
	for _, tc := range []struct {
		a, b uint64
		want []uint64
	}{
		{2, 6, []uint64{2, 3, 5, 6}},
		{6, 2, []uint64{2, 3, 5, 6}},
		{7, 7, []uint64{7}},
		{4, 4, []uint64{}},
		{0, 100, []uint64{1, 2, 3, 5, 6, 7}},
		{8, 100, []uint64{}},
	} {
		got, err := db.Range(tc.a, tc.b)
		if err != nil {
			t.Fatalf("Range(%d, %d): %v", tc.a, tc.b, err)
		}
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("Range(%d, %d) mismatch (-want +got):\n%s", tc.a, tc.b, d)
		}
	}
}
