package main

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/report"
	"github.com/itersnap/itersnap/snapshot"
)

// TestReportSize20k: the report of a 20,000-thread host stays under 5 MB
// (the size is deterministic; BenchmarkReport times it).
func TestReportSize20k(t *testing.T) {
	snaps := syntheticHost(20000)
	in, buf := renderSnapshots(t, snaps)
	t.Logf("report of %d threads: %d bytes", len(snaps[1].Tasks), buf.Len())
	l, err := report.Build(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range l.Findings {
		t.Logf("%s: %d rows, %d CSV bytes", f.Kind, len(f.Rows), len(f.CSV))
	}
	if buf.Len() >= 5<<20 {
		t.Errorf("report of 20,000 threads is %d bytes, want < 5 MB", buf.Len())
	}
}

// BenchmarkReport renders the report of a 20,000-thread snapshot pair:
// compare, lay out the findings, draw and write the page.
func BenchmarkReport(b *testing.B) {
	snaps := syntheticHost(20000)
	var size int
	for b.Loop() {
		_, page := renderSnapshots(b, snaps)
		size = page.Len()
	}
	b.ReportMetric(float64(size), "bytes")
	b.ReportMetric(20000, "threads")
}

// renderSnapshots is `itersnap report` after loading the snapshots: compare,
// lay out the findings, draw and write the page.
func renderSnapshots(tb testing.TB, snaps []*snapshot.Snapshot) (report.Input, *bytes.Buffer) {
	tb.Helper()
	in := reportInput(snaps)
	var buf bytes.Buffer
	if err := report.Render(&buf, in); err != nil {
		tb.Fatal(err)
	}
	return in, &buf
}

// downloads returns the CSV files a report embeds, by finding kind.
func downloads(t *testing.T, page string) map[string][]byte {
	t.Helper()
	re := regexp.MustCompile(`download="itersnap-\d+-\d+-([a-z_]+)\.csv" href="data:text/csv;charset=utf-8;base64,([A-Za-z0-9+/=]*)"`)
	out := map[string][]byte{}
	for _, m := range re.FindAllStringSubmatch(page, -1) {
		b, err := base64.StdEncoding.DecodeString(m[2])
		if err != nil {
			t.Fatalf("%s: %v", m[1], err)
		}
		out[m[1]] = b
	}
	return out
}

// checkSelfContained: nothing in the page reaches the network.
func checkSelfContained(t *testing.T, page string) {
	t.Helper()
	for _, bad := range []string{"http://", "https://", "url(", "@import", `src="//`, `href="//`} {
		if i := strings.Index(page, bad); i >= 0 {
			t.Errorf("report refers outside itself: %q at %q", bad, page[max(0, i-40):min(len(page), i+60)])
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("%d <script elements, want the one of the page itself", n)
	}
}

// TestReport: the report of the recorded host, to a file and to stdout;
// its summary has diff's numbers, and each embedded CSV is byte for byte
// what `itersnap diff A B --only KIND --format csv` writes.
func TestReport(t *testing.T) {
	time.Local = time.UTC
	db := recordedDB(t)
	out := filepath.Join(t.TempDir(), "incident.html")
	r := itersnap(t, db, "report", "1", "latest", "-o", out)
	if r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	if r := itersnap(t, db, "report", "1", "3"); r.code != 0 || r.stdout != page {
		t.Errorf("report to stdout differs from -o (exit %d, %s)", r.code, r.stderr)
	}
	checkSelfContained(t, page)

	csvs := downloads(t, page)
	if len(csvs) != len(diff.AllKinds) {
		t.Errorf("%d downloads, want one per kind of finding", len(csvs))
	}
	for _, k := range diff.AllKinds {
		want := itersnap(t, db, "diff", "1", "3", "--only", string(k), "--format", "csv").stdout
		if got := string(csvs[string(k)]); got != want {
			t.Errorf("%s CSV in the report:\n%s\nwant, as diff --only %s --format csv:\n%s", k, got, k, want)
		}
	}
	for _, want := range []string{
		// The summary, as diff's: fd_leak 1, newly_blocked 1, stuck 0, unchanged 1.
		`<a href="#finding-fd_leak">fd_leak</a></td><td class="num found">1 process (1 group)</td><td>worst: pid 100 nginx socket:[*] 10 → 30, runs out of fds in ~4d3h (&#43;10/h, trend over 3 snapshots, 3% of RLIMIT_NOFILE 1024)</td>`,
		`<a href="#finding-stuck">stuck</a></td><td class="num count-0">0</td>`,
		"(2 idle threads with unchanged stacks hidden: --include-idle shows them)",
		`host <b>web-1</b> · kernel <b>6.18.0</b> · snapshots <b>1 → 3</b> (3 in the range)`,
		`from <b>2026-11-27 03:00:00</b> to <b>2026-11-27 05:00:00</b> (2h0m0s; times in UTC)`,
		// The flame graph: the writer's blocked frames, the thread names on top.
		`<g class="f b`, "percpu_rwsem_wait\n1 thread (33.33%), 1 blocked",
		"writer\nthread name\n1 thread",
		// The chart: nginx's fds in every snapshot.
		`<g class="series c0"><polyline points="60.00,`,
		"pid 100 nginx: 32 fds in snapshot 3 (2026-11-27 05:00:00)",
		// The tables.
		`<table class="finding" data-kind="newly_blocked">`,
		`<td class="stack">entry_SYSCALL_64_after_hwframe;do_syscall_64;ksys_write;vfs_write;ext4_buffered_write_iter;__percpu_down_read;percpu_rwsem_wait</td>`,
		`<td>incident</td>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("report lacks %q", want)
		}
	}
}

// TestReportEscapes: names, paths, labels and host names come from the
// snapshots, and a process can name itself anything: none of it becomes
// markup, in the page or in the SVG.
func TestReportEscapes(t *testing.T) {
	snaps := recorded()
	for i, s := range snaps {
		s.ID = uint64(i + 1)
		s.Meta.Hostname = `<b>host</b>`
		s.Meta.Label = `</title><script>alert("label")</script>`
		s.Tasks[0].Comm = `<script>alert(1)</script>`
		s.Tasks[1].Comm = `"><img src=x onerror=alert(2)>`
		s.Stacks = append(s.Stacks, snapshot.Stack{"</text><script>alert(3)</script>+0x1/0x2"})
		s.Tasks[2].Stack = 2
		for j := range s.Files {
			if s.Files[j].PID == 100 {
				s.Files[j].Path = `socket:[` + itoa(s.Files[j].Inode) + `]` // keep the leak
			}
		}
	}
	_, buf := renderSnapshots(t, snaps)
	page := buf.String()
	checkSelfContained(t, page)
	for _, bad := range []string{"<b>host", "<img", "alert(1)</script>", `alert("label")`, "</text><script>"} {
		if strings.Contains(page, bad) {
			t.Errorf("report holds %q unescaped", bad)
		}
	}
	for _, shown := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "&lt;b&gt;host&lt;/b&gt;", "&#34;&gt;&lt;img src=x onerror=alert(2)&gt;"} {
		if !strings.Contains(page, shown) {
			t.Errorf("report does not show %q as text", shown)
		}
	}
}

// reportInput is what runReport hands the report, for snapshots already
// in memory: their comparison as `itersnap diff A B` makes it, with its
// defaults (the report lays out its tables with package output, as diff
// does, so the two never disagree).
func reportInput(snaps []*snapshot.Snapshot) report.Input {
	opts := diff.Options{}
	heads := make([]diff.Head, len(snaps))
	for i, s := range snaps {
		heads[i] = diff.Head{ID: s.ID, Meta: s.Meta}
	}
	return report.Input{Heads: heads, B: snaps[len(snaps)-1], Diff: diff.Compare(snaps, opts), Options: opts}
}
