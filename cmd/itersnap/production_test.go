package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	bolt "go.etcd.io/bbolt"
)

// itersnapEnv is itersnap with more environment than ITERSNAP_DB.
func itersnapEnv(t *testing.T, env map[string]string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string { return env[k] })
	return result{code, out.String(), errb.String()}
}

// ids lists the snapshot IDs in db, as `list` shows them.
func ids(t *testing.T, db string) string {
	t.Helper()
	r := itersnap(t, db, "list", "--format", "csv")
	if r.code != 0 {
		t.Fatalf("list %s: exit %d, %s", db, r.code, r.stderr)
	}
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		out = append(out, strings.SplitN(line, ",", 2)[0])
	}
	return strings.Join(out, " ")
}

func TestForgetCopyCompact(t *testing.T) {
	db := recordedDB(t) // snapshots 1-3
	r := itersnap(t, db, "forget", "--keep-last", "1", "--dry-run", "--format", "csv")
	if r.code != 0 || !strings.Contains(r.stdout, "1,2026-11-27T03:00:00Z,remove,\n") || !strings.Contains(r.stdout, ",keep,last 1\n") {
		t.Errorf("forget --dry-run: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if got := ids(t, db); got != "1 2 3" {
		t.Errorf("after --dry-run: %s", got)
	}
	incident := filepath.Join(t.TempDir(), "incident.db")
	if r := itersnap(t, db, "copy", "1..2", "latest", "--to", incident); r.code != 0 || r.stdout != "" {
		t.Fatalf("copy: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if got := ids(t, incident); got != "1 2 3" {
		t.Errorf("copy holds %s", got)
	}
	if a, b := itersnap(t, db, "diff", "1", "3", "--format", "csv"), itersnap(t, incident, "diff", "1", "3", "--format", "csv"); a.stdout != b.stdout || a.code != b.code {
		t.Errorf("diff differs on the copy:\n%s\n%s", a.stdout, b.stdout)
	}
	if r := itersnap(t, db, "forget", "--keep-last", "1"); r.code != 0 {
		t.Fatalf("forget: exit %d, %s", r.code, r.stderr)
	}
	if got := ids(t, db); got != "3" {
		t.Errorf("after forget: %s", got)
	}
	if r := itersnap(t, db, "compact"); r.code != 0 || !strings.Contains(r.stdout, " bytes\n") {
		t.Errorf("compact: exit %d, %q %q", r.code, r.stdout, r.stderr)
	}
	if got := ids(t, db); got != "3" {
		t.Errorf("after compact: %s", got)
	}
	if r := itersnap(t, db, "show", "3", "--format", "csv"); r.code != 0 || strings.Count(r.stdout, "\n") < 2 {
		t.Errorf("show after compact: exit %d, %q", r.code, r.stderr)
	}
}

// TestBadInputKeepsSnapshots: bad input of every kind gives one line on
// stderr and the documented exit code, never a panic, and never loses a
// snapshot that was there before.
func TestBadInputKeepsSnapshots(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: mounts a read-only and a full filesystem, chowns a symlink")
	}
	dir := t.TempDir()
	good := recordedDB(t)
	data, _ := os.ReadFile(good)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	truncated := write("truncated.db", data[:len(data)/2])
	zeros := write("zeros.db", make([]byte, 64<<10))
	text := write("text.db", []byte("these are my notes from the incident\n"))
	newer := write("newer.db", data)
	bdb, err := bolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	bdb.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte("meta")).Put([]byte("schema_version"), binary.BigEndian.AppendUint64(nil, 99))
	})
	bdb.Close()
	asDir := filepath.Join(dir, "a-directory.db")
	os.Mkdir(asDir, 0o700)

	// A read-only filesystem holding a good database, and a full one.
	roDir, fullDir := filepath.Join(dir, "ro"), filepath.Join(dir, "full")
	for _, d := range []string{roDir, fullDir} {
		os.Mkdir(d, 0o700)
		if err := unix.Mount("tmpfs", d, "tmpfs", 0, "size=512k"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(d, unix.MNT_DETACH) })
	}
	roDB := filepath.Join(roDir, "itersnap.db")
	os.WriteFile(roDB, data, 0o600)
	if err := unix.Mount("", roDir, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	fullDB := filepath.Join(fullDir, "itersnap.db")
	os.WriteFile(fullDB, data, 0o600)
	// Fill what is left of the 512 kB.
	filler, _ := os.Create(filepath.Join(fullDir, "filler"))
	for {
		if _, err := filler.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	filler.Close()

	// A symlink owned by someone else, pointing at a good database.
	target := write("target.db", data)
	planted := filepath.Join(dir, "planted.db")
	os.Symlink(target, planted)
	if err := os.Lchown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// A symlinked directory owned by someone else, pointing at one of root's.
	rootsDir := filepath.Join(dir, "roots")
	os.Mkdir(rootsDir, 0o700)
	plantedDir := filepath.Join(dir, "planted-dir")
	os.Symlink(rootsDir, plantedDir)
	if err := os.Lchown(plantedDir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	existing := write("existing.db", []byte("keep me"))
	// A process whose stacks and fds root reads, so that a procfs take of
	// it warns of nothing (this host's pid 1 refuses even root), with fds
	// enough that its snapshot does not fit in the file's free pages.
	busy := startRole(t, "workload", "20", "4000").fields[0]
	copyOf := func() string { return write("copy-"+strings.ReplaceAll(t.Name(), "/", "-")+".db", data) }

	for _, tc := range []struct {
		name string
		db   string
		env  map[string]string
		args []string
		code int
		want string
	}{
		{"truncated file", truncated, nil, []string{"list"}, exitDB, "truncated"},
		{"file of zeros", zeros, nil, []string{"list"}, exitDB, zeros},
		{"text file", text, nil, []string{"show", "latest"}, exitDB, text},
		{"newer schema", newer, nil, []string{"list"}, exitDB, "schema version 99"},
		{"newer schema take", newer, nil, []string{"take", "--collector", "procfs"}, exitDB, "schema version 99"},
		{"directory as db", asDir, nil, []string{"list"}, exitDB, asDir},
		{"directory as db for take", asDir, nil, []string{"take", "--collector", "procfs"}, exitDB, asDir},
		{"read-only filesystem take", roDB, nil, []string{"take", "--collector", "procfs"}, exitDB, roDB},
		{"read-only filesystem forget", roDB, nil, []string{"forget", "--keep-last", "1"}, exitDB, roDB},
		{"disk full", fullDB, nil, []string{"take", "--collector", "procfs", "--pid", busy}, exitError, "no space left"},
		{"symlink owned by another user", planted, nil, []string{"take", "--collector", "procfs"}, exitDB, "symlink owned by uid 65534"},
		{"directory symlink owned by another user", good, nil, []string{"take", "--collector", "procfs", "--db", filepath.Join(plantedDir, "x.db")}, exitDB, plantedDir + " is a symlink owned by uid 65534"},
		{"sysfs as root", good, nil, []string{"take", "--collector", "procfs", "--db", "/sys/kernel/x.db"}, exitDB, "/sys/kernel/x.db is on sysfs, a kernel filesystem, which cannot hold a database (point --db at an itersnap database file)"},
		{"bad duration", good, nil, []string{"forget", "--keep-within", "7x"}, exitUsage, "7x"},
		{"negative duration", good, nil, []string{"forget", "--keep-within", "-1h"}, exitUsage, "-1h"},
		{"zero duration", good, nil, []string{"take", "--keep-within", "0s"}, exitUsage, "0s"},
		{"negative keep-last", good, nil, []string{"forget", "--keep-last", "-1"}, exitUsage, "--keep-last -1"},
		{"negative keep-last on take", good, nil, []string{"take", "--keep-last", "-3"}, exitUsage, "--keep-last -3"},
		{"keep-hourly not a number", good, nil, []string{"forget", "--keep-hourly", "abc"}, exitUsage, "abc"},
		{"forget without policy", good, nil, []string{"forget"}, exitUsage, "needs a policy"},
		{"bad ID", good, nil, []string{"show", "0"}, exitUsage, `"0"`},
		{"unknown ID in copy", good, nil, []string{"copy", "99", "--to", filepath.Join(dir, "c1.db")}, exitError, "snapshot 99 not found"},
		{"bad range in copy", good, nil, []string{"copy", "1..abc", "--to", filepath.Join(dir, "c2.db")}, exitUsage, "abc"},
		{"copy without --to", good, nil, []string{"copy", "1"}, exitUsage, "--to"},
		{"copy over a file", good, nil, []string{"copy", "1", "--to", existing}, exitError, "already exists"},
		{"bad lock timeout env", good, map[string]string{"ITERSNAP_LOCK_TIMEOUT": "forever"}, []string{"list"}, exitUsage, "ITERSNAP_LOCK_TIMEOUT"},
		{"zero lock timeout", good, nil, []string{"list", "--lock-timeout", "0s"}, exitUsage, "--lock-timeout"},
		{"compact a missing db", filepath.Join(dir, "missing.db"), nil, []string{"compact"}, exitDB, "missing.db"},
		{"compact a text file", text, nil, []string{"compact"}, exitDB, text},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := tc.db
			if db == good {
				db = copyOf()
			}
			var before string
			if tc.code != exitDB || strings.HasPrefix(db, roDir) || db == fullDB || db == planted {
				before = ids(t, db)
			}
			env := map[string]string{"ITERSNAP_DB": db}
			for k, v := range tc.env {
				env[k] = v
			}
			r := itersnapEnv(t, env, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			checkOneLine(t, r.stderr, tc.want)
			if n := strings.Count(r.stderr, db); n > 1 {
				t.Errorf("stderr names the database %d times: %q", n, r.stderr)
			}
			if before != "" {
				if after := ids(t, db); after != before {
					t.Errorf("snapshots %q before, %q after", before, after)
				}
			}
		})
	}
	if entries, _ := os.ReadDir(rootsDir); len(entries) != 0 {
		t.Errorf("take wrote through a planted directory symlink: %v", entries)
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Errorf("copy overwrote an existing file")
	}
}
