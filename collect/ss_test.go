//go:build linux

package collect

import (
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/snapshot"
)

// ssSocket is one TCP socket of one fd as ss -tanp lists it, in the
// snapshot's names.
type ssSocket struct{ state, local, remote string }

type ssKey struct{ pid, fd uint32 }

// ssStates maps ss's state names (iproute2 misc/ss.c sstate_name) to the
// kernel's, as snapshot.Socket.StateName gives them.
var ssStates = map[string]string{
	"ESTAB": "ESTABLISHED", "SYN-SENT": "SYN_SENT", "SYN-RECV": "SYN_RECV",
	"FIN-WAIT-1": "FIN_WAIT1", "FIN-WAIT-2": "FIN_WAIT2", "TIME-WAIT": "TIME_WAIT",
	"UNCONN": "CLOSE", "CLOSE-WAIT": "CLOSE_WAIT", "LAST-ACK": "LAST_ACK",
	"LISTEN": "LISTEN", "CLOSING": "CLOSING",
}

var ssUser = regexp.MustCompile(`pid=(\d+),fd=(\d+)`)

// ssTCP runs ss -tanpH: every TCP socket of this network namespace, with
// the processes (pid, fd) that hold it. Sockets bound to a device
// (ADDR%dev) and ends ss cannot print numerically are left out.
func ssTCP(t *testing.T) map[ssKey]ssSocket {
	t.Helper()
	out, err := exec.Command("ss", "-tanpH").Output()
	if err != nil {
		t.Fatalf("ss -tanpH: %v", err)
	}
	end := func(s string) (string, bool) {
		if strings.Contains(s, "%") || strings.HasPrefix(s, "*") {
			return "", false
		}
		if rest, ok := strings.CutSuffix(s, ":*"); ok {
			s = rest + ":0"
		}
		return s, true
	}
	got := map[ssKey]ssSocket{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue // no process: held by none we can see
		}
		state, ok1 := ssStates[f[0]]
		local, ok2 := end(f[3])
		remote, ok3 := end(f[4])
		if !ok1 || !ok2 || !ok3 {
			continue
		}
		for _, m := range ssUser.FindAllStringSubmatch(strings.Join(f[5:], " "), -1) {
			var k ssKey
			fmt.Sscan(m[1], &k.pid)
			fmt.Sscan(m[2], &k.fd)
			got[k] = ssSocket{state, local, remote}
		}
	}
	return got
}

// TestAgreesWithSS: for every TCP socket ss lists in this network
// namespace with its process, unchanged across the take, the snapshot has
// the same pid, fd, state and ends. A listener, an established connection
// and connections in CLOSE_WAIT of a child are among them.
func TestAgreesWithSS(t *testing.T) {
	bpftest.RequireBPF(t)
	if testing.Short() {
		t.Skip("ss -p reads every process's fds: seconds on a busy host")
	}
	if _, err := exec.LookPath("ss"); err != nil {
		if os.Getenv("ITERSNAP_REQUIRE_BPF") == "1" {
			t.Fatal("no ss(8) to compare with (Debian: iproute2), but ITERSNAP_REQUIRE_BPF=1")
		}
		t.Skip("no ss(8)")
	}
	addr := closingServer(t)
	c := startNetChild(t, []string{netServerEnv + "=" + addr, netConnectsEnv + "=3"})
	waitCloseWait(t, c.pid, 3)

	before := ssTCP(t)
	s := collectBPF(t, snapshot.Filter{})
	after := ssTCP(t)

	byKey := map[ssKey]snapshot.File{}
	for _, f := range s.Files {
		byKey[ssKey{f.PID, f.FD}] = f
	}
	compared, ours := 0, 0
	for k, want := range before {
		if after[k] != want {
			continue // changed during the take
		}
		compared++
		if k.pid == c.pid {
			ours++
		}
		f, ok := byKey[k]
		if !ok {
			t.Errorf("ss: pid %d fd %d %v; not in the snapshot", k.pid, k.fd, want)
			continue
		}
		so := f.Socket
		got := ssSocket{so.StateName(), so.LocalEnd(), so.RemoteEnd()}
		if p := so.Proto(); (p != "tcp" && p != "tcp6") || got != want {
			t.Errorf("pid %d fd %d: ss says %v, the snapshot %s %v", k.pid, k.fd, want, p, got)
		}
	}
	if ours < 4 {
		t.Errorf("compared %d sockets, %d of the child's (want its listener and 3 clients)", compared, ours)
	}
	t.Logf("%d TCP sockets agree with ss", compared)
}
