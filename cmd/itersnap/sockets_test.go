//go:build linux

package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

func init() { roles["closewaiter"] = closeWaiterRole }

// closeWaiterRole connects to the server at args[0] N times for every line
// N on stdin, never closing, waits until the server's close has put every
// connection in CLOSE_WAIT, and answers "leaked TOTAL".
func closeWaiterRole(args []string) {
	addr, err := net.ResolveTCPAddr("tcp4", args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	ready("%d", os.Getpid())
	in := bufio.NewScanner(os.Stdin)
	var fds []int
	for in.Scan() {
		n, _ := strconv.Atoi(in.Text())
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err == nil && unix.Connect(fd, sa) == nil {
				fds = append(fds, fd)
			}
		}
		for _, fd := range fds {
			for {
				info, err := unix.GetsockoptTCPInfo(fd, unix.IPPROTO_TCP, unix.TCP_INFO)
				if err != nil || info.State == 8 { // TCP_CLOSE_WAIT
					break
				}
				time.Sleep(time.Millisecond)
			}
		}
		os.Stdout.WriteString("leaked " + strconv.Itoa(len(fds)) + "\n")
	}
	select {}
}

// TestDiffNamesCloseWaitLeak: a client leaking connections its server
// closed is an fd_leak named by protocol, state and the server's end,
// whatever the client's ephemeral ports; show --fds has the socket
// columns.
func TestDiffNamesCloseWaitLeak(t *testing.T) {
	bpftest.RequireBPF(t)
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	server := ln.Addr().String()
	client := startRole(t, "closewaiter", server)
	pid := client.fields[0]
	leak := func(n int) {
		fmt.Fprintf(client.stdin, "%d\n", n)
		if line, _ := client.stdout.ReadString('\n'); !strings.HasPrefix(line, "leaked ") {
			t.Fatalf("client said %q", line)
		}
	}
	db := t.TempDir() + "/itersnap.db"
	leak(2)
	a := take(t, db)
	leak(10)
	take(t, db)
	leak(10)
	b := take(t, db)

	rows := rowsFor(diffRows(t, db, fmt.Sprint(a), fmt.Sprint(b)), "fd_leak", "pid", pid)
	if len(rows) != 1 {
		t.Fatalf("fd_leak rows for pid %s: %v", pid, rows)
	}
	want := map[string]string{"kind": "socket", "target": "tcp CLOSE_WAIT " + server,
		"fds_a": "2", "fds_b": "22", "monotonic": "true", "container": "", "pod": ""}
	for k, v := range want {
		if got, ok := rows[0][k]; !ok || got != v {
			t.Errorf("%s = %q, want %q (row %v)", k, got, v, rows[0])
		}
	}

	fds := csvRows(t, db, "show", fmt.Sprint(b), "--fds", "--pid", pid)
	closeWait := 0
	for _, r := range fds {
		if r["sock_state"] == "CLOSE_WAIT" {
			closeWait++
			if r["proto"] != "tcp" || r["remote"] != server || !strings.HasPrefix(r["local"], "127.0.0.1:") || r["netns"] == "" {
				t.Errorf("show --fds row %v", r)
			}
		}
	}
	if closeWait != 22 {
		t.Errorf("show --fds: %d sockets in CLOSE_WAIT, want 22", closeWait)
	}
}
