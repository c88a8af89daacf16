package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// These tests run itersnap as the on-call engineer would, against the real
// kernel: real BPF programs, real processes that leak fds or block.

func take(t *testing.T, db string, args ...string) uint64 {
	t.Helper()
	r := itersnap(t, db, append([]string{"take"}, args...)...)
	if r.code != 0 {
		t.Fatalf("take: exit %d, stderr %q", r.code, r.stderr)
	}
	return printedID(t, r)
}

// diffRows runs diff with --format csv and returns its rows as maps.
func diffRows(t *testing.T, db string, args ...string) []map[string]string {
	t.Helper()
	return csvRows(t, db, append([]string{"diff"}, args...)...)
}

func rowsFor(rows []map[string]string, finding, key, value string) []map[string]string {
	var out []map[string]string
	for _, r := range rows {
		if r["finding"] == finding && r[key] == value {
			out = append(out, r)
		}
	}
	return out
}

func TestTakeShowList(t *testing.T) {
	bpftest.RequireBPF(t)
	pid := startRole(t, "sleeper").fields[0]
	db := filepath.Join(t.TempDir(), "sub", "itersnap.db")
	id := take(t, db, "--pid", pid, "--label", "first")
	if id != 1 {
		t.Errorf("first ID %d", id)
	}
	for path, mode := range map[string]os.FileMode{db: 0o600, filepath.Dir(db): 0o700 | os.ModeDir} {
		if st, err := os.Stat(path); err != nil || st.Mode() != mode {
			t.Errorf("%s: mode %v, want %v (%v)", path, st.Mode(), mode, err)
		}
	}
	r := itersnap(t, db, "list", "--format", "csv")
	if !strings.Contains(r.stdout, ",bpf,") || !strings.Contains(r.stdout, ",first,") {
		t.Errorf("list: %q", r.stdout)
	}
	r = itersnap(t, db, "show", "latest", "--format", "csv")
	if !strings.HasPrefix(r.stdout, "snapshot,pid,tid,comm,state,stack,cgroup,container,pod,ns_pid\n") ||
		!strings.Contains(r.stdout, "__x64_sys_nanosleep;hrtimer_nanosleep") {
		t.Errorf("show --tasks: %q", r.stdout)
	}
	self := take(t, db) // unfiltered: everything but itersnap itself
	r = itersnap(t, db, "show", fmt.Sprint(self), "--format", "csv")
	if strings.Contains(r.stdout, fmt.Sprintf("\n%d,%d,", self, os.Getpid())) || !strings.Contains(r.stdout, "\n"+fmt.Sprint(self)+","+pid+",") {
		t.Errorf("an unfiltered take should hold the sleeper %s but not itersnap itself (%d)", pid, os.Getpid())
	}
	r = itersnap(t, db, "show", "1", "--fds", "--format", "csv")
	if !strings.HasPrefix(r.stdout, "snapshot,pid,comm,fd,kind,path,proto,sock_state,local,remote,netns\n1,"+pid+",") {
		t.Errorf("show --fds: %q", r.stdout)
	}
}

// TestTakeWithoutPrivileges runs take as nobody: BPF cannot load, so it
// reads /proc with one warning; without a writable database it fails in
// one line with exit 10; with --collector bpf in one line with exit 1.
func TestTakeWithoutPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to become nobody")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "itersnap")
	copyFile(t, os.Args[0], bin)
	open := filepath.Join(dir, "open")
	os.Mkdir(open, 0o777)
	for _, d := range []string{filepath.Dir(dir), dir, open} {
		os.Chmod(d, 0o777)
	}
	closed := filepath.Join(dir, "closed")
	os.Mkdir(closed, 0o700)

	asNobody := func(args ...string) result {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{roleEnv + "=cli", "PATH=/usr/bin:/bin"}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return result{code, out.String(), errb.String()}
	}

	r := asNobody("take", "--db", filepath.Join(closed, "x.db"))
	if r.code != exitDB || r.stdout != "" {
		t.Errorf("unwritable db: exit %d stdout %q, want %d", r.code, r.stdout, exitDB)
	}
	checkOneLine(t, r.stderr, "permission denied")

	r = asNobody("take", "--db", filepath.Join(open, "x.db"), "--collector", "bpf")
	if r.code != exitError || r.stdout != "" {
		t.Errorf("--collector bpf: exit %d stdout %q, want %d", r.code, r.stdout, exitError)
	}
	checkOneLine(t, r.stderr, "needs root")

	// The fallback reads /proc as nobody: no stack at all (proc_pid_stack
	// wants CAP_SYS_ADMIN) and no fds of root's processes. Two warnings:
	// BPF unavailable, and what the snapshot lacks.
	r = asNobody("take", "--db", filepath.Join(open, "x.db"))
	if r.code != 0 || r.stdout != "1\n" {
		t.Errorf("fallback: exit %d stdout %q, want 0 and 1", r.code, r.stdout)
	}
	lines := strings.SplitAfter(r.stderr, "\n")
	if len(lines) != 3 || lines[2] != "" {
		t.Fatalf("fallback: stderr %q, want two warning lines", r.stderr)
	}
	checkOneLine(t, lines[0], "reading /proc instead")
	partial := regexp.MustCompile(`^itersnap: warning: partial snapshot: no stacks for ([0-9,]+) of ([0-9,]+) threads, fds of ([0-9,]+) of ([0-9,]+) processes; run as root\n$`)
	m := partial.FindStringSubmatch(lines[1])
	if m == nil {
		t.Fatalf("fallback: second line %q, want the partial snapshot warning", lines[1])
	}
	if m[1] != m[2] || m[3] == "0" {
		// No thread's stack; no fds of root's processes (the only
		// process nobody may read is its own itersnap).
		t.Errorf("as nobody: no stacks for %s of %s threads, fds of %s of %s processes: want all stacks, and fds of root's processes, missing", m[1], m[2], m[3], m[4])
	}

	r = asNobody("list", "--db", filepath.Join(open, "x.db"), "--format", "csv")
	if !strings.Contains(r.stdout, ",procfs,") || !strings.HasSuffix(r.stdout, ",true\n") || !strings.Contains(r.stdout, ",partial\n") {
		t.Errorf("list after fallback: %q %q", r.stdout, r.stderr)
	}
	r = asNobody("show", "1", "--db", filepath.Join(open, "x.db"))
	if !strings.Contains(r.stdout, "# note: partial: no stacks for ") {
		t.Errorf("show's notes do not say it is partial: %q", r.stdout)
	}
	if r := asNobody("take", "--db", filepath.Join(open, "x.db"), "--collector", "procfs"); r.code != 0 {
		t.Fatalf("second take: exit %d, %q", r.code, r.stderr)
	}
	r = asNobody("diff", "1", "2", "--db", filepath.Join(open, "x.db"))
	if !strings.Contains(r.stdout, "snapshots 1, 2 are partial (the last: no stacks for ") {
		t.Errorf("diff does not say it compares partial snapshots: %q %q", r.stdout, r.stderr)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestDiffFDLeak: a child that leaks a socket every 2 ms between takes is
// an fd_leak with exact counts, monotonic across three takes.
func TestDiffFDLeak(t *testing.T) {
	bpftest.RequireBPF(t)
	leaker := startRole(t, "leaker")
	pid := leaker.fields[0]
	db := filepath.Join(t.TempDir(), "itersnap.db")
	leak := func(n int) {
		fmt.Fprintf(leaker.stdin, "%d\n", n)
		if line, _ := leaker.stdout.ReadString('\n'); !strings.HasPrefix(line, "leaked ") {
			t.Fatalf("leaker said %q", line)
		}
	}
	a := take(t, db)
	leak(30)
	take(t, db)
	leak(20)
	b := take(t, db)

	rows := rowsFor(diffRows(t, db, fmt.Sprint(a), fmt.Sprint(b)), "fd_leak", "pid", pid)
	if len(rows) != 1 {
		t.Fatalf("fd_leak rows for pid %s: %v", pid, rows)
	}
	got := rows[0]
	want := map[string]string{"kind": "socket", "target": "unix UNCONNECTED", "fds_a": "0", "fds_b": "50",
		"new_fds": "30", "growth": "50", "evidence": "trend", "monotonic": "true", "samples": "3", "tid": "0"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q (row %v)", k, got[k], v, got)
		}
	}
	if g, _ := strconv.ParseFloat(got["growth_per_hour"], 64); g < 50 {
		t.Errorf("growth_per_hour %v: 50 fds in well under an hour", got["growth_per_hour"])
	}
	// The leaker's other fds (stdin, stdout, ...) did not grow.
	if n := len(rowsFor(diffRows(t, db, fmt.Sprint(a), fmt.Sprint(b)), "fd_leak", "pid", pid)); n != 1 {
		t.Errorf("%d fd_leak groups for the leaker, want 1", n)
	}
}

// TestDiffBlockedAndStuck: a vfork parent (killable D) and a writer to a
// frozen filesystem (plain D) are newly blocked; across three takes the
// writer, which never runs, is stuck, and the vfork parent is reported as a
// killable wait; an idle sleeper is not reported unless asked.
func TestDiffBlockedAndStuck(t *testing.T) {
	bpftest.RequireBPF(t)
	mnt := frozenFS(t)
	db := filepath.Join(t.TempDir(), "itersnap.db")

	sleeper := startRole(t, "sleeper").fields
	a := take(t, db)

	vforker := startRole(t, "vforker").fields
	writer := startRole(t, "writer", filepath.Join(mnt.dir, "data")).fields
	waitState(t, vforker[1], 'D')
	waitState(t, writer[1], 'R', 'S', 'D') // writing
	mnt.freeze(t)
	waitState(t, writer[1], 'D')
	// Not a passing D on the way (the fsync's I/O): the wait on the freeze.
	waitStack(t, writer[1], "percpu_rwsem_wait")
	b := take(t, db)
	c := take(t, db)
	d := take(t, db)

	rows := diffRows(t, db, fmt.Sprint(a), fmt.Sprint(b))
	for name, tid := range map[string]string{"vfork parent": vforker[1], "frozen writer": writer[1]} {
		got := rowsFor(rows, "newly_blocked", "tid", tid)
		if len(got) != 1 || got[0]["state"] != "D" {
			t.Errorf("%s (tid %s) not newly_blocked in D: %v", name, tid, got)
			continue
		}
		wantKillable := map[string]string{"vfork parent": "yes", "frozen writer": "no"}[name]
		if got[0]["killable"] != wantKillable {
			t.Errorf("%s: killable %q, want %q", name, got[0]["killable"], wantKillable)
		}
	}
	// wait_for_vfork_done is inlined into kernel_clone.
	if got := rowsFor(rows, "newly_blocked", "tid", vforker[1]); len(got) == 1 && !strings.Contains(got[0]["stack"], "kernel_clone") {
		t.Errorf("vfork parent stack %q", got[0]["stack"])
	}

	rows = diffRows(t, db, fmt.Sprint(b), fmt.Sprint(d))
	stuck := rowsFor(rows, "stuck", "tid", writer[1])
	if len(stuck) != 1 || stuck[0]["samples"] != "3" || stuck[0]["killable"] != "no" {
		t.Fatalf("frozen writer not stuck over 3 takes: %v", stuck)
	}
	if !strings.Contains(stuck[0]["stack"], "percpu") && !strings.Contains(stuck[0]["stack"], "sb_start_write") {
		t.Errorf("stuck stack %q does not wait on the freeze", stuck[0]["stack"])
	}
	if bf, _ := strconv.ParseFloat(stuck[0]["blocked_for"], 64); bf <= 0 {
		t.Errorf("blocked_for %q", stuck[0]["blocked_for"])
	}
	if got := rowsFor(rows, "stuck", "tid", vforker[1]); len(got) != 0 {
		t.Errorf("killable vfork parent reported stuck: %v", got)
	}
	if got := rowsFor(rows, "unchanged_stack", "tid", vforker[1]); len(got) != 1 || got[0]["class"] != "killable" {
		t.Errorf("vfork parent not an unchanged killable wait: %v", got)
	}
	if got := rowsFor(rows, "unchanged_stack", "tid", sleeper[1]); len(got) != 0 {
		t.Errorf("idle sleeper reported by default: %v", got)
	}
	rows = diffRows(t, db, fmt.Sprint(b), fmt.Sprint(d), "--include-idle")
	if got := rowsFor(rows, "unchanged_stack", "tid", sleeper[1]); len(got) != 1 || got[0]["class"] != "idle" {
		t.Errorf("idle sleeper with --include-idle: %v", got)
	}
	_ = c
}

// waitState waits until /proc shows the thread in one of the states.
func waitState(t *testing.T, tid string, states ...byte) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile("/proc/" + tid + "/stat")
		if i := strings.LastIndexByte(string(b), ')'); i > 0 && i+2 < len(b) {
			for _, s := range states {
				if b[i+2] == s {
					return
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("thread %s never reached state %q", tid, states)
}

// waitStack waits until the thread's kernel stack has the function.
func waitStack(t *testing.T, tid, function string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if b, _ := os.ReadFile("/proc/" + tid + "/stack"); strings.Contains(string(b), function+"+") {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	b, _ := os.ReadFile("/proc/" + tid + "/stack")
	t.Fatalf("thread %s never waited in %s:\n%s", tid, function, b)
}

type frozenMount struct{ dir string }

// FIFREEZE and FITHAW from include/uapi/linux/fs.h: _IOWR('X', 119/120, int).
const (
	fiFreeze = 0xc0045877
	fiThaw   = 0xc0045878
)

// frozenFS mounts a small ext4 image on a loop device; freeze stops every
// write to it. Cleanup thaws it before anything else, so a failing test
// leaves no process in D behind.
func frozenFS(t *testing.T) *frozenMount {
	t.Helper()
	for _, tool := range []string{"mkfs.ext4", "mount", "umount"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s not found (Debian: apt-get install e2fsprogs mount): %v", tool, err)
		}
	}
	dir := t.TempDir()
	img, mnt := filepath.Join(dir, "fs.img"), filepath.Join(dir, "mnt")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mkfs.ext4", "-q", img, "16M").CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4: %v\n%s", err, out)
	}
	if out, err := exec.Command("mount", "-o", "loop", img, mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount: %v\n%s", err, out)
	}
	m := &frozenMount{dir: mnt}
	// Registered before the children are started, so it runs after they
	// are killed (cleanups run last-in first-out).
	t.Cleanup(func() {
		if out, err := exec.Command("umount", mnt).CombinedOutput(); err != nil {
			t.Errorf("umount: %v\n%s", err, out)
		}
	})
	return m
}

func (m *frozenMount) freeze(t *testing.T) {
	m.ioctl(t, fiFreeze)
	// Thaw first of all cleanups: a writer blocked on the freeze cannot
	// die, even of SIGKILL, until then.
	t.Cleanup(func() { m.ioctl(t, fiThaw) })
}

func (m *frozenMount) ioctl(t *testing.T, req uint) {
	fd, err := unix.Open(m.dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.IoctlSetInt(fd, req, 0); err != nil {
		t.Fatalf("ioctl %#x on %s: %v", req, m.dir, err)
	}
}
