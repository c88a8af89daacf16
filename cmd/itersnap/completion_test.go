package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/itersnap/itersnap/store"
)

// TestCompleteRefs runs `__complete show ""` (what the shell scripts run on
// Tab) through the real command tree: it lists latest and every snapshot's
// ID, newest first, with its time and label.
func TestCompleteRefs(t *testing.T) {
	time.Local = time.UTC
	db := recordedDB(t) // snapshots 1-3, labels before, -, incident
	r := itersnap(t, db, "__complete", "show", "")
	want := "latest\tsnapshot 3, 2026-11-27 05:00:00 incident\n" +
		"3\t2026-11-27 05:00:00 incident\n" +
		"2\t2026-11-27 04:00:00\n" +
		"1\t2026-11-27 03:00:00 before\n" +
		":36\n" // NoFileComp | KeepOrder
	if r.code != 0 || r.stdout != want {
		t.Errorf("__complete show: exit %d\n%s\nwant\n%s", r.code, r.stdout, want)
	}
	for _, args := range [][]string{{"diff", "1", ""}, {"report", "latest~1", ""}, {"copy", "1", "2", ""}} {
		r := itersnap(t, db, append([]string{"__complete"}, args...)...)
		if !strings.HasPrefix(r.stdout, "latest\t") || !strings.Contains(r.stdout, "\n1\t") {
			t.Errorf("__complete %q: %q", args, r.stdout)
		}
	}
	// No more references than the command takes.
	if r := itersnap(t, db, "__complete", "diff", "1", "2", ""); strings.Contains(r.stdout, "latest") {
		t.Errorf("__complete diff 1 2: %q", r.stdout)
	}
	// A missing database: no suggestions, no error, nothing created.
	missing := filepath.Join(t.TempDir(), "missing.db")
	if r := itersnap(t, missing, "__complete", "show", ""); r.code != 0 || r.stdout != ":4\n" {
		t.Errorf("__complete on a missing database: exit %d %q %q", r.code, r.stdout, r.stderr)
	}
}

// TestCompleteHostileLabel: a label with a newline or a tab cannot break
// the completion protocol (one line per suggestion, a tab before its
// description).
func TestCompleteHostileLabel(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s := recorded()[0]
	s.Meta.Label = "a\nb\tc\x1b[2J"
	if _, err := db.Put(s); err != nil {
		t.Fatal(err)
	}
	db.Close()
	r := itersnap(t, path, "__complete", "show", "")
	lines := strings.Split(strings.TrimSuffix(r.stdout, "\n"), "\n")
	if len(lines) != 3 || !strings.HasSuffix(lines[1], ` "a\nb\tc\x1b[2J"`) || strings.Count(lines[1], "\t") != 1 {
		t.Errorf("__complete with a hostile label: %q", r.stdout)
	}
}

func TestCompleteValues(t *testing.T) {
	db := recordedDB(t)
	for _, tc := range []struct {
		args []string
		want []string
	}{
		{[]string{"diff", "--only", ""}, []string{"fd_leak", "newly_blocked", "stuck", "unchanged_stack"}},
		{[]string{"diff", "--only", "stuck,"}, []string{"stuck,fd_leak", "stuck,newly_blocked", "stuck,unchanged_stack"}},
		{[]string{"take", "--collector", ""}, []string{"auto\t", "bpf\t", "procfs\t"}},
		{[]string{"list", "--format", ""}, []string{"table", "csv", "json"}},
		{[]string{"show", "1", "--format", ""}, []string{"table", "csv", "json", "folded", "pprof"}},
		{[]string{"diff", "1", "2", "--format", ""}, []string{"folded-diff"}},
	} {
		r := itersnap(t, db, append([]string{"__complete"}, tc.args...)...)
		for _, w := range tc.want {
			if !strings.Contains(r.stdout, w) {
				t.Errorf("__complete %q: %q, want %q in it", tc.args, r.stdout, w)
			}
		}
	}
}
