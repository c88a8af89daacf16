package diff

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/itersnap/itersnap/snapshot"
)

var update = flag.Bool("update", false, "rewrite the scenarios and golden reports in testdata/diff")

// cmpOpts is how every test of the package compares. Findings come out
// sorted by contract, so slices are compared in order; floats went through
// JSON.
var cmpOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmpopts.EquateApprox(0, 1e-9),
}

const testdata = "../testdata/diff"

// goldenCase compares scenario input with opts; the report is checked twice:
// in full against testdata/diff/NAME.golden.json, and in summary against
// want, written by hand, so a golden refreshed over a bug still fails.
type goldenCase struct {
	name  string
	input string
	opts  Options
	want  []string
}

var goldenCases = []goldenCase{
	{
		name: "fdleak", input: "fdleak",
		want: []string{
			"range 1..5 (5 snapshots) span 40m0s",
			"fd_leak pid 1000 leaky socket socket:[*] 10->18 new 6 monotonic samples 5 growth/h 12.00 limit 1024 used 0.0225 evidence trend exhausts 83h25m0s",
			"idle hidden 4",
		},
	},
	{
		name: "fdleak_only_filter", input: "fdleak",
		opts: Options{Only: []Kind{FDLeak}, Filter: snapshot.Filter{Comms: []string{"sawtooth"}}, MinGrowth: 1},
		// sawtooth's count ends higher, but only its long-lived sockets
		// persist, and they were open at A.
		want: []string{
			"range 1..5 (5 snapshots) span 40m0s",
		},
	},
	{
		name: "pidreuse", input: "pidreuse", opts: Options{MinGrowth: 2},
		want: []string{
			"range 10..11 (2 snapshots) span 5m0s",
			// Two snapshots: nothing was seen twice before it went, so
			// nothing is a restart (restarts has the rule). worker's new
			// sockets are not a leak: it is another process.
			"fd_leak pid 4300 api socket socket:[*] 1->3 new 2 monotonic samples 2 growth/h 24.00 limit 1024 used 0.0029 evidence hint exhausts 42h32m30s",
			"idle hidden 1",
		},
	},
	{
		name: "fdreuse", input: "fdreuse", opts: Options{MinGrowth: 1},
		want: []string{
			"range 20..21 (2 snapshots) span 1h0m0s",
			"fd_leak pid 5000 proxy socket socket:[*] 1->2 new 2 monotonic samples 2 growth/h 1.00 limit unknown used 0.0000 evidence hint",
			"idle hidden 1",
		},
	},
	{
		name: "threads", input: "threads",
		want: []string{
			"range 30..31 (2 snapshots) span 2m0s",
			"newly_blocked 6000/6002 app-io D (was new) killable no for 0s stack []",
			"newly_blocked 6000/6003 app-nfs D (was new) killable yes for 0s stack [nfs_wait_bit_killable [nfs]]",
			"newly_blocked 6000/6005 app-sync D (was S) killable no for 0s stack [io_schedule]",
			"idle hidden 1",
		},
	},
	{
		name: "reboot", input: "reboot",
		want: []string{
			"range 40..42 (3 snapshots) span 20m0s",
			"reboot between 41 and 42",
			"note: rebooted between snapshots 41 and 42: tasks cannot be compared across a reboot",
		},
	},
	{
		name: "empty", input: "empty",
		want: []string{"range 50..51 (2 snapshots) span 1m0s"},
	},
	{
		name: "unknownid", input: "unknownid",
		want: []string{
			"range 52..53 (2 snapshots) span 1m0s",
			"newly_blocked 1100/1100 backup D (was S) killable no for 0s stack [io_schedule]",
			"note: boot id unknown for snapshot 53: assumed to be the same boot",
		},
	},
	{
		name: "filtered", input: "filtered", opts: Options{MinGrowth: 2},
		want: []string{
			"range 60..61 (2 snapshots) span 30m0s",
			"fd_leak pid 7000 target socket socket:[*] 2->4 new 2 monotonic samples 2 growth/h 4.00 limit 1024 used 0.0039 evidence hint exhausts 255h0m0s",
			"idle hidden 1",
			"note: snapshots have different filters (60: pid 7000, 61: no filter): only tasks that pass every filter are compared",
		},
	},
	{
		name: "stuck", input: "stuck",
		want: []string{
			"range 70..72 (3 snapshots) span 2m0s",
			"newly_blocked 8100/8102 nfsclient D (was S) killable yes for 1m0s stack [nfs_wait_bit_killable [nfs]]",
			"stuck 8000/8001 dbwriter D killable no for 2m0s switches 42 samples 3 stack [io_schedule]",
			"unchanged 8000/8001 dbwriter stuck D switches 42->42",
			"unchanged 8100/8100 nfsclient killable D switches 7->7",
			"unchanged 8000/8002 dbwriter blocked D switches 100->200",
			"unchanged 8300/8300 spinner running R switches 20000->20020",
			"idle hidden 3",
		},
	},
	{
		name: "stuck_idle", input: "stuck", opts: Options{IncludeIdle: true},
		want: []string{
			"range 70..72 (3 snapshots) span 2m0s",
			"newly_blocked 8100/8102 nfsclient D (was S) killable yes for 1m0s stack [nfs_wait_bit_killable [nfs]]",
			"stuck 8000/8001 dbwriter D killable no for 2m0s switches 42 samples 3 stack [io_schedule]",
			"unchanged 8000/8001 dbwriter stuck D switches 42->42",
			"unchanged 8100/8100 nfsclient killable D switches 7->7",
			"unchanged 8000/8002 dbwriter blocked D switches 100->200",
			"unchanged 8300/8300 spinner running R switches 20000->20020",
			"unchanged 80/80 kworker/1:2 idle I switches 9000->9060",
			"unchanged 8000/8000 dbwriter idle S switches 1000->1120",
			"unchanged 8200/8200 daemon idle S switches 500->510",
		},
	},
	{
		name: "mixed", input: "mixed", opts: Options{MinGrowth: 2},
		want: []string{
			"range 80..81 (2 snapshots) span 3m0s",
			"fd_leak pid 9000 indexer socket socket:[*] 2->4 new 2 monotonic samples 2 growth/h 40.00 limit 1024 used 0.0039 evidence hint exhausts 25h30m0s",
			"stuck 9000/9001 indexer D killable unknown for 3m0s switches 500 samples 2 stack [io_schedule]",
			"unchanged 9000/9001 indexer stuck D switches 500->500",
			"idle hidden 1",
			"note: snapshots from different collectors (80: procfs, 81: bpf): start times compared at 10 ms resolution",
			"note: killable unknown for 1 reported thread (procfs does not show TASK_WAKEKILL): counted as not killable for stuck",
		},
	},
}

func TestGolden(t *testing.T) {
	if *update {
		writeScenarios(t)
	}
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			got := Compare(readScenario(t, c.input), c.opts)

			golden := filepath.Join(testdata, c.name+".golden.json")
			if *update {
				writeJSON(t, golden, got)
			}
			var want Report
			readJSON(t, golden, &want)
			if d := cmp.Diff(&want, got, cmpOpts); d != "" {
				t.Errorf("Compare() mismatch with %s (-want +got):\n%s", golden, d)
			}
			if d := cmp.Diff(c.want, summary(got), cmpOpts); d != "" {
				t.Errorf("Compare() summary mismatch (-want +got):\n%s", d)
			}
		})
	}
}

// TestScenariosUpToDate: the recorded inputs are what the builders make, so
// a changed builder cannot go unrecorded.
func TestScenariosUpToDate(t *testing.T) {
	for name, build := range scenarios {
		want, err := json.MarshalIndent(build(), "", "\t")
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(testdata, name+".json")
		got, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./diff -update)", err)
		}
		if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
			t.Errorf("%s is stale: run go test ./diff -update", path)
		}
	}
}

// TestOrderIndependent: the kernel's iteration order is not stable; the
// report must not depend on it.
func TestOrderIndependent(t *testing.T) {
	for _, c := range goldenCases {
		want := Compare(readScenario(t, c.input), c.opts)
		snaps := readScenario(t, c.input)
		for _, s := range snaps {
			slices.Reverse(s.Tasks)
			slices.Reverse(s.Files)
		}
		if d := cmp.Diff(want, Compare(snaps, c.opts), cmpOpts); d != "" {
			t.Errorf("%s: reversed records changed the report (-sorted +reversed):\n%s", c.name, d)
		}
	}
}

func writeScenarios(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(testdata, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, build := range scenarios {
		writeJSON(t, filepath.Join(testdata, name+".json"), build())
	}
}

func readScenario(t *testing.T, name string) []*snapshot.Snapshot {
	t.Helper()
	var snaps []*snapshot.Snapshot
	readJSON(t, filepath.Join(testdata, name+".json"), &snaps)
	return snaps
}

func writeJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "\t")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./diff -update)", err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// summary is one line per restart, finding and note: what a reader checks
// by hand.
func summary(r *Report) []string {
	out := []string{fmt.Sprintf("range %d..%d (%d snapshots) span %s", r.A, r.B, len(r.IDs), r.Span)}
	if r.Reboot != nil {
		out = append(out, fmt.Sprintf("reboot between %d and %d", r.Reboot.Before, r.Reboot.After))
	}
	for _, x := range r.Restarts {
		out = append(out, fmt.Sprintf("restart pid %d %s (was pid %d %s) start %d->%d", x.PID, x.Comm, x.OldPID, x.OldComm, x.OldStart, x.NewStart))
	}
	for _, f := range r.FDLeaks {
		trend := "monotonic"
		if !f.Monotonic {
			trend = "sawtooth"
		}
		limit := fmt.Sprint(f.Limit)
		switch f.Limit {
		case 0:
			limit = "unknown"
		case snapshot.NoLimit:
			limit = "unlimited"
		}
		line := fmt.Sprintf("fd_leak pid %d %s %s %s %d->%d new %d %s samples %d growth/h %.2f limit %s used %.4f evidence %s",
			f.PID, f.Comm, f.Kind, f.Target, f.FDsA, f.FDsB, f.New, trend, f.Samples, f.GrowthPerHour, limit, f.LimitUsed, f.Evidence)
		if f.Exhausts {
			line += fmt.Sprintf(" exhausts %s", f.ExhaustsIn)
		}
		out = append(out, line)
	}
	for _, f := range r.NewlyBlocked {
		was := f.StateA
		if was == "" {
			was = "new"
		}
		out = append(out, fmt.Sprintf("newly_blocked %d/%d %s %s (was %s) killable %s for %s stack [%s]",
			f.PID, f.TID, f.Comm, f.State, was, f.Killable, f.BlockedFor, leaf(f.Stack)))
	}
	for _, f := range r.Stuck {
		out = append(out, fmt.Sprintf("stuck %d/%d %s %s killable %s for %s switches %d samples %d stack [%s]",
			f.PID, f.TID, f.Comm, f.State, f.Killable, f.BlockedFor, f.Switches, f.Samples, leaf(f.Stack)))
	}
	for _, f := range r.Unchanged {
		out = append(out, fmt.Sprintf("unchanged %d/%d %s %s %s switches %d->%d", f.PID, f.TID, f.Comm, f.Class, f.State, f.SwitchesA, f.SwitchesB))
	}
	if r.IdleHidden > 0 {
		out = append(out, fmt.Sprintf("idle hidden %d", r.IdleHidden))
	}
	for _, n := range r.Notes {
		out = append(out, "note: "+n)
	}
	return out
}

// leaf is the last function of a folded stack.
func leaf(folded string) string {
	if i := strings.LastIndexByte(folded, ';'); i >= 0 {
		return folded[i+1:]
	}
	return folded
}
