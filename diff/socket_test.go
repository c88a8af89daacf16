package diff

import (
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// TestSocketLeakNamed: connections left in CLOSE_WAIT, each from its own
// ephemeral port, are one group named by protocol, state and remote end;
// the process's other sockets (a listener, established connections to
// the same server) are groups of their own; the finding names the
// container and pod.
func TestSocketLeakNamed(t *testing.T) {
	const (
		id  = "3f2a9b6c0d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90"
		uid = "0a1b2c3d-4e5f-6789-abcd-ef0123456789"
	)
	cgroup := "/kubepods.slice/kubepods-pod0a1b2c3d_4e5f_6789_abcd_ef0123456789.slice/cri-containerd-" + id + ".scope"
	sock := func(fd uint32, state uint8, local, remote string) snapshot.File {
		f := socketFD(fd, 1000+uint64(fd))
		f.Socket = &snapshot.Socket{Family: snapshot.AFInet, Type: snapshot.SockStream, Protocol: snapshot.IPProtoTCP,
			State: state, Local: netip.MustParseAddrPort(local), Remote: netip.MustParseAddrPort(remote), NetNS: 4026531840}
		return f
	}
	app := thread(300, 300, "api", snapshot.TaskInterruptible, sec(5), 10)
	app.Cgroup = cgroup
	snap := func(id uint64, at time.Duration, leaked int) *snapshot.Snapshot {
		fds := append(stdio(), sock(3, snapshot.TCPListen, "0.0.0.0:8080", "0.0.0.0:0"))
		for i := range leaked {
			fds = append(fds, sock(uint32(10+i), snapshot.TCPCloseWait, "10.0.0.7:"+strconv.Itoa(40000+i), "10.0.0.5:5432"))
		}
		return newSnap(id, at).task(app, nil).files(300, fds...).build()
	}
	r := Compare([]*snapshot.Snapshot{snap(1, 0, 2), snap(2, time.Minute, 6), snap(3, 2*time.Minute, 40)}, Options{})
	if len(r.FDLeaks) != 1 {
		t.Fatalf("%d fd leaks, want 1: %+v", len(r.FDLeaks), r.FDLeaks)
	}
	f := r.FDLeaks[0]
	if f.Target != "tcp CLOSE_WAIT 10.0.0.5:5432" || f.Kind != "socket" || f.FDsA != 2 || f.FDsB != 40 {
		t.Errorf("leak %q (%s) %d → %d, want tcp CLOSE_WAIT 10.0.0.5:5432 (socket) 2 → 40", f.Target, f.Kind, f.FDsA, f.FDsB)
	}
	if f.Container != id || f.Pod != uid {
		t.Errorf("container %q pod %q, want %q and %q", f.Container, f.Pod, id, uid)
	}
}
