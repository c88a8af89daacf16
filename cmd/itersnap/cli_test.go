package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cli")

// result is what one command line did.
type result struct {
	code           int
	stdout, stderr string
}

// itersnap runs one command line through the real command tree, with
// ITERSNAP_DB set to db.
func itersnap(t *testing.T, db string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string {
		switch k {
		case "ITERSNAP_DB":
			return db
		case "ITERSNAP_PIN_DIR": // the test run's own (TestMain)
			return os.Getenv(k)
		}
		return ""
	}
	code := run(context.Background(), args, &out, &errb, getenv)
	return result{code, out.String(), errb.String()}
}

// golden compares got with testdata/cli/NAME, or rewrites it with -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "cli", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if d := cmp.Diff(string(want), got); d != "" {
		t.Errorf("%s mismatch (-want +got):\n%s", name, d)
	}
}

func itoa(v uint64) string { return strconv.FormatUint(v, 10) }

var t0 = time.Date(2026, 11, 27, 3, 0, 0, 0, time.UTC)

// recorded builds three snapshots of a small made-up host, an hour apart:
// nginx (pid 100) leaks sockets, a writer (pid 200) blocks on a frozen
// filesystem and stays blocked, and sshd (pid 300) sleeps in epoll_wait.
func recorded() []*snapshot.Snapshot {
	epoll := snapshot.Stack{"ep_poll+0x2a0/0x2e0", "do_epoll_wait+0x95/0xb0", "__x64_sys_epoll_wait+0x5f/0x100", "do_syscall_64+0x7d/0x1a0", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"}
	frozen := snapshot.Stack{"percpu_rwsem_wait+0x110/0x140", "__percpu_down_read+0x61/0x70", "ext4_buffered_write_iter+0x1b5/0x1c0", "vfs_write+0x2a4/0x450", "ksys_write+0x6b/0xe0", "do_syscall_64+0x7d/0x1a0", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"}
	var out []*snapshot.Snapshot
	for i := range 3 {
		s := &snapshot.Snapshot{
			Meta: snapshot.Meta{
				Time: t0.Add(time.Duration(i) * time.Hour), Hostname: "web-1", Kernel: "6.18.0",
				BootID: "b00710", Collector: "bpf", Label: []string{"before", "", "incident"}[i],
				Duration: 12 * time.Millisecond,
			},
			Stacks: []snapshot.Stack{epoll, frozen},
		}
		writerState := uint32(snapshot.TaskInterruptible)
		if i > 0 {
			writerState = snapshot.TaskUninterruptible
		}
		s.Tasks = []snapshot.Task{
			{PID: 100, TID: 100, PPID: 1, Comm: "nginx", State: snapshot.TaskInterruptible, StartTime: 5e9, Switches: uint64(100 + i*50), NoFileLimit: 1024, Stack: 0},
			{PID: 200, TID: 200, PPID: 1, Comm: "writer", State: writerState, StartTime: 6e9, Switches: 7, NoFileLimit: 1024, Stack: 1},
			{PID: 300, TID: 300, PPID: 1, Comm: "sshd", State: snapshot.TaskInterruptible, StartTime: 7e9, Switches: 3, NoFileLimit: 1024, Stack: 0},
		}
		s.Files = []snapshot.File{
			{PID: 100, FD: 0, Mode: 0o20666, Path: "/dev/null", Dev: 5, Inode: 4},
			{PID: 100, FD: 3, Mode: 0o100644, Path: "/var/log/nginx/access.log", Dev: 2049, Inode: 77},
			{PID: 300, FD: 3, Mode: 0o140777, Path: "socket:[9000]", Dev: 8, Inode: 9000},
		}
		for n := range 10 * (i + 1) {
			ino := uint64(20000 + n)
			s.Files = append(s.Files, snapshot.File{PID: 100, FD: uint32(10 + n), Mode: 0o140777, Dev: 8, Inode: ino, Path: "socket:[" + itoa(ino) + "]"})
		}
		s.Finish()
		out = append(out, s)
	}
	return out
}

// recordedDB writes recorded() into a new database and returns its path.
func recordedDB(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range recorded() {
		if _, err := db.Put(s); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestGolden(t *testing.T) {
	time.Local = time.UTC // golden tables print local times
	db := recordedDB(t)
	for _, tc := range []struct {
		golden string
		args   []string
	}{
		{"list.txt", []string{"list"}},
		{"list.csv", []string{"list", "--format", "csv"}},
		{"show-tasks.txt", []string{"show", "latest"}},
		{"show-tasks.csv", []string{"show", "2", "--tasks", "--format", "csv"}},
		{"show-tasks.json", []string{"show", "latest~2", "--format", "json"}},
		{"show-fds-nginx.csv", []string{"show", "1", "--fds", "--comm", "nginx", "--format", "csv"}},
		{"show-stacks.txt", []string{"show", "latest", "--stacks"}},
		{"show-folded.txt", []string{"show", "latest", "--format", "folded"}},
		{"show-folded-nginx.txt", []string{"show", "1", "--stacks", "--comm", "nginx", "--format", "folded"}},
		{"diff.txt", []string{"diff", "1", "latest"}},
		{"diff.csv", []string{"diff", "1", "3", "--format", "csv"}},
		{"diff.json", []string{"diff", "latest~2", "latest", "--format", "json", "--only", "fd_leak,stuck"}},
		{"diff-folded.txt", []string{"diff", "1", "latest", "--format", "folded-diff"}},
		{"diff-stuck.txt", []string{"diff", "latest~1", "latest"}},
		{"diff-idle.txt", []string{"diff", "1", "3", "--include-idle", "--pid", "300"}},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			r := itersnap(t, db, tc.args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
			}
			golden(t, tc.golden, r.stdout)
		})
	}
}

func TestOutputFile(t *testing.T) {
	db := recordedDB(t)
	out := filepath.Join(t.TempDir(), "report.csv")
	r := itersnap(t, db, "diff", "1", "3", "--format", "csv", "-o", out)
	if r.code != 0 || r.stdout != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(b), "finding,pid,tid,comm,") {
		t.Errorf("report starts %q", b[:min(len(b), 40)])
	}
}

func TestFailOnFindings(t *testing.T) {
	db := recordedDB(t)
	if r := itersnap(t, db, "diff", "1", "3", "--fail-on-findings"); r.code != exitFindings || r.stderr != "" {
		t.Errorf("with findings: exit %d stderr %q, want 3 and silence", r.code, r.stderr)
	}
	if r := itersnap(t, db, "diff", "2", "3", "--fail-on-findings", "--pid", "300"); r.code != 0 {
		t.Errorf("without findings: exit %d (%s), want 0", r.code, r.stderr)
	}
}

// TestBadInput: every kind of bad input ends in one line on stderr and the
// documented exit status; never a panic, a stack trace or a usage dump.
func TestBadInput(t *testing.T) {
	db := recordedDB(t)
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600)
	missing := filepath.Join(t.TempDir(), "missing.db")
	newdir := filepath.Join(t.TempDir(), "newdir")
	for _, tc := range []struct {
		name string
		db   string
		args []string
		code int
		want string // in the stderr line
	}{
		{"unknown id", db, []string{"show", "99"}, exitError, "snapshot 99 not found"},
		{"latest~999", db, []string{"show", "latest~999"}, exitError, "latest~999"},
		{"garbage id", db, []string{"show", "abc"}, exitUsage, "abc"},
		{"negative id", db, []string{"diff", "-1", "2"}, exitUsage, ""},
		{"garbage diff ref", db, []string{"diff", "1", "latest~x"}, exitUsage, "latest~x"},
		{"unknown format", db, []string{"list", "--format", "xml"}, exitUsage, `unknown --format "xml"`},
		{"unknown finding", db, []string{"diff", "1", "2", "--only", "leaks"}, exitUsage, "leaks"},
		{"min growth zero", db, []string{"diff", "1", "2", "--min-growth", "0"}, exitUsage, "--min-growth 0"},
		{"unknown flag", db, []string{"list", "--frobnicate"}, exitUsage, "frobnicate"},
		{"unknown command", db, []string{"frobnicate"}, exitUsage, "frobnicate"},
		{"missing args", db, []string{"diff", "1"}, exitUsage, "2 arg"},
		{"two views", db, []string{"show", "1", "--fds", "--tasks"}, exitUsage, "fds"},
		{"missing db", missing, []string{"list"}, exitDB, missing},
		{"not a database", garbage, []string{"show", "latest"}, exitDB, garbage},
		{"unreadable db path", "/proc/self/nonexistent/x.db", []string{"list"}, exitDB, "/proc/self/nonexistent/x.db"},
		{"take into garbage", garbage, []string{"take", "--collector", "procfs"}, exitDB, garbage},
		{"bad pid filter", db, []string{"take", "--pid", "0"}, exitUsage, "--pid 0"},
		{"bad collector", db, []string{"take", "--collector", "magic"}, exitUsage, "magic"},
		{"ID past uint64", db, []string{"show", "99999999999999999999999"}, exitUsage, "99999999999999999999999 is not a snapshot ID"},
		{"range without an end", db, []string{"copy", "1..", "--to", filepath.Join(t.TempDir(), "c.db")}, exitUsage, `range "1.." needs an end`},
		{"range without a start", db, []string{"copy", "..3", "--to", filepath.Join(t.TempDir(), "c.db")}, exitUsage, `range "..3" needs a start`},
		{"proc file as db", db, []string{"list", "--db", "/proc/self/status"}, exitDB, "/proc/self/status is on procfs, a kernel filesystem"},
		{"empty --db", db, []string{"list", "--db", ""}, exitUsage, "--db needs a path"},
		{"empty --db for take", db, []string{"take", "--db", ""}, exitUsage, "--db needs a path"},
		{"--db ending in /", db, []string{"take", "--db", newdir + "/"}, exitUsage, "ends in /: it names a directory"},
		{"ITERSNAP_DB ending in /", newdir + "/", []string{"list"}, exitUsage, "ITERSNAP_DB " + newdir + "/ ends in /"},
		{"missing db names the flag", db, []string{"list", "--db", missing}, exitDB, "no database at " + missing + " (run itersnap take first, or point --db at a database)"},
		{"bad container filter", db, []string{"take", "--container", "API\x1b[31m"}, exitUsage, "--container"},
		{"empty container filter", db, []string{"take", "--container", ""}, exitUsage, "--container"},
		{"bad cgroup filter", db, []string{"take", "--cgroup", "system.slice"}, exitUsage, "--cgroup"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := itersnap(t, tc.db, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			checkOneLine(t, r.stderr, tc.want)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("a reader created %s", missing)
	}
	if _, err := os.Stat(newdir); err == nil {
		t.Errorf("take --db %s/ created the directory", newdir)
	}
}

func checkOneLine(t *testing.T, stderr, want string) {
	t.Helper()
	if strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, "itersnap: ") {
		t.Errorf("stderr is not one itersnap: line: %q", stderr)
	}
	for _, bad := range []string{"goroutine ", "panic", "Usage:", ".go:"} {
		if strings.Contains(stderr, bad) {
			t.Errorf("stderr contains %q: %q", bad, stderr)
		}
	}
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q does not mention %q", stderr, want)
	}
}

// TestLockedDB: a reader behind a writer gives up after --lock-timeout with
// exit 11 instead of hanging a cron job.
func TestLockedDB(t *testing.T) {
	path := recordedDB(t)
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	start := time.Now()
	r := itersnap(t, path, "list", "--lock-timeout", "200ms")
	if r.code != exitLocked {
		t.Errorf("exit %d, want %d (stderr %q)", r.code, exitLocked, r.stderr)
	}
	checkOneLine(t, r.stderr, "locked")
	if waited := time.Since(start); waited > 10*time.Second {
		t.Errorf("waited %v for a 200ms lock timeout", waited)
	}
}

func TestDBFromFlagBeatsEnv(t *testing.T) {
	db := recordedDB(t)
	r := itersnap(t, "/nonexistent/env.db", "list", "--db", db, "--format", "csv")
	if r.code != 0 || strings.Count(r.stdout, "\n") != 4 {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = itersnap(t, "/nonexistent/env.db", "list")
	checkOneLine(t, r.stderr, "/nonexistent/env.db")
}
