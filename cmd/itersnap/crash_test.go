package main

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// killedBySIGKILL reports whether the process ended of SIGKILL, rather
// than finishing before it came.
func killedBySIGKILL(p *cliProc) bool {
	ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL
}

// takeDuration is the median time of three whole takes, process start to
// exit, as the kills below are timed. It returns the IDs they printed.
func takeDuration(t *testing.T, args []string) (time.Duration, []uint64) {
	t.Helper()
	var ids []uint64
	var times []time.Duration
	for range 3 {
		start := time.Now()
		ids = append(ids, printedID(t, startCLI(t, args...).wait(t)))
		times = append(times, time.Since(start))
	}
	slices.Sort(times)
	return times[1], ids
}

// TestKilledTakes kills takes with SIGKILL: half at moments spread over a
// whole take (start, collection, commit, exit), half during the commit,
// timed from its first write to the file. After every kill the database
// opens, passes bbolt's check, and holds the snapshots of the takes that
// printed an ID, and the killed one only if it got through its commit:
// whole snapshots, never part of one.
func TestKilledTakes(t *testing.T) {
	bpftest.RequireBPF(t)
	pid := startRole(t, "sleeper").fields[0]
	dir := t.TempDir()
	db := filepath.Join(dir, "itersnap.db")
	args := []string{"take", "--db", db, "--pid", pid}
	full, want := takeDuration(t, args)

	const kills = 60
	// What each kind of kill met: the take finished first, had committed,
	// or had not.
	outcomes := map[string]map[string]int{"anywhere": {}, "in commit": {}}
	for i := range kills {
		var p *cliProc
		kind := "anywhere"
		if i%6 == 0 {
			// This take loads and pins its programs: some kills land
			// while it pins.
			if r := itersnap(t, db, "unpin"); r.code != exitOK {
				t.Fatalf("unpin: exit %d, %s", r.code, r.stderr)
			}
		}
		if i%2 == 0 {
			p = startCLI(t, args...)
			time.Sleep(time.Duration(rand.Int64N(int64(full) * 6 / 5)))
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		} else {
			// An existing database is first written by the commit. Kills
			// up to 1 ms after that write land before and after the
			// commit point about evenly here.
			kind = "in commit"
			p = killOnEvent(t, dir, filepath.Base(db), unix.IN_MODIFY, time.Duration(rand.Int64N(int64(time.Millisecond))), args)
		}
		r := p.wait(t)
		wasKilled := killedBySIGKILL(p)
		outcome := "not committed"
		switch {
		case !wasKilled:
			want = append(want, printedID(t, r))
			outcome = "finished"
		case r.stdout != "": // killed after printing: it had committed
			want = append(want, printedID(t, r))
			outcome = "committed"
		}

		got := checkWhole(t, db)
		switch {
		case slices.Equal(got, want):
		case wasKilled && len(got) == len(want)+1 && slices.Equal(got[:len(want)], want):
			want = got // committed, then killed before it printed
			outcome = "committed"
		default:
			t.Fatalf("kill %d (%s): list has %v, want %v (or one more from the killed take)", i, kind, got, want)
		}
		outcomes[kind][outcome]++
	}
	t.Logf("a take takes %v; %d kills met: %v", full, kills, outcomes)
	// Whatever the kills left in the pin directory, the next take leaves
	// its pins and nothing else.
	printedID(t, startCLI(t, args...).wait(t))
	checkPins(t)
}

// checkPins checks that the test run's pin directory (TestMain) holds one
// directory of pins, whole, and nothing else.
func checkPins(t *testing.T) {
	t.Helper()
	dir := os.Getenv("ITERSNAP_PIN_DIR")
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 1 {
		t.Fatalf("pin directory %s: %v, %v; want one directory", dir, entries, err)
	}
	pins, err := os.ReadDir(filepath.Join(dir, entries[0].Name()))
	var names []string
	for _, p := range pins {
		names = append(names, p.Name())
	}
	if err != nil || !slices.Equal(names, []string{"file", "symbolized", "task"}) {
		t.Errorf("pins in %s: %v, %v", entries[0].Name(), names, err)
	}
}

// TestKilledFirstTake kills the take that creates the database: when its
// files appear (and a little after), and at moments spread over the whole
// take. The database is built under a temporary name and linked into
// place, so the path never names an empty or half-written file: there is
// no database, or a whole one. Reads then work or fail with exit 10 in one
// line, and the next take succeeds.
func TestKilledFirstTake(t *testing.T) {
	bpftest.RequireBPF(t)
	pid := startRole(t, "sleeper").fields[0]
	full, _ := takeDuration(t, []string{"take", "--db", filepath.Join(t.TempDir(), "x.db"), "--pid", pid})
	take := func(db string) []string {
		return []string{"take", "--pid", pid, "--db", db, "--lock-timeout", "100ms"}
	}

	states := map[string]int{}
	for i := range 24 {
		dir := t.TempDir()
		db := filepath.Join(dir, "itersnap.db")
		var p *cliProc
		if i%2 == 0 {
			// The first event is the temporary file's creation.
			p = killOnEvent(t, dir, filepath.Base(db), unix.IN_CREATE, time.Duration(rand.Int64N(int64(3*time.Millisecond))), take(db))
		} else {
			p = startCLI(t, take(db)...)
			time.Sleep(time.Duration(rand.Int64N(int64(full) * 6 / 5)))
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		}
		p.wait(t)
		states[checkAfterFirstTake(t, db, take(db))]++
	}
	t.Logf("a take takes %v; the killed first take left: %v", full, states)
}

// checkAfterFirstTake checks what a killed first take left: no database, or
// a whole one (and perhaps its temporary file, which the next creation
// removes once it is a minute old). list works or exits 10 in one line
// naming it, and the next take (args) succeeds. It returns what the take
// left.
func checkAfterFirstTake(t *testing.T, db string, args []string) (state string) {
	t.Helper()
	state = "no file"
	if _, err := os.Stat(db); err == nil {
		state = "database"
	}
	if tmp, _ := filepath.Glob(db + ".creating.*"); len(tmp) > 0 {
		state += " and a temporary file"
	}

	r := itersnap(t, db, "list", "--format", "csv", "--lock-timeout", "100ms")
	switch {
	case r.code == exitOK && strings.HasPrefix(state, "database"):
	case r.code == exitDB && strings.HasPrefix(state, "no file"):
		checkOneLine(t, r.stderr, db)
	default:
		t.Errorf("%s: list exit %d, stderr %q", state, r.code, r.stderr)
	}

	r = startCLI(t, args...).wait(t)
	if r.code != exitOK {
		t.Fatalf("%s: the next take: exit %d, stderr %q", state, r.code, r.stderr)
	}
	id := printedID(t, r)
	if got := checkWhole(t, db); !slices.Equal(got, []uint64{id}) && !slices.Equal(got, []uint64{1, id}) {
		t.Fatalf("%s: list has %v after the next take printed %d", state, got, id)
	}
	return state
}

// killOnEvent starts itersnap with args, waits for inotify to report event
// (IN_CREATE, IN_MODIFY) on the file name in dir, and kills it delay
// after: the moments a database is created, or a commit starts writing.
func killOnEvent(t *testing.T, dir, name string, event uint32, delay time.Duration, args []string) *cliProc {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, dir, event); err != nil {
		t.Fatal(err)
	}
	p := startCLI(t, args...)
	var buf [4096]byte
	for seen := false; !seen; {
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 10_000)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 {
			t.Fatalf("no inotify event %#x on %s within 10s: %v", event, name, err)
		}
		n, _ = unix.Read(fd, buf[:])
		seen = n > 0 && strings.Contains(string(buf[:n]), name)
	}
	time.Sleep(delay)
	syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
	return p
}
