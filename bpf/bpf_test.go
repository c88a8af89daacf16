//go:build linux

package bpf

import (
	"os"
	"strings"
	"testing"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

func load(t *testing.T, f Filter) *Objects {
	t.Helper()
	bpftest.RequireBPF(t)
	o, err := Load(f)
	if err != nil {
		t.Fatalf("Load: %+v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// TestTasksSeesSelf checks the task iterator against what this process knows
// of itself.
func TestTasksSeesSelf(t *testing.T) {
	o := load(t, Filter{})
	self := uint32(os.Getpid())
	var threads, all int
	var addrs, everyAddr []uint64
	syms := map[uint64]string{}
	err := o.Tasks(new(WalkTimes), TaskVisitor{Task: func(r *TaskRecord, stack []uint64) {
		all++
		everyAddr = append(everyAddr, stack...)
		if r.Pid != self {
			return
		}
		threads++
		if r.Ppid != uint32(os.Getppid()) {
			t.Errorf("tid %d: ppid %d, want %d", r.Tid, r.Ppid, os.Getppid())
		}
		if r.Uid != uint32(os.Geteuid()) {
			t.Errorf("tid %d: uid %d, want %d", r.Tid, r.Uid, os.Geteuid())
		}
		if r.StartTime == 0 {
			t.Errorf("tid %d: no start time", r.Tid)
		}
		// A thread on another CPU has no reliable kernel stack. x86
		// gives none (arch/x86/kernel/unwind_orc.c: task_on_another_cpu),
		// arm64 walks the frame records it saved when it last switched
		// out, which it is overwriting, and can yield a value that is no
		// kernel address (seen on 6.1: 0x24e036280). Only threads that
		// are not running must have every frame symbolized.
		if r.State != 0 { // TASK_RUNNING
			addrs = append(addrs, stack...)
		}
	}, Symbol: func(rec *SymbolRecord, text []byte) {
		if text != nil {
			syms[rec.Addr] = string(text)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if threads == 0 || all < threads+10 {
		t.Fatalf("saw %d of our threads among %d tasks", threads, all)
	}
	if len(addrs) == 0 {
		t.Fatal("no stack addresses for our threads")
	}
	for _, a := range addrs {
		// The race above also catches a thread that was asleep when its
		// state was read and ran before its stack was (seen on arm64
		// 6.1 under emulation: 0x9b368): a value outside the kernel's
		// half of the address space is no frame to symbolize.
		if a>>63 == 0 {
			continue
		}
		if s := syms[a]; !strings.Contains(s, "+0x") {
			t.Errorf("address %#x symbolized as %q", a, s)
		}
	}
	// Every address of the whole walk has its symbol, also those of tasks
	// the kernel showed twice because their records overflowed the 32 KB
	// seq buffer (a walk of this size overflows it many times).
	missing := 0
	for _, a := range everyAddr {
		if syms[a] == "" {
			missing++
		}
	}
	if missing > 0 {
		t.Errorf("%d of %d stack addresses have no symbol", missing, len(everyAddr))
	}
}

// TestFilesSeesOpenFile opens a file and finds it, by path, among our fds.
func TestFilesSeesOpenFile(t *testing.T) {
	o := load(t, Filter{PIDs: []uint32{uint32(os.Getpid())}})
	f, err := os.CreateTemp(t.TempDir(), "open")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	found := false
	err = o.Files(new(WalkTimes), func(r *FileRecord, path []byte, _ *SockRecord, _ []byte) {
		if r.Pid != uint32(os.Getpid()) {
			t.Errorf("pid filter let through pid %d", r.Pid)
		}
		if int(r.Fd) == int(f.Fd()) {
			found = string(path) == f.Name()
			if !found {
				t.Errorf("fd %d: path %q, want %q", r.Fd, path, f.Name())
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		t.Errorf("fd %d (%s) not seen", f.Fd(), f.Name())
	}
}
