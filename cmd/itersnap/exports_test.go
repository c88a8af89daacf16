package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/pprof/profile"
	"golang.org/x/sys/unix"
)

// TestPprofExport: show --format pprof writes a profile the pprof package
// parses, with -o or to a stdout that is not a terminal, and refuses a
// terminal.
func TestPprofExport(t *testing.T) {
	db := recordedDB(t)
	out := filepath.Join(t.TempDir(), "threads.pb.gz")
	if r := itersnap(t, db, "show", "latest", "--format", "pprof", "-o", out); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("-o: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	r := itersnap(t, db, "show", "latest", "--format", "pprof")
	if r.code != 0 || r.stdout != string(b) {
		t.Errorf("to a pipe: exit %d (%s), %d bytes, want the %d bytes of -o", r.code, r.stderr, len(r.stdout), len(b))
	}
	p, err := profile.ParseData(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sample) != 3 {
		t.Errorf("%d samples, want one per thread (3)", len(p.Sample))
	}
	var writer *profile.Sample
	for _, s := range p.Sample {
		if s.Label["comm"][0] == "writer" {
			writer = s
		}
	}
	if writer == nil || writer.Label["state"][0] != "D" || writer.Label["pid"][0] != "200" ||
		writer.Location[0].Line[0].Function.Name != "percpu_rwsem_wait" {
		t.Errorf("writer's sample: %+v", writer)
	}

	tty := openPTY(t)
	var errb bytes.Buffer
	code := run(t.Context(), []string{"show", "latest", "--format", "pprof", "--db", db}, tty, &errb, func(string) string { return "" })
	if code != exitUsage {
		t.Errorf("to a terminal: exit %d, want %d", code, exitUsage)
	}
	checkOneLine(t, errb.String(), "-o FILE.pb.gz")
}

// openPTY returns the terminal end of a new pseudo-terminal.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals: %v", err)
	}
	t.Cleanup(func() { ptmx.Close() })
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	pts, err := os.OpenFile("/dev/pts/"+itoa(uint64(n)), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pts.Close() })
	return pts
}

// TestBadExportUsage: the export formats on the wrong command, or with
// flags they do not take, are usage errors in one line; so are report
// without two snapshots and report of snapshots that do not exist.
func TestBadExportUsage(t *testing.T) {
	db := recordedDB(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"list folded", []string{"list", "--format", "folded"}, exitUsage, "--format folded is for show, not list"},
		{"diff pprof", []string{"diff", "1", "2", "--format", "pprof"}, exitUsage, "--format pprof is for show, not diff"},
		{"show folded-diff", []string{"show", "1", "--format", "folded-diff"}, exitUsage, "--format folded-diff is for diff, not show"},
		{"list folded-diff", []string{"list", "--format", "folded-diff"}, exitUsage, "for diff"},
		{"show unknown", []string{"show", "1", "--format", "svg"}, exitUsage, `unknown --format "svg": want table, csv, json, folded, pprof`},
		{"folded fds", []string{"show", "1", "--fds", "--format", "folded"}, exitUsage, "--fds"},
		{"pprof fds", []string{"show", "1", "--fds", "--format", "pprof", "-o", filepath.Join(t.TempDir(), "x")}, exitUsage, "--fds"},
		{"folded-diff only", []string{"diff", "1", "2", "--format", "folded-diff", "--only", "stuck"}, exitUsage, "--only"},
		{"folded-diff fail", []string{"diff", "1", "2", "--format", "folded-diff", "--fail-on-findings"}, exitUsage, "--fail-on-findings"},
		{"report one arg", []string{"report", "1"}, exitUsage, "2 arg"},
		{"report three args", []string{"report", "1", "2", "3"}, exitUsage, "2 arg"},
		{"report format", []string{"report", "1", "2", "--format", "csv"}, exitUsage, "report takes no --format"},
		{"report unknown id", []string{"report", "1", "99"}, exitError, "snapshot 99 not found"},
		{"report latest~9", []string{"report", "latest~9", "latest"}, exitError, "latest~9"},
		{"report garbage ref", []string{"report", "one", "2"}, exitUsage, `"one"`},
		{"report unwritable", []string{"report", "1", "2", "-o", "/proc/self/nonexistent/r.html"}, exitError, "/proc/self/nonexistent/r.html"},
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
	if r := itersnap(t, "/nonexistent/x.db", "report", "1", "2"); r.code != exitDB {
		t.Errorf("report without a database: exit %d, want %d", r.code, exitDB)
	}
	if !strings.Contains(itersnap(t, db, "--help").stdout, "report") {
		t.Errorf("--help does not list report")
	}
}
