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

	bolt "go.etcd.io/bbolt"
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
}

// TestKilledFirstTake kills the take that creates the database: when the
// file appears (and a little after), and at moments spread over the whole
// take. Then it writes what a kill before bbolt's first write leaves, which
// the kills hit only now and then: an empty file, or bbolt's initial pages
// cut short. Reads then work or fail with exit 10 in one line, and the
// next take succeeds.
func TestKilledFirstTake(t *testing.T) {
	bpftest.RequireBPF(t)
	pid := startRole(t, "sleeper").fields[0]
	full, _ := takeDuration(t, []string{"take", "--db", filepath.Join(t.TempDir(), "x.db"), "--pid", pid})
	// A short lock timeout: an empty file is waited for that long.
	take := func(db string) []string {
		return []string{"take", "--pid", pid, "--db", db, "--lock-timeout", "100ms"}
	}

	states := map[string]int{}
	for i := range 24 {
		dir := t.TempDir()
		db := filepath.Join(dir, "itersnap.db")
		var p *cliProc
		if i%2 == 0 {
			p = killOnEvent(t, dir, filepath.Base(db), unix.IN_CREATE, time.Duration(rand.Int64N(int64(300*time.Microsecond))), take(db))
		} else {
			p = startCLI(t, take(db)...)
			time.Sleep(time.Duration(rand.Int64N(int64(full) * 6 / 5)))
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		}
		p.wait(t)
		states[checkAfterFirstTake(t, db, take(db))]++
	}
	t.Logf("a take takes %v; the killed first take left: %v", full, states)

	fresh := filepath.Join(t.TempDir(), "fresh.db")
	bdb, err := bolt.Open(fresh, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	bdb.Close()
	pages, err := os.ReadFile(fresh)
	if err != nil || len(pages) != bboltInitSize {
		t.Fatalf("a new bbolt file has %d bytes, want %d (%v)", len(pages), bboltInitSize, err)
	}
	for _, size := range []int{0, 4096, 8192, 12288, bboltInitSize} {
		db := filepath.Join(t.TempDir(), "itersnap.db")
		if err := os.WriteFile(db, pages[:size], 0o600); err != nil {
			t.Fatal(err)
		}
		checkAfterFirstTake(t, db, take(db))
	}
}

// checkAfterFirstTake checks the database a killed first take left: list
// works or exits 10 in one line naming it, and the next take (args)
// succeeds. It returns what the take left: no file, an empty or short
// file, bbolt's initial pages, or a database.
func checkAfterFirstTake(t *testing.T, db string, args []string) (state string) {
	t.Helper()
	state = "no file"
	if info, err := os.Stat(db); err == nil {
		switch size := info.Size(); {
		case size == 0:
			state = "empty file"
		case size < bboltInitSize:
			state = "short file"
		case size == bboltInitSize:
			state = "bbolt file" // no buckets yet
		default:
			state = "database"
		}
	}

	r := itersnap(t, db, "list", "--format", "csv", "--lock-timeout", "100ms")
	switch {
	case r.code == exitOK && (state == "database" || state == "bbolt file"):
	case r.code == exitDB:
		checkOneLine(t, r.stderr, db)
	default:
		t.Errorf("%s: list exit %d, stderr %q", state, r.code, r.stderr)
	}

	r = startCLI(t, args...).wait(t)
	if r.code == exitDB && (state == "empty file" || state == "short file") && !unfinishedFileRecovers {
		// The known gap: the store refuses a file it did not create and
		// bbolt never finished. Do what the message says.
		t.Logf("%s: take: %s", state, strings.TrimSpace(r.stderr))
		checkOneLine(t, r.stderr, db)
		if err := os.Remove(db); err != nil {
			t.Fatal(err)
		}
		r = startCLI(t, args...).wait(t)
	}
	if r.code != exitOK {
		t.Fatalf("%s: the next take: exit %d, stderr %q", state, r.code, r.stderr)
	}
	id := printedID(t, r)
	if got := checkWhole(t, db); !slices.Equal(got, []uint64{id}) && !slices.Equal(got, []uint64{1, id}) {
		t.Fatalf("%s: list has %v after the next take printed %d", state, got, id)
	}
	return state
}

// bboltInitSize is the size of a new bbolt file: its first four pages
// (two meta pages, a freelist and an empty leaf), written in one write.
const bboltInitSize = 4 * 4096

// unfinishedFileRecovers says whether a take succeeds on the file left by a
// take killed right after creating it, before bbolt's first write: empty,
// or short if the kill cut that write. Not yet: store/lock.go waits for
// another take to fill an empty file, then refuses it ("remove it"), and a
// short one is refused as truncated, so until someone removes the file
// every take fails with exit 10.
const unfinishedFileRecovers = false

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
