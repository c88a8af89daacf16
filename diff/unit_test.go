package diff

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/snapshot"
)

func TestTarget(t *testing.T) {
	for path, want := range map[string]string{
		"socket:[123]":            "socket:[*]",
		"pipe:[456]":              "pipe:[*]",
		"net:[4026531840]":        "net:[*]",
		"anon_inode:[eventfd]":    "anon_inode:[eventfd]",
		"anon_inode:bpf-map":      "anon_inode:bpf-map",
		"/data/odd:[12]":          "/data/odd:[*]",
		"/data/out/part17.dat":    "/data/out/part*.dat",
		"/tmp/x.123":              "/tmp/x.*",
		"/tmp/x.123 (deleted)":    "/tmp/x.* (deleted)",
		"/proc/42/stat":           "/proc/42/stat",
		"/var/log/app.log":        "/var/log/app.log",
		"/a1b22c333":              "/a*b*c*",
		"/dev/pts/3":              "/dev/pts/*",
		"/tmp/x (deleted)":        "/tmp/x (deleted)",
		"socket:[]":               "socket:[]",
		"socket:[12a]":            "socket:[12a]",
		":[12]":                   ":[12]",
		"":                        "",
		"anon_inode:[io_uring]":   "anon_inode:[io_uring]",
		"socket:[123] (deleted)?": "socket:[123] (deleted)?",
	} {
		if got := Target(path); got != want {
			t.Errorf("Target(%q) = %q, want %q", path, got, want)
		}
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range AllKinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := ParseKind("leak"); err == nil {
		t.Error("ParseKind(leak): no error")
	}
}

func TestCountAndEmpty(t *testing.T) {
	r := Compare(stuckScenario(), Options{})
	got := map[Kind]int{}
	for _, k := range AllKinds {
		got[k] = r.Count(k)
	}
	want := map[Kind]int{FDLeak: 0, NewlyBlocked: 1, Stuck: 1, UnchangedStack: 4}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Count (-want +got):\n%s", d)
	}
	if r.Empty() {
		t.Error("Empty() with findings")
	}
	if r := Compare(restartsScenario(), Options{Only: []Kind{Stuck}}); !r.Empty() || len(r.Restarts) != 2 {
		t.Errorf("restarts only: Empty() = %v with %d restarts, want true with 2", r.Empty(), len(r.Restarts))
	}
}

// TestOnly: each kind alone gives exactly its findings of the full report.
func TestOnly(t *testing.T) {
	all := Compare(stuckScenario(), Options{})
	for _, k := range AllKinds {
		r := Compare(stuckScenario(), Options{Only: []Kind{k}})
		for _, other := range AllKinds {
			want := 0
			if other == k {
				want = all.Count(k)
			}
			if got := r.Count(other); got != want {
				t.Errorf("Only %s: %d %s findings, want %d", k, got, other, want)
			}
		}
	}
}

func TestTooFewSnapshots(t *testing.T) {
	if r := Compare(nil, Options{}); !r.Empty() || len(r.Notes) != 1 {
		t.Errorf("no snapshots: %+v", r)
	}
	one := stuckScenario()[:1]
	if r := Compare(one, Options{}); !r.Empty() || r.A != 70 || r.B != 70 || len(r.Notes) != 1 {
		t.Errorf("one snapshot: %+v", r)
	}
}

// TestSeveralReboots: the last reboot is the one reported, all are noted.
func TestSeveralReboots(t *testing.T) {
	var snaps []*snapshot.Snapshot
	for i, boot := range []string{"a", "a", "", "b", "c"} {
		b := newSnap(uint64(i+1), time.Duration(i)*time.Minute)
		b.s.Meta.BootID = boot
		snaps = append(snaps, b.build())
	}
	r := Compare(snaps, Options{})
	want := &Reboot{Before: 4, After: 5, BootBefore: "b", BootAfter: "c"}
	if d := cmp.Diff(want, r.Reboot); d != "" {
		t.Errorf("Reboot (-want +got):\n%s", d)
	}
	wantNotes := []string{
		"boot id unknown for snapshot 3: assumed to be the same boot",
		"2 reboots in the range: between snapshots 2 and 4, 4 and 5",
		"rebooted between snapshots 4 and 5: tasks cannot be compared across a reboot",
	}
	if d := cmp.Diff(wantNotes, r.Notes); d != "" {
		t.Errorf("Notes (-want +got):\n%s", d)
	}
}

// TestMonotonicSkipsAbsence: a snapshot that did not see the process (a
// filter, a race) does not break the trend, and is not a sample.
func TestMonotonicSkipsAbsence(t *testing.T) {
	var snaps []*snapshot.Snapshot
	for i, n := range []int{2, -1, 6, 6} {
		b := newSnap(uint64(i+1), time.Duration(i)*15*time.Minute)
		b.task(thread(1, 1, "init", stS, 0, 0), epollStack)
		if n >= 0 {
			b.task(thread(100, 100, "app", stS, sec(10), uint64(i)), epollStack)
			for j := range n {
				b.files(100, socketFD(uint32(3+j), uint64(1000+j)))
			}
		}
		snaps = append(snaps, b.build())
	}
	r := Compare(snaps, Options{})
	if len(r.FDLeaks) != 1 {
		t.Fatalf("FDLeaks = %+v, want one", r.FDLeaks)
	}
	f := r.FDLeaks[0]
	if !f.Monotonic || f.Samples != 3 || f.GrowthPerHour != 4.0/0.75 || f.Evidence != EvidenceTrend {
		t.Errorf("Monotonic %v Samples %d GrowthPerHour %v Evidence %s, want true 3 5.333 trend", f.Monotonic, f.Samples, f.GrowthPerHour, f.Evidence)
	}
}

// TestNoSwitchCounts: a blocked thread whose switch counts could not be read
// is not called stuck (nothing shows it never ran), and a note says so.
func TestNoSwitchCounts(t *testing.T) {
	var snaps []*snapshot.Snapshot
	for i := range 2 {
		b := newSnap(uint64(i+1), time.Duration(i)*time.Minute)
		th := thread(100, 100, "app", stD, sec(10), 0)
		th.Missing |= snapshot.MissingStatus
		b.task(th, fsyncStack)
		snaps = append(snaps, b.build())
	}
	r := Compare(snaps, Options{})
	if len(r.Stuck) != 0 || len(r.Unchanged) != 1 || r.Unchanged[0].Class != ClassBlocked {
		t.Errorf("Stuck %+v Unchanged %+v: want no stuck, one unchanged of class blocked", r.Stuck, r.Unchanged)
	}
	want := []string{"1 thread blocked in every snapshot without switch counts: not reported as stuck"}
	if d := cmp.Diff(want, r.Notes); d != "" {
		t.Errorf("Notes (-want +got):\n%s", d)
	}
}

// TestSpanZero: two snapshots with one time give no growth rate, not +Inf.
func TestSpanZero(t *testing.T) {
	a, b := newSnap(1, 0), newSnap(2, 0)
	a.task(thread(100, 100, "app", stS, sec(10), 1), epollStack)
	b.task(thread(100, 100, "app", stS, sec(10), 2), epollStack)
	b.files(100, socketFD(3, 1000), socketFD(4, 1001), socketFD(5, 1002))
	r := Compare([]*snapshot.Snapshot{a.build(), b.build()}, Options{})
	if len(r.FDLeaks) != 1 || r.FDLeaks[0].GrowthPerHour != 0 || r.FDLeaks[0].Exhausts {
		t.Errorf("FDLeaks = %+v, want one with GrowthPerHour 0 and no exhausts_in", r.FDLeaks)
	}
}
