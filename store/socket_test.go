package store

import (
	"net/netip"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/snapshot"
)

// socketSnapshot is sampleSnapshot with what a take records of sockets and
// containers: cgroups, ns pids, and sockets of each family and both IP
// versions.
func socketSnapshot() *snapshot.Snapshot {
	s := sampleSnapshot()
	const docker = "/system.slice/docker-3f2a9b6c0d1e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f90.scope"
	for i := range s.Tasks {
		t := &s.Tasks[i]
		t.Cgroup, t.CgroupID, t.NSPID = "/system.slice/nginx.service", 4321, t.PID
		if t.PID == 4242 {
			t.Cgroup, t.CgroupID, t.NSPID = docker, 99_000, 1
		}
	}
	s.Tasks[4].Cgroup, s.Tasks[4].CgroupID, s.Tasks[4].Missing = "", 0, s.Tasks[4].Missing|snapshot.MissingCgroup
	ap := netip.MustParseAddrPort
	s.Files[1].Socket = &snapshot.Socket{Family: snapshot.AFInet, Type: snapshot.SockStream, Protocol: snapshot.IPProtoTCP,
		State: snapshot.TCPCloseWait, Local: ap("10.0.0.7:40112"), Remote: ap("10.0.0.5:5432"), NetNS: 4026531840}
	more := []snapshot.File{
		{PID: 100, FD: 6, Mode: 0o140777, Dev: 8, Inode: 12346, Path: "socket:[12346]", Socket: &snapshot.Socket{
			Family: snapshot.AFInet6, Type: snapshot.SockStream, Protocol: snapshot.IPProtoTCP, State: snapshot.TCPListen,
			Local: ap("[::]:443"), Remote: ap("[::]:0"), NetNS: 4026531840}},
		{PID: 100, FD: 7, Mode: 0o140777, Dev: 8, Inode: 12347, Path: "socket:[12347]", Socket: &snapshot.Socket{
			Family: snapshot.AFInet6, Type: snapshot.SockDgram, Protocol: snapshot.IPProtoUDP, State: snapshot.TCPEstablished,
			Local: ap("[::ffff:127.0.0.1]:5000"), Remote: ap("[::ffff:127.0.0.1]:53"), NetNS: 4026531840}},
		{PID: 100, FD: 8, Mode: 0o140777, Dev: 8, Inode: 12348, Path: "socket:[12348]", Socket: &snapshot.Socket{
			Family: snapshot.AFUnix, Type: snapshot.SockStream, State: snapshot.TCPListen, Path: "/run/nginx.sock", NetNS: 4026531840}},
		{PID: 100, FD: 10, Mode: 0o140777, Dev: 8, Inode: 12349, Path: "socket:[12349]", Socket: &snapshot.Socket{
			Family: snapshot.AFUnix, Type: snapshot.SockDgram, State: snapshot.TCPClose, Path: "@abstract@name", NetNS: 4026531840}},
		{PID: 100, FD: 11, Mode: 0o140777, Dev: 8, Inode: 12350, Path: "socket:[12350]", Socket: &snapshot.Socket{
			Family: snapshot.AFNetlink, Type: snapshot.SockRaw, State: snapshot.TCPClose, NetNS: 4026531840}},
		{PID: 100, FD: 12, Mode: 0o140777, Dev: 8, Inode: 12351, Path: "socket:[12351]", Missing: snapshot.MissingSocket},
		{PID: 4242, FD: 10, Mode: 0o140777, Dev: 8, Inode: 777_000, Path: "socket:[777000]", Socket: &snapshot.Socket{
			Family: snapshot.AFInet, Type: snapshot.SockStream, Protocol: snapshot.IPProtoTCP, State: snapshot.TCPListen,
			Local: ap("0.0.0.0:8080"), Remote: ap("0.0.0.0:0"), NetNS: 4026532999}},
	}
	s.Files = append(s.Files, more...)
	s.Sort()
	s.Finish()
	return s
}

// TestSocketsRoundTrip: every socket, cgroup and namespace field reads
// back as stored, and a second take of the same host reuses its chunks,
// also when a connection changed state.
func TestSocketsRoundTrip(t *testing.T) {
	db := openTestDB(t)
	want := socketSnapshot()
	want.ID = mustPut(t, db, want)
	got, err := db.Get(want.ID)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got, cmpOpts); d != "" {
		t.Errorf("Get() mismatch (-want +got):\n%s", d)
	}
	before := bucketLen(t, db, bucketChunks)
	mustPut(t, db, socketSnapshot())
	if after := bucketLen(t, db, bucketChunks); after != before {
		t.Errorf("an unchanged host stored %d new chunks", after-before)
	}
	// A socket that changed state changes the record, not the chunk.
	changed := socketSnapshot()
	for i := range changed.Files {
		if s := changed.Files[i].Socket; s != nil && s.State == snapshot.TCPCloseWait {
			changed.Files[i].Socket.State = snapshot.TCPLastAck
		}
	}
	changed.ID = mustPut(t, db, changed)
	if after := bucketLen(t, db, bucketChunks); after != before {
		t.Errorf("a socket's new state stored %d new chunks", after-before)
	}
	if got, err = db.Get(changed.ID); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(changed, got, cmpOpts); d != "" {
		t.Errorf("Get() of the changed snapshot mismatch (-want +got):\n%s", d)
	}
}

// TestSocketStatesOverTime: on the idle host whose connections change
// state every minute, so that records list more and more sockets that
// moved on from their chunks' states, in chunks all over the table, every
// snapshot reads back as it was stored, by Get and by Walk, and Walk hands
// the chunks whose sockets moved on as runs of their own.
func TestSocketStatesOverTime(t *testing.T) {
	db := openTestDB(t)
	h := newIdleHost()
	h.stateChanges = true
	var want []*snapshot.Snapshot
	var ids []uint64
	for i := range 30 {
		if i > 0 {
			h.step()
		}
		s := h.snapshot()
		ids = append(ids, mustPut(t, db, s))
		want = append(want, s)
	}
	for i, w := range want {
		got, err := db.Get(w.ID)
		if err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(w, got, cmpOpts); d != "" {
			t.Fatalf("Get(%d) mismatch (-want +got):\n%s", w.ID, d)
		}
		if i == len(want)-1 {
			changed := 0
			for j := range got.Files {
				if so := got.Files[j].Socket; so != nil && so.State == snapshot.TCPCloseWait {
					changed++
				}
			}
			if changed < 5 {
				t.Errorf("%d connections in CLOSE_WAIT after 30 minutes: the model no longer changes states", changed)
			}
		}
	}
	i, moved := 0, 0
	err := db.Walk(ids, func(s *snapshot.Snapshot, runs []FileRun) error {
		if d := cmp.Diff(want[i], s, cmpOpts); d != "" {
			t.Fatalf("Walk's snapshot %d mismatch (-want +got):\n%s", s.ID, d)
		}
		for _, r := range runs {
			if r.ChunkID == 0 {
				moved++
			}
		}
		i++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if moved == 0 {
		t.Error("no run was handed over as moved on from its chunk")
	}
}
