//go:build linux

package bpf

import (
	"net"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestFilesReadsSockets opens sockets of known kinds in this process and
// checks what the task_file iterator read of their struct sock.
func TestFilesReadsSockets(t *testing.T) {
	o := load(t, Filter{PIDs: []uint32{uint32(os.Getpid())}})
	// A plain TCP socket: Go's net.Listen makes MPTCP ones where it can.
	tcp, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(tcp)
	if err := unix.Bind(tcp, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(tcp, 1); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(tcp)
	if err != nil {
		t.Fatal(err)
	}
	abstract := "\x00itersnap-bpf-test-" + t.Name()
	ux, err := net.Listen("unix", abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer ux.Close()
	port := uint16(sa.(*unix.SockaddrInet4).Port)
	var netns unix.Stat_t
	if err := unix.Stat("/proc/self/ns/net", &netns); err != nil {
		t.Fatal(err)
	}
	var sawTCP, sawUnix bool
	err = o.Files(new(WalkTimes), func(r *FileRecord, _ []byte, sock *SockRecord, name []byte) {
		if sock == nil {
			return
		}
		switch {
		case int(r.Fd) == tcp:
			sawTCP = true
			if sock.State != 10 || sock.Type != unix.SOCK_STREAM || sock.Protocol != unix.IPPROTO_TCP ||
				[4]byte(sock.Laddr[:4]) != [4]byte{127, 0, 0, 1} || sock.Rport != 0 || sock.Netns != uint32(netns.Ino) {
				t.Errorf("tcp listener: %+v, want LISTEN 127.0.0.1:%d in netns %d", sock, port, netns.Ino)
			}
			for i, b := range sock.Laddr[4:] {
				if b != 0 {
					t.Errorf("stale byte %d in an IPv4 address: %x", 4+i, sock.Laddr)
				}
			}
		case sock.Family == unix.AF_UNIX && string(name) == abstract:
			sawUnix = true
			if sock.State != 10 || sock.Lport != 0 || sock.Laddr != [16]byte{} {
				t.Errorf("unix listener: %+v", sock)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sawTCP || !sawUnix {
		t.Errorf("saw tcp listener %v, abstract unix listener %v", sawTCP, sawUnix)
	}
}
