//go:build linux

package collect

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/itersnap/itersnap/snapshot"
)

// fakeProc builds a /proc-like tree under a temporary directory, for the
// parts of the procfs collector a live system cannot be made to show: odd
// names, unreadable files, zombie leaders.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T) *fakeProc {
	return &fakeProc{t: t, root: t.TempDir()}
}

// write creates root/rel with content; content nil makes a directory
// instead, which reads fail on with EISDIR: an unreadable file, even for
// root.
func (p *fakeProc) write(rel string, content []byte) {
	p.t.Helper()
	path := filepath.Join(p.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	var err error
	if content == nil {
		err = os.Mkdir(path, 0o755)
	} else {
		err = os.WriteFile(path, content, 0o644)
	}
	if err != nil {
		p.t.Fatal(err)
	}
}

func (p *fakeProc) symlink(rel, target string) {
	p.t.Helper()
	path := filepath.Join(p.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		p.t.Fatal(err)
	}
}

func fakeStat(tid uint32, comm string, state byte, ppid, flags uint32, start uint64) []byte {
	return fmt.Appendf(nil, "%d (%s) %c %d 0 0 0 -1 %d 0 0 0 0 0 0 0 0 20 0 1 0 %d 2990080 412 18446744073709551615\n",
		tid, comm, state, ppid, flags, start)
}

func fakeStatus(tgid, uid uint32, vol, nonvol uint64) []byte {
	return fmt.Appendf(nil, "Name:\tx\nState:\tS (sleeping)\nTgid:\t%d\nNgid:\t0\nPid:\t0\nPPid:\t1\nTracerPid:\t0\n"+
		"Uid:\t%d\t%d\t%d\t%d\nGid:\t0\t0\t0\t0\nvoluntary_ctxt_switches:\t%d\nnonvoluntary_ctxt_switches:\t%d\n",
		tgid, uid+1, uid, uid, uid, vol, nonvol)
}

func fakeLimits(soft string) []byte {
	return fmt.Appendf(nil, "Limit                     Soft Limit           Hard Limit           Units     \n"+
		"Max open files            %-20s %-20s files     \n", soft, soft)
}

func fakeFDInfo(flags uint32) []byte {
	return fmt.Appendf(nil, "pos:\t0\nflags:\t0%o\nmnt_id:\t24\n", flags)
}

const (
	fakeSleepStack = "[<0>] hrtimer_nanosleep+0x74/0xf0\n[<0>] __x64_sys_nanosleep+0x9d/0xe0\n"
	fakeNFSStack   = "[<0>] nfs_wait_bit_killable+0x1c/0x80 [nfs]\n[<0>] __x64_sys_read+0x19/0x20\n"
)

func statOf(t *testing.T, path string) syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// TestProcfsFakeRoot: comm with spaces and parentheses, unreadable files
// marked and noted, vanished tasks and fds left out silently, a zombie
// leader's fds read through a live thread.
const (
	fakeContainer = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	fakeCgroup    = "/fake.slice/docker-" + fakeContainer + ".scope"
)

func TestProcfsFakeRoot(t *testing.T) {
	p := newFakeProc(t)
	files := t.TempDir()
	target := filepath.Join(files, "target file")
	if err := os.WriteFile(target, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}

	// 100: a process named "a) (b c" with threads "worker one" and (like
	// its leader) "a) (b c".
	p.write("100/task/100/stat", fakeStat(100, "a) (b c", 'S', 1, 0x400100, 500))
	p.write("100/task/100/status", fakeStatus(100, 1000, 3, 4))
	p.write("100/task/100/stack", []byte(fakeSleepStack))
	p.write("100/task/101/stat", fakeStat(101, "worker one", 'D', 1, 0x400140, 501))
	p.write("100/task/101/status", fakeStatus(100, 1000, 5, 0))
	p.write("100/task/101/stack", []byte(fakeNFSStack))
	p.write("100/task/102/stat", fakeStat(102, "a) (b c", 'R', 1, 0x400040, 502))
	p.write("100/task/102/status", fakeStatus(100, 1000, 0, 1))
	p.write("100/task/102/stack", []byte(fakeSleepStack))
	for _, tid := range []string{"100", "101", "102"} {
		// A hybrid host's file: v1 hierarchies first.
		p.write("100/task/"+tid+"/cgroup", []byte("2:name=systemd:/x\n1:cpu:/y\n0::/fake.slice/docker-"+fakeContainer+".scope\n"))
	}
	p.write("100/limits", fakeLimits("unlimited"))
	p.symlink("100/fd/0", target)
	p.write("100/fdinfo/0", fakeFDInfo(0o2100002))
	p.symlink("100/fd/1", filepath.Join(files, "gone")) // closed while read: left out
	p.symlink("100/fd/2", files)
	p.write("100/fdinfo/2", []byte("pos:\t0\n")) // no flags line
	p.symlink("100/fd/3", target)                // fdinfo/3 gone: closed while read

	// 200: everything but stat unreadable.
	p.write("200/task/200/stat", fakeStat(200, "broken", 'S', 1, 0, 600))
	p.write("200/task/200/status", nil)
	p.write("200/task/200/stack", nil)
	p.write("200/task/200/cgroup", nil)
	p.write("200/limits", nil)
	p.write("200/fd", nil)

	// 300: gone before its task list was read.
	p.write("300/limits", fakeLimits("1024"))

	// 400: a zombie leader with an empty stack and no fds, and a live
	// thread that still holds the fd table.
	p.write("400/task/400/stat", fakeStat(400, "zombie", 'Z', 1, 0x400104, 700))
	p.write("400/task/400/status", fakeStatus(400, 0, 1, 1))
	p.write("400/task/400/stack", []byte{})
	p.write("400/task/400/cgroup", []byte("0::/fake/400\n"))
	p.write("400/task/401/cgroup", []byte("0::/fake/400\n"))
	p.write("400/task/401/stat", fakeStat(401, "thread", 'S', 1, 0x400040, 701))
	p.write("400/task/401/status", fakeStatus(400, 0, 9, 9))
	p.write("400/task/401/stack", []byte(fakeNFSStack))
	p.write("400/limits", fakeLimits("1024"))
	p.write("400/fd", nil)
	p.symlink("400/task/401/fd/5", target)
	p.write("400/task/401/fdinfo/5", fakeFDInfo(0o100000))
	// 400's thread 402 has a stat nothing can parse: left out, noted.
	p.write("400/task/402/stat", []byte("402 (bad\n"))

	// Not processes.
	p.symlink("self", "100")
	p.write("sys/kernel/x", []byte("1\n"))

	tst, dst := statOf(t, target), statOf(t, files)
	const tick = procfsTickNs
	want := &snapshot.Snapshot{
		Tasks: []snapshot.Task{
			{PID: 100, TID: 100, PPID: 1, Comm: "a) (b c", State: snapshot.TaskInterruptible, Flags: 0x400100, StartTime: 500 * tick, Switches: 7, UID: 1000, NoFileLimit: snapshot.NoLimit, Stack: 0, Cgroup: fakeCgroup},
			{PID: 100, TID: 101, PPID: 1, Comm: "worker one", State: snapshot.TaskUninterruptible, Flags: 0x400140, StartTime: 501 * tick, Switches: 5, UID: 1000, NoFileLimit: snapshot.NoLimit, Stack: 1, Cgroup: fakeCgroup, Missing: snapshot.MissingKillable},
			{PID: 100, TID: 102, PPID: 1, Comm: "a) (b c", State: snapshot.TaskRunning, Flags: 0x400040, StartTime: 502 * tick, Switches: 1, UID: 1000, NoFileLimit: snapshot.NoLimit, Stack: 0, Cgroup: fakeCgroup},
			{PID: 200, TID: 200, PPID: 1, Comm: "broken", State: snapshot.TaskInterruptible, StartTime: 600 * tick, Stack: -1, Missing: snapshot.MissingStatus | snapshot.MissingStack | snapshot.MissingLimit | snapshot.MissingCgroup},
			{PID: 400, TID: 400, PPID: 1, Comm: "zombie", ExitState: snapshot.ExitZombie, Flags: 0x400104, StartTime: 700 * tick, Switches: 2, NoFileLimit: 1024, Stack: -1, Cgroup: "/fake/400", Missing: snapshot.MissingStack},
			{PID: 400, TID: 401, PPID: 1, Comm: "thread", State: snapshot.TaskInterruptible, Flags: 0x400040, StartTime: 701 * tick, Switches: 18, NoFileLimit: 1024, Stack: 1, Cgroup: "/fake/400"},
		},
		Files: []snapshot.File{
			{PID: 100, FD: 0, Mode: tst.Mode, Flags: 0o2100002, Dev: tst.Dev, Inode: tst.Ino, Path: target},
			{PID: 100, FD: 2, Mode: dst.Mode, Dev: dst.Dev, Inode: dst.Ino, Path: files},
			{PID: 400, FD: 5, Mode: tst.Mode, Flags: 0o100000, Dev: tst.Dev, Inode: tst.Ino, Path: target},
		},
		Stacks: []snapshot.Stack{
			{"hrtimer_nanosleep+0x74/0xf0", "__x64_sys_nanosleep+0x9d/0xe0"},
			{"nfs_wait_bit_killable+0x1c/0x80 [nfs]", "__x64_sys_read+0x19/0x20"},
		},
	}
	wantNotes := []string{
		"procfs: stat unreadable for 1 thread, left out (malformed stat line)",
		"procfs: status unreadable for 1 thread: no uid, no switch counts (is a directory)",
		"procfs: stack unreadable for 1 thread (is a directory)",
		"procfs: no kernel stack for 1 thread (running on another CPU, or exiting)",
		"procfs: limits unreadable for 1 process (is a directory)",
		"procfs: fdinfo unreadable for 1 fd: no flags (no \"flags:\" line)",
		"procfs: cgroup unreadable for 1 thread (is a directory)",
	}

	s, err := Procfs{Root: p.root}.Collect(context.Background(), snapshot.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want.Tasks, s.Tasks); d != "" {
		t.Errorf("tasks (-want +got):\n%s", d)
	}
	if d := cmp.Diff(want.Files, s.Files); d != "" {
		t.Errorf("files (-want +got):\n%s", d)
	}
	if got := s.Tasks[0].Container(); got != fakeContainer {
		t.Errorf("container %q, want %q", got, fakeContainer)
	}
	if d := cmp.Diff(want.Stacks, s.Stacks); d != "" {
		t.Errorf("stacks (-want +got):\n%s", d)
	}
	var notes []string
	for _, n := range s.Meta.Notes {
		if strings.HasPrefix(n, "procfs:") {
			notes = append(notes, n)
		}
	}
	if d := cmp.Diff(wantNotes, notes); d != "" {
		t.Errorf("notes (-want +got):\n%s", d)
	}
	if m := s.Meta; m.Collector != "procfs" || m.Threads != 6 || m.Processes != 3 || m.FDs != 3 {
		t.Errorf("meta: %+v", m)
	}

	// Filters: by thread name, by process name, by pid (without listing
	// the root).
	for _, tc := range []struct {
		filter snapshot.Filter
		tids   []uint32
		fds    []string // pid/fd
	}{
		{snapshot.Filter{Comms: []string{"worker one"}}, []uint32{101}, nil},
		{snapshot.Filter{Comms: []string{"a) (b c"}}, []uint32{100, 101, 102}, []string{"100/0", "100/2"}},
		{snapshot.Filter{Comms: []string{"thread"}}, []uint32{401}, []string{"400/5"}},
		{snapshot.Filter{PIDs: []uint32{400, 999, 400}}, []uint32{400, 401}, []string{"400/5"}},
		{snapshot.Filter{PIDs: []uint32{200}, Comms: []string{"worker one"}}, []uint32{101, 200}, nil},
	} {
		s, err := Procfs{Root: p.root}.Collect(context.Background(), tc.filter)
		if err != nil {
			t.Fatal(err)
		}
		var tids []uint32
		var fds []string
		for _, task := range s.Tasks {
			tids = append(tids, task.TID)
		}
		for _, f := range s.Files {
			fds = append(fds, fmt.Sprintf("%d/%d", f.PID, f.FD))
		}
		if d := cmp.Diff(tc.tids, tids, testCmpOpts); d != "" {
			t.Errorf("filter %+v: tids (-want +got):\n%s", tc.filter, d)
		}
		if d := cmp.Diff(tc.fds, fds, testCmpOpts); d != "" {
			t.Errorf("filter %+v: fds (-want +got):\n%s", tc.filter, d)
		}
	}
}
