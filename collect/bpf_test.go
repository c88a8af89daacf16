//go:build linux

package collect

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/snapshot"
)

func collectBPF(t *testing.T, f snapshot.Filter) *snapshot.Snapshot {
	t.Helper()
	bpftest.RequireBPF(t)
	s, err := BPF{}.Collect(context.Background(), f)
	if err != nil {
		t.Fatalf("BPF collect: %+v", err)
	}
	return s
}

func filesOf(s *snapshot.Snapshot, pid uint32) []snapshot.File {
	var out []snapshot.File
	for _, f := range s.Files {
		if f.PID == pid {
			out = append(out, f)
		}
	}
	return out
}

func tasksOf(s *snapshot.Snapshot, pid uint32) []snapshot.Task {
	var out []snapshot.Task
	for _, t := range s.Tasks {
		if t.PID == pid {
			out = append(out, t)
		}
	}
	return out
}

// TestBPFChildFDs: a child with a file, a pipe, a socket and an eventfd open
// appears with exactly those fds and kinds.
func TestBPFChildFDs(t *testing.T) {
	child := startTestChild(t)
	s := collectBPF(t, snapshot.Filter{PIDs: []uint32{uint32(child.Pid)}})

	got := map[uint32]string{}
	for _, f := range filesOf(s, uint32(child.Pid)) {
		got[f.FD] = f.Kind()
		wantPrefix := map[string]string{"pipe": "pipe:[", "socket": "socket:[", "eventfd": "anon_inode:[eventfd]"}[f.Kind()]
		if f.Kind() == "file" && f.Path != child.FilePath {
			t.Errorf("fd %d: path %q, want %q", f.FD, f.Path, child.FilePath)
		}
		if wantPrefix != "" && !strings.HasPrefix(f.Path, wantPrefix) {
			t.Errorf("fd %d (%s): path %q, want prefix %q", f.FD, f.Kind(), f.Path, wantPrefix)
		}
		if f.Inode == 0 {
			t.Errorf("fd %d: no inode", f.FD)
		}
	}
	if d := cmp.Diff(child.WantFDs(), got); d != "" {
		t.Errorf("child fds mismatch (-want +got):\n%s", d)
	}
}

// TestBPFSleeperStack: a thread asleep in nanosleep shows the nanosleep
// frames, symbolized in the kernel.
func TestBPFSleeperStack(t *testing.T) {
	child := startTestChild(t)
	s := collectBPF(t, snapshot.Filter{PIDs: []uint32{uint32(child.Pid)}})
	for _, task := range tasksOf(s, uint32(child.Pid)) {
		if int(task.TID) != child.SleeperTID {
			continue
		}
		stack := s.StackOf(task)
		var funcs []string
		for _, f := range stack {
			funcs = append(funcs, snapshot.Function(f))
		}
		// do_nanosleep lives in the scheduler's text section, which the
		// kernel's stack walker leaves out (as /proc/PID/stack does), so
		// hrtimer_nanosleep is the leaf.
		if !slices.Contains(funcs, "hrtimer_nanosleep") || !slices.Contains(funcs, "__x64_sys_nanosleep") {
			t.Errorf("sleeper %d stack has no nanosleep frames:\n%s", task.TID, strings.Join(stack, "\n"))
		}
		if c := task.StateLetter(); c != 'S' {
			t.Errorf("sleeper state %c, want S", c)
		}
		return
	}
	t.Fatalf("sleeper thread %d not in snapshot", child.SleeperTID)
}

// TestBPFAgreesWithProcfs: both collectors see the same threads and fds of
// the child. Fields that move between two reads (state, switch counts, the
// stacks of Go runtime threads) are compared only for the sleeper, which
// cannot move.
func TestBPFAgreesWithProcfs(t *testing.T) {
	child := startTestChild(t)
	f := snapshot.Filter{PIDs: []uint32{uint32(child.Pid)}}
	viaBPF := collectBPF(t, f)
	viaProcfs, err := Procfs{}.Collect(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}

	type thread struct {
		PID, TID, PPID, UID uint32
		Comm                string
		StartTicks          uint64 // procfs has clock-tick resolution
		NoFileLimit         uint64
		KernelThread        bool
		Cgroup              string
		CgroupID            uint64
		NSPID               uint32
		Stack               snapshot.Stack // sleeper only
	}
	threads := func(s *snapshot.Snapshot) []thread {
		var out []thread
		for _, t := range tasksOf(s, uint32(child.Pid)) {
			th := thread{t.PID, t.TID, t.PPID, t.UID, t.Comm, t.StartTime / 10_000_000, t.NoFileLimit, t.KernelThread(), t.Cgroup, t.CgroupID, t.NSPID, nil}
			if int(t.TID) == child.SleeperTID {
				th.Stack = s.StackOf(t)
			}
			out = append(out, th)
		}
		return out
	}
	opts := cmp.Options{cmpopts.SortSlices(func(a, b thread) bool { return a.TID < b.TID })}
	if d := cmp.Diff(threads(viaProcfs), threads(viaBPF), opts); d != "" {
		t.Errorf("threads: procfs and bpf disagree (-procfs +bpf):\n%s", d)
	}
	if d := cmp.Diff(filesOf(viaProcfs, uint32(child.Pid)), filesOf(viaBPF, uint32(child.Pid)), testCmpOpts); d != "" {
		t.Errorf("fds: procfs and bpf disagree (-procfs +bpf):\n%s", d)
	}
}

// TestBPFFilters: --pid and --comm return only matching tasks, and exactly
// the matching tasks of an unfiltered snapshot.
func TestBPFFilters(t *testing.T) {
	child := startTestChild(t)
	all := collectBPF(t, snapshot.Filter{})
	comm := ""
	for _, task := range tasksOf(all, uint32(child.Pid)) {
		if int(task.TID) == child.Pid {
			comm = task.Comm
		}
	}
	if comm == "" {
		t.Fatalf("child %d not in unfiltered snapshot", child.Pid)
	}
	for _, f := range []snapshot.Filter{
		{PIDs: []uint32{uint32(child.Pid)}},
		{PIDs: []uint32{uint32(child.Pid), 1}},
		{Comms: []string{comm}},
		{Comms: []string{"no-such-comm"}},
	} {
		got := collectBPF(t, f)
		leader := map[uint32]string{}
		for _, p := range all.Processes() {
			leader[p.PID] = p.Comm
		}
		wantTIDs, gotTIDs := []uint32{}, []uint32{}
		for _, task := range all.Tasks {
			// The test process itself may start or end threads between two
			// takes; compare the child and pid 1, which are quiet.
			if task.PID != uint32(child.Pid) && task.PID != 1 {
				continue
			}
			if f.Match(task.PID, task.Comm, leader[task.PID]) {
				wantTIDs = append(wantTIDs, task.TID)
			}
		}
		for _, task := range got.Tasks {
			if !f.Match(task.PID, task.Comm, leader[task.PID]) {
				t.Errorf("filter %+v let through pid %d tid %d (%s)", f, task.PID, task.TID, task.Comm)
			}
			if task.PID == uint32(child.Pid) || task.PID == 1 {
				gotTIDs = append(gotTIDs, task.TID)
			}
		}
		for _, file := range got.Files {
			if !f.Match(file.PID, leader[file.PID], leader[file.PID]) {
				t.Errorf("filter %+v let through fd %d of pid %d", f, file.FD, file.PID)
			}
		}
		if d := cmp.Diff(wantTIDs, gotTIDs, cmpopts.SortSlices(func(a, b uint32) bool { return a < b })); d != "" {
			t.Errorf("filter %+v (-want +got):\n%s", f, d)
		}
		if !reflectEqual(got.Meta.Filter, f) {
			t.Errorf("Meta.Filter = %+v, want %+v", got.Meta.Filter, f)
		}
	}
}

func reflectEqual(a, b snapshot.Filter) bool { return cmp.Equal(a, b, cmpopts.EquateEmpty()) }

// TestBPFNoStalePathBytes: bpf_d_path leaves the previous, longer path's
// bytes in the reused buffer; none may reach the record.
func TestBPFNoStalePathBytes(t *testing.T) {
	dir := t.TempDir()
	long := filepath.Join(dir, strings.Repeat("long-name-", 20))
	short := filepath.Join(dir, "s")
	for _, p := range []string{long, short} {
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	s := collectBPF(t, snapshot.Filter{PIDs: []uint32{uint32(os.Getpid())}})
	seen := map[string]bool{}
	for _, f := range filesOf(s, uint32(os.Getpid())) {
		seen[f.Path] = true
		if strings.HasPrefix(f.Path, dir) && f.Path != long && f.Path != short {
			t.Errorf("fd %d: path %q is neither file", f.FD, f.Path)
		}
	}
	if !seen[long] || !seen[short] {
		t.Errorf("paths not seen exactly: long %v short %v", seen[long], seen[short])
	}
}
