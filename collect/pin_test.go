//go:build linux

package collect

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/itersnap/itersnap/bpf"
	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/snapshot"
)

// TestPinnedSameAsLoaded: a take that loads its programs, one that loads
// and pins them, and one that opens the pins record the same child: a
// sleep(1) (one thread that never wakes, so nothing of it changes between
// takes) with a file, a pipe and a socket open. The takes are unfiltered,
// so the walks share the symbolized map with the whole host's stacks.
func TestPinnedSameAsLoaded(t *testing.T) {
	bpftest.RequireBPF(t)
	dir := t.TempDir()
	file, err := os.Create(filepath.Join(dir, "held"))
	if err != nil {
		t.Fatal(err)
	}
	defer file.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sock, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	cmd := exec.Command("sleep", "1000")
	cmd.ExtraFiles = []*os.File{file, r, sock}
	if err := cmd.Start(); err != nil {
		t.Skipf("no sleep(1): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	pid := uint32(cmd.Process.Pid)
	// Wait until it sleeps in nanosleep.
	for deadline := time.Now().Add(5 * time.Second); ; {
		stat, _ := os.ReadFile("/proc/" + strconv.Itoa(int(pid)) + "/wchan")
		if string(stat) == "hrtimer_nanosleep" || string(stat) == "do_nanosleep" || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}

	type thread struct {
		Task  snapshot.Task
		Stack snapshot.Stack
	}
	record := func(s *snapshot.Snapshot) (threads []thread, files []snapshot.File) {
		for _, task := range tasksOf(s, pid) {
			threads = append(threads, thread{task, s.StackOf(task)})
		}
		return threads, filesOf(s, pid)
	}
	pins := bpftest.PinDir(t)
	var wantThreads []thread
	var wantFiles []snapshot.File
	for i, want := range []bpf.Source{bpf.Loaded, bpf.Pinned, bpf.Opened, bpf.Opened} {
		c := BPF{Stats: new(BPFStats)}
		if want != bpf.Loaded {
			c.PinDir = pins
		}
		s, err := c.Collect(context.Background(), snapshot.Filter{})
		if err != nil {
			t.Fatalf("take %d: %+v", i, err)
		}
		if c.Stats.Programs != want || c.Stats.PinError != nil {
			t.Fatalf("take %d: programs %v (%v), want %v", i, c.Stats.Programs, c.Stats.PinError, want)
		}
		threads, files := record(s)
		if len(threads) != 1 || len(threads[0].Stack) == 0 || len(files) < 6 {
			t.Fatalf("take %d: child has %d threads (%+v) and %d fds, want 1 with a stack and at least 6", i, len(threads), threads, len(files))
		}
		if i == 0 {
			wantThreads, wantFiles = threads, files
			continue
		}
		opts := cmp.Options{cmpopts.EquateEmpty(), cmpopts.IgnoreFields(snapshot.Task{}, "Stack")}
		if d := cmp.Diff(wantThreads, threads, opts); d != "" {
			t.Errorf("take %d (%v): threads differ from a fresh load's (-loaded +%v):\n%s", i, want, want, d)
		}
		if d := cmp.Diff(wantFiles, files, opts); d != "" {
			t.Errorf("take %d (%v): fds differ from a fresh load's (-loaded +%v):\n%s", i, want, want, d)
		}
	}
}
