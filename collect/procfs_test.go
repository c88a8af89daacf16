//go:build linux

package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/itersnap/itersnap/snapshot"
	"golang.org/x/sys/unix"
)

// testCmpOpts compares records whatever order they were collected in.
var testCmpOpts = cmp.Options{
	cmpopts.SortSlices(func(a, b snapshot.Task) bool { return a.PID < b.PID || a.PID == b.PID && a.TID < b.TID }),
	cmpopts.SortSlices(func(a, b snapshot.File) bool { return a.PID < b.PID || a.PID == b.PID && a.FD < b.FD }),
	cmpopts.SortSlices(func(a, b uint32) bool { return a < b }),
	cmpopts.EquateEmpty(),
	cmpopts.EquateComparable(netip.AddrPort{}),
}

func collectProcfs(t *testing.T, f snapshot.Filter) *snapshot.Snapshot {
	t.Helper()
	s, err := Procfs{}.Collect(context.Background(), f)
	if err != nil {
		t.Fatalf("procfs collect: %v", err)
	}
	return s
}

// procTaskIDs lists /proc/PID/task with the os package: an oracle that
// shares no code with the collector.
func procTaskIDs(t *testing.T, pid int) []uint32 {
	t.Helper()
	entries, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	var tids []uint32
	for _, e := range entries {
		tid, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		tids = append(tids, uint32(tid))
	}
	return tids
}

// procFiles reads the fds of pid with the os package, as another oracle.
func procFiles(t *testing.T, pid int) []snapshot.File {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []snapshot.File
	for _, e := range entries {
		fd, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			t.Fatal(err)
		}
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, fd))
		if err != nil {
			t.Fatal(err)
		}
		var flags uint32
		for _, line := range strings.Split(string(info), "\n") {
			if v, ok := strings.CutPrefix(line, "flags:"); ok {
				f, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
				if err != nil {
					t.Fatal(err)
				}
				flags = uint32(f)
			}
		}
		files = append(files, snapshot.File{PID: uint32(pid), FD: uint32(fd), Mode: st.Mode, Flags: flags, Dev: st.Dev, Inode: st.Ino, Path: link})
	}
	return files
}

// procStat returns the fields after comm of /proc/PID/task/TID/stat, from
// field 3 (state) on.
func procStat(t *testing.T, pid, tid int) []string {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stat", pid, tid))
	if err != nil {
		t.Fatal(err)
	}
	return strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
}

// TestProcfsChild: the child is recorded with exactly its threads and its
// fds, and the sleeper with its nanosleep stack.
func TestProcfsChild(t *testing.T) {
	child := startTestChild(t)
	pid := uint32(child.Pid)

	// The Go runtime may start a thread at any time: take the snapshot
	// between two identical listings.
	var s *snapshot.Snapshot
	var wantTIDs []uint32
	for attempt := 0; ; attempt++ {
		before := procTaskIDs(t, child.Pid)
		s = collectProcfs(t, snapshot.Filter{PIDs: []uint32{pid}})
		if after := procTaskIDs(t, child.Pid); slices.Equal(before, after) {
			wantTIDs = before
			break
		}
		if attempt == 5 {
			t.Fatalf("child %d keeps starting threads", child.Pid)
		}
	}

	var gotTIDs []uint32
	for _, task := range s.Tasks {
		gotTIDs = append(gotTIDs, task.TID)
	}
	if d := cmp.Diff(wantTIDs, gotTIDs, testCmpOpts); d != "" {
		t.Errorf("threads (-/proc/%d/task +snapshot):\n%s", child.Pid, d)
	}

	var limit unix.Rlimit
	if err := unix.Prlimit(child.Pid, unix.RLIMIT_NOFILE, nil, &limit); err != nil {
		t.Fatal(err)
	}
	leaderComm := snapshot.TruncComm(filepath.Base(os.Args[0]))
	leaderStart, err := strconv.ParseUint(procStat(t, child.Pid, child.Pid)[19], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	var sleeper *snapshot.Task
	for i, task := range s.Tasks {
		if task.PID != pid {
			t.Errorf("task %d of pid %d: the filter lets through only %d", task.TID, task.PID, pid)
			continue
		}
		if int(task.TID) == child.SleeperTID {
			sleeper = &s.Tasks[i]
		}
		wantComm := leaderComm
		if int(task.TID) == child.SleeperTID {
			wantComm = childSleeperComm
		}
		if task.Comm != wantComm {
			t.Errorf("tid %d: comm %q, want %q", task.TID, task.Comm, wantComm)
		}
		if task.PPID != uint32(os.Getpid()) || task.UID != uint32(os.Geteuid()) || task.NoFileLimit != limit.Cur {
			t.Errorf("tid %d: ppid %d uid %d nofile %d, want %d %d %d", task.TID, task.PPID, task.UID, task.NoFileLimit, os.Getpid(), os.Geteuid(), limit.Cur)
		}
		if task.KernelThread() {
			t.Errorf("tid %d: a kernel thread (flags %#x)", task.TID, task.Flags)
		}
		if task.StartTime < leaderStart*procfsTickNs || int(task.TID) == child.Pid && task.StartTime != leaderStart*procfsTickNs {
			t.Errorf("tid %d: start %d ns, leader started at %d ticks", task.TID, task.StartTime, leaderStart)
		}
		// A thread running on a CPU has no stack to show; the rest is
		// always readable (stacks only as root).
		if m := task.Missing &^ snapshot.MissingStack; m != 0 {
			t.Errorf("tid %d: missing %#x", task.TID, m)
		}
		if !root && task.Missing&snapshot.MissingStack == 0 {
			t.Errorf("tid %d: a stack without root", task.TID)
		}
	}

	if sleeper == nil {
		t.Fatalf("sleeper %d not in snapshot", child.SleeperTID)
	}
	if c := sleeper.StateLetter(); c != 'S' || sleeper.Switches == 0 {
		t.Errorf("sleeper: state %c, %d switches; want S, some", c, sleeper.Switches)
	}
	if root {
		stack := s.StackOf(*sleeper)
		t.Logf("sleeper's stack:\n%s", strings.Join(stack, "\n"))
		// do_nanosleep is __sched, and stack_trace_save_tsk leaves out
		// scheduler functions (in_sched_functions), so on 6.x the leaf is
		// hrtimer_nanosleep.
		if len(stack) == 0 || !slices.Contains([]string{"hrtimer_nanosleep", "do_nanosleep"}, snapshot.Function(stack[0])) ||
			!slices.ContainsFunc(stack, func(f string) bool { return snapshot.Function(f) == "hrtimer_nanosleep" }) {
			t.Errorf("sleeper's stack is not asleep in nanosleep:\n%s", strings.Join(stack, "\n"))
		}
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/stack", child.Pid, child.SleeperTID))
		if err != nil {
			t.Fatal(err)
		}
		var want snapshot.Stack
		for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
			want = append(want, strings.TrimPrefix(line, "[<0>] "))
		}
		if d := cmp.Diff(want, stack); d != "" {
			t.Errorf("sleeper's stack (-file +snapshot):\n%s", d)
		}
		if sleeper.Missing != 0 {
			t.Errorf("sleeper: missing %#x", sleeper.Missing)
		}
	}

	checkChildFiles(t, child, s.Files)
}

// checkChildFiles checks that files are exactly the child's fds.
func checkChildFiles(t *testing.T, child *testChild, files []snapshot.File) {
	t.Helper()
	// Sockets are checked against the other collector (bpf_test.go).
	if d := cmp.Diff(procFiles(t, child.Pid), files, testCmpOpts, cmpopts.IgnoreFields(snapshot.File{}, "Socket")); d != "" {
		t.Errorf("fds (-/proc/%d/fd +snapshot):\n%s", child.Pid, d)
	}
	kinds := map[uint32]string{}
	byFD := map[uint32]snapshot.File{}
	for _, f := range files {
		kinds[f.FD] = f.Kind()
		byFD[f.FD] = f
		var want string
		switch f.Kind() {
		case "char":
			want = "/dev/null"
		case "file":
			want = child.FilePath
		case "pipe":
			want = fmt.Sprintf("pipe:[%d]", f.Inode)
		case "socket":
			want = fmt.Sprintf("socket:[%d]", f.Inode)
		default:
			want = "anon_inode:[" + f.Kind() + "]"
		}
		if f.Path != want || f.Missing != 0 || f.Inode == 0 {
			t.Errorf("fd %d (%s): path %q, inode %d, missing %#x; want path %q", f.FD, f.Kind(), f.Path, f.Inode, f.Missing, want)
		}
		if f.FD > 2 && f.Flags&unix.O_CLOEXEC == 0 {
			t.Errorf("fd %d: flags %#o without O_CLOEXEC", f.FD, f.Flags)
		}
	}
	if d := cmp.Diff(child.WantFDs(), kinds); d != "" {
		t.Errorf("fd kinds (-want +got):\n%s", d)
	}

	var st syscall.Stat_t
	if err := syscall.Stat(child.FilePath, &st); err != nil {
		t.Fatal(err)
	}
	if f := byFD[child.FileFD]; f.Dev != st.Dev || f.Inode != st.Ino || f.Flags&unix.O_ACCMODE != unix.O_RDWR {
		t.Errorf("file fd: dev %d inode %d flags %#o; want %d, %d, O_RDWR", f.Dev, f.Inode, f.Flags, st.Dev, st.Ino)
	}
	r, w := byFD[child.PipeReadFD], byFD[child.PipeWriteFD]
	if r.Inode != w.Inode || r.Flags&unix.O_ACCMODE != unix.O_RDONLY || w.Flags&unix.O_ACCMODE != unix.O_WRONLY {
		t.Errorf("pipe ends: %+v, %+v", r, w)
	}
}

// TestProcfsFilter: each filter keeps exactly the child's tasks and fds that
// it keeps of an unfiltered snapshot, and nothing that fails it anywhere.
func TestProcfsFilter(t *testing.T) {
	child := startTestChild(t)
	// The Go runtime may start a thread at any time: the comparison counts
	// only when the child kept its threads throughout.
	for attempt := 0; ; attempt++ {
		before := procTaskIDs(t, child.Pid)
		problems := procfsFilterProblems(t, child)
		if slices.Equal(before, procTaskIDs(t, child.Pid)) {
			for _, p := range problems {
				t.Error(p)
			}
			return
		}
		if attempt == 5 {
			t.Fatalf("child %d keeps starting threads", child.Pid)
		}
	}
}

func procfsFilterProblems(t *testing.T, child *testChild) []string {
	var problems []string
	problem := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	pid := uint32(child.Pid)
	all := collectProcfs(t, snapshot.Filter{})
	leaders := map[uint32]string{}
	for _, p := range all.Processes() {
		leaders[p.PID] = p.Comm
	}
	leaderComm := leaders[pid]
	if leaderComm == "" {
		t.Fatalf("child %d not in the unfiltered snapshot", pid)
	}

	for _, f := range []snapshot.Filter{
		{Comms: []string{childSleeperComm}}, // one thread; no fds: the process is named otherwise
		{Comms: []string{leaderComm}},       // the child (and this process, of the same name)
		{Comms: []string{"no-such-comm"}},
		{PIDs: []uint32{pid}},
		{PIDs: []uint32{pid, pid, 1}},
		{PIDs: []uint32{uint32(child.SleeperTID)}}, // a thread id, not a process id: nothing
		{PIDs: []uint32{1}, Comms: []string{childSleeperComm}},
	} {
		got := collectProcfs(t, f)
		if d := cmp.Diff(f, got.Meta.Filter, cmpopts.EquateEmpty()); d != "" {
			problem("Meta.Filter (-want +got):\n%s", d)
		}
		// Anywhere on the host (processes started since are not judged).
		for _, task := range got.Tasks {
			if leader, ok := leaders[task.PID]; ok && !f.Match(task.PID, task.Comm, leader) {
				problem("filter %+v let through tid %d (%s) of pid %d (%s)", f, task.TID, task.Comm, task.PID, leader)
			}
		}
		for _, file := range got.Files {
			if leader, ok := leaders[file.PID]; ok && !f.Match(file.PID, leader, leader) {
				problem("filter %+v let through fd %d of pid %d (%s)", f, file.FD, file.PID, leader)
			}
		}

		// The child, exactly.
		var wantTIDs, gotTIDs, wantFDs, gotFDs []uint32
		for _, task := range all.Tasks {
			if task.PID == pid && f.Match(pid, task.Comm, leaderComm) {
				wantTIDs = append(wantTIDs, task.TID)
			}
		}
		for _, file := range all.Files {
			if file.PID == pid && f.Match(pid, leaderComm, leaderComm) {
				wantFDs = append(wantFDs, file.FD)
			}
		}
		for _, task := range got.Tasks {
			if task.PID == pid {
				gotTIDs = append(gotTIDs, task.TID)
			}
		}
		for _, file := range got.Files {
			if file.PID == pid {
				gotFDs = append(gotFDs, file.FD)
			}
		}
		if d := cmp.Diff(wantTIDs, gotTIDs, testCmpOpts); d != "" {
			problem("filter %+v: child's threads (-want +got):\n%s", f, d)
		}
		if d := cmp.Diff(wantFDs, gotFDs, testCmpOpts); d != "" {
			problem("filter %+v: child's fds (-want +got):\n%s", f, d)
		}
	}
	return problems
}

// TestProcfsHost: a whole-host snapshot is consistent and says what it
// could not read.
func TestProcfsHost(t *testing.T) {
	s := collectProcfs(t, snapshot.Filter{})
	t.Logf("%d threads, %d processes, %d fds, %d stacks in %v; notes: %q",
		s.Meta.Threads, s.Meta.Processes, s.Meta.FDs, len(s.Stacks), s.Meta.Duration, s.Meta.Notes)

	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		t.Fatal(err)
	}
	m := s.Meta
	if m.Collector != "procfs" || m.Hostname == "" || m.Kernel != unix.ByteSliceToString(u.Release[:]) || m.BootID == "" ||
		m.Time.IsZero() || m.Duration <= 0 || m.Threads != len(s.Tasks) || m.FDs != len(s.Files) || m.Processes == 0 {
		t.Errorf("meta: %+v", m)
	}
	pids := map[uint32]bool{}
	for _, task := range s.Tasks {
		pids[task.PID] = true
		if (task.Stack < 0) != (task.Missing&snapshot.MissingStack != 0) || int(task.Stack) >= len(s.Stacks) {
			t.Errorf("tid %d: stack %d of %d, missing %#x", task.TID, task.Stack, len(s.Stacks), task.Missing)
		}
	}
	for _, f := range s.Files {
		if !pids[f.PID] {
			t.Errorf("fd %d of pid %d, which has no tasks", f.FD, f.PID)
		}
	}
	if !pids[1] || !pids[uint32(os.Getpid())] {
		t.Errorf("pid 1 (%v) or this test's pid %d (%v) missing", pids[1], os.Getpid(), pids[uint32(os.Getpid())])
	}
	for i, st := range s.Stacks {
		if len(st) == 0 {
			t.Errorf("stack %d is empty", i)
		}
	}
	// Even root may be refused another process's stack and fds (an LSM,
	// or a target with capabilities this process lacks): only this
	// process's own are sure to be readable.
	if os.Geteuid() == 0 && !slices.ContainsFunc(s.Tasks, func(task snapshot.Task) bool { return int(task.PID) == os.Getpid() && task.Stack >= 0 }) {
		t.Errorf("as root, no stack for any thread of this process")
	}
	if !slices.ContainsFunc(s.Files, func(f snapshot.File) bool { return int(f.PID) == os.Getpid() && f.Missing == 0 && f.Inode != 0 }) {
		t.Errorf("no readable fd of this process")
	}
}

func TestProcfsErrors(t *testing.T) {
	if _, err := (Procfs{Root: filepath.Join(t.TempDir(), "none")}).Collect(context.Background(), snapshot.Filter{}); !errors.Is(err, unix.ENOENT) {
		t.Errorf("missing root: %v, want ENOENT", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (Procfs{}).Collect(ctx, snapshot.Filter{}); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled: %v", err)
	}
	if name := (Procfs{}).Name(); name != "procfs" {
		t.Errorf("Name() = %q", name)
	}
}

func BenchmarkProcfsCollect(b *testing.B) {
	var s *snapshot.Snapshot
	for b.Loop() {
		var err error
		if s, err = (Procfs{}).Collect(context.Background(), snapshot.Filter{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(s.Meta.Threads), "threads")
	b.ReportMetric(float64(s.Meta.FDs), "fds")
}
