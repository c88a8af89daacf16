//go:build linux

package bpf

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// seqBufferSize is kernel/bpf/bpf_iter.c's seq buffer (PAGE_SIZE << 3). A
// task whose records end at or past it, counted from the start of a read,
// overflows it: bpf_seq_read drops that task's records and shows it again
// at the start of the next read.
const seqBufferSize = 8 << 12

// TestSymbolsOfReshownTask checks that a task shown twice, because its
// records overflowed the seq buffer, still carries the symbols only its
// stack has. The first showing claims them in the kernel's dedup map; if
// the second showing took them for done, their frames would stay hex.
//
// Whether the overflowing task has new symbols depends on where 32 KB of
// output ends, so the test places the boundary: 511 threads asleep in
// nanosleep, named in groups of 1, 2, 4, ... 256, come first in tid order,
// then 8 threads blocked in 8 other syscalls, each with frames of its own.
// A comm filter picks any number F of sleepers, and F moves the boundary by
// one sleeper's records at a time, across the 8.
func TestSymbolsOfReshownTask(t *testing.T) {
	blockers := []func(){
		func() { unix.Poll(nil, -1) },
		func() { unix.Select(0, nil, nil, nil, nil) },
		func() { unix.Ppoll(nil, nil, nil) },
		func() { unix.Pselect(0, nil, nil, nil, nil, nil) },
		func() { unix.Pause() },
		func() {
			ts := unix.NsecToTimespec(int64(time.Hour))
			unix.ClockNanosleep(unix.CLOCK_BOOTTIME, 0, &ts, nil)
		},
		func() {
			if fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
				unix.EpollWait(fd, make([]unix.EpollEvent, 1), -1)
				unix.Close(fd)
			}
		},
		func() {
			if fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC); err == nil {
				var ev unix.EpollEvent
				unix.Syscall6(unix.SYS_EPOLL_PWAIT, uintptr(fd), uintptr(unsafe.Pointer(&ev)), 1, ^uintptr(0), 0, 0)
				unix.Close(fd)
			}
		},
	}
	const sleepers, groups = 511, 9
	names, block := sleeperGroups("isnap-sleep", sleepers)
	for range blockers {
		names = append(names, "isnap-other")
	}
	block = append(block, blockers...)
	blockThreads(t, names, block)

	walk := func(sleepers int) (ends []int, hasSyms []bool, missing int) {
		data := walkGroups(t, "isnap-other", "isnap-sleep", groups, sleepers)
		var addrs []uint64
		syms := map[uint64]bool{}
		end := 0
		err := decodeTasks(data, TaskVisitor{Task: func(rec *TaskRecord, stack []uint64) {
			if len(ends) > 0 {
				ends[len(ends)-1] = end
			}
			end += int(unsafe.Sizeof(*rec)) + 8*len(stack)
			ends = append(ends, end)
			hasSyms = append(hasSyms, rec.NrSyms > 0)
			addrs = append(addrs, stack...)
		}, Symbol: func(rec *SymbolRecord, text []byte) {
			end += int(unsafe.Sizeof(*rec)) + len(text)
			syms[rec.Addr] = syms[rec.Addr] || len(text) > 0
		}, Cgroup: func(rec *CgroupRecord, name []byte) {
			end += int(unsafe.Sizeof(*rec)) + len(name)
		}})
		if err != nil {
			t.Fatal(err)
		}
		ends[len(ends)-1] = end
		for _, a := range addrs {
			if !syms[a] {
				missing++
			}
		}
		return ends, hasSyms, missing
	}

	// One sleeper's records, and the others' after the first sleeper's,
	// from walks with 1 and 2 sleepers.
	one, _, _ := walk(1)
	two, _, _ := walk(2)
	sleeper := two[len(two)-1] - one[len(one)-1]
	others := one[len(one)-1] - one[0]
	if sleeper <= 0 || others <= 0 {
		t.Fatalf("walks of 1 and 2 sleepers: %v, %v", one, two)
	}
	first := max(1, (seqBufferSize-one[len(one)-1])/sleeper-1)
	last := min(sleepers, seqBufferSize/sleeper+1)

	covered := 0
	for f := first; f <= last; f++ {
		ends, hasSyms, missing := walk(f)
		if missing > 0 {
			t.Errorf("%d sleepers: %d stack addresses have no symbol", f, missing)
		}
		// The task whose records reach the end of the seq buffer.
		if i := slices.IndexFunc(ends, func(e int) bool { return e >= seqBufferSize }); i >= 0 && hasSyms[i] {
			covered++
		}
	}
	t.Logf("a sleeper's records: %d bytes; the other 8 threads': %d; %d of %d walks overflowed on a task with symbols of its own",
		sleeper, others, covered, last-first+1)
	if covered == 0 {
		t.Errorf("no walk overflowed the seq buffer on a task with new symbols: the test did not test what it is for")
	}
}

// TestCgroupsOfReshownTask checks that a task shown twice, because its
// records overflowed the seq buffer, still names the cgroups that only it
// is in. The first showing marks them named in the kernel's map; if the
// second showing took them for done, its cgroup would have no name.
//
// The boundary is placed as in TestSymbolsOfReshownTask: sleeper threads
// of this process, named in groups of 1, 2, 4, ... 128, come first in tid
// order, and a comm filter picks any number F of them; then child
// processes, each in a chain of cgroups of its own, ten deep with names of
// NAME_MAX bytes, so that most of a child's ~3 KB of records are cgroup
// records. F moves the boundary across them one sleeper at a time.
func TestCgroupsOfReshownTask(t *testing.T) {
	bpftest.RequireBPF(t)
	const sleepers, groups, children, depth = 255, 8, 14, 10
	names, block := sleeperGroups("isnap-csleep", sleepers)
	blockThreads(t, names, block)

	// The children start after the threads, so their pids come after the
	// threads' tids, and after their cgroups, so that they are gone when
	// the cgroups are removed. Each is this test binary in its sleep
	// role, run through a link whose name is the comm to filter on
	// (fs/exec.c names a task after the file it executes).
	const childComm = "isnap-cgchild"
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), childComm)
	if err := os.Symlink(self, bin); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("itersnap-test-reshow-%d", os.Getpid())
	var dirs []string
	for c := range children {
		rel := filepath.Join(base, fmt.Sprint(c))
		for l := range depth {
			rel = filepath.Join(rel, fmt.Sprintf("%d-%s", l, strings.Repeat("n", 253)))
		}
		dirs = append(dirs, bpftest.Cgroup(t, rel))
	}
	childPIDs := map[uint32]bool{}
	for _, dir := range dirs {
		cmd := exec.Command(bin)
		cmd.Env = append(os.Environ(), pinRoleEnv+"=sleep")
		cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		bpftest.MoveToCgroup(t, dir, cmd.Process.Pid)
		childPIDs[uint32(cmd.Process.Pid)] = true
	}

	// Walks until three overflowed on a task that named cgroups (each
	// walk loads the programs: seconds under emulation).
	covered, walks := 0, 0
	for f := 1; f <= 40 && covered < 3; f++ {
		walks++
		data := walkGroups(t, childComm, "isnap-csleep", groups, f)
		// Where each task's records end in the stream, and whether it
		// named cgroups of its own.
		var ends []int
		var named []bool
		end := 0
		cgroups := cgroupChains{}
		seen := map[uint32]bool{}
		err = decodeTasks(data, TaskVisitor{Task: func(rec *TaskRecord, stack []uint64) {
			if childPIDs[rec.Pid] {
				seen[rec.Pid] = true
			}
			end += int(unsafe.Sizeof(*rec)) + 8*len(stack)
			ends = append(ends, end)
			named = append(named, rec.NrCgroups > 0)
			cgroups.task(rec)
		}, Symbol: func(rec *SymbolRecord, text []byte) {
			end += int(unsafe.Sizeof(*rec)) + len(text)
			ends[len(ends)-1] = end
		}, Cgroup: func(rec *CgroupRecord, name []byte) {
			end += int(unsafe.Sizeof(*rec)) + len(name)
			ends[len(ends)-1] = end
			cgroups.named(rec, name)
		}})
		if err != nil {
			t.Fatal(err)
		}
		if len(seen) != children {
			t.Fatalf("%d sleepers: the walk saw %d of the %d children", f, len(seen), children)
		}
		if unnamed := cgroups.unnamed(); len(unnamed) > 0 {
			t.Errorf("%d sleepers: threads %v have cgroups the walk did not name", f, unnamed)
		}
		if i := slices.IndexFunc(ends, func(e int) bool { return e >= seqBufferSize }); i >= 0 && named[i] {
			covered++
		}
	}
	t.Logf("%d of %d walks overflowed on a task with cgroups of its own", covered, walks)
	if covered == 0 {
		t.Errorf("no walk overflowed the seq buffer on a task that named cgroups: the test did not test what it is for")
	}
}

// sleeperGroups names n threads that sleep in nanosleep(2) in groups of
// 1, 2, 4, ...: thread i is PREFIXg when 2^g - 1 <= i < 2^(g+1) - 1, so a
// comm filter of the groups of f's bits picks f of them (walkGroups).
func sleeperGroups(prefix string, n int) (names []string, block []func()) {
	for i := range n {
		g := 0
		for (2<<g)-1 <= i {
			g++
		}
		names = append(names, fmt.Sprintf("%s%d", prefix, g))
		block = append(block, func() {
			ts := unix.NsecToTimespec(int64(time.Hour))
			unix.Nanosleep(&ts, nil)
		})
	}
	return names, block
}

// walkGroups loads the programs with a filter of comm and of the groups
// of sleeperGroups(prefix) in f's bits, and returns the task walk's
// output.
func walkGroups(t *testing.T, comm, prefix string, groups, f int) []byte {
	t.Helper()
	comms := []string{comm}
	for g := range groups {
		if f&(1<<g) != 0 {
			comms = append(comms, fmt.Sprintf("%s%d", prefix, g))
		}
	}
	o, err := Load(Filter{Comms: comms})
	if err != nil {
		t.Fatalf("Load: %+v", err)
	}
	data, err := run(o.objs.DumpTask)
	o.Close()
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// blockThreads starts one OS thread per name, and once all exist, gives
// the lowest tids the first names: thread i is named names[i] and calls
// block[i], which blocks in a system call until a signal interrupts it. It
// returns when every thread is asleep in its call. Cleanup stops them.
func blockThreads(t *testing.T, names []string, block []func()) {
	t.Helper()
	var stop atomic.Bool
	var done sync.WaitGroup
	type started struct{ goroutine, tid int }
	tids := make(chan started)
	// One thread more than names: the main thread (tid = pid) may be
	// among them, and naming it would rename the process, which the comm
	// filter also matches. It, or the last thread, is the spare.
	roles := make([]chan int, len(names)+1)
	for i := range roles {
		roles[i] = make(chan int, 1)
		done.Add(1)
		go func() {
			defer done.Done()
			runtime.LockOSThread()
			tids <- started{i, unix.Gettid()}
			role := <-roles[i]
			if role < 0 {
				for !stop.Load() {
					block[0]()
				}
				runtime.UnlockOSThread()
				return
			}
			// Never unlocked: the thread ends with the goroutine.
			if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&append([]byte(names[role]), 0)[0])), 0, 0, 0); err != nil {
				t.Errorf("name thread %s: %v", names[role], err)
			}
			for !stop.Load() {
				block[role]()
			}
		}()
	}
	tidOf := make([]int, len(roles))
	for range roles {
		s := <-tids
		tidOf[s.goroutine] = s.tid
	}
	sorted := slices.Sorted(slices.Values(tidOf))
	if sorted[0] == os.Getpid() {
		sorted = sorted[1:]
	}
	all := sorted[:len(names)]
	for i, tid := range tidOf {
		roles[i] <- slices.Index(all, tid) // -1 for the spare
	}
	t.Cleanup(func() {
		stop.Store(true)
		finished := make(chan struct{})
		go func() { done.Wait(); close(finished) }()
		for {
			for _, tid := range tidOf {
				unix.Tgkill(os.Getpid(), tid, unix.SIGURG) // the Go runtime ignores it
			}
			select {
			case <-finished:
				return
			case <-time.After(10 * time.Millisecond):
			}
		}
	})
	// Wait until each has its name and sleeps (state S): in its call.
	deadline := time.Now().Add(5 * time.Second)
	for role, tid := range all {
		for {
			comm, _ := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/comm", tid))
			stat, _ := os.ReadFile(fmt.Sprintf("/proc/self/task/%d/stat", tid))
			if strings.TrimSpace(string(comm)) == names[role] && strings.Contains(string(stat), ") S ") {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("thread %d (%s) did not block: %q", tid, names[role], stat)
			}
			time.Sleep(time.Millisecond)
		}
	}
}
