package main

import (
	"encoding/csv"
	"errors"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// These tests run itersnap as cron and an on-call engineer would, at the
// same time: every command a process of its own (the test binary in the
// cli role), so the file locks, the commits and the kills are real.

// cliProc is one itersnap process.
type cliProc struct {
	cmd            *exec.Cmd
	stdout, stderr strings.Builder
}

// startCLI starts itersnap with args. A process the test did not wait for
// is killed when the test ends.
func startCLI(t *testing.T, args ...string) *cliProc {
	t.Helper()
	p := &cliProc{cmd: roleCommand("cli", args...)}
	p.cmd.Stdout, p.cmd.Stderr = &p.stdout, &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			killRole(p.cmd)
		}
	})
	return p
}

// wait waits for the process to end. A process killed by a signal has code
// -1.
func (p *cliProc) wait(t *testing.T) result {
	t.Helper()
	err := p.cmd.Wait()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatal(err)
	}
	return result{p.cmd.ProcessState.ExitCode(), p.stdout.String(), p.stderr.String()}
}

// printedID is the ID a successful take printed.
func printedID(t *testing.T, r result) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(strings.TrimSuffix(r.stdout, "\n"), 10, 64)
	if err != nil || r.stdout != strconv.FormatUint(id, 10)+"\n" || r.stderr != "" {
		t.Fatalf("take: stdout %q, stderr %q, want the ID alone", r.stdout, r.stderr)
	}
	return id
}

// checkLocked checks an exit 11: one line that names the database.
func checkLocked(t *testing.T, db string, r result) {
	t.Helper()
	checkOneLine(t, r.stderr, "database "+db+" is locked")
	if r.stdout != "" {
		t.Errorf("locked command wrote %q to stdout", r.stdout)
	}
}

// checkWhole checks the database as an engineer would find it after
// anything happened to the takes writing it: bbolt's consistency check
// passes, list works, and every listed snapshot reads back whole (show's
// tasks and fds agree with the counts list has from its metadata). It
// returns the listed IDs.
func checkWhole(t *testing.T, db string) []uint64 {
	t.Helper()
	bdb, err := bolt.Open(db, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		t.Fatalf("bbolt cannot open %s: %v", db, err)
	}
	err = bdb.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency check: %v", err)
		}
		return nil
	})
	bdb.Close()
	if err != nil {
		t.Fatal(err)
	}

	var ids []uint64
	for _, row := range csvRows(t, db, "list") {
		id, err := strconv.ParseUint(row["id"], 10, 64)
		if err != nil {
			t.Fatalf("list: id %q", row["id"])
		}
		ids = append(ids, id)
		for what, want := range map[string]string{"--tasks": row["threads"], "--fds": row["fds"]} {
			if got := len(csvRows(t, db, "show", row["id"], what)); strconv.Itoa(got) != want {
				t.Errorf("snapshot %d: show %s has %d rows, list says %s", id, what, got, want)
			}
		}
	}
	return ids
}

// csvRows runs a command in this process with --format csv and returns
// its rows as maps; it must succeed.
func csvRows(t *testing.T, db string, args ...string) []map[string]string {
	t.Helper()
	r := itersnap(t, db, append(args, "--format", "csv")...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("%s: exit %d, stderr %q", strings.Join(args, " "), r.code, r.stderr)
	}
	rows, err := csv.NewReader(strings.NewReader(r.stdout)).ReadAll()
	if err != nil || len(rows) == 0 {
		t.Fatalf("%s: csv %v: %q", strings.Join(args, " "), err, r.stdout)
	}
	var out []map[string]string
	for _, row := range rows[1:] {
		m := map[string]string{}
		for i, c := range rows[0] {
			m[c] = row[i]
		}
		out = append(out, m)
	}
	return out
}

// TestConcurrentTakesAndReads: 8 takes and 8 readers (list, diff) at once,
// round after round, the first one racing to create the database. Every
// process succeeds or, past its --lock-timeout, exits 11 with one line that
// names the database; the file stays consistent and holds exactly the
// snapshots whose take printed an ID. Each round starts without pins, so
// its takes pin at once (and leave one directory of pins).
func TestConcurrentTakesAndReads(t *testing.T) {
	bpftest.RequireBPF(t)
	pid := startRole(t, "sleeper").fields[0] // --pid keeps each take cheap
	db := filepath.Join(t.TempDir(), "state", "itersnap.db")
	// 1ms tries the lock once: with 16 processes on the file, some give up.
	rounds := []struct{ takeTimeout, readTimeout string }{
		{"10s", "10s"},
		{"1ms", "1ms"},
		{"10s", "1ms"},
		{"1ms", "10s"},
		{"10s", "10s"},
	}
	var took []uint64
	locked := 0
	for i, round := range rounds {
		// The 8 takes of a round find no pins: they load and pin at once.
		if r := itersnap(t, db, "unpin"); r.code != exitOK {
			t.Fatalf("unpin: exit %d, %s", r.code, r.stderr)
		}
		var takes, reads []*cliProc
		for j := range 8 {
			takes = append(takes, startCLI(t, "take", "--db", db, "--pid", pid, "--lock-timeout", round.takeTimeout))
			read := []string{"list"}
			if i > 0 && j%2 == 1 { // the first round has no snapshots to diff yet
				read = []string{"diff", "1", "latest"}
			}
			reads = append(reads, startCLI(t, append(read, "--db", db, "--lock-timeout", round.readTimeout)...))
		}
		var ok, takesLocked, readsLocked, early int
		for _, p := range takes {
			switch r := p.wait(t); r.code {
			case exitOK:
				took = append(took, printedID(t, r))
				ok++
			case exitLocked:
				checkLocked(t, db, r)
				takesLocked++
			default:
				t.Errorf("round %d: take exit %d, stderr %q", i, r.code, r.stderr)
			}
		}
		for _, p := range reads {
			switch r := p.wait(t); {
			case r.code == exitOK:
			case r.code == exitLocked:
				checkLocked(t, db, r)
				readsLocked++
			case i == 0 && r.code == exitDB && strings.Contains(r.stderr, "no database at "+db):
				early++ // ran before the first take created the file
			default:
				t.Errorf("round %d: %s exit %d, stderr %q", i, p.cmd.Args[1], r.code, r.stderr)
			}
		}
		locked += takesLocked + readsLocked
		t.Logf("round %d (take --lock-timeout %s, readers %s): %d takes stored, %d takes and %d readers locked out, %d readers before the file",
			i, round.takeTimeout, round.readTimeout, ok, takesLocked, readsLocked, early)

		listed := checkWhole(t, db)
		slices.Sort(took)
		if !slices.Equal(listed, took) {
			t.Fatalf("after round %d: list has %v, the takes printed %v", i, listed, took)
		}
	}
	t.Logf("%d snapshots, %d exits 11", len(took), locked)
	checkPins(t)
	if locked == 0 {
		// Runs on this project's machine saw 7 to 15; none means the
		// 1ms rounds no longer contend, and test nothing.
		t.Error("no process was locked out: the short --lock-timeout rounds did not contend")
	}
}
