//go:build linux

package collect

import (
	"net/netip"
	"strings"

	"github.com/itersnap/itersnap/bpf"
	"github.com/itersnap/itersnap/snapshot"
)

// sockFromRecord turns what the task_file iterator read of a struct sock
// into the model's Socket. name is a unix socket's bound name as the kernel
// keeps it (sun_path's bytes).
func sockFromRecord(r *bpf.SockRecord, name []byte) snapshot.Socket {
	s := snapshot.Socket{
		Family: r.Family, Type: r.Type, Protocol: r.Protocol,
		State: r.State, NetNS: r.Netns,
	}
	switch r.Family {
	case snapshot.AFInet:
		s.Local = netip.AddrPortFrom(netip.AddrFrom4([4]byte(r.Laddr[:4])), r.Lport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte(r.Raddr[:4])), r.Rport)
	case snapshot.AFInet6:
		s.Local = netip.AddrPortFrom(netip.AddrFrom16(r.Laddr), r.Lport)
		s.Remote = netip.AddrPortFrom(netip.AddrFrom16(r.Raddr), r.Rport)
	case snapshot.AFUnix:
		s.Path = unixName(name)
	}
	return s
}

// socketSlab hands out Sockets from shared arrays: a take's sockets are
// kept in a few large allocations rather than one each.
type socketSlab struct{ free []snapshot.Socket }

func (a *socketSlab) add(s snapshot.Socket) *snapshot.Socket {
	if len(a.free) == 0 {
		a.free = make([]snapshot.Socket, 256)
	}
	p := &a.free[0]
	*p = s
	a.free = a.free[1:]
	return p
}

// unixName renders a unix socket's sun_path bytes the way /proc/net/unix
// does (net/unix/af_unix.c unix_seq_show): an abstract name (leading NUL)
// as '@' and the rest, every NUL in it shown as '@'.
func unixName(name []byte) string {
	if len(name) == 0 {
		return ""
	}
	return strings.ReplaceAll(string(name), "\x00", "@")
}
