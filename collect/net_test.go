//go:build linux

package collect

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/itersnap/itersnap/bpf"
	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/snapshot"
)

// The "net" child opens, with raw system calls, one socket of each kind
// the socket tests look for, and reports them on its ready line as
// name=fd:detail. Its environment says what to open:
const (
	netServerEnv   = "ITERSNAP_TEST_NET_SERVER"   // connect this many times to host:port (CLOSE_WAIT leaks)
	netConnectsEnv = "ITERSNAP_TEST_NET_CONNECTS" //
	netUnixEnv     = "ITERSNAP_TEST_NET_UNIX"     // bind a unix listener here, and one at @ + its base name
)

func runNetChild(fail func(string, error) int) int {
	var out []string
	add := func(name string, fd int, detail string) { out = append(out, fmt.Sprintf("%s=%d:%s", name, fd, detail)) }
	listen := func(family int, sa unix.Sockaddr, typ int) (int, int, error) {
		fd, err := unix.Socket(family, typ|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return 0, 0, err
		}
		if err := unix.Bind(fd, sa); err != nil {
			return 0, 0, err
		}
		if typ == unix.SOCK_STREAM {
			if err := unix.Listen(fd, 16); err != nil {
				return 0, 0, err
			}
		}
		got, err := unix.Getsockname(fd)
		if err != nil {
			return 0, 0, err
		}
		switch got := got.(type) {
		case *unix.SockaddrInet4:
			return fd, got.Port, nil
		case *unix.SockaddrInet6:
			return fd, got.Port, nil
		}
		return fd, 0, nil
	}
	fd, port, err := listen(unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, unix.SOCK_STREAM)
	if err != nil {
		return fail("tcp listener", err)
	}
	add("tcp-listen", fd, strconv.Itoa(port))
	if fd, port, err = listen(unix.AF_INET6, &unix.SockaddrInet6{Addr: [16]byte{15: 1}}, unix.SOCK_STREAM); err != nil {
		return fail("tcp6 listener", err)
	}
	add("tcp6-listen", fd, strconv.Itoa(port))
	if fd, port, err = listen(unix.AF_INET, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}, unix.SOCK_DGRAM); err != nil {
		return fail("udp socket", err)
	}
	add("udp", fd, strconv.Itoa(port))
	if path := os.Getenv(netUnixEnv); path != "" {
		if fd, _, err = listen(unix.AF_UNIX, &unix.SockaddrUnix{Name: path}, unix.SOCK_STREAM); err != nil {
			return fail("unix listener", err)
		}
		add("unix-path", fd, path)
		abstract := "@" + filepath.Base(path)
		if fd, _, err = listen(unix.AF_UNIX, &unix.SockaddrUnix{Name: abstract}, unix.SOCK_STREAM); err != nil {
			return fail("abstract unix listener", err)
		}
		add("unix-abstract", fd, abstract)
	}
	if server := os.Getenv(netServerEnv); server != "" {
		ap, err := netipAddrPort(server)
		if err != nil {
			return fail("server address", err)
		}
		n, _ := strconv.Atoi(os.Getenv(netConnectsEnv))
		for range n {
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return fail("client socket", err)
			}
			if err := unix.Connect(fd, ap); err != nil {
				return fail("connect", err)
			}
			local, _ := unix.Getsockname(fd)
			add("client", fd, strconv.Itoa(local.(*unix.SockaddrInet4).Port))
		}
	}
	self, _ := os.Readlink("/proc/self") // the pid in the host's namespace, whatever ours is
	line := "ready " + self + " " + strings.Join(out, " ") + "\n"
	if _, err := syscall.Write(1, []byte(line)); err != nil {
		return fail("write ready line", err)
	}
	// Asleep, not blocked forever: a static binary's runtime (no cgo)
	// takes select {} with no other goroutine for a deadlock and exits.
	for {
		time.Sleep(time.Hour)
	}
}

func netipAddrPort(s string) (*unix.SockaddrInet4, error) {
	addr, err := net.ResolveTCPAddr("tcp4", s)
	if err != nil {
		return nil, err
	}
	sa := &unix.SockaddrInet4{Port: addr.Port}
	copy(sa.Addr[:], addr.IP.To4())
	return sa, nil
}

// netChild is a running "net" child.
type netChild struct {
	pid     uint32 // in the host's pid namespace
	sockets map[string][]netSocket
}

type netSocket struct {
	fd     uint32
	detail string
}

// startNetChild runs the "net" child, under wrapper (a command such as
// unshare -n) when given, and returns what it opened. It is killed when
// the test ends.
func startNetChild(t *testing.T, env []string, wrapper ...string) *netChild {
	t.Helper()
	args := append(wrapper, os.Args[0], "-test.run=^$")
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = append(os.Environ(), append(env, childRoleEnv+"=net")...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("net child: %v", err)
	}
	t.Cleanup(func() {
		// The group: unshare -f forks the child.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(stdout).ReadString('\n')
		lines <- line
	}()
	var line string
	select {
	case line = <-lines:
	case <-time.After(10 * time.Second):
		t.Fatalf("net child: no ready line after 10s (stderr %q)", stderr.String())
	}
	fields := strings.Fields(line)
	if len(fields) < 2 || fields[0] != "ready" {
		t.Fatalf("net child said %q (stderr %q)", line, stderr.String())
	}
	pid, err := strconv.ParseUint(fields[1], 10, 32)
	if err != nil {
		t.Fatalf("net child pid %q", fields[1])
	}
	c := &netChild{pid: uint32(pid), sockets: map[string][]netSocket{}}
	for _, f := range fields[2:] {
		name, rest, _ := strings.Cut(f, "=")
		fd, detail, _ := strings.Cut(rest, ":")
		n, _ := strconv.ParseUint(fd, 10, 32)
		c.sockets[name] = append(c.sockets[name], netSocket{uint32(n), detail})
	}
	return c
}

func (c *netChild) one(t *testing.T, name string) netSocket {
	t.Helper()
	if len(c.sockets[name]) != 1 {
		t.Fatalf("net child has %d %s sockets, want 1", len(c.sockets[name]), name)
	}
	return c.sockets[name][0]
}

// fileOf returns the snapshot's record of fd of pid.
func fileOf(t *testing.T, s *snapshot.Snapshot, pid, fd uint32) snapshot.File {
	t.Helper()
	for _, f := range s.Files {
		if f.PID == pid && f.FD == fd {
			return f
		}
	}
	var fds []uint32
	for _, f := range s.Files {
		if f.PID == pid {
			fds = append(fds, f.FD)
		}
	}
	t.Fatalf("%s snapshot has no fd %d of pid %d (it has %d of its threads and fds %v; notes %q)",
		s.Meta.Collector, fd, pid, len(tasksOf(s, pid)), fds, s.Meta.Notes)
	return snapshot.File{}
}

// netnsOf is the inode readlink /proc/PID/ns/net shows.
func netnsOf(t *testing.T, pid uint32) uint32 {
	t.Helper()
	link, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", pid))
	if err != nil {
		t.Fatal(err)
	}
	v, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(link, "net:["), "]"), 10, 32)
	if err != nil {
		t.Fatalf("ns/net is %q", link)
	}
	return uint32(v)
}

// both collects pid with the BPF and the procfs collector.
func both(t *testing.T, pid uint32) []*snapshot.Snapshot {
	t.Helper()
	f := snapshot.Filter{PIDs: []uint32{pid}}
	return []*snapshot.Snapshot{collectBPF(t, f), collectProcfs(t, f)}
}

// TestSockets: a process's listeners (TCP on 127.0.0.1 and ::1, unix with
// a path and an abstract name) and its UDP socket appear with their
// protocol, state, ends and network namespace, the same in both
// collectors.
func TestSockets(t *testing.T) {
	bpftest.RequireBPF(t)
	path := filepath.Join(t.TempDir(), "itersnap-test-"+randomHex(t, 4)+".sock")
	c := startNetChild(t, []string{netUnixEnv + "=" + path})
	netns := netnsOf(t, c.pid)
	for _, s := range both(t, c.pid) {
		check := func(name, proto, state, local, remote string) {
			t.Helper()
			so := fileOf(t, s, c.pid, c.one(t, name).fd).Socket
			got := [5]string{so.Proto(), so.StateName(), so.LocalEnd(), so.RemoteEnd(), fmt.Sprint(so.NetNSInode())}
			want := [5]string{proto, state, local, remote, fmt.Sprint(netns)}
			if got != want {
				t.Errorf("%s: %s socket is %q, want %q", s.Meta.Collector, name, got, want)
			}
		}
		check("tcp-listen", "tcp", "LISTEN", "127.0.0.1:"+c.one(t, "tcp-listen").detail, "0.0.0.0:0")
		check("tcp6-listen", "tcp6", "LISTEN", "[::1]:"+c.one(t, "tcp6-listen").detail, "[::]:0")
		check("udp", "udp", "UNCONNECTED", "127.0.0.1:"+c.one(t, "udp").detail, "0.0.0.0:0")
		check("unix-path", "unix", "LISTEN", path, "")
		check("unix-abstract", "unix", "LISTEN", c.one(t, "unix-abstract").detail, "")
	}
}

// TestSocketInNetNamespace: a TCP listener in a new network namespace
// (unshare -n) shows that namespace's inode, not the host's.
func TestSocketInNetNamespace(t *testing.T) {
	bpftest.RequireBPF(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1)")
	}
	c := startNetChild(t, nil, "unshare", "-n", "sh", "-c", "ip link set lo up 2>/dev/null; exec \"$@\"", "sh")
	netns := netnsOf(t, c.pid)
	if netns == netnsOf(t, uint32(os.Getpid())) {
		t.Fatal("unshare -n left the child in our network namespace")
	}
	for _, s := range both(t, c.pid) {
		so := fileOf(t, s, c.pid, c.one(t, "tcp-listen").fd).Socket
		if so.NetNSInode() != netns || so.StateName() != "LISTEN" || so.Proto() != "tcp" {
			t.Errorf("%s: listener in netns %d: %s %s in netns %d", s.Meta.Collector, netns, so.Proto(), so.StateName(), so.NetNSInode())
		}
	}
}

// TestNSPID: the init of a new pid namespace (unshare -pf) has ns_pid 1.
func TestNSPID(t *testing.T) {
	bpftest.RequireBPF(t)
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("no unshare(1)")
	}
	c := startNetChild(t, nil, "unshare", "-p", "-f")
	for _, s := range both(t, c.pid) {
		tasks := tasksOf(s, c.pid)
		if len(tasks) == 0 {
			t.Fatalf("%s: no tasks of pid %d", s.Meta.Collector, c.pid)
		}
		for _, task := range tasks {
			if task.NSPID != 1 {
				t.Errorf("%s: tid %d of pid %d: ns_pid %d, want 1", s.Meta.Collector, task.TID, c.pid, task.NSPID)
			}
		}
	}
	// And ours is our pid.
	for _, task := range tasksOf(collectBPF(t, snapshot.Filter{PIDs: []uint32{uint32(os.Getpid())}}), uint32(os.Getpid())) {
		if task.NSPID != uint32(os.Getpid()) {
			t.Errorf("tid %d: ns_pid %d, want %d", task.TID, task.NSPID, os.Getpid())
		}
	}
}

// TestCloseWait: a client whose server closes every connection at once
// holds its sockets in CLOSE_WAIT, with the server's end as the remote.
func TestCloseWait(t *testing.T) {
	bpftest.RequireBPF(t)
	addr := closingServer(t)
	c := startNetChild(t, []string{netServerEnv + "=" + addr, netConnectsEnv + "=5"})
	clients := c.sockets["client"]
	if len(clients) != 5 {
		t.Fatalf("%d client sockets, want 5", len(clients))
	}
	waitCloseWait(t, c.pid, len(clients))
	for _, s := range both(t, c.pid) {
		for _, cl := range clients {
			so := fileOf(t, s, c.pid, cl.fd).Socket
			got := [4]string{so.Proto(), so.StateName(), so.LocalEnd(), so.RemoteEnd()}
			want := [4]string{"tcp", "CLOSE_WAIT", "127.0.0.1:" + cl.detail, addr}
			if got != want {
				t.Errorf("%s: fd %d is %q, want %q", s.Meta.Collector, cl.fd, got, want)
			}
			if tgt := so.Target(); tgt != "tcp CLOSE_WAIT "+addr {
				t.Errorf("%s: fd %d groups as %q", s.Meta.Collector, cl.fd, tgt)
			}
		}
	}
}

// closingServer listens on 127.0.0.1 (plain TCP, not MPTCP) and closes
// every connection as soon as it accepts it. It returns its address.
func closingServer(t *testing.T) string {
	t.Helper()
	lc := net.ListenConfig{}
	lc.SetMultipathTCP(false)
	ln, err := lc.Listen(t.Context(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	return ln.Addr().String()
}

// waitCloseWait waits until pid holds n sockets in CLOSE_WAIT: the
// server's FIN arrives after connect returns.
func waitCloseWait(t *testing.T, pid uint32, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, f := range collectBPF(t, snapshot.Filter{PIDs: []uint32{pid}}).Files {
			if f.Socket.StateName() == "CLOSE_WAIT" {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("pid %d: %d sockets in CLOSE_WAIT after 10s, want %d", pid, got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func randomHex(t *testing.T, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// TestContainerCgroups: processes moved into cgroups named as docker,
// containerd, cri-o and a Kubernetes pod's containerd name them show that
// cgroup, the container ID and the pod UID, in both collectors, and
// --container and --cgroup keep exactly them.
func TestContainerCgroups(t *testing.T) {
	bpftest.RequireBPF(t)
	mnt, root, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	id := func() string { return randomHex(t, 32) }
	uid := "0a1b2c3d-4e5f-6789-abcd-" + randomHex(t, 6)
	base := "itersnap-test-" + randomHex(t, 6)
	cases := []struct{ rel, container, pod string }{}
	for _, form := range []string{"docker-%s.scope", "cri-containerd-%s.scope", "crio-%s.scope"} {
		c := id()
		cases = append(cases, struct{ rel, container, pod string }{filepath.Join(base, fmt.Sprintf(form, c)), c, ""})
	}
	pod := id()
	cases = append(cases, struct{ rel, container, pod string }{
		filepath.Join(base, "kubepods.slice", "kubepods-pod"+strings.ReplaceAll(uid, "-", "_")+".slice", "cri-containerd-"+pod+".scope"), pod, uid})

	// Removed once the children are gone (cleanups run last first).
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(made[i]); err != nil {
				t.Errorf("remove cgroup: %v", err)
			}
		}
	})
	mkdir := func(rel string) {
		var p string
		for _, e := range strings.Split(rel, "/") {
			p = filepath.Join(p, e)
			dir := filepath.Join(mnt, p)
			if err := os.Mkdir(dir, 0o755); err == nil {
				made = append(made, dir)
			} else if !os.IsExist(err) {
				t.Fatalf("make cgroup: %v", err)
			}
		}
	}
	pids := map[uint32]int{}
	for i, c := range cases {
		mkdir(c.rel)
		child := startNetChild(t, nil)
		if err := os.WriteFile(filepath.Join(mnt, c.rel, "cgroup.procs"), []byte(fmt.Sprint(child.pid)), 0); err != nil {
			t.Fatalf("move %d into %s: %v", child.pid, c.rel, err)
		}
		pids[child.pid] = i
	}
	var filterPIDs []uint32
	for pid := range pids {
		filterPIDs = append(filterPIDs, pid)
	}
	// The kernel names the cgroups in the task walk: the BPF collector
	// reads no hierarchy for them (TestCgroupNames).
	var st BPFStats
	bs, err := BPF{Stats: &st}.Collect(context.Background(), snapshot.Filter{PIDs: filterPIDs})
	if err != nil {
		t.Fatalf("BPF collect: %+v", err)
	}
	if st.CgroupWalk {
		t.Errorf("the BPF collector read the cgroup hierarchy (%d cgroups named)", st.CgroupsNamed)
	}
	for _, s := range []*snapshot.Snapshot{bs, collectProcfs(t, snapshot.Filter{PIDs: filterPIDs})} {
		seen := map[uint32]bool{}
		for _, task := range s.Tasks {
			c := cases[pids[task.PID]]
			seen[task.PID] = true
			want := filepath.Join(root, "/"+c.rel)
			if task.Cgroup != want || task.Container() != c.container || task.Pod() != c.pod || task.CgroupID == 0 {
				t.Errorf("%s: tid %d: cgroup %q (id %d), container %q, pod %q; want %q, %q, %q",
					s.Meta.Collector, task.TID, task.Cgroup, task.CgroupID, task.Container(), task.Pod(), want, c.container, c.pod)
			}
		}
		if len(seen) != len(cases) {
			t.Errorf("%s: saw %d of the %d processes", s.Meta.Collector, len(seen), len(cases))
		}
	}

	// The filters: a container ID prefix keeps one process, the test's
	// cgroup all four, a prefix no container has none. The BPF programs
	// apply them in the kernel (TestCgroupFilterInKernel): the records
	// the kernel wrote are the kept threads and fds, no more.
	for _, c := range []struct {
		f    snapshot.Filter
		want int
	}{
		{snapshot.Filter{Containers: []string{cases[1].container[:12]}}, 1},
		{snapshot.Filter{Cgroups: []string{filepath.Join(root, "/"+base)}}, len(cases)},
		{snapshot.Filter{Cgroups: []string{filepath.Join(root, "/"+base, "kubepods.slice")}}, 1},
		{snapshot.Filter{Containers: []string{"0000000000000000000000"}}, 0},
		{snapshot.Filter{Cgroups: []string{filepath.Join(root, "/"+base, "none")}}, 0},
	} {
		var st BPFStats
		bs, err := BPF{Stats: &st}.Collect(context.Background(), c.f)
		if err != nil {
			t.Fatalf("BPF collect: %+v", err)
		}
		if st.KernelCgroups < 0 {
			t.Errorf("filter %+v: not applied in the kernel: %s", c.f, st.KernelCgroupsOff)
		}
		if st.Tasks.Records != len(bs.Tasks) || st.Files.Records != len(bs.Files) {
			t.Errorf("filter %+v: the kernel wrote %d threads and %d fds, the filter kept %d and %d",
				c.f, st.Tasks.Records, st.Files.Records, len(bs.Tasks), len(bs.Files))
		}
		for _, s := range []*snapshot.Snapshot{bs, collectProcfs(t, c.f)} {
			procs := map[uint32]bool{}
			for _, task := range s.Tasks {
				procs[task.PID] = true
				if _, ours := pids[task.PID]; !ours {
					t.Errorf("%s: filter %+v kept pid %d (%s, cgroup %q)", s.Meta.Collector, c.f, task.PID, task.Comm, task.Cgroup)
				}
			}
			for _, f := range s.Files {
				if !procs[f.PID] {
					t.Errorf("%s: filter %+v kept fd %d of pid %d", s.Meta.Collector, c.f, f.FD, f.PID)
				}
			}
			if len(procs) != c.want {
				t.Errorf("%s: filter %+v kept %d processes, want %d", s.Meta.Collector, c.f, len(procs), c.want)
			}
		}
	}
}

// TestKernelCgroups: the kernel's part of the cgroup filter is the top
// cgroups that match, at their depth, and it is left to userspace when
// more match than the programs' filter holds.
func TestKernelCgroups(t *testing.T) {
	bpftest.RequireBPF(t) // root, to make cgroups
	mnt, root, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	base := "itersnap-test-" + randomHex(t, 6)
	prefix := randomHex(t, 4)
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(made[i]); err != nil {
				t.Errorf("remove cgroup: %v", err)
			}
		}
	})
	mkdir := func(rel string) string {
		dir := filepath.Join(mnt, base, rel)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("make cgroup: %v", err)
		}
		made = append(made, dir)
		return dir
	}
	mkdir("")
	// Three containers, one with a cgroup below its scope, which the
	// scope's subtree already holds.
	for i := range 3 {
		mkdir(fmt.Sprintf("docker-%s%056x.scope", prefix, i))
	}
	mkdir(fmt.Sprintf("docker-%s%056x.scope/init", prefix, 0))
	cgroups, ok, why := kernelCgroups(snapshot.Filter{Containers: []string{prefix}})
	if !ok || len(cgroups) != 3 {
		t.Fatalf("3 containers: kernel cgroups %v, ok %v (%s); want 3", cgroups, ok, why)
	}
	level := uint32(strings.Count(filepath.Join(root, "/"+base), "/") + 1)
	for _, c := range cgroups {
		if c.Level != level {
			t.Errorf("cgroup %d at level %d, want %d", c.ID, c.Level, level)
		}
	}
	cgroups, ok, _ = kernelCgroups(snapshot.Filter{Cgroups: []string{filepath.Join(root, "/"+base)}})
	if !ok || len(cgroups) != 1 || cgroups[0].Level != level-1 {
		t.Errorf("the test's cgroup: kernel cgroups %v, ok %v; want one at level %d", cgroups, ok, level-1)
	}
	for i := 3; i <= bpf.MaxCgroups; i++ {
		mkdir(fmt.Sprintf("docker-%s%056x.scope", prefix, i))
	}
	if cgroups, ok, why := kernelCgroups(snapshot.Filter{Containers: []string{prefix}}); ok || !strings.Contains(why, "65 cgroups") {
		t.Errorf("65 containers: kernel cgroups %d, ok %v (%q); want none, and why", len(cgroups), ok, why)
	}
}
