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

// socketSlab hands out Sockets, one per distinct socket: sockets that are
// the same in every field (a process's unbound unix sockets, its
// connected socketpairs) share one, as the model never changes a Socket
// in place. The rest come from shared arrays, not an allocation each.
type socketSlab struct {
	free []snapshot.Socket
	seen map[snapshot.Socket]*snapshot.Socket
}

func (a *socketSlab) add(s snapshot.Socket) *snapshot.Socket {
	if p, ok := a.seen[s]; ok {
		return p
	}
	if len(a.free) == 0 {
		a.free = make([]snapshot.Socket, 256)
	}
	p := &a.free[0]
	*p = s
	a.free = a.free[1:]
	if a.seen == nil {
		a.seen = map[snapshot.Socket]*snapshot.Socket{}
	}
	if !s.Local.Addr().IsValid() {
		// Only sockets without ports are worth remembering: an inet
		// socket's ports make it one of a kind.
		a.seen[s] = p
	}
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
