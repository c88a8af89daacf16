//go:build cgo

package main

import (
	"bufio"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/store"
)

// readmeQuery is the README's DuckDB query that starts with marker, with
// its export directory replaced by dir: the test runs what users copy.
func readmeQuery(t *testing.T, marker, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, block := range strings.Split(string(b), "```sql\n")[1:] {
		q, _, _ := strings.Cut(block, "```")
		if strings.HasPrefix(q, marker) {
			return strings.ReplaceAll(q, "/var/spool/itersnap", dir)
		}
	}
	t.Fatalf("README has no sql block starting %q", marker)
	return ""
}

func init() { roles["tcp-leaker"] = tcpLeakerRole }

// tcpLeakerRole listens on 127.0.0.1 and never accepts; for every line N
// on stdin it connects N times to itself and keeps the sockets (the kernel
// completes a handshake into the backlog), and answers "leaked TOTAL". It
// is ready with its pid and port: its sockets are ESTABLISHED to
// 127.0.0.1:PORT.
func tcpLeakerRole([]string) {
	lfd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
	if err != nil {
		panic(err)
	}
	loopback := &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}
	if err := syscall.Bind(lfd, loopback); err != nil {
		panic(err)
	}
	if err := syscall.Listen(lfd, 1024); err != nil {
		panic(err)
	}
	sa, _ := syscall.Getsockname(lfd)
	port := sa.(*syscall.SockaddrInet4).Port
	ready("%d %d", os.Getpid(), port)
	in := bufio.NewScanner(os.Stdin)
	total := 0
	for in.Scan() {
		n, _ := strconv.Atoi(in.Text())
		for range n {
			fd, err := syscall.Socket(syscall.AF_INET, syscall.SOCK_STREAM, 0)
			if err == nil && syscall.Connect(fd, &syscall.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: port}) == nil {
				total++
			}
		}
		syscall.Write(1, []byte("leaked "+strconv.Itoa(total)+"\n"))
	}
	select {}
}

// TestExportTwoHostsDuckDB exports two databases of two hosts into one
// directory, the first with real takes of a process leaking TCP
// connections to 127.0.0.1:PORT, the
// second with real takes stored under another host's name, in which the
// same process leaks nothing. DuckDB itself runs the README's query on the
// export: it finds the leaker on the first host and on no other, and
// the rows of each table are what list and show print.
func TestExportTwoHostsDuckDB(t *testing.T) {
	bpftest.RequireBPF(t)
	leaker := startRole(t, "tcp-leaker")
	pid, remote := leaker.fields[0], "127.0.0.1:"+leaker.fields[1]
	tmp := t.TempDir()
	dbA, dbB, scratch := filepath.Join(tmp, "a.db"), filepath.Join(tmp, "b.db"), filepath.Join(tmp, "scratch.db")
	out := filepath.Join(tmp, "export")

	take(t, dbA, "--pid", pid)
	leakSockets(t, leaker, 30)
	take(t, dbA, "--pid", pid)
	leakSockets(t, leaker, 20)
	take(t, dbA, "--pid", pid)
	// The second host: real takes, stored under another host's metadata.
	b, err := store.Open(dbB, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		id := take(t, scratch, "--pid", pid)
		src, err := store.Open(scratch, store.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		s, err := src.Get(id)
		src.Close()
		if err != nil {
			t.Fatal(err)
		}
		s.Meta.Hostname, s.Meta.BootID = "db-7.example", "second-host-boot"
		if _, err := b.Put(s); err != nil {
			t.Fatal(err)
		}
	}
	b.Close()
	for _, db := range []string{dbA, dbB} {
		if r := itersnap(t, db, "export", "1..latest", "--findings", "--to", out); r.code != 0 || r.stderr != "" {
			t.Fatalf("export %s: exit %d, stderr %q", db, r.code, r.stderr)
		}
	}

	duck, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer duck.Close()
	rows, err := duck.Query(readmeQuery(t, "-- sockets leaking, by host and remote end", out))
	if err != nil {
		t.Fatalf("README query: %v", err)
	}
	hostname, _ := os.Hostname()
	found := 0
	for rows.Next() {
		var host, comm, since, until string
		var proto, state, end sql.NullString
		var rowPID, first, last, leaked int64
		if err := rows.Scan(&host, &rowPID, &comm, &proto, &state, &end, &first, &last, &leaked, &since, &until); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s pid %d %s %s %s %s: %d → %d (+%d)", host, rowPID, comm, proto.String, state.String, end.String, first, last, leaked)
		if fmt.Sprint(rowPID) != pid {
			continue
		}
		found++
		if host != hostname || proto.String != "tcp" || state.String != "ESTABLISHED" || end.String != remote || first != 0 || last != 50 || leaked != 50 {
			t.Errorf("leaker row: host %q %s %s %s %d → %d (+%d), want host %q tcp ESTABLISHED %s 0 → 50 (+50)",
				host, proto.String, state.String, end.String, first, last, leaked, hostname, remote)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if found != 1 {
		t.Errorf("the leaker is in %d rows of the query, want 1 (on %s only)", found, hostname)
	}

	// Row counts per table and snapshot are what list and show print.
	count := func(q string, args ...any) int {
		t.Helper()
		var n int
		if err := duck.QueryRow(q, args...).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	table := func(name string) string {
		return fmt.Sprintf("read_parquet('%s/%s/*/*/*.parquet', hive_partitioning = true)", out, name)
	}
	for db, host := range map[string]string{dbA: hostname, dbB: "db-7.example"} {
		list := csvRows(t, db, "list")
		if got := count("SELECT count(*) FROM "+table("snapshots")+" WHERE host = ?", host); got != len(list) {
			t.Errorf("%s: %d snapshots rows, list shows %d", host, got, len(list))
		}
		for _, snap := range list {
			id := snap["id"]
			where := " WHERE host = ? AND snapshot = ?"
			if got, want := count("SELECT count(*) FROM "+table("tasks")+where, host, id), len(csvRows(t, db, "show", id, "--tasks")); got != want {
				t.Errorf("%s snapshot %s: %d tasks rows, show --tasks %d", host, id, got, want)
			}
			if got, want := count("SELECT count(*) FROM "+table("fds")+where, host, id), len(csvRows(t, db, "show", id, "--fds")); got != want {
				t.Errorf("%s snapshot %s: %d fds rows, show --fds %d", host, id, got, want)
			}
			// show --stacks groups threads by folded stack (no stack is "").
			q := "SELECT count(DISTINCT coalesce(s.stack, '')) FROM " + table("tasks") + " t LEFT JOIN (SELECT DISTINCT stack_id, stack FROM " +
				table("stacks") + ") s USING (stack_id) WHERE t.host = ? AND t.snapshot = ?"
			if got, want := count(q, host, id), len(csvRows(t, db, "show", id, "--stacks")); got != want {
				t.Errorf("%s snapshot %s: %d distinct stacks by stack_id, show --stacks %d", host, id, got, want)
			}
		}
		// Findings: diff 1 latest over the range, row for row.
		want := len(diffRows(t, db, "1", "latest"))
		if got := count("SELECT count(*) FROM "+table("findings")+" WHERE host = ?", host); got != want {
			t.Errorf("%s: %d findings rows, diff 1 latest %d", host, got, want)
		}
	}
	if n := count("SELECT count(*) FROM "+table("findings")+" WHERE finding = 'fd_leak' AND pid = ? AND host = ? AND target = ? AND fds_b = 50 AND monotonic AND evidence = 'trend' AND exhausts_in > 0",
		pid, hostname, "tcp ESTABLISHED "+remote); n != 1 {
		t.Errorf("%d fd_leak findings for the leaker with 50 fds at B, a trend running out of fds, want 1", n)
	}
}

func leakSockets(t *testing.T, leaker *role, n int) {
	t.Helper()
	fmt.Fprintf(leaker.stdin, "%d\n", n)
	if line, _ := leaker.stdout.ReadString('\n'); !strings.HasPrefix(line, "leaked ") {
		t.Fatalf("leaker said %q", line)
	}
}
