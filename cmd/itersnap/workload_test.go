package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test binary doubles as the processes the tests and benchmarks look
// at: TestMain runs a role instead of the tests when ITERSNAP_TEST_ROLE is
// set.
const roleEnv = "ITERSNAP_TEST_ROLE"

func TestMain(m *testing.M) {
	if role := os.Getenv(roleEnv); role != "" {
		runRole(role, os.Args[1:])
		os.Exit(0)
	}
	os.Exit(runTests(m))
}

// runTests runs the tests with takes pinning their programs (as they do by
// default) in a bpffs of the test run's own, inherited by every itersnap
// process the tests start through ITERSNAP_PIN_DIR, and unmounted (so
// every pin is gone) when the tests end.
func runTests(m *testing.M) int {
	if os.Getenv("ITERSNAP_PIN_DIR") != "" {
		return m.Run()
	}
	dir, err := os.MkdirTemp("", "itersnap-test-pins-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	fs := dir + "/bpffs"
	if err := os.Mkdir(fs, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() { // take mounts it, as at /sys/fs/bpf
		for unix.Unmount(fs, unix.MNT_DETACH) == nil {
		}
	}()
	os.Setenv("ITERSNAP_PIN_DIR", fs+"/itersnap")
	return m.Run()
}

// roles maps a role name to what the child does. Each writes one "ready"
// line to stdout when it is in place, then stays until killed.
var roles = map[string]func(args []string){
	"workload": workloadRole,
}

func runRole(role string, args []string) {
	fn, ok := roles[role]
	if !ok {
		fmt.Fprintf(os.Stderr, "unknown role %q\n", role)
		os.Exit(2)
	}
	fn(args)
}

func ready(format string, args ...any) {
	syscall.Write(1, fmt.Appendf(nil, "ready "+format+"\n", args...))
}

// workloadRole holds THREADS threads asleep in nanosleep and FDS open fds
// of every common kind: pipes, sockets, eventfds, regular files. With a
// third argument "inet", every other socket is a TCP one.
func workloadRole(args []string) {
	threads, _ := strconv.Atoi(args[0])
	fds, _ := strconv.Atoi(args[1])
	inet := len(args) > 2 && args[2] == "inet"
	var rl syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	rl.Cur = rl.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl)

	opened := 0
	for i := 0; opened < fds; i++ {
		var p [2]int
		switch i % 4 {
		case 0:
			if syscall.Pipe2(p[:], syscall.O_CLOEXEC) == nil {
				opened += 2
			}
		case 1:
			family := syscall.AF_UNIX
			if inet && i%8 == 1 {
				family = syscall.AF_INET
			}
			if fd, err := syscall.Socket(family, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0); err == nil && fd > 0 {
				opened++
			}
		case 2:
			if fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC); err == nil && fd > 0 {
				opened++
			}
		case 3:
			if fd, err := syscall.Open("/etc/hostname", syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil && fd > 0 {
				opened++
			}
		}
	}
	for range threads {
		go func() {
			runtime.LockOSThread()
			ts := syscall.NsecToTimespec(int64(time.Hour))
			for {
				syscall.Nanosleep(&ts, nil)
			}
		}()
	}
	for {
		entries, _ := os.ReadDir("/proc/self/task")
		if len(entries) >= threads {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	ready("%d", os.Getpid())
	select {}
}

// role is a started child: its stdin, the rest of its stdout, and the
// fields of its ready line.
type role struct {
	stdin  io.Writer
	stdout *bufio.Reader
	fields []string
}

// startRole starts the test binary in a role and waits for its ready line.
// The child is killed when the test ends: a test never leaves processes
// behind.
func startRole(tb testing.TB, name string, args ...string) *role {
	tb.Helper()
	cmd := roleCommand(name, args...)
	in, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { killRole(cmd) })
	r := &role{stdin: in, stdout: bufio.NewReader(out)}
	line := make(chan string, 1)
	go func() {
		s, _ := r.stdout.ReadString('\n')
		line <- s
	}()
	select {
	case s := <-line:
		fields := strings.Fields(s)
		if len(fields) < 2 || fields[0] != "ready" {
			tb.Fatalf("role %s did not start: %q", name, s)
		}
		r.fields = fields[1:]
		return r
	case <-time.After(60 * time.Second):
		tb.Fatalf("role %s not ready after 60s", name)
	}
	return nil
}

// roleCommand is the test binary in a role, in a process group of its own
// so that killRole also ends the children it made (a vfork child, say).
func roleCommand(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), roleEnv+"="+role)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return cmd
}

func killRole(cmd *exec.Cmd) {
	syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	cmd.Wait()
}
