package report

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/snapshot"
)

var (
	epoll  = snapshot.Stack{"ep_poll+0x2a0/0x2e0", "do_epoll_wait+0x95/0xb0", "do_syscall_64+0x7d/0x1a0"}
	frozen = snapshot.Stack{"percpu_rwsem_wait+0x110/0x140", "vfs_write+0x2a4/0x450", "do_syscall_64+0x7d/0x1a0"}
)

// host has n sleeping nginx threads in epoll_wait, one blocked writer and
// one stuck writer.
func host(n int) *snapshot.Snapshot {
	s := &snapshot.Snapshot{ID: 2, Meta: snapshot.Meta{Time: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)}, Stacks: []snapshot.Stack{epoll, frozen}}
	for i := range n {
		s.Tasks = append(s.Tasks, snapshot.Task{PID: 100, TID: uint32(100 + i), Comm: "nginx", State: snapshot.TaskInterruptible, StartTime: 5, Stack: 0})
	}
	s.Tasks = append(s.Tasks,
		snapshot.Task{PID: 200, TID: 200, Comm: "writer", State: snapshot.TaskUninterruptible, StartTime: 6, Stack: 1},
		snapshot.Task{PID: 300, TID: 300, Comm: "stuck", State: snapshot.TaskUninterruptible, StartTime: 7, Stack: 1},
	)
	s.Finish()
	return s
}

type frameFacts struct {
	Name, Class string
	Threads     string
}

func facts(g flameGraph) []frameFacts {
	var out []frameFacts
	for _, f := range g.Frames {
		lines := strings.Split(f.Title, "\n")
		out = append(out, frameFacts{Name: lines[0], Class: f.Class[:1], Threads: lines[len(lines)-1]})
	}
	return out
}

// TestFlameMerges: stuck, blocked and other threads each under a group of
// their own; within it, threads that share a stack prefix share its frames,
// and thread names sit on top.
func TestFlameMerges(t *testing.T) {
	g := buildFlame(host(2), []diff.StuckFinding{{Subject: diff.Subject{PID: 300, TID: 300, ThreadStart: 7}}})
	want := []frameFacts{
		{"all threads", "o", "4 threads (100.00%), 1 blocked, 1 stuck"},
		{"[stuck]", "s", "1 thread (25.00%), 1 stuck"},
		{"do_syscall_64", "s", "1 thread (25.00%), 1 stuck"},
		{"vfs_write", "s", "1 thread (25.00%), 1 stuck"},
		{"percpu_rwsem_wait", "s", "1 thread (25.00%), 1 stuck"},
		{"stuck", "s", "1 thread (25.00%), 1 stuck"},
		{"[blocked (D)]", "b", "1 thread (25.00%), 1 blocked"},
		{"do_syscall_64", "b", "1 thread (25.00%), 1 blocked"},
		{"vfs_write", "b", "1 thread (25.00%), 1 blocked"},
		{"percpu_rwsem_wait", "b", "1 thread (25.00%), 1 blocked"},
		{"writer", "b", "1 thread (25.00%), 1 blocked"},
		{"[running or sleeping]", "o", "2 threads (50.00%)"},
		{"do_syscall_64", "o", "2 threads (50.00%)"},
		{"do_epoll_wait", "o", "2 threads (50.00%)"},
		{"ep_poll", "o", "2 threads (50.00%)"},
		{"nginx", "t", "2 threads (50.00%)"},
	}
	if d := cmp.Diff(want, facts(g)); d != "" {
		t.Errorf("frames (-want +got):\n%s", d)
	}
	if g.Threads != 4 || g.Blocked != 1 || g.Stuck != 1 {
		t.Errorf("counts %d threads %d blocked %d stuck", g.Threads, g.Blocked, g.Stuck)
	}
	// The root spans the width; groups sit side by side inside it, stuck
	// first.
	if g.Frames[0].X != "10.00" || g.Frames[0].W != "1180.00" || g.Frames[1].W != "295.00" ||
		g.Frames[6].X != "305.00" || g.Frames[11].X != "600.00" || g.Frames[11].W != "590.00" {
		t.Errorf("geometry: root %s+%s, stuck %s wide, blocked at %s, others at %s, %s wide",
			g.Frames[0].X, g.Frames[0].W, g.Frames[1].W, g.Frames[6].X, g.Frames[11].X, g.Frames[11].W)
	}
}

// TestFlameDropsNarrowFrames: frames narrower than a tenth of a pixel are
// left out, unless a blocked or stuck thread passes through them.
func TestFlameDropsNarrowFrames(t *testing.T) {
	s := host(20000)
	s.Stacks = append(s.Stacks, snapshot.Stack{"rare_wait+0x1/0x2", "do_syscall_64+0x7d/0x1a0"})
	s.Tasks = append(s.Tasks, snapshot.Task{PID: 400, TID: 400, Comm: "rare", State: snapshot.TaskInterruptible, Stack: 2})
	g := buildFlame(s, nil)
	var names []string
	for _, f := range facts(g) {
		names = append(names, f.Name)
	}
	got := strings.Join(names, " ")
	if strings.Contains(got, "rare") {
		t.Errorf("a frame of 1 in 20,003 threads (0.06 px) was drawn: %s", got)
	}
	if !strings.Contains(got, "writer") || !strings.Contains(got, "percpu_rwsem_wait") {
		t.Errorf("the one blocked thread's frames were dropped: %s", got)
	}
}

func TestLabel(t *testing.T) {
	for _, tc := range []struct {
		name string
		w    float64
		want string
	}{
		{"do_syscall_64", 200, "do_syscall_64"},
		{"do_syscall_64", 60, "do_sys.."},
		{"do_syscall_64", 20, ""},
		{"žluťoučký", 60, "žluťou.."},
	} {
		if got := label(tc.name, tc.w); got != tc.want {
			t.Errorf("label(%q, %v) = %q, want %q", tc.name, tc.w, got, tc.want)
		}
	}
}

// TestChart: one line per leaking process, from the counts diff's walk
// made, over every snapshot that had it, in the findings' order, at most
// maxSuspects.
func TestChart(t *testing.T) {
	var heads []diff.Head
	for i := range 3 {
		s := host(1)
		heads = append(heads, diff.Head{ID: uint64(i + 1), Meta: s.Meta})
		heads[i].Meta.Time = s.Meta.Time.Add(time.Duration(i) * time.Hour)
	}
	series := []diff.FDSeries{{PID: 100, Comm: "nginx", FDs: []int{10, -1, 30}}}
	c := buildChart(heads, series)
	if len(c.Series) != 1 {
		t.Fatalf("%d series for one process", len(c.Series))
	}
	var marks []string
	for _, m := range c.Series[0].Marks {
		marks = append(marks, m.Title)
	}
	want := []string{"pid 100 nginx: 10 fds in snapshot 1 (2026-11-27 03:00:00)", "pid 100 nginx: 30 fds in snapshot 3 (2026-11-27 05:00:00)"}
	if d := cmp.Diff(want, marks); d != "" {
		t.Errorf("points (-want +got):\n%s", d)
	}
	if c.Series[0].Points != "60.00,206.25 860.00,78.75" {
		t.Errorf("polyline %q", c.Series[0].Points)
	}
	if len(c.YTicks) != 5 || c.YTicks[4].Label != "40" || len(c.XTicks) != 3 {
		t.Errorf("ticks x %v y %v", c.XTicks, c.YTicks)
	}
	if c := buildChart(heads, nil); len(c.Series) != 0 {
		t.Errorf("a chart without leaks")
	}
	many := slices.Repeat(series, maxSuspects+2)
	if c := buildChart(heads, many); len(c.Series) != maxSuspects {
		t.Errorf("%d series, want at most %d", len(c.Series), maxSuspects)
	}
}

func TestNiceCeil(t *testing.T) {
	for n, want := range map[int]int{0: 4, 1: 4, 4: 4, 5: 8, 9: 20, 21: 40, 41: 80, 81: 200, 999: 2000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}

// TestRender: a whole page, with a table row past MaxRows noted, not drawn.
func TestRender(t *testing.T) {
	a, b := host(2), host(2)
	a.ID = 1
	r := &diff.Report{A: 1, B: 2, IDs: []uint64{1, 2}}
	for i := range MaxRows + 3 {
		r.Stuck = append(r.Stuck, diff.StuckFinding{Subject: diff.Subject{PID: 7, TID: uint32(i), Comm: "<script>"}, State: "D", Killable: "no"})
	}
	in := Input{Heads: []diff.Head{{ID: a.ID, Meta: a.Meta}, {ID: b.ID, Meta: b.Meta}}, B: b, Diff: r}
	var buf bytes.Buffer
	if err := Render(&buf, in); err != nil {
		t.Fatal(err)
	}
	page := buf.String()
	for _, want := range []string{
		`<h3 id="finding-stuck">stuck (503)</h3>`,
		`<td class="num">499</td>`,
		"3 more not shown: the CSV has all 503.",
		`download="itersnap-1-2-stuck.csv" href="data:text/csv;charset=utf-8;base64,ZmluZGluZyxwaWQsdGlkLGNvbW0s`,
		"No fd_leak findings",
		"&lt;script&gt;",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(page, `<td class="num">500</td>`) {
		t.Errorf("row 501 drawn")
	}
	if n := strings.Count(page, "<script>"); n != 1 { // the page's own
		t.Errorf("a name from the data became a <script> element")
	}
	if err := Render(&buf, Input{}); err == nil {
		t.Errorf("no snapshots: no error")
	}
}
