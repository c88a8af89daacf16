//go:build linux

package collect

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/itersnap/itersnap/snapshot"
)

func TestParseNetLines(t *testing.T) {
	ap := netip.MustParseAddrPort
	opts := cmpopts.EquateComparable(netip.AddrPort{})
	for _, c := range []struct {
		line   string
		family uint16
		ino    uint64
		want   snapshot.Socket
		ok     bool
	}{
		{"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 12345 1 0000000000000000 100 0 0 10 0",
			snapshot.AFInet, 12345, snapshot.Socket{Family: snapshot.AFInet, State: snapshot.TCPListen, Local: ap("127.0.0.1:8080"), Remote: ap("0.0.0.0:0")}, true},
		{"   1: 0100007F:9C40 0500000A:1538 08 00000000:00000000 00:00000000 00000000     0        0 99 1",
			snapshot.AFInet, 99, snapshot.Socket{Family: snapshot.AFInet, State: snapshot.TCPCloseWait, Local: ap("127.0.0.1:40000"), Remote: ap("10.0.0.5:5432")}, true},
		{"   0: 00000000000000000000000001000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 7 1",
			snapshot.AFInet6, 7, snapshot.Socket{Family: snapshot.AFInet6, State: snapshot.TCPListen, Local: ap("[::1]:443"), Remote: ap("[::]:0")}, true},
		{"  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode", snapshot.AFInet, 0, snapshot.Socket{}, false},
		{"   0: 0100007F:1F90 00000000:0000 0A", snapshot.AFInet, 0, snapshot.Socket{}, false},
		{"   0: 00000000000000000000000001000000:01BB 00000000:0000 0A 0 0 0 0 0 7 1", snapshot.AFInet6, 0, snapshot.Socket{}, false},
	} {
		ino, got, ok := parseInetLine([]byte(c.line), c.family)
		if ok != c.ok || ino != c.ino || !cmp.Equal(got, c.want, opts) {
			t.Errorf("parseInetLine(%q) = %d, %+v, %v; want %d, %+v, %v", c.line, ino, got, ok, c.ino, c.want, c.ok)
		}
	}
	for _, c := range []struct {
		line string
		ino  uint64
		want snapshot.Socket
		ok   bool
	}{
		{"0000000000000000: 00000002 00000000 00010000 0001 01 12345 /run/app.sock",
			12345, snapshot.Socket{Family: snapshot.AFUnix, Type: snapshot.SockStream, State: snapshot.TCPListen, Path: "/run/app.sock"}, true},
		{"0000000000000000: 00000002 00000000 00010000 0001 01 12346 @abs@x",
			12346, snapshot.Socket{Family: snapshot.AFUnix, Type: snapshot.SockStream, State: snapshot.TCPListen, Path: "@abs@x"}, true},
		{"0000000000000000: 00000003 00000000 00000000 0001 03 77",
			77, snapshot.Socket{Family: snapshot.AFUnix, Type: snapshot.SockStream, State: snapshot.TCPEstablished}, true},
		{"0000000000000000: 00000002 00000000 00000000 0002 01 78 /a path with spaces",
			78, snapshot.Socket{Family: snapshot.AFUnix, Type: snapshot.SockDgram, State: snapshot.TCPClose, Path: "/a path with spaces"}, true},
		{"Num       RefCount Protocol Flags    Type St Inode Path", 0, snapshot.Socket{}, false},
	} {
		ino, got, ok := parseUnixLine([]byte(c.line))
		if ok != c.ok || ino != c.ino || !cmp.Equal(got, c.want, opts) {
			t.Errorf("parseUnixLine(%q) = %d, %+v, %v; want %d, %+v, %v", c.line, ino, got, ok, c.ino, c.want, c.ok)
		}
	}
}
