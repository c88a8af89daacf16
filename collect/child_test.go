//go:build linux

package collect

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/google/go-cmp/cmp"
	"github.com/itersnap/itersnap/snapshot"
	"golang.org/x/sys/unix"
)

// The test binary doubles as a child process with a known fd table and a
// thread asleep in nanosleep(2), for the collector tests to look at:
// startTestChild runs os.Args[0] with ITERSNAP_TEST_CHILD set, and TestMain
// turns into the child.

const (
	childRoleEnv = "ITERSNAP_TEST_CHILD"      // the role; "fds" is the only one
	childFileEnv = "ITERSNAP_TEST_CHILD_FILE" // the regular file the child opens

	// childSleeperComm is the sleeper thread's own name (PR_SET_NAME), so a
	// comm filter can pick out one thread of a process.
	childSleeperComm = "itersnap-sleep"
)

// The child keeps its main thread for main, so the sleeper gets a thread of
// its own: renaming the main thread would rename the process. The lock is
// taken in init, the only place the main goroutine is sure to be on the main
// thread ("Calling LockOSThread from an init function will cause the main
// function to be invoked on that thread"); taken later, main may already
// have moved to another thread and left the main thread to the sleeper, as
// seen under emulation (scripts/test-kernels).
func init() {
	if os.Getenv(childRoleEnv) != "" {
		runtime.LockOSThread()
	}
}

func TestMain(m *testing.M) {
	if role := os.Getenv(childRoleEnv); role != "" {
		os.Exit(runChild(role))
	}
	os.Exit(m.Run())
}

// runChild is the child's whole life. Its fd table must be exactly what it
// reports, so:
//   - it opens its own fds with raw system calls only: an os.File sets
//     O_NONBLOCK on pipes and sockets (their flags would not be the ones
//     asked for) and closes its fd when garbage collected;
//   - it makes sure the Go runtime's netpoller is started before it opens
//     anything, and reports the netpoller's fds (an epoll fd and an eventfd,
//     in that order: runtime/netpoll_epoll.go netpollinit). The runtime
//     starts it at the first os.File it may poll or the first timer
//     (runtime/time.go addHeap), its own background ones included. In this
//     test binary a package init already did (an os.Open of
//     /proc/self/mountinfo, seen with strace); without that, the two fds
//     would appear at a random moment and fd number;
//   - it closes fds it inherited by mistake (ones without FD_CLOEXEC, which
//     Go never opens: a shell or CI runner leaking them into `go test`);
//   - it runs with GODEBUG=containermaxprocs=0, set by startTestChild,
//     without which the runtime keeps the cgroup's CPU limit files open.
func runChild(role string) int {
	fail := func(what string, err error) int {
		msg := fmt.Sprintf("test child: %s: %v\n", what, err)
		syscall.Write(2, []byte(msg))
		return 1
	}
	if role == "net" {
		return runNetChild(fail)
	}
	if role != "fds" {
		return fail("role", fmt.Errorf("unknown role %q", role))
	}
	fds, err := ownFDs()
	if err != nil {
		return fail("list fds", err)
	}
	for _, fd := range fds {
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(int(fd))
		}
	}
	time.Sleep(time.Nanosecond) // a timer: starts the netpoller if not yet
	runtimeFDs, err := ownFDs()
	if err != nil {
		return fail("list fds", err)
	}

	file, err := syscall.Open(os.Getenv(childFileEnv), syscall.O_RDWR|syscall.O_CREAT|syscall.O_CLOEXEC, 0o600)
	if err != nil {
		return fail("open file", err)
	}
	var pipe [2]int
	if err := syscall.Pipe2(pipe[:], syscall.O_CLOEXEC); err != nil {
		return fail("pipe", err)
	}
	sock, err := syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return fail("socket", err)
	}
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return fail("eventfd", err)
	}

	tids := make(chan int)
	go func() {
		// A thread of its own, asleep in the kernel in nanosleep(2) for
		// as long as the child lives.
		runtime.LockOSThread()
		name := append([]byte(childSleeperComm), 0)
		unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0)
		tids <- syscall.Gettid()
		for {
			ts := syscall.Timespec{Sec: 3600}
			syscall.Nanosleep(&ts, nil)
		}
	}()
	sleeper := <-tids

	line := fmt.Sprintf("ready %d %d %d %d %d %d", sleeper, file, pipe[0], pipe[1], sock, efd)
	for _, fd := range runtimeFDs {
		line += fmt.Sprintf(" %d", fd)
	}
	line += "\n"
	if _, err := syscall.Write(1, []byte(line)); err != nil {
		return fail("write ready line", err)
	}
	select {} // until killed
}

// ownFDs lists this process's fds above 2, with raw system calls.
func ownFDs() ([]uint32, error) {
	all, err := listNumbers(unix.AT_FDCWD, "/proc/self/fd", nil, make([]byte, 4096))
	if err != nil {
		return nil, err
	}
	var fds []uint32
	for _, fd := range all {
		// The directory's own fd is listed, and closed by now.
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); fd > 2 && err == nil {
			fds = append(fds, fd)
		}
	}
	return fds, nil
}

// testChild is a running child started by startTestChild.
type testChild struct {
	Pid        int
	SleeperTID int    // the thread asleep in nanosleep, named childSleeperComm
	FilePath   string // the regular file it holds open

	// The fds it opened.
	FileFD, PipeReadFD, PipeWriteFD, SocketFD, EventFD uint32
	// The Go runtime's netpoller fds, kinds as in runtimeFDKinds.
	RuntimeFDs []uint32
}

// runtimeFDKinds are the kinds of the netpoller's fds, in the order it opens
// them (runtime/netpoll_epoll.go netpollinit).
var runtimeFDKinds = []string{"eventpoll", "eventfd"}

// WantFDs is the child's whole fd table, fd -> snapshot.File.Kind(): os/exec gives
// it /dev/null on 0 and 2 and the pipe to the parent on 1, the Go runtime
// has its netpoller's epoll fd and eventfd, and it opened the rest itself.
func (c *testChild) WantFDs() map[uint32]string {
	want := map[uint32]string{
		0:             "char",
		1:             "pipe",
		2:             "char",
		c.FileFD:      "file",
		c.PipeReadFD:  "pipe",
		c.PipeWriteFD: "pipe",
		c.SocketFD:    "socket",
		c.EventFD:     "eventfd",
	}
	for i, fd := range c.RuntimeFDs {
		want[fd] = runtimeFDKinds[i]
	}
	return want
}

// startTestChild starts a child and waits until its fds are open and its
// sleeper asleep. The child is killed and reaped when the test ends.
func startTestChild(t *testing.T) *testChild {
	t.Helper()
	child := &testChild{FilePath: filepath.Join(t.TempDir(), "child-file")}

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(),
		childRoleEnv+"=fds",
		childFileEnv+"="+child.FilePath,
		// The runtime keeps the cgroup CPU limit file open for the
		// process's lifetime (runtime/cgroup_linux.go) unless
		// cgroup-aware GOMAXPROCS is off; it would be one fd more.
		"GODEBUG="+joinGODEBUG(os.Getenv("GODEBUG"), "containermaxprocs=0"),
	)
	// Stdin and Stderr nil: os/exec opens /dev/null for them.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("test child: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("test child: start: %v", err)
	}
	child.Pid = cmd.Process.Pid
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})

	lines := make(chan string, 1)
	go func() {
		line, err := bufio.NewReader(stdout).ReadString('\n')
		if err != nil {
			line = "error: " + err.Error()
		}
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("test child %d: no ready line after 10s", child.Pid)
	}
	var fields []uint64
	for _, f := range strings.Fields(strings.TrimPrefix(line, "ready ")) {
		v, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			break
		}
		fields = append(fields, v)
	}
	if !strings.HasPrefix(line, "ready ") || len(fields) != 6+len(runtimeFDKinds) {
		t.Fatalf("test child %d: want \"ready <tid> <5 fds> <%d runtime fds>\", got %q (its stderr went to /dev/null; run the test binary with %s=fds to see it)",
			child.Pid, len(runtimeFDKinds), line, childRoleEnv)
	}
	child.SleeperTID = int(fields[0])
	if child.SleeperTID == child.Pid {
		t.Fatalf("test child %d: the sleeper runs on the main thread", child.Pid)
	}
	child.FileFD, child.PipeReadFD, child.PipeWriteFD, child.SocketFD, child.EventFD =
		uint32(fields[1]), uint32(fields[2]), uint32(fields[3]), uint32(fields[4]), uint32(fields[5])
	for _, fd := range fields[6:] {
		child.RuntimeFDs = append(child.RuntimeFDs, uint32(fd))
	}
	waitAsleep(t, child.Pid, child.SleeperTID)
	return child
}

// waitAsleep waits until the thread is in nanosleep(2): the ready line is
// written once the sleeper has reported its tid, maybe before it got there.
// /proc/PID/task/TID/syscall starts with the number of the system call the
// thread is blocked in.
func waitAsleep(t *testing.T, pid, tid int) {
	t.Helper()
	path := fmt.Sprintf("/proc/%d/task/%d/syscall", pid, tid)
	want := strconv.Itoa(unix.SYS_NANOSLEEP) + " "
	deadline := time.Now().Add(10 * time.Second)
	for {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("test child: %v", err)
		}
		if strings.HasPrefix(string(b), want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("test child: sleeper %d not in nanosleep after 10s: %s is %q", tid, path, b)
		}
		time.Sleep(time.Millisecond)
	}
}

func joinGODEBUG(old, add string) string {
	if old == "" {
		return add
	}
	return old + "," + add
}

// TestTestChild checks the child against /proc directly: its fd table is
// exactly WantFDs (nothing opened behind its back by the Go runtime or
// os/exec) and the sleeper is asleep in nanosleep.
func TestTestChild(t *testing.T) {
	child := startTestChild(t)
	dir := fmt.Sprintf("/proc/%d/fd", child.Pid)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint32]string{}
	for _, e := range entries {
		fd, err := strconv.ParseUint(e.Name(), 10, 32)
		if err != nil {
			t.Fatalf("%s: unexpected entry %q", dir, e.Name())
		}
		link, err := os.Readlink(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		var st syscall.Stat_t
		if err := syscall.Stat(filepath.Join(dir, e.Name()), &st); err != nil {
			t.Fatal(err)
		}
		got[uint32(fd)] = snapshot.File{Mode: st.Mode, Path: link}.Kind()
		t.Logf("fd %d -> %s (mode %#o, kind %s)", fd, link, st.Mode, got[uint32(fd)])
	}
	if d := cmp.Diff(child.WantFDs(), got); d != "" {
		t.Errorf("child fd table (-want +got):\n%s", d)
	}
	for fd, want := range map[uint32]string{0: "/dev/null", 2: "/dev/null", child.FileFD: child.FilePath, child.EventFD: "anon_inode:[eventfd]"} {
		if link, _ := os.Readlink(fmt.Sprintf("%s/%d", dir, fd)); link != want {
			t.Errorf("fd %d -> %q, want %q", fd, link, want)
		}
	}

	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/comm", child.Pid, child.SleeperTID))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(comm)); got != childSleeperComm {
		t.Errorf("sleeper comm %q, want %q", got, childSleeperComm)
	}
}
