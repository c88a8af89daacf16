package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

func init() {
	roles["churner"] = churnerRole
	roles["opener"] = openerRole
	roles["ticker"] = tickerRole
	roles["fileleaker"] = fileLeakerRole
	roles["spinner"] = spinnerRole
}

// spinnerRole keeps a thread busy in user space: R in every take, on the
// kernel stack of a timer interrupt's way back to user space.
func spinnerRole([]string) {
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		tid <- syscall.Gettid()
		for x := 0; ; x++ {
			if x == -1 {
				break
			}
		}
	}()
	ready("%d %d", os.Getpid(), <-tid)
	select {}
}

// churnerRole is a busy, healthy server: it opens 5 sockets, holds them 5
// ms, closes them, and again, for ever. Every socket it has lives far less
// than the time between two takes.
func churnerRole([]string) {
	ready("%d", os.Getpid())
	for {
		var fds [5]int
		for i := range fds {
			fds[i], _ = syscall.Socket(syscall.AF_UNIX, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
		}
		time.Sleep(5 * time.Millisecond)
		for _, fd := range fds {
			if fd > 0 {
				syscall.Close(fd)
			}
		}
	}
}

// openerRole opens /etc/hostname once, when told (a line on stdin), and
// keeps it: a one-off open, as a daemon reading its configuration does.
func openerRole([]string) {
	ready("%d", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		syscall.Open("/etc/hostname", syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
		syscall.Write(1, []byte("opened\n"))
	}
	select {}
}

// tickerRole sleeps 10 ms in nanosleep in a loop: it wakes a hundred
// times a second and is asleep whenever a take looks, an idle thread
// however much it switches.
func tickerRole([]string) {
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		tid <- syscall.Gettid()
		ts := unix.NsecToTimespec(int64(10 * time.Millisecond))
		for {
			unix.Nanosleep(&ts, nil)
		}
	}()
	ready("%d %d", os.Getpid(), <-tid)
	select {}
}

// fileLeakerRole leaks into many files in directory args[0]: for every
// line on stdin it creates 4 more numbered files (part1.dat, part2.dat,
// ...) and reopens its log twice, closing nothing, and answers "leaked".
func fileLeakerRole(args []string) {
	dir := args[0]
	ready("%d", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	part := 0
	for in.Scan() {
		for range 4 {
			part++
			syscall.Open(filepath.Join(dir, fmt.Sprintf("part%d.dat", part)), syscall.O_WRONLY|syscall.O_CREAT|syscall.O_CLOEXEC, 0o644)
		}
		for range 2 {
			syscall.Open(filepath.Join(dir, "app.log"), syscall.O_WRONLY|syscall.O_CREAT|syscall.O_APPEND|syscall.O_CLOEXEC, 0o644)
		}
		syscall.Write(1, []byte("leaked\n"))
	}
	select {}
}

// ask sends a line to a role and waits for its answer.
func (r *role) ask(t *testing.T, want string) {
	t.Helper()
	fmt.Fprintln(r.stdin, "go")
	if line, _ := r.stdout.ReadString('\n'); !strings.HasPrefix(line, want) {
		t.Fatalf("role said %q, want %q", line, want)
	}
}

// TestHealthyBusyHost: on a host with socket churn, short-lived commands
// spawned in a loop, a one-off open, idle daemons and a program busy in
// user space, beside a socket
// leak, a leak into many files, a killable D wait and a writer on a frozen
// filesystem, a default diff over four takes reports the faults and
// nothing for the rest, and --fail-on-findings agrees.
//
// The takes are unfiltered, as cron's are, so the diff also sees whatever
// else the machine runs (other tests, builds); those rows are logged, not
// judged. Timing has margins: every churned socket lives 5 ms and every
// spawned command 20 ms, against at least a second between takes.
func TestHealthyBusyHost(t *testing.T) {
	bpftest.RequireBPF(t)
	mnt := frozenFS(t)
	db := filepath.Join(t.TempDir(), "itersnap.db")

	// The healthy processes.
	churner := startRole(t, "churner").fields
	opener := startRole(t, "opener")
	ticker := startRole(t, "ticker").fields
	spinner := startRole(t, "spinner").fields
	sleepers := [][]string{startRole(t, "sleeper").fields, startRole(t, "sleeper").fields}
	spawner := exec.Command("sh", "-c", "while :; do sleep 0.02; done")
	spawner.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := spawner.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killRole(spawner) })
	spawnerPID := fmt.Sprint(spawner.Process.Pid)
	// The shell starts each command with vfork, and between the vfork and
	// the child's exec the shell waits in a killable D: a take that looks
	// then sees it blocked, and it is newly blocked by the definition
	// (blocked in B, not in A): a CI run caught it so in the last take.
	// The spawner is held stopped (T, which diff counts as idle) while
	// each take looks, and spawns between them.
	takeQuiet := func() uint64 {
		syscall.Kill(spawner.Process.Pid, syscall.SIGSTOP)
		waitState(t, spawnerPID, 'T')
		defer syscall.Kill(spawner.Process.Pid, syscall.SIGCONT)
		return take(t, db)
	}

	// The faults.
	leaker := startRole(t, "leaker")
	partsDir := t.TempDir()
	files := startRole(t, "fileleaker", partsDir)
	writer := startRole(t, "writer", filepath.Join(mnt.dir, "data")).fields
	waitState(t, writer[1], 'R', 'S', 'D')
	mnt.freeze(t)
	waitState(t, writer[1], 'D')
	waitStack(t, writer[1], "percpu_rwsem_wait")

	leak := func() {
		fmt.Fprintln(leaker.stdin, 10)
		if line, _ := leaker.stdout.ReadString('\n'); !strings.HasPrefix(line, "leaked ") {
			t.Fatalf("leaker said %q", line)
		}
		files.ask(t, "leaked")
	}
	pause := func() { time.Sleep(1200 * time.Millisecond) }

	a := takeQuiet()
	var vforker []string
	for i := range 3 {
		leak()
		switch i {
		case 0:
			opener.ask(t, "opened")
			vforker = startRole(t, "vforker").fields
			waitState(t, vforker[1], 'D')
		}
		pause()
		takeQuiet()
	}
	b := fmt.Sprint(a + 3)

	rows := diffRows(t, db, fmt.Sprint(a), b)
	faults := map[string]bool{leaker.fields[0]: true, files.fields[0]: true, writer[0]: true, vforker[0]: true}
	healthy := map[string]bool{churner[0]: true, opener.fields[0]: true, ticker[0]: true, spinner[0]: true,
		sleepers[0][0]: true, sleepers[1][0]: true, spawnerPID: true}
	var got []string
	for _, r := range rows {
		line := strings.Join(strings.Fields(fmt.Sprintf("%s pid %s tid %s %s %s %s %s", r["finding"], r["pid"], r["tid"], r["comm"], r["target"], r["class"], r["killable"])), " ")
		switch {
		case healthy[r["pid"]] || r["comm"] == "sleep":
			t.Errorf("healthy process reported: %s (row %v)", line, r)
		case faults[r["pid"]]:
			got = append(got, line)
		default:
			t.Logf("another process on this machine: %s %s", line, r["stack"])
		}
	}
	slices.Sort(got)
	want := []string{
		fmt.Sprintf("fd_leak pid %s tid 0 itersnap.test unix UNCONNECTED", leaker.fields[0]),
		fmt.Sprintf("fd_leak pid %s tid 0 itersnap.test %s/part*.dat", files.fields[0], partsDir),
		fmt.Sprintf("fd_leak pid %s tid 0 itersnap.test %s/app.log", files.fields[0], partsDir),
		fmt.Sprintf("newly_blocked pid %s tid %s itersnap.test yes", vforker[0], vforker[1]),
		fmt.Sprintf("stuck pid %s tid %s itersnap.test no", writer[0], writer[1]),
		fmt.Sprintf("unchanged_stack pid %s tid %s itersnap.test stuck no", writer[0], writer[1]),
	}
	slices.Sort(want)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("findings of the test's processes:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for _, r := range rowsFor(rows, "fd_leak", "pid", leaker.fields[0]) {
		if r["evidence"] != "trend" || r["new_fds"] != "20" || r["growth"] != "30" {
			t.Errorf("socket leak: evidence %s new %s growth %s, want trend, 20 (persisted a take), 30", r["evidence"], r["new_fds"], r["growth"])
		}
		if s, err := strconv.ParseFloat(r["exhausts_in"], 64); err != nil || s <= 0 {
			t.Errorf("socket leak: exhausts_in %q, want seconds", r["exhausts_in"])
		}
	}

	// --fail-on-findings agrees: 3 with the faults, 0 for the healthy
	// processes alone.
	if r := itersnap(t, db, "diff", fmt.Sprint(a), b, "--fail-on-findings"); r.code != exitFindings {
		t.Errorf("diff --fail-on-findings: exit %d, want %d", r.code, exitFindings)
	}
	args := []string{"diff", fmt.Sprint(a), b, "--fail-on-findings", "--comm", "sleep"}
	for pid := range healthy {
		args = append(args, "--pid", pid)
	}
	if r := itersnap(t, db, args...); r.code != 0 {
		t.Errorf("diff --fail-on-findings of the healthy processes: exit %d, want 0:\n%s", r.code, r.stdout)
	}
	for pid := range faults {
		if r := itersnap(t, db, "diff", fmt.Sprint(a), b, "--fail-on-findings", "--pid", pid); r.code != exitFindings {
			t.Errorf("diff --fail-on-findings --pid %s (a fault): exit %d, want %d", pid, r.code, exitFindings)
		}
	}
}
