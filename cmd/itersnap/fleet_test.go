package main

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/itersnap/itersnap/store"
)

// exportedIDs reads the id column of every snapshots file under dir, and
// fails on a visible file that is not whole Parquet.
func exportedIDs(t *testing.T, dir string) []uint64 {
	t.Helper()
	var ids []uint64
	for _, path := range parquetFiles(t, dir) {
		if !strings.Contains(path, string(filepath.Separator)+"snapshots"+string(filepath.Separator)) {
			continue
		}
		rows, err := parquet.ReadFile[struct {
			ID uint64 `parquet:"id"`
		}](path)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		for _, r := range rows {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids
}

// parquetFiles lists the *.parquet files under dir, each opened and
// checked whole (footer, schema, row groups), and fails on any other file
// that is not an export's hidden temporary.
func parquetFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		switch {
		case strings.HasSuffix(name, ".parquet") && !strings.HasPrefix(name, "."):
			f, err := os.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, _ := f.Stat()
			if _, err := parquet.OpenFile(f, info.Size()); err != nil {
				t.Errorf("%s is not whole Parquet: %v", path, err)
			}
			files = append(files, path)
		case strings.HasPrefix(name, ".itersnap-export-") && strings.HasSuffix(name, ".tmp"):
		default:
			t.Errorf("unexpected file %s in the export", path)
		}
		return nil
	})
	return files
}

// temporaries lists the hidden files being written under dir.
func temporaries(dir string) []string {
	var tmp []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".itersnap-export-") {
			tmp = append(tmp, path)
		}
		return nil
	})
	return tmp
}

// TestExportNewTwice: export --new writes each snapshot once. A second run
// writes nothing; after a new snapshot, only that one.
func TestExportNewTwice(t *testing.T) {
	db := recordedDB(t)
	out := filepath.Join(t.TempDir(), "spool")
	for i, want := range []int{5, 0} { // five tables of snapshots 1-3, then none
		r := itersnap(t, db, "export", "--new", "--findings", "--to", out)
		if r.code != 0 || r.stderr != "" {
			t.Fatalf("run %d: exit %d, stderr %q", i+1, r.code, r.stderr)
		}
		if got := strings.Count(r.stdout, "1-3.parquet\n"); got != want {
			t.Errorf("run %d printed %q, want %d files 1-3.parquet", i+1, r.stdout, want)
		}
	}
	s := recorded()[2]
	s.Meta.Time = s.Meta.Time.Add(time.Hour)
	rw, err := store.Open(db, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rw.Put(s); err != nil {
		t.Fatal(err)
	}
	rw.Close()
	r := itersnap(t, db, "export", "--new", "--findings", "--to", out)
	if r.code != 0 || strings.Count(r.stdout, "/4-4.parquet\n") != 5 || strings.Count(r.stdout, "\n") != 5 {
		t.Errorf("after snapshot 4: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := exportedIDs(t, out); !slices.Equal(got, []uint64{1, 2, 3, 4}) {
		t.Errorf("exported snapshots %v, want each of 1-4 once", got)
	}
	if r := itersnap(t, db, "export", "--new", "--to", out); r.code != 0 || r.stdout != "" {
		t.Errorf("third run: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if r := itersnap(t, db, "export", "--new", "1", "--to", out); r.code != exitUsage {
		t.Errorf("--new with a reference: exit %d, want %d", r.code, exitUsage)
	}
	if r := itersnap(t, db, "export", "1"); r.code != exitUsage || !strings.Contains(r.stderr, "--to") {
		t.Errorf("no --to: exit %d, stderr %q", r.code, r.stderr)
	}
	file := filepath.Join(t.TempDir(), "file")
	os.WriteFile(file, nil, 0o600)
	if r := itersnap(t, db, "export", "1", "--to", file); r.code != exitError || !strings.HasPrefix(r.stderr, "itersnap: export to ") ||
		strings.Count(r.stderr, "\n") != 1 || strings.Contains(r.stderr, "internal error") {
		t.Errorf("--to a file: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestKilledExport kills real export processes with SIGKILL at random
// moments of a whole export, the renames at its end included. Every
// *.parquet file in the directory is then whole Parquet, and what the
// killed export was writing is hidden (.itersnap-export-*.tmp), which the
// next export removes; that one writes every file.
func TestKilledExport(t *testing.T) {
	if testing.Short() {
		t.Skip("writes a 40-snapshot database of a busy host")
	}
	path := filepath.Join(t.TempDir(), "busy.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pair := syntheticHost(2000)
	for i := range 40 {
		s := *pair[i%2]
		s.Meta.Time = s.Meta.Time.Add(time.Duration(i) * time.Minute)
		if _, err := db.Put(&s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	out := filepath.Join(t.TempDir(), "spool")
	args := []string{"export", "--db", path, "1..latest", "--to", out}
	start := time.Now()
	if r := startCLI(t, args...).wait(t); r.code != 0 {
		t.Fatalf("export: exit %d, stderr %q", r.code, r.stderr)
	}
	full := time.Since(start)
	os.RemoveAll(out)
	killed := 0
	for range 12 {
		p := startCLI(t, args...)
		time.Sleep(time.Duration(rand.Int64N(int64(full) * 11 / 10)))
		syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		p.wait(t)
		if killedBySIGKILL(p) {
			killed++
		}
		parquetFiles(t, out) // every visible file whole
	}
	t.Logf("a whole export takes %v; %d of 12 exports killed, %d temporaries left", full, killed, len(temporaries(out)))
	if killed == 0 {
		t.Fatal("no export was killed")
	}
	if r := startCLI(t, args...).wait(t); r.code != 0 {
		t.Fatalf("export after the kills: exit %d, stderr %q", r.code, r.stderr)
	}
	if tmp := temporaries(out); len(tmp) != 0 {
		t.Errorf("temporaries of killed exports left after a whole export: %v", tmp)
	}
	if files := parquetFiles(t, out); len(files) != 4 {
		t.Errorf("%d files, want the 4 tables of 1-40: %v", len(files), files)
	}
	if got := exportedIDs(t, out); len(got) != 40 {
		t.Errorf("%d snapshots exported, want 40", len(got))
	}
}

// requirePromtool returns promtool's path, and skips without it; with
// ITERSNAP_REQUIRE_BPF=1 (.ci/run, which installs it) it fails instead.
func requirePromtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err == nil {
		return path
	}
	if os.Getenv("ITERSNAP_REQUIRE_BPF") == "1" {
		t.Fatalf("no promtool on PATH (Debian: apt-get install -y prometheus), but ITERSNAP_REQUIRE_BPF=1")
	}
	t.Skip("no promtool on PATH (Debian: apt-get install -y prometheus)")
	return ""
}

// TestOpenMetricsPromtool: promtool accepts diff's and list's OpenMetrics,
// written atomically with -o, for a diff with leaked fds and a stuck thread, a
// process whose name is not UTF-8 and holds quotes and a newline; and it
// accepts contrib's alert rules.
func TestOpenMetricsPromtool(t *testing.T) {
	promtool := requirePromtool(t)
	snaps := recorded()
	for _, s := range snaps {
		for i := range s.Tasks {
			if s.Tasks[i].PID == 100 {
				s.Tasks[i].Comm = "ng\"in\nx\xff"
			}
		}
	}
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range snaps {
		if _, err := db.Put(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	dir := t.TempDir()
	prom := filepath.Join(dir, "itersnap.prom")
	check := func(args ...string) string {
		t.Helper()
		if r := itersnap(t, path, append(args, "--format", "openmetrics", "-o", prom)...); r.code != 0 || r.stdout != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
		f, err := os.Open(prom)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = f
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics on %v: %v\n%s", args, err, out)
		}
		b, _ := os.ReadFile(prom)
		return string(b)
	}
	got := check("diff", "2", "3", "--include-idle") // the writer is blocked in both: stuck
	for _, want := range []string{
		`itersnap_findings{finding="fd_leak"} 1.0`,
		`itersnap_findings{finding="stuck"} 1.0`,
		`itersnap_fd_leak_fds{pid="100",comm="ng\"in\nx\\xff",container="",kind="socket",target="socket:[*]"} 30.0`,
		`itersnap_threads_blocked 1.0`,
		`itersnap_threads_stuck 1.0`,
		`itersnap_take_info{collector="bpf",kernel="6.18.0"} 1.0`,
		"# EOF\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("diff metrics lack %q:\n%s", want, got)
		}
	}
	// nginx holds 33 of its 1,024 fds and gains 10 an hour: it runs out.
	if !strings.Contains(got, "# UNIT itersnap_fd_leak_exhausts_in_seconds seconds\n"+`itersnap_fd_leak_exhausts_in_seconds{pid="100",`) {
		t.Errorf("no exhausts_in for nginx:\n%s", got)
	}
	got = check("list")
	if !strings.Contains(got, "itersnap_snapshots 3.0") || !strings.Contains(got, "itersnap_take_snapshot 3.0") {
		t.Errorf("list metrics:\n%s", got)
	}
	if r := itersnap(t, path, "diff", "1", "3", "--max-series", "5"); r.code != exitUsage {
		t.Errorf("--max-series without openmetrics: exit %d, want %d", r.code, exitUsage)
	}
	out, err := exec.Command(promtool, "check", "rules", filepath.Join("..", "..", "contrib", "itersnap-alerts.yml")).CombinedOutput()
	if err != nil {
		t.Errorf("promtool check rules: %v\n%s", err, out)
	}
}
