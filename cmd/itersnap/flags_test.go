package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// TestOutputFlagsBadUsage: --format and -o mean something only on the
// commands that write records; anywhere else, and -o "", they are bad
// usage in one line, and an -o that cannot be written says why.
func TestOutputFlagsBadUsage(t *testing.T) {
	db := recordedDB(t)
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string // in the stderr line
	}{
		{"take -o", []string{"take", "--collector", "procfs", "-o", filepath.Join(dir, "id.txt")}, exitUsage, "take takes no -o: it is for"},
		{"take --output", []string{"take", "--collector", "procfs", "--output", filepath.Join(dir, "id.txt")}, exitUsage, "take takes no -o"},
		{"take --format", []string{"take", "--collector", "procfs", "--format", "json"}, exitUsage, "take takes no --format"},
		{"compact --format", []string{"compact", "--format", "json"}, exitUsage, "compact takes no --format"},
		{"compact -o", []string{"compact", "-o", filepath.Join(dir, "c.txt")}, exitUsage, "compact takes no -o"},
		{"copy --format", []string{"copy", "1", "--to", filepath.Join(dir, "c.db"), "--format", "csv"}, exitUsage, "copy takes no --format"},
		{"copy -o", []string{"copy", "1", "--to", filepath.Join(dir, "c.db"), "-o", filepath.Join(dir, "c.csv")}, exitUsage, "copy takes no -o"},
		{"report --format", []string{"report", "1", "3", "--format", "csv"}, exitUsage, "report takes no --format: it is for diff, forget, list, show"},
		{"list -o empty", []string{"list", "-o", ""}, exitUsage, `-o "": want a file name`},
		{"show --output empty", []string{"show", "1", "--output="}, exitUsage, `-o "": want a file name`},
		{"report -o empty", []string{"report", "1", "3", "-o", ""}, exitUsage, `-o "": want a file name`},
		{"-o procfs", []string{"show", "1", "-o", "/proc/version"}, exitError, "cannot write /proc/version: /proc is on procfs, where no file can be created"},
		{"-o procfs dir", []string{"list", "-o", "/proc/self/x.csv"}, exitError, "is on procfs"},
		{"-o sysfs", []string{"diff", "1", "3", "-o", "/sys/kernel/x.csv"}, exitError, "/sys/kernel is on sysfs"},
		{"-o missing dir", []string{"list", "-o", filepath.Join(dir, "nodir", "x.csv")}, exitError, "directory " + filepath.Join(dir, "nodir") + " does not exist"},
		{"-o under a file", []string{"list", "-o", filepath.Join(db, "x.csv")}, exitError, db + " is not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := itersnap(t, db, tc.args...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d (stderr %q)", r.code, tc.code, r.stderr)
			}
			checkOneLine(t, r.stderr, tc.want)
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
		})
	}
	if got := ids(t, db); got != "1 2 3" {
		t.Errorf("bad usage changed the database: %s", got)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("bad usage left files: %v", entries)
	}
	// The record commands still take both, before or after the command name.
	for _, args := range [][]string{
		{"--format", "csv", "list"},
		{"list", "--format", "csv", "-o", "-"},
		{"forget", "--keep-last", "5", "--dry-run", "--format", "json"},
	} {
		if r := itersnap(t, db, args...); r.code != 0 || r.stdout == "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
}

// terminal is a stand-in for a terminal of a given width.
type terminal struct {
	bytes.Buffer
	width int
}

func (t *terminal) TerminalWidth() int { return t.width }

// onTerminal runs a command line with stdout on a terminal width wide.
func onTerminal(t *testing.T, db string, width int, args ...string) result {
	t.Helper()
	var out terminal
	out.width = width
	var errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb, func(k string) string {
		if k == "ITERSNAP_DB" {
			return db
		}
		return ""
	})
	return result{code, out.String(), errb.String()}
}

// TestTablesFitTerminal: on a terminal each table row fits its width (120
// columns, where the fd_leak and --stacks tables used to run past 200) and
// stacks keep their leaf; on a terminal too narrow for the columns that are
// never cut, only the wide columns shrink. --wide, pipes and files get every
// cell whole.
func TestTablesFitTerminal(t *testing.T) {
	db := recordedDB(t)
	for _, args := range [][]string{
		{"show", "latest"},
		{"show", "latest", "--stacks"},
		{"show", "1", "--fds"},
		{"diff", "1", "3"},
		{"list"},
		{"forget", "--keep-last", "1", "--dry-run"},
	} {
		whole := itersnap(t, db, args...)
		wide := onTerminal(t, db, 60, append(args, "--wide")...)
		if wide.code != 0 || whole.code != 0 {
			t.Fatalf("%q: exit %d %d: %s", args, wide.code, whole.code, wide.stderr)
		}
		if wide.stdout != whole.stdout {
			t.Errorf("%q --wide on a terminal differs from a pipe:\n%s\n%s", args, wide.stdout, whole.stdout)
		}
		wl := strings.Split(whole.stdout, "\n")
		for _, width := range []int{120, 60} {
			fitted := onTerminal(t, db, width, args...)
			fl := strings.Split(fitted.stdout, "\n")
			if fitted.code != 0 || len(wl) != len(fl) {
				t.Errorf("%q at %d: exit %d, %d lines fitted, %d whole", args, width, fitted.code, len(fl), len(wl))
				continue
			}
			for i, l := range fl {
				if strings.HasPrefix(l, "# ") || strings.HasPrefix(l, "  ") || strings.HasPrefix(l, "diff ") {
					continue // headers and the summary are lines of prose, not rows
				}
				n, nw := utf8.RuneCountInString(l), utf8.RuneCountInString(wl[i])
				if width == 120 && n > width {
					t.Errorf("%q: row of %d columns on a %d-column terminal: %q", args, n, width, l)
				}
				if n > max(width, nw) {
					t.Errorf("%q: row grew to %d columns: %q", args, n, l)
				}
				if leaf := "percpu_rwsem_wait"; width == 120 && strings.HasSuffix(wl[i], leaf) && !strings.HasSuffix(l, ";"+leaf) {
					t.Errorf("%q: the leaf was cut off: %q (whole %q)", args, l, wl[i])
				}
				if strings.Contains(wl[i], "ext4_buffered_write_iter") && width == 60 && !strings.Contains(l, "…") {
					t.Errorf("%q: a stack was not cut at 60 columns: %q", args, l)
				}
			}
		}
	}
	// A file gets every cell whole even when stdout is a terminal.
	out := filepath.Join(t.TempDir(), "tasks.txt")
	if r := onTerminal(t, db, 60, "show", "latest", "-o", out); r.code != 0 {
		t.Fatal(r.stderr)
	}
	b, _ := os.ReadFile(out)
	if string(b) != itersnap(t, db, "show", "latest").stdout {
		t.Errorf("-o on a terminal cut cells:\n%s", b)
	}
}
