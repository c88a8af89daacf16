package snapshot

import (
	"net/netip"
	"testing"
)

func TestSocketNames(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, c := range []struct {
		name                                string
		s                                   Socket
		proto, state, local, remote, target string
	}{
		{"zero", Socket{}, "", "", "", "", ""},
		{"close wait", Socket{Family: AFInet, Type: SockStream, Protocol: IPProtoTCP, State: TCPCloseWait,
			Local: ap("10.0.0.7:40112"), Remote: ap("10.0.0.5:5432")},
			"tcp", "CLOSE_WAIT", "10.0.0.7:40112", "10.0.0.5:5432", "tcp CLOSE_WAIT 10.0.0.5:5432"},
		{"listener", Socket{Family: AFInet, Type: SockStream, Protocol: IPProtoTCP, State: TCPListen,
			Local: ap("0.0.0.0:8080"), Remote: ap("0.0.0.0:0")},
			"tcp", "LISTEN", "0.0.0.0:8080", "0.0.0.0:0", "tcp LISTEN 0.0.0.0:8080"},
		{"tcp6", Socket{Family: AFInet6, Type: SockStream, Protocol: IPProtoTCP, State: TCPEstablished,
			Local: ap("[::1]:51000"), Remote: ap("[::1]:443")},
			"tcp6", "ESTABLISHED", "[::1]:51000", "[::1]:443", "tcp6 ESTABLISHED [::1]:443"},
		{"every tcp state has a name", Socket{Family: AFInet, Protocol: IPProtoTCP, State: TCPFinWait2},
			"tcp", "FIN_WAIT2", "", "", "tcp FIN_WAIT2"},
		{"unknown tcp state", Socket{Family: AFInet, Protocol: IPProtoTCP, State: 99},
			"tcp", "STATE99", "", "", "tcp STATE99"},
		{"udp unconnected", Socket{Family: AFInet, Type: SockDgram, Protocol: IPProtoUDP, State: TCPClose,
			Local: ap("127.0.0.1:5353"), Remote: ap("0.0.0.0:0")},
			"udp", "UNCONNECTED", "127.0.0.1:5353", "0.0.0.0:0", "udp UNCONNECTED 127.0.0.1"},
		{"udp6 connected", Socket{Family: AFInet6, Type: SockDgram, Protocol: IPProtoUDP, State: TCPEstablished,
			Local: ap("[fe80::1]:5000"), Remote: ap("[2001:db8::2]:53")},
			"udp6", "CONNECTED", "[fe80::1]:5000", "[2001:db8::2]:53", "udp6 CONNECTED [2001:db8::2]:53"},
		{"unix listener", Socket{Family: AFUnix, Type: SockStream, State: TCPListen, Path: "/run/app.sock"},
			"unix", "LISTEN", "/run/app.sock", "", "unix LISTEN /run/app.sock"},
		{"unix abstract", Socket{Family: AFUnix, Type: SockStream, State: TCPListen, Path: "@app"},
			"unix", "LISTEN", "@app", "", "unix LISTEN @app"},
		{"unix unbound", Socket{Family: AFUnix, Type: SockDgram, State: TCPClose},
			"unix", "UNCONNECTED", "", "", "unix UNCONNECTED"},
		{"unix connected", Socket{Family: AFUnix, Type: SockStream, State: TCPEstablished},
			"unix", "CONNECTED", "", "", "unix CONNECTED"},
		{"netlink", Socket{Family: AFNetlink, Type: SockRaw, State: TCPClose}, "netlink", "", "", "", "netlink"},
		{"packet", Socket{Family: AFPacket, Type: SockRaw}, "packet", "", "", "", "packet"},
		{"raw", Socket{Family: AFInet, Type: SockRaw, Protocol: IPProtoICMP, State: TCPClose, Local: ap("0.0.0.0:1"), Remote: ap("0.0.0.0:0")},
			"raw", "UNCONNECTED", "0.0.0.0:1", "0.0.0.0:0", "raw UNCONNECTED 0.0.0.0"},
		{"other family", Socket{Family: 40}, "af40", "", "", "", "af40"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := c.s
			got := [5]string{s.Proto(), s.StateName(), s.LocalEnd(), s.RemoteEnd(), s.Target()}
			want := [5]string{c.proto, c.state, c.local, c.remote, c.target}
			if got != want {
				t.Errorf("proto, state, local, remote, target = %q, want %q", got, want)
			}
		})
	}
}
