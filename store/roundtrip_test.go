package store

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

func TestRoundTrip(t *testing.T) {
	db := openTestDB(t)
	want := sampleSnapshot()
	id := mustPut(t, db, want)
	if want.ID != id || id != 1 {
		t.Fatalf("Put returned %d and set ID %d, want 1 and 1", id, want.ID)
	}
	got, err := db.Get(id)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Get() mismatch (-want +got):\n%s", d)
	}
	// cmp compares times with Equal; the host's offset must survive too,
	// for an analyst reading the file on another machine.
	if _, off := got.Meta.Time.Zone(); off != 2*3600 {
		t.Errorf("time zone offset %d, want %d", off, 2*3600)
	}
}

// TestStacksStoredOnce: a stack shared by threads and by snapshots is one
// entry in the whole database.
func TestStacksStoredOnce(t *testing.T) {
	db := openTestDB(t)
	first := sampleSnapshot() // sleep, epoll, nfs
	second := &snapshot.Snapshot{
		Meta:   snapshot.Meta{Time: time.Unix(1_700_000_060, 0).UTC(), Collector: "procfs"},
		Stacks: []snapshot.Stack{stackNFS, {"new_frame+0x1/0x2"}},
		Tasks: []snapshot.Task{
			{PID: 7, TID: 7, Comm: "a", Stack: 1},
			{PID: 7, TID: 8, Comm: "a", Stack: 0},
			{PID: 7, TID: 9, Comm: "a", Stack: 0},
		},
	}
	second.Finish()
	mustPut(t, db, first)
	mustPut(t, db, second)
	if n := bucketLen(t, db, bucketStacks); n != 4 {
		t.Errorf("stacks bucket has %d entries, want 4 distinct stacks", n)
	}
	if n := bucketLen(t, db, bucketStackHash); n != 4 {
		t.Errorf("stack index has %d entries, want 4", n)
	}
	for _, want := range []*snapshot.Snapshot{first, second} {
		got, err := db.Get(want.ID)
		if err != nil {
			t.Fatalf("Get(%d): %v", want.ID, err)
		}
		if d := cmp.Diff(want, got, cmpOpts); d != "" {
			t.Errorf("Get(%d) mismatch (-want +got):\n%s", want.ID, d)
		}
	}
}

// TestRoundTripEdges: values at the edges of every encoding trick come back
// exactly.
func TestRoundTripEdges(t *testing.T) {
	db := openTestDB(t)
	want := &snapshot.Snapshot{
		Meta: snapshot.Meta{Notes: []string{}, Filter: snapshot.Filter{}},
		// An empty stack in the table, and the same stack twice.
		Stacks: []snapshot.Stack{{}, stackSleep, stackSleep, {"frame\nwith newline", ""}},
		Tasks: []snapshot.Task{
			{PID: math.MaxUint32, TID: 0, PPID: math.MaxUint32, Comm: "", State: math.MaxUint32, ExitState: math.MaxUint32, Flags: math.MaxUint32,
				StartTime: math.MaxUint64, Switches: math.MaxUint64, UID: math.MaxUint32, NoFileLimit: snapshot.NoLimit, Stack: 3, Missing: math.MaxUint16},
			{PID: 0, TID: math.MaxUint32, StartTime: 0, NoFileLimit: 0, Stack: -1},
			{PID: 5, TID: 5, Comm: "ünïcode", NoFileLimit: snapshot.NoLimit - 1, Stack: 0},
			{PID: 5, TID: 6, Comm: "x", Stack: 2},
			{PID: 5, TID: 7, Comm: "x", Stack: math.MinInt32},
		},
		Files: []snapshot.File{
			{PID: math.MaxUint32, FD: math.MaxUint32, Mode: math.MaxUint32, Flags: math.MaxUint32, Dev: math.MaxUint64, Inode: math.MaxUint64, Path: "socket:[18446744073709551615]", Missing: math.MaxUint16},
			{PID: 0, FD: 0, Inode: 0, Path: ""},
			{PID: 1, FD: 1, Inode: 123, Path: "socket:[0123]"}, // not the canonical inode
			{PID: 1, FD: 2, Inode: 6, Path: "pipe:[5]"},        // not this inode
			{PID: 1, FD: 3, Inode: 7, Path: "[7]"},             // empty prefix
			{PID: 1, FD: 4, Inode: 7, Path: "]"},
			{PID: 1, FD: 5, Inode: 8, Path: "/a/file [8]"},
		},
	}
	mustPut(t, db, want)
	got, err := db.Get(want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Get() mismatch (-want +got):\n%s", d)
	}
	if got.Meta.Notes == nil {
		t.Errorf("empty Notes came back nil, want empty")
	}
}

func TestEmptySnapshot(t *testing.T) {
	db := openTestDB(t)
	want := &snapshot.Snapshot{}
	mustPut(t, db, want)
	got, err := db.Get(want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Get() mismatch (-want +got):\n%s", d)
	}
}

func TestPutRejectsBadStackIndex(t *testing.T) {
	db := openTestDB(t)
	s := &snapshot.Snapshot{Stacks: []snapshot.Stack{stackSleep}, Tasks: []snapshot.Task{{PID: 1, TID: 1, Stack: 1}}}
	if _, err := db.Put(s); err == nil {
		t.Fatal("Put with a stack index past Stacks succeeded")
	}
	if n := bucketLen(t, db, bucketSnapMeta); n != 0 {
		t.Errorf("%d snapshots stored after a failed Put, want 0", n)
	}
}

func TestSyntheticRoundTrip(t *testing.T) {
	db := openTestDB(t)
	want := syntheticSnapshot(2000, 50, 15000, 1)
	mustPut(t, db, want)
	got, err := db.Get(want.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Get() mismatch (-want +got):\n%s", d)
	}
}

// TestReadsOlderSchemas: databases written by earlier itersnaps (schema 1,
// before chunks, testdata/store/v1.db; schema 2, whole records,
// testdata/store/v2.db; schema 3 before sockets and containers, version 1
// chunks, testdata/store/v3.db; schema 3 with version 3 records, whose
// sockets' state differences are a column for every socket,
// testdata/store/v3-socket-states.db) read as they were, read-only and
// without migrating, and a take migrates them and adds snapshots in the
// current layout.
func TestReadsOlderSchemas(t *testing.T) {
	for _, name := range []string{"v1.db", "v2.db", "v3.db"} {
		t.Run(name, func(t *testing.T) {
			checkOlderSchema(t, name, []*snapshot.Snapshot{sampleSnapshot(), syntheticSnapshot(40, 5, 200, 1)})
		})
	}
	// Written by itersnap at commit 416467b: socketSnapshot, then the same
	// host with its CLOSE_WAIT connection in LAST_ACK, whose record refers
	// to the first one's chunks with a state difference.
	t.Run("v3-socket-states.db", func(t *testing.T) {
		changed := socketSnapshot()
		for i := range changed.Files {
			if s := changed.Files[i].Socket; s != nil && s.State == snapshot.TCPCloseWait {
				s.State = snapshot.TCPLastAck
			}
		}
		checkOlderSchema(t, "v3-socket-states.db", []*snapshot.Snapshot{socketSnapshot(), changed}, encRecordV3)
	})
}

// checkOlderSchema checks the database testdata/store/name, which holds
// want; with versions, it first checks that the records of want are of
// those encoding versions, so that the test keeps reading what it says.
func checkOlderSchema(t *testing.T, name string, want []*snapshot.Snapshot, versions ...byte) {
	path := filepath.Join(t.TempDir(), name)
	data, err := os.ReadFile(filepath.Join("..", "testdata", "store", name))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	check := func(db *DB) {
		t.Helper()
		for i, w := range want {
			w.ID = uint64(i + 1)
			got, err := db.Get(w.ID)
			if err != nil {
				t.Fatalf("Get(%d): %v", w.ID, err)
			}
			if d := cmp.Diff(w, got, cmpOpts); d != "" {
				t.Errorf("Get(%d) mismatch (-want +got):\n%s", w.ID, d)
			}
		}
	}
	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of %s: %v", name, err)
	}
	if len(versions) > 0 {
		if err := ro.bolt.View(func(tx *bolt.Tx) error {
			for id := range want {
				if v := getRecord(tx.Bucket(bucketRecords), uint64(id+1)); len(v) == 0 || !slices.Contains(versions, v[0]) {
					t.Errorf("record %d of %s is not of version %v", id+1, name, versions)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	check(ro)
	ro.Close()
	if after, err := os.ReadFile(path); err != nil || !bytes.Equal(after, data) {
		t.Errorf("a read-only Open changed %s (%v)", name, err)
	}

	db, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("read-write Open: %v", err)
	}
	defer db.Close()
	third := syntheticSnapshot(40, 5, 200, 2)
	if id := mustPut(t, db, third); id != 3 {
		t.Errorf("new snapshot ID %d, want 3", id)
	}
	want = append(want, third)
	check(db)
	checkConsistent(t, db)
	if _, err := db.Forget(Policy{Last: 1}, time.UTC, false); err != nil {
		t.Fatal(err)
	}
	if got := recordCount(t, db); got != 1 {
		t.Errorf("%d records after forgetting all but the last, want 1", got)
	}
	third.ID = 3
	got, err := db.Get(3)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(third, got, cmpOpts); d != "" {
		t.Errorf("Get(3) after forget mismatch (-want +got):\n%s", d)
	}
	checkConsistent(t, db)
}

// TestLargeRecordInParts: a record of more than 256 parts (a large host)
// is stored and read back whole, and forgetting it leaves no part behind.
func TestLargeRecordInParts(t *testing.T) {
	db := openTestDB(t)
	mustPut(t, db, syntheticSnapshot(20000, 200, 30000, 0))
	// The same host, every thread with an unforeseeable switch count: the
	// chunks are reused, and the record's deltas do not compress.
	want := syntheticSnapshot(20000, 200, 30000, 0)
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range want.Tasks {
		want.Tasks[i].Switches = rnd.Uint64() >> 1
	}
	id := mustPut(t, db, want)
	var size int
	if err := db.bolt.View(func(tx *bolt.Tx) error {
		size = len(getRecord(tx.Bucket(bucketRecords), id))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if size <= 256*partSize {
		t.Fatalf("record of %d bytes: want more than 256 parts of %d", size, partSize)
	}
	got, err := db.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	want.ID = id
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Get mismatch (-want +got):\n%s", d)
	}
	mustPut(t, db, syntheticSnapshot(10, 2, 10, 1))
	if _, err := db.Forget(Policy{Last: 1}, time.UTC, false); err != nil {
		t.Fatal(err)
	}
	if n := bucketLen(t, db, bucketRecords); n != 1 {
		t.Errorf("%d record keys left after forgetting the large records, want 1", n)
	}
}
