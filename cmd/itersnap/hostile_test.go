package main

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

func init() { roles["hostile"] = hostileRole }

// hostileRole names its process (the leader's comm, through
// /proc/self/comm, which takes the bytes as written: fs/proc/base.c
// comm_write) and one sleeping thread args[0], as any process may; then,
// for each line on stdin, opens the files args[1:] and answers "opened".
func hostileRole(args []string) {
	name := args[0]
	if err := os.WriteFile("/proc/self/comm", []byte(name), 0); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	tid := make(chan int)
	go func() {
		runtime.LockOSThread()
		b := append([]byte(name), 0)
		unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&b[0])), 0, 0, 0)
		tid <- syscall.Gettid()
		ts := unix.NsecToTimespec(int64(time.Hour))
		for {
			unix.Nanosleep(&ts, nil)
		}
	}()
	ready("%d %d", os.Getpid(), <-tid)
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		for _, path := range args[1:] {
			syscall.Open(path, syscall.O_RDONLY, 0) // held open: a leak
		}
		syscall.Write(1, []byte("opened\n"))
	}
	select {}
}

// The names a process or a file may have: an escape sequence, a newline,
// CSV's delimiters, HTML, a byte that is not UTF-8 (and 0xFF is
// text/tabwriter's escape character), valid multi-byte UTF-8.
var (
	hostileComms = []string{"\x1b[31mRED", "new\nline", `a,b "c"`, "<script>", "bad\xffname", "naïve日本"}
	hostileFiles = []string{"\x1b[2J.log", "new\nline.log", "bad\xff.log", `a,b "c".log`, "<script>x.log", "naïve日本.log"}
	hostileLabel = "two\nlines \x1b[2J"
)

// asCSV is how CSV and JSON give a name back: bytes that are not UTF-8 as
// \xHH, everything else as it is.
func asCSV(s string) string { return strings.ReplaceAll(s, "\xff", `\xff`) }

// TestHostileNames: processes and files named to attack whoever reads the
// output, in a real snapshot of the real kernel. Every table has no raw
// control character or invalid UTF-8 and one line per record; CSV and JSON
// lines parse, are valid UTF-8 and give each name back; the HTML report
// runs none of it.
func TestHostileNames(t *testing.T) {
	bpftest.RequireBPF(t)
	dir := t.TempDir()
	var files []string
	for _, name := range hostileFiles {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, p)
	}
	var procs []*role
	var pidArgs []string
	for _, comm := range hostileComms {
		r := startRole(t, "hostile", append([]string{comm}, files...)...)
		procs = append(procs, r)
		pidArgs = append(pidArgs, "--pid", r.fields[0])
	}
	db := filepath.Join(t.TempDir(), "itersnap.db")
	a := take(t, db, append(pidArgs, "--label", hostileLabel)...)
	for _, p := range procs {
		fmt.Fprintln(p.stdin, "open")
		if line, _ := p.stdout.ReadString('\n'); line != "opened\n" {
			t.Fatalf("hostile role said %q", line)
		}
	}
	b := take(t, db, pidArgs...)
	A, B := fmt.Sprint(a), fmt.Sprint(b)

	// What the snapshot must hold, as CSV gives it back.
	tasks := csvRows(t, db, "show", B)
	fds := csvRows(t, db, "show", B, "--fds")
	for _, comm := range hostileComms {
		if len(rowsWith(tasks, "comm", asCSV(comm))) == 0 {
			t.Errorf("show --tasks: no threads named %q", comm)
		}
		for _, f := range files {
			if len(rowsWith(rowsWith(fds, "comm", asCSV(comm)), "path", asCSV(f))) != 1 {
				t.Errorf("show --fds: process %q has not one fd on %q", comm, f)
			}
		}
	}
	if l := csvRows(t, db, "list"); len(l) != 2 || l[0]["label"] != hostileLabel {
		t.Errorf("list: label %q, want %q", l[0]["label"], hostileLabel)
	}
	leaks := csvRows(t, db, "diff", A, B, "--min-growth", "1") // one file each: the names are the point here
	for _, comm := range hostileComms {
		if n := len(rowsWith(rowsWith(leaks, "finding", "fd_leak"), "comm", asCSV(comm))); n == 0 {
			t.Errorf("diff: no fd_leak for %q", comm)
		}
	}

	for _, args := range [][]string{
		{"list"},
		{"show", B},
		{"show", B, "--stacks"},
		{"show", B, "--fds"},
		{"diff", A, B, "--include-idle", "--min-growth", "1"},
		{"forget", "--keep-last", "1", "--dry-run"},
	} {
		name := strings.Join(args, " ")
		// Tables: on a pipe, and on a terminal where cells are cut.
		for _, width := range []int{0, 100} {
			r := onTerminal(t, db, width, args...)
			if r.code != 0 || r.stderr != "" {
				t.Fatalf("%s: exit %d, %q", name, r.code, r.stderr)
			}
			checkClean(t, name+" (table)", r.stdout)
			records := csvRows(t, db, args...)
			if got := tableRecords(r.stdout, args[0] == "diff"); got != len(records) {
				t.Errorf("%s at width %d: %d table lines for %d records:\n%s", name, width, got, len(records), r.stdout)
			}
		}
		for _, comm := range hostileComms {
			if args[0] == "show" && args[len(args)-1] != "--stacks" && !strings.Contains(itersnap(t, db, args...).stdout, escapedComm(comm)) {
				t.Errorf("%s: %q is not in the table as %q", name, comm, escapedComm(comm))
			}
		}
		// CSV: parses, valid UTF-8 (csvRows parsed it).
		c := itersnap(t, db, append(args, "--format", "csv")...)
		if !utf8.ValidString(c.stdout) {
			t.Errorf("%s: CSV is not UTF-8: %q", name, c.stdout)
		}
		rows, err := csv.NewReader(strings.NewReader(c.stdout)).ReadAll()
		if err != nil {
			t.Errorf("%s: CSV: %v", name, err)
		}
		// JSON lines: each line one object, the same values as the CSV.
		j := itersnap(t, db, append(args, "--format", "json")...)
		if !utf8.ValidString(j.stdout) {
			t.Errorf("%s: JSON is not UTF-8: %q", name, j.stdout)
		}
		lines := strings.Split(strings.TrimSuffix(j.stdout, "\n"), "\n")
		if len(lines) != len(rows)-1 {
			t.Errorf("%s: %d JSON lines for %d CSV rows", name, len(lines), len(rows)-1)
			continue
		}
		for i, line := range lines {
			var obj map[string]any
			if err := json.Unmarshal([]byte(line), &obj); err != nil {
				t.Errorf("%s: JSON line %d: %v: %q", name, i, err, line)
				continue
			}
			for k, col := range rows[0] {
				if s, ok := obj[col].(string); ok && s != rows[i+1][k] {
					t.Errorf("%s: %s is %q in JSON, %q in CSV", name, col, s, rows[i+1][k])
				}
			}
		}
	}

	// The report: names are text, never markup.
	r := itersnap(t, db, "report", A, B)
	if r.code != 0 {
		t.Fatalf("report: exit %d, %s", r.code, r.stderr)
	}
	if !utf8.ValidString(r.stdout) {
		t.Errorf("report is not UTF-8")
	}
	if n := strings.Count(r.stdout, "<script"); n != 1 { // the page's own
		t.Errorf("report holds %d <script, want the page's own only", n)
	}
	if !strings.Contains(r.stdout, "&lt;script&gt;") {
		t.Errorf("report does not show the name <script> as text")
	}
	if strings.ContainsAny(r.stdout, "\x1b\xff") {
		t.Errorf("report holds a raw ESC or 0xFF")
	}
	for kind, b := range downloads(t, r.stdout) {
		want := itersnap(t, db, "diff", A, B, "--only", kind, "--format", "csv").stdout
		if string(b) != want {
			t.Errorf("report's %s CSV differs from diff --only %s --format csv", kind, kind)
		}
	}
}

// rowsWith keeps the rows whose column key is value.
func rowsWith(rows []map[string]string, key, value string) []map[string]string {
	var out []map[string]string
	for _, r := range rows {
		if r[key] == value {
			out = append(out, r)
		}
	}
	return out
}

// escapedComm is how a table shows a comm.
func escapedComm(s string) string {
	return strings.NewReplacer("\x1b", `\x1b`, "\n", `\n`, "\xff", `\xff`).Replace(s)
}

// checkClean fails when out holds a control character other than the
// newlines that end lines, DEL, a C1 control or a byte that is not UTF-8.
func checkClean(t *testing.T, name, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Errorf("%s: not UTF-8: %q", name, out)
	}
	for _, r := range out {
		if (r < 0x20 && r != '\n') || (r >= 0x7f && r <= 0x9f) {
			t.Errorf("%s: raw %U in %q", name, r, out)
			return
		}
	}
}

// tableRecords counts the rows of records in a table: lines that are not
// headers, notes or blank. For diff, the rows of its per-kind tables.
func tableRecords(out string, diff bool) int {
	n := 0
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if diff {
		// Tables follow an upper-case title line, then their column header.
		inTable := false
		for i, l := range lines {
			switch {
			case l == "":
				inTable = false
			case !inTable && i+1 < len(lines) && l == strings.ToUpper(l) && !strings.HasPrefix(l, " ") && strings.HasPrefix(lines[i+1], "PID "):
				inTable = true
			case inTable && !strings.HasPrefix(l, "PID "):
				n++
			}
		}
		return n
	}
	for _, l := range lines {
		if l != "" && !strings.HasPrefix(l, "# ") {
			n++
		}
	}
	return n - 1 // the column header
}
