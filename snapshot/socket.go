package snapshot

import (
	"net/netip"
	"strconv"
)

// Socket is what the kernel knows about a socket fd's struct sock: family,
// type and protocol, state, both ends and the network namespace. The zero
// value means "not a socket, or nothing could be read".
type Socket struct {
	Family   uint16 // sk->__sk_common.skc_family: AF_INET, AF_INET6, AF_UNIX, ...
	Type     uint16 // sk->sk_type: SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, ...
	Protocol uint16 // sk->sk_protocol: IPPROTO_TCP, IPPROTO_UDP, NETLINK_ROUTE, ...
	State    uint8  // sk->__sk_common.skc_state, in TCP's numbering (include/net/tcp_states.h)
	// Local and Remote are the ends of an inet socket (zero for others).
	Local, Remote netip.AddrPort
	// Path is a unix socket's bound name as /proc/net/unix prints it: a
	// path, or "@name" for an abstract one (every NUL in it shown as '@').
	// Empty when it is unbound.
	Path  string
	NetNS uint32 // inode of the socket's network namespace (readlink /proc/PID/ns/net)
}

// Address families (include/linux/socket.h).
const (
	AFUnix    = 1
	AFInet    = 2
	AFInet6   = 10
	AFNetlink = 16
	AFPacket  = 17
)

// Socket types (include/linux/net.h).
const (
	SockStream    = 1
	SockDgram     = 2
	SockRaw       = 3
	SockSeqpacket = 5
)

// IP protocols (include/uapi/linux/in.h).
const (
	IPProtoICMP    = 1
	IPProtoTCP     = 6
	IPProtoUDP     = 17
	IPProtoICMPv6  = 58
	IPProtoSCTP    = 132
	IPProtoUDPLite = 136
	IPProtoMPTCP   = 262
)

// TCP states, include/net/tcp_states.h. Unix and UDP sockets use the same
// numbering for their sk_state.
const (
	TCPEstablished = 1
	TCPSynSent     = 2
	TCPSynRecv     = 3
	TCPFinWait1    = 4
	TCPFinWait2    = 5
	TCPTimeWait    = 6
	TCPClose       = 7
	TCPCloseWait   = 8
	TCPLastAck     = 9
	TCPListen      = 10
	TCPClosing     = 11
	TCPNewSynRecv  = 12
)

var tcpStates = [...]string{
	TCPEstablished: "ESTABLISHED",
	TCPSynSent:     "SYN_SENT",
	TCPSynRecv:     "SYN_RECV",
	TCPFinWait1:    "FIN_WAIT1",
	TCPFinWait2:    "FIN_WAIT2",
	TCPTimeWait:    "TIME_WAIT",
	TCPClose:       "CLOSE",
	TCPCloseWait:   "CLOSE_WAIT",
	TCPLastAck:     "LAST_ACK",
	TCPListen:      "LISTEN",
	TCPClosing:     "CLOSING",
	TCPNewSynRecv:  "NEW_SYN_RECV",
}

// Equal reports whether two sockets are the same in every field. (go-cmp,
// which tests compare records with, uses it: netip's types have unexported
// fields it cannot otherwise look into.)
func (s Socket) Equal(o Socket) bool { return s == o }

// IsZero reports that nothing is known about the socket: nil, or zero.
func (s *Socket) IsZero() bool { return s == nil || s.Family == 0 }

// NetNSInode is the socket's network namespace inode; 0 for nil.
func (s *Socket) NetNSInode() uint32 {
	if s == nil {
		return 0
	}
	return s.NetNS
}

func (s *Socket) inet() bool { return s.Family == AFInet || s.Family == AFInet6 }

// Proto names the socket the way ss and lsof do: tcp, tcp6, udp, udp6,
// unix, netlink, packet, raw, raw6, ...; empty for the zero Socket.
func (s *Socket) Proto() string {
	if s == nil {
		return ""
	}
	switch s.Family {
	case 0:
		return ""
	case AFUnix:
		return "unix"
	case AFNetlink:
		return "netlink"
	case AFPacket:
		return "packet"
	case AFInet, AFInet6:
		var name string
		switch {
		case s.Type == SockRaw:
			name = "raw"
		case s.Protocol == IPProtoTCP:
			name = "tcp"
		case s.Protocol == IPProtoUDP:
			name = "udp"
		case s.Protocol == IPProtoUDPLite:
			name = "udplite"
		case s.Protocol == IPProtoSCTP:
			name = "sctp"
		case s.Protocol == IPProtoMPTCP:
			name = "mptcp"
		case s.Protocol == IPProtoICMP, s.Protocol == IPProtoICMPv6:
			name = "icmp"
		default:
			name = "ip" + strconv.Itoa(int(s.Protocol))
		}
		if s.Family == AFInet6 {
			name += "6"
		}
		return name
	}
	return "af" + strconv.Itoa(int(s.Family))
}

// connectionless reports sockets whose sk_state only says whether they are
// connected: datagram sockets and every unix socket.
func (s *Socket) connectionless() bool {
	if s.Family == AFUnix {
		return true
	}
	return s.inet() && s.Protocol != IPProtoTCP && s.Protocol != IPProtoMPTCP && s.Protocol != IPProtoSCTP
}

// StateName is the state as ss shows it: for TCP the kernel's name without
// TCP_ (ESTABLISHED, CLOSE_WAIT, LISTEN, ...); for unix and datagram
// sockets LISTEN, CONNECTED or UNCONNECTED; empty for other families.
func (s *Socket) StateName() string {
	if s == nil {
		return ""
	}
	switch {
	case s.connectionless():
		switch s.State {
		case TCPListen:
			return "LISTEN"
		case TCPEstablished:
			return "CONNECTED"
		}
		return "UNCONNECTED"
	case s.inet():
		if int(s.State) < len(tcpStates) && tcpStates[s.State] != "" {
			return tcpStates[s.State]
		}
		return "STATE" + strconv.Itoa(int(s.State))
	}
	return ""
}

// LocalEnd is the local end as a column shows it: ADDR:PORT (IPv6 in
// brackets) for inet, the bound name for unix, empty otherwise.
func (s *Socket) LocalEnd() string {
	if s == nil {
		return ""
	}
	switch {
	case s.inet():
		return endString(s.Local)
	case s.Family == AFUnix:
		return s.Path
	}
	return ""
}

// RemoteEnd is the remote end of an inet socket as ADDR:PORT, empty for
// others.
func (s *Socket) RemoteEnd() string {
	if s == nil {
		return ""
	}
	if s.inet() {
		return endString(s.Remote)
	}
	return ""
}

// endString writes an end as ss does: 10.0.0.5:5432, [::1]:443, and
// 0.0.0.0:0 / [::]:0 for an unset one. An IPv6 zone is not known to the
// kernel's sock and never printed.
func endString(ap netip.AddrPort) string {
	if !ap.Addr().IsValid() {
		return ""
	}
	return ap.String()
}

// Target names a group of sockets for fd_leak: protocol, state and remote
// end ("tcp CLOSE_WAIT 10.0.0.5:5432"), the local (often ephemeral) port
// left out; a listening socket by its local end ("tcp LISTEN
// 0.0.0.0:8080"); an unconnected datagram socket by its local address
// without the port; a unix socket by its bound path ("unix LISTEN
// /run/app.sock", "unix CONNECTED" when unbound). Empty when the socket is
// not known, so the caller falls back to "socket:[*]".
func (s *Socket) Target() string {
	if s.IsZero() {
		return ""
	}
	name := s.Proto()
	if st := s.StateName(); st != "" {
		name += " " + st
	}
	var end string
	switch {
	case s.Family == AFUnix:
		end = s.Path
	case s.inet() && s.State == TCPListen:
		end = endString(s.Local)
	case s.inet() && s.connectionless() && s.State != TCPEstablished:
		// An unconnected UDP socket has no remote end; its local port is
		// usually ephemeral.
		end = s.Local.Addr().String()
	case s.inet():
		end = endString(s.Remote)
	}
	if end != "" {
		name += " " + end
	}
	return name
}
