package export

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/pprof/profile"

	"github.com/itersnap/itersnap/snapshot"
)

var (
	epoll  = snapshot.Stack{"ep_poll+0x2a0/0x2e0", "do_epoll_wait+0x95/0xb0", "do_syscall_64+0x7d/0x1a0", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"}
	frozen = snapshot.Stack{"percpu_rwsem_wait+0x110/0x140", "vfs_write+0x2a4/0x450", "do_syscall_64+0x7d/0x1a0", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"}
	nfs    = snapshot.Stack{"nfs_wait_bit_killable+0x1c/0x80 [nfs]", "do_syscall_64+0x7d/0x1a0"}
)

// host is a snapshot with names a folded file cannot hold as they are: a
// ";" and a "%" in a process name, a newline in a thread name, and a thread
// without a stack.
func host() *snapshot.Snapshot {
	s := &snapshot.Snapshot{
		ID:     7,
		Meta:   snapshot.Meta{Time: time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC), Hostname: "web-1", Kernel: "6.18.0", Collector: "bpf"},
		Stacks: []snapshot.Stack{epoll, frozen, nfs},
	}
	s.Tasks = []snapshot.Task{
		{PID: 100, TID: 100, Comm: "nginx", State: snapshot.TaskInterruptible, Stack: 0},
		{PID: 100, TID: 101, Comm: "nginx", State: snapshot.TaskInterruptible, Stack: 0},
		{PID: 100, TID: 102, Comm: "nginx", State: snapshot.TaskInterruptible, Stack: 0},
		{PID: 200, TID: 200, Comm: "a;b 50%", State: snapshot.TaskUninterruptible, Stack: 1},
		{PID: 200, TID: 201, Comm: "line\nbreak", State: snapshot.TaskUninterruptible, Stack: 1},
		{PID: 300, TID: 300, Comm: "cp", State: snapshot.TaskKillable, Stack: 2},
		{PID: 400, TID: 400, Comm: "exiting", State: snapshot.TaskRunning, Stack: -1},
	}
	s.Finish()
	return s
}

// parseFolded reads a folded-stack file as flamegraph.pl does: the count is
// after the last space, frames are split on ";". Names are unescaped
// (%XX), as export documents.
func parseFolded(t *testing.T, b []byte) map[string]int {
	t.Helper()
	out := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			t.Fatalf("no count in %q", line)
		}
		n, err := strconv.Atoi(line[i+1:])
		if err != nil {
			t.Fatalf("count in %q: %v", line, err)
		}
		frames := strings.Split(line[:i], ";")
		for j, f := range frames {
			frames[j] = unescape(t, f)
		}
		key := strings.Join(frames, "\x00")
		if _, dup := out[key]; dup {
			t.Errorf("stack %q on two lines", line[:i])
		}
		out[key] = n
	}
	return out
}

func unescape(t *testing.T, s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' {
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				t.Fatalf("bad escape in %q", s)
			}
			b.WriteByte(byte(v))
			i += 2
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// want counts the snapshot's threads by (comm, functions root to leaf),
// straight from the model.
func want(s *snapshot.Snapshot) map[string]int {
	out := map[string]int{}
	for _, t := range s.Tasks {
		frames := []string{t.Comm}
		st := s.StackOf(t)
		for i := len(st) - 1; i >= 0; i-- {
			frames = append(frames, snapshot.Function(st[i]))
		}
		out[strings.Join(frames, "\x00")]++
	}
	return out
}

func TestFoldedRoundTrip(t *testing.T) {
	s := host()
	var buf bytes.Buffer
	if err := WriteFolded(&buf, Folded(s, nil)); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want(s), parseFolded(t, buf.Bytes())); d != "" {
		t.Errorf("folded round trip (-want +got):\n%s", d)
	}
	wantText := `a%3Bb 50%25;entry_SYSCALL_64_after_hwframe;do_syscall_64;vfs_write;percpu_rwsem_wait 1
cp;do_syscall_64;nfs_wait_bit_killable [nfs] 1
exiting 1
line%0Abreak;entry_SYSCALL_64_after_hwframe;do_syscall_64;vfs_write;percpu_rwsem_wait 1
nginx;entry_SYSCALL_64_after_hwframe;do_syscall_64;do_epoll_wait;ep_poll 3
`
	if d := cmp.Diff(wantText, buf.String()); d != "" {
		t.Errorf("folded text (-want +got):\n%s", d)
	}
}

func TestFoldedKeep(t *testing.T) {
	lines := Folded(host(), func(t *snapshot.Task) bool { return t.PID == 100 })
	if len(lines) != 1 || lines[0].Count != 3 || !strings.HasPrefix(lines[0].Stack, "nginx;") {
		t.Errorf("kept only pid 100: %+v", lines)
	}
}

func TestFoldedDiff(t *testing.T) {
	a, b := host(), host()
	a.Tasks = a.Tasks[:3]                          // nginx only
	b.Tasks = append(b.Tasks[1:3], b.Tasks[5:]...) // one nginx thread gone, cp and exiting new
	var buf bytes.Buffer
	if err := WriteFoldedDiff(&buf, FoldedDiff(a, b, nil, nil)); err != nil {
		t.Fatal(err)
	}
	wantText := `cp;do_syscall_64;nfs_wait_bit_killable [nfs] 0 1
exiting 0 1
nginx;entry_SYSCALL_64_after_hwframe;do_syscall_64;do_epoll_wait;ep_poll 3 2
`
	if d := cmp.Diff(wantText, buf.String()); d != "" {
		t.Errorf("folded-diff (-want +got):\n%s", d)
	}
	b.Tasks = nil
	lines := FoldedDiff(a, b, nil, nil)
	if len(lines) != 1 || lines[0].CountA != 3 || lines[0].CountB != 0 {
		t.Errorf("stacks gone at B: %+v", lines)
	}
}

func TestProfile(t *testing.T) {
	s := host()
	var buf bytes.Buffer
	if err := Profile(s, nil).Write(&buf); err != nil {
		t.Fatal(err)
	}
	p, err := profile.Parse(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.SampleType) != 1 || p.SampleType[0].Type != "threads" || p.SampleType[0].Unit != "count" {
		t.Errorf("sample types %v", p.SampleType)
	}
	if len(p.Sample) != len(s.Tasks) {
		t.Fatalf("%d samples for %d threads", len(p.Sample), len(s.Tasks))
	}
	got := map[string]int{}
	for i, smp := range p.Sample {
		task := s.Tasks[i]
		wantLabels := map[string][]string{
			"pid": {strconv.Itoa(int(task.PID))}, "tid": {strconv.Itoa(int(task.TID))},
			"comm": {task.Comm}, "state": {string(task.StateLetter())},
		}
		if d := cmp.Diff(wantLabels, smp.Label); d != "" {
			t.Errorf("sample %d labels (-want +got):\n%s", i, d)
		}
		if len(smp.Value) != 1 || smp.Value[0] != 1 {
			t.Errorf("sample %d values %v", i, smp.Value)
		}
		// pprof stores the leaf first; rebuild root first with the comm.
		frames := []string{smp.Label["comm"][0]}
		for j := len(smp.Location) - 1; j >= 0; j-- {
			frames = append(frames, smp.Location[j].Line[0].Function.Name)
		}
		got[strings.Join(frames, "\x00")]++
	}
	if d := cmp.Diff(want(s), got); d != "" {
		t.Errorf("profile stacks (-want +got):\n%s", d)
	}
	if p.TimeNanos != s.Meta.Time.UnixNano() || len(p.Comments) != 1 || !strings.Contains(p.Comments[0], "web-1") {
		t.Errorf("time %d, comments %q", p.TimeNanos, p.Comments)
	}
	if p.PeriodType == nil || p.PeriodType.Type != "threads" || p.PeriodType.Unit != "count" || p.Period != 1 {
		t.Errorf("period %v %d", p.PeriodType, p.Period)
	}
	// One mapping, symbolized already; a location per function, each
	// function named once.
	if len(p.Mapping) != 1 || p.Mapping[0].File != "[kernel.kallsyms]" || !p.Mapping[0].HasFunctions {
		t.Fatalf("mappings %+v", p.Mapping)
	}
	names := map[string]bool{}
	for _, l := range p.Location {
		if l.Mapping != p.Mapping[0] || len(l.Line) != 1 || l.Line[0].Function.SystemName != l.Line[0].Function.Name {
			t.Errorf("location %+v", l)
		}
		if name := l.Line[0].Function.Name; names[name] {
			t.Errorf("function %s twice", name)
		} else {
			names[name] = true
		}
	}
	if len(p.Function) != len(p.Location) {
		t.Errorf("%d functions for %d locations", len(p.Function), len(p.Location))
	}
	if err := p.CheckValid(); err != nil {
		t.Error(err)
	}
}

// TestPprofTop: `go tool pprof -top` reads the export and lists the kernel
// functions, with thread counts. It needs the go tool on PATH; the parse
// check in TestProfile does not.
func TestPprofTop(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not on PATH: TestProfile checks the profile with the pprof package")
	}
	path := filepath.Join(t.TempDir(), "threads.pb.gz")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := Profile(host(), nil).Write(f); err != nil {
		t.Fatal(err)
	}
	f.Close()
	out, err := exec.Command(gobin, "tool", "pprof", "-top", path).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool pprof -top: %v\n%s", err, out)
	}
	for _, fn := range []string{"ep_poll", "percpu_rwsem_wait", "nfs_wait_bit_killable [nfs]", "do_syscall_64"} {
		if !strings.Contains(string(out), fn) {
			t.Errorf("pprof -top does not list %s:\n%s", fn, out)
		}
	}
	// ep_poll is the leaf of 3 threads: flat 3.
	if !regexp.MustCompile(`(?m)^\s+3\s+42\.86%.*ep_poll$`).MatchString(string(out)) {
		t.Errorf("pprof -top does not count 3 threads in ep_poll:\n%s", out)
	}
}
