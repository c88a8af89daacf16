//go:build linux

package collect

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"strconv"

	"github.com/itersnap/itersnap/snapshot"
)

// The procfs collector learns about sockets the way ss and lsof do without
// netlink: from the tables in /proc/PID/net, one set per network namespace,
// keyed by the socket's inode (what readlink of the fd shows in
// socket:[INODE]). Sockets of other families (netlink, packet, ...) and
// sockets of a namespace the process has left are not in them:
// snapshot.MissingSocket.

// netTables are the files read per namespace, with what each line's socket
// is (the tables do not say).
var netTables = []struct {
	name         string
	family, typ  uint16
	protocol     uint16 // 0: raw sockets print theirs as the local port
	connectedUDP bool
}{
	{"tcp", snapshot.AFInet, snapshot.SockStream, snapshot.IPProtoTCP, false},
	{"tcp6", snapshot.AFInet6, snapshot.SockStream, snapshot.IPProtoTCP, false},
	{"udp", snapshot.AFInet, snapshot.SockDgram, snapshot.IPProtoUDP, true},
	{"udp6", snapshot.AFInet6, snapshot.SockDgram, snapshot.IPProtoUDP, true},
	{"raw", snapshot.AFInet, snapshot.SockRaw, 0, true},
	{"raw6", snapshot.AFInet6, snapshot.SockRaw, 0, true},
}

// procfsNet is what one take has read of the namespaces' socket tables.
type procfsNet struct {
	read  map[uint64]bool // network namespace inodes whose tables are in socks
	socks map[uint64]snapshot.Socket
}

// namespace reads the socket tables of pidfd's network namespace unless
// they were read already; netns is the namespace's inode. It returns the
// first error other than a missing table (a kernel without IPv6 has no
// tcp6).
func (n *procfsNet) namespace(pidfd int, netns uint64, buf *[]byte) error {
	if n.read[netns] {
		return nil
	}
	var first error
	for _, tb := range netTables {
		b, err := readWholeAt(pidfd, "net/"+tb.name, buf)
		if err != nil {
			if !vanished(err) && first == nil {
				first = err
			}
			continue
		}
		forLines(b, func(line []byte) {
			ino, s, ok := parseInetLine(line, tb.family)
			if !ok || ino == 0 {
				return
			}
			s.Type, s.Protocol, s.NetNS = tb.typ, tb.protocol, uint32(netns)
			if tb.typ == snapshot.SockRaw {
				// net/ipv4/raw.c raw_sock_seq_show prints inet_num, the
				// protocol, as the local port; so does the kernel's sock.
				s.Protocol = s.Local.Port()
			}
			n.socks[ino] = s
		})
	}
	b, err := readWholeAt(pidfd, "net/unix", buf)
	if err == nil {
		forLines(b, func(line []byte) {
			if ino, s, ok := parseUnixLine(line); ok {
				s.NetNS = uint32(netns)
				n.socks[ino] = s
			}
		})
	} else if !vanished(err) && first == nil {
		first = err
	}
	if first == nil {
		n.read[netns] = true
	}
	return first
}

// forLines calls fn with each line of b, without its newline.
func forLines(b []byte, fn func(line []byte)) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		fn(line)
	}
}

// parseInetLine parses a line of /proc/net/{tcp,udp,raw}[6]
// (net/ipv4/tcp_ipv4.c get_tcp4_sock, net/ipv6/tcp_ipv6.c get_tcp6_sock,
// net/ipv4/udp.c udp4_format_sock):
//
//	0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000  0 12345 ...
//
// Addresses are the in-memory bytes of the __be32 words printed as native
// integers in hex; ports are in host order; the state is hex; the inode,
// the tenth field, decimal. The header line does not parse.
func parseInetLine(line []byte, family uint16) (ino uint64, s snapshot.Socket, ok bool) {
	f := bytes.Fields(line)
	if len(f) < 10 {
		return 0, s, false
	}
	local, ok1 := parseHexEnd(f[1], family)
	remote, ok2 := parseHexEnd(f[2], family)
	state, err := strconv.ParseUint(string(f[3]), 16, 8)
	ino, ok3 := parseDecimal(f[9])
	if !ok1 || !ok2 || err != nil || !ok3 {
		return 0, s, false
	}
	return ino, snapshot.Socket{Family: family, State: uint8(state), Local: local, Remote: remote}, true
}

// parseHexEnd parses "0100007F:1F90" (IPv4) or 32 hex digits and a port
// (IPv6).
func parseHexEnd(b []byte, family uint16) (netip.AddrPort, bool) {
	addr, port, found := bytes.Cut(b, []byte{':'})
	p, err := strconv.ParseUint(string(port), 16, 16)
	if !found || err != nil {
		return netip.AddrPort{}, false
	}
	words := len(addr) / 8
	if len(addr)%8 != 0 || family == snapshot.AFInet && words != 1 || family == snapshot.AFInet6 && words != 4 {
		return netip.AddrPort{}, false
	}
	var raw [16]byte
	for i := range words {
		w, err := strconv.ParseUint(string(addr[8*i:8*i+8]), 16, 32)
		if err != nil {
			return netip.AddrPort{}, false
		}
		binary.NativeEndian.PutUint32(raw[4*i:], uint32(w))
	}
	a := netip.AddrFrom16(raw)
	if family == snapshot.AFInet {
		a = netip.AddrFrom4([4]byte(raw[:4]))
	}
	return netip.AddrPortFrom(a, uint16(p)), true
}

// Unix socket flags and states as /proc/net/unix prints them
// (net/unix/af_unix.c unix_seq_show).
const (
	soAcceptCon = 0x10000 // __SO_ACCEPTCON: listening
	ssConnected = 3       // SS_CONNECTED
)

// parseUnixLine parses a line of /proc/net/unix:
//
//	0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/app.sock
//
// Num, RefCount, Protocol, Flags, Type and St in hex, the inode in decimal,
// then the bound name if any ('@' for an abstract one's NUL). The kernel
// derives Flags and St from sk_state, which is recorded back in TCP's
// numbering: LISTEN, ESTABLISHED for connected, CLOSE otherwise.
func parseUnixLine(line []byte) (ino uint64, s snapshot.Socket, ok bool) {
	rest := line
	var f [7][]byte
	for i := range f {
		rest = bytes.TrimLeft(rest, " ")
		end := bytes.IndexByte(rest, ' ')
		if end < 0 {
			end = len(rest)
		}
		f[i], rest = rest[:end], rest[end:]
	}
	flags, err1 := strconv.ParseUint(string(f[3]), 16, 32)
	typ, err2 := strconv.ParseUint(string(f[4]), 16, 16)
	st, err3 := strconv.ParseUint(string(f[5]), 16, 8)
	ino, ok = parseDecimal(f[6])
	if err1 != nil || err2 != nil || err3 != nil || !ok {
		return 0, s, false
	}
	s = snapshot.Socket{Family: snapshot.AFUnix, Type: uint16(typ), State: snapshot.TCPClose}
	switch {
	case flags&soAcceptCon != 0:
		s.State = snapshot.TCPListen
	case st == ssConnected:
		s.State = snapshot.TCPEstablished
	}
	if len(rest) > 1 && rest[0] == ' ' {
		s.Path = string(rest[1:])
	}
	return ino, s, true
}
