package output

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/itersnap/itersnap/diff"
)

// TestHeadersAsDocumented: every record type's CSV header is the column
// list the README documents, in its order (columns are only ever appended).
func TestHeadersAsDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		what   string
		header []string
		doc    string // as the README's "CSV columns" section spells it
	}{
		{"list", Names(SnapshotColumns), "`list`: `id,time,host,kernel,collector,threads,processes,fds,label,duration,filter,partial`"},
		{"show --tasks", Names(TaskColumns), "`show --tasks` (the default): `snapshot,pid,tid,comm,state,stack,cgroup,container,pod,ns_pid`"},
		{"show --stacks", Names(StackColumns), "`show --stacks`: `snapshot,threads,states,comms,stack`"},
		{"show --fds", Names(FDColumns), "`show --fds`: `snapshot,pid,comm,fd,kind,path,proto,sock_state,local,remote,netns`"},
		{"forget", Names(ForgetColumns), "`forget`: `snapshot,time,action,reasons`"},
		{"diff", Names(FindingColumns), "`finding,pid,tid,comm` first, then\n`snapshot_a,snapshot_b,state,killable,blocked_for,class,kind,target,fds_a,fds_b,new_fds,growth,growth_per_hour,monotonic,samples,process_fds,limit,limit_used,switches_a,switches_b,stack,evidence,exhausts_in,container,pod`"},
	} {
		if !bytes.Contains(readme, []byte(tc.doc)) {
			t.Errorf("README does not document %s as %q", tc.what, tc.doc)
		}
		doc := tc.doc[strings.Index(tc.doc, ": `")+3:]
		if tc.what == "diff" {
			doc = strings.NewReplacer("` first, then\n`", ",", "`", "").Replace(tc.doc)
		}
		doc = strings.TrimSuffix(doc, "`")
		if got := strings.Join(tc.header, ","); got != doc {
			t.Errorf("%s header\n  %s\nwant\n  %s", tc.what, got, doc)
		}
	}
}

// TestKindColumnsAreFilled: each kind's table shows only columns that kind
// fills, and the CSV has every column of every kind's table.
func TestKindColumnsAreFilled(t *testing.T) {
	r := &diff.Report{A: 1, B: 2, IDs: []uint64{1, 2},
		FDLeaks: []diff.FDLeakFinding{{Subject: diff.Subject{PID: 1, Comm: "a"}, Kind: "socket", Target: "socket:[*]", FDsA: 1, FDsB: 3, Limit: 1024,
			Evidence: diff.EvidenceTrend, Exhausts: true, ExhaustsIn: 7800 * time.Second}},
		NewlyBlocked: []diff.BlockedFinding{{Subject: diff.Subject{PID: 2, TID: 2, Comm: "b"}, State: "D", Killable: "no", Stack: "x;y"}},
		Stuck:        []diff.StuckFinding{{Subject: diff.Subject{PID: 3, TID: 3, Comm: "c"}, State: "D", Killable: "no", Stack: "x;y"}},
		Unchanged:    []diff.UnchangedFinding{{Subject: diff.Subject{PID: 4, TID: 4, Comm: "d"}, Class: diff.ClassStuck, State: "D", Killable: "no", Stack: "x;y"}},
	}
	all := Names(FindingColumns)
	for _, f := range Findings(r) {
		for _, c := range KindColumns[f.Kind] {
			if c.Get(f) == None() {
				t.Errorf("%s: column %s does not apply, but its table shows it", f.Kind, c.Name)
			}
			found := false
			for _, name := range all {
				found = found || name == c.Name
			}
			if !found {
				t.Errorf("%s: column %s is not in the CSV", f.Kind, c.Name)
			}
		}
	}
}
