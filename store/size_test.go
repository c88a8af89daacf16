package store

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// The synthetic busy host: 2,000 threads with 50 distinct 10-frame stacks
// and 15,000 fds, mostly sockets and pipes.
const (
	synthThreads = 2000
	synthStacks  = 50
	synthFDs     = 15000
)

// dbSize is bbolt's high-water mark: the bytes of pages in use or free for
// reuse, which is what the file grows by (the file itself grows in chunks).
func dbSize(t testing.TB, db *DB) int64 {
	var size int64
	if err := db.bolt.View(func(tx *bolt.Tx) error { size = tx.Size(); return nil }); err != nil {
		t.Fatal(err)
	}
	return size
}

// idleHost is the host the storage target is set for: about 300 threads
// and 3,000 fds, taken every minute, with little changing. Each minute
// (step):
//   - every thread has a 50% chance of having run (its switch count grows);
//   - 3% of threads are caught somewhere else (another stack and state);
//   - two processes open or close a socket (most sockets are unix ones;
//     see newSocket);
//   - with stateChanges, one TCP connection changes state (ESTABLISHED to
//     CLOSE_WAIT and back);
//   - a kernel worker thread exits and a new one starts every 5 minutes;
//   - a service restarts (new pid, new start time, new fds) every 30.
type idleHost struct {
	rnd     *rand.Rand
	sockRnd *rand.Rand // for sockets and cgroups, so that the rest of the model stays as it was before them
	// stateChanges makes one TCP connection change state every minute
	// (ESTABLISHED to CLOSE_WAIT and back), which an idle host does not.
	stateChanges bool
	minute       int
	stacks       []snapshot.Stack
	procs        []*idleProcess
	nextID       uint32
	nextInode    uint64
}

type idleProcess struct {
	pid, ppid uint32
	comm      string
	start     uint64
	cgroup    string // services in their systemd unit, some in docker scopes
	cgroupID  uint64
	threads   []idleThread
	files     []snapshot.File
}

type idleThread struct {
	tid      uint32
	state    uint32
	stack    int32
	switches uint64
}

func newIdleHost() *idleHost {
	h := &idleHost{rnd: rand.New(rand.NewPCG(7, 11)), sockRnd: rand.New(rand.NewPCG(13, 17)), nextID: 1000, nextInode: 20_000}
	funcs := []string{"schedule", "schedule_hrtimeout_range", "ep_poll", "do_epoll_wait", "__x64_sys_epoll_wait",
		"futex_wait_queue", "futex_wait", "do_futex", "__x64_sys_futex", "do_sys_poll", "__x64_sys_poll",
		"unix_stream_read_generic", "sock_read_iter", "vfs_read", "ksys_read", "worker_thread", "kthread",
		"ret_from_fork", "smpboot_thread_fn", "rcu_gp_kthread", "do_select", "core_sys_select", "pipe_read"}
	for range 60 {
		st := make(snapshot.Stack, 6+h.rnd.IntN(6))
		for j := range st {
			f := funcs[h.rnd.IntN(len(funcs))]
			st[j] = fmt.Sprintf("%s+0x%x/0x%x", f, h.rnd.IntN(0x200), 0x200+h.rnd.IntN(0x200))
		}
		h.stacks = append(h.stacks, st)
	}
	// 110 processes: 80 kernel threads, 30 services with 7 threads and
	// 100 fds on average.
	for i := range 110 {
		h.procs = append(h.procs, h.newProcess(i < 80))
	}
	return h
}

func (h *idleHost) newProcess(kernel bool) *idleProcess {
	h.nextID += 1 + uint32(h.rnd.IntN(50))
	p := &idleProcess{pid: h.nextID, ppid: 1, start: uint64(h.minute)*60e9 + h.rnd.Uint64N(60e9)}
	nthreads, nfds := 1, 0
	p.cgroup, p.cgroupID = "/", 1
	if kernel {
		p.ppid, p.comm = 2, fmt.Sprintf("kworker/%d:%d", h.rnd.IntN(4), h.rnd.IntN(3))
	} else {
		p.comm = []string{"sshd", "systemd-journal", "cron", "nginx", "postgres", "containerd", "node_exporter", "rsyslogd"}[h.rnd.IntN(8)]
		nthreads, nfds = 1+h.rnd.IntN(13), 20+h.rnd.IntN(160)
		p.cgroup, p.cgroupID = "/system.slice/"+p.comm+".service", 5000+uint64(h.sockRnd.IntN(40))
		if h.sockRnd.IntN(3) == 0 {
			p.cgroup = fmt.Sprintf("/system.slice/docker-%064x.scope", h.sockRnd.Uint64())
			p.cgroupID = 9000 + uint64(p.pid)
		}
	}
	for i := range nthreads {
		p.threads = append(p.threads, idleThread{tid: p.pid + uint32(i), state: snapshot.TaskInterruptible,
			stack: int32(h.rnd.IntN(len(h.stacks))), switches: h.rnd.Uint64N(1_000_000)})
	}
	h.nextID += uint32(nthreads)
	for fd := range nfds {
		p.files = append(p.files, h.newFile(p.pid, uint32(fd)))
	}
	return p
}

// newFile opens an fd. Sockets and pipes are numbered from one counter for
// the whole host (the kernel's get_next_ino), so a process's fds opened
// together have inodes close together, with other processes' in between.
func (h *idleHost) newFile(pid, fd uint32) snapshot.File {
	f := snapshot.File{PID: pid, FD: fd, Flags: 0o2000002, Dev: 8}
	h.nextInode += 1 + h.rnd.Uint64N(40)
	switch r := h.rnd.IntN(10); {
	case fd < 3:
		f.Mode, f.Dev, f.Inode, f.Path = 0o20666, 5, 4, "/dev/null"
	case r < 5:
		f.Mode, f.Inode = 0o140777, h.nextInode
		f.Path = fmt.Sprintf("socket:[%d]", f.Inode)
		so := h.newSocket()
		f.Socket = &so
	case r < 7:
		f.Mode, f.Dev, f.Inode = 0o10600, 14, h.nextInode
		f.Path = fmt.Sprintf("pipe:[%d]", f.Inode)
	case r < 8:
		f.Mode, f.Dev, f.Inode, f.Path = 0o600, 15, 2070, "anon_inode:[eventpoll]"
	default:
		f.Mode, f.Dev, f.Inode = 0o100644, 0xfd01, h.rnd.Uint64N(2_000_000)
		f.Path = fmt.Sprintf("/var/lib/app/data/%d.log", f.Inode)
	}
	return f
}

func (h *idleHost) newSocket() snapshot.Socket {
	s := snapshot.Socket{Family: snapshot.AFInet, Type: snapshot.SockStream, Protocol: snapshot.IPProtoTCP, NetNS: 4026531840}
	local := netip.AddrFrom4([4]byte{10, 0, 0, 3})
	any4 := netip.AddrPortFrom(netip.IPv4Unspecified(), 0)
	// An idle host's sockets are mostly unix ones (systemd, journald,
	// dbus), unbound and connected; a few TCP connections (a pool to a
	// database, ssh), listeners, UDP and netlink.
	switch r := h.sockRnd.IntN(20); {
	case r < 3:
		s.State = snapshot.TCPEstablished
		s.Local = netip.AddrPortFrom(local, uint16(32768+h.sockRnd.IntN(28000)))
		s.Remote = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(5 + h.sockRnd.IntN(2))}), []uint16{5432, 6379}[h.sockRnd.IntN(2)])
	case r < 17:
		s = snapshot.Socket{Family: snapshot.AFUnix, Type: snapshot.SockStream, State: snapshot.TCPEstablished, NetNS: s.NetNS}
		if h.sockRnd.IntN(8) == 0 {
			s.Path = "/run/systemd/journal/stdout"
		}
	case r < 18:
		s.State, s.Local, s.Remote = snapshot.TCPListen, netip.AddrPortFrom(netip.IPv4Unspecified(), uint16(8000+h.sockRnd.IntN(100))), any4
	case r < 19:
		s.Type, s.Protocol, s.State = snapshot.SockDgram, snapshot.IPProtoUDP, snapshot.TCPClose
		s.Local, s.Remote = netip.AddrPortFrom(local, uint16(32768+h.sockRnd.IntN(28000))), any4
	default:
		s = snapshot.Socket{Family: snapshot.AFNetlink, Type: snapshot.SockRaw, State: snapshot.TCPClose, NetNS: s.NetNS}
	}
	return s
}

func (h *idleHost) step() {
	h.minute++
	for _, p := range h.procs {
		for i := range p.threads {
			t := &p.threads[i]
			if h.rnd.IntN(2) == 0 {
				t.switches += 1 + h.rnd.Uint64N(200)
			}
			if h.rnd.IntN(100) < 3 {
				t.stack = int32(h.rnd.IntN(len(h.stacks)))
				t.state = []uint32{snapshot.TaskInterruptible, snapshot.TaskRunning}[h.rnd.IntN(2)]
			}
		}
	}
	for range 2 {
		p := h.procs[80+h.rnd.IntN(len(h.procs)-80)]
		if len(p.files) > 10 && h.rnd.IntN(2) == 0 {
			p.files = p.files[:len(p.files)-1]
		} else {
			p.files = append(p.files, h.newFile(p.pid, uint32(len(p.files))))
		}
	}
	for tries := 0; h.stateChanges && tries < 20; tries++ {
		p := h.procs[80+h.sockRnd.IntN(len(h.procs)-80)]
		f := &p.files[h.sockRnd.IntN(len(p.files))]
		if s := f.Socket; s != nil && s.Protocol == snapshot.IPProtoTCP && s.State != snapshot.TCPListen {
			c := *s
			c.State = map[uint8]uint8{snapshot.TCPEstablished: snapshot.TCPCloseWait, snapshot.TCPCloseWait: snapshot.TCPEstablished}[s.State]
			f.Socket = &c
			break
		}
	}
	if h.minute%5 == 0 {
		h.procs[h.rnd.IntN(80)] = h.newProcess(true)
	}
	if h.minute%30 == 0 {
		h.procs[80+h.rnd.IntN(len(h.procs)-80)] = h.newProcess(false)
	}
}

func (h *idleHost) snapshot() *snapshot.Snapshot {
	s := &snapshot.Snapshot{
		Meta: snapshot.Meta{
			Time:      time.Unix(1_700_000_000+int64(h.minute)*60, 0).UTC(),
			Hostname:  "web-3.prod.example.com",
			Kernel:    "6.8.0-45-generic",
			BootID:    "0f6c1a9e-6a1c-4f5e-9d7e-2f2b1f6c3e21",
			Collector: "bpf",
			Duration:  21*time.Millisecond + time.Duration(h.rnd.IntN(5_000_000)),
		},
		Stacks: h.stacks,
	}
	for _, p := range h.procs {
		for _, t := range p.threads {
			s.Tasks = append(s.Tasks, snapshot.Task{PID: p.pid, TID: t.tid, PPID: p.ppid, Comm: p.comm,
				State: t.state, StartTime: p.start, Switches: t.switches, UID: 0, NoFileLimit: 1024, Stack: t.stack,
				Cgroup: p.cgroup, CgroupID: p.cgroupID, NSPID: p.pid})
		}
		s.Files = append(s.Files, p.files...)
	}
	s.Sort()
	s.Finish()
	return s
}

// idleHostBytes stores n minutes of the idle host and returns the database
// size over n: the first snapshot's cost amortized with the rest.
func idleHostBytes(t testing.TB, n int, stateChanges bool) (perSnapshot int64, first *snapshot.Snapshot) {
	db := openTestDB(t)
	h := newIdleHost()
	h.stateChanges = stateChanges
	for i := range n {
		if i > 0 {
			h.step()
		}
		s := h.snapshot()
		if i == 0 {
			first = s
		}
		mustPut(t, db, s)
	}
	return dbSize(t, db) / int64(n), first
}

// TestIdleHostSize measures the storage target: under 4 KB per snapshot of
// a 300-thread, 3,000-fd host taken every minute for 100 minutes. The size
// is deterministic (a seeded model, bbolt's page layout). Measured: 3,850
// bytes with sockets and cgroups (3,973 with parts of 480 bytes and pages
// filled to 95%, parts.go and appendFill; 4,505 before records were stored
// in parts).
func TestIdleHostSize(t *testing.T) {
	per, first := idleHostBytes(t, 100, false)
	t.Logf("idle host (%d threads, %d processes, %d fds): %d bytes per snapshot over 100 snapshots",
		first.Meta.Threads, first.Meta.Processes, first.Meta.FDs, per)
	if first.Meta.Threads < 250 || first.Meta.Threads > 350 || first.Meta.FDs < 2500 || first.Meta.FDs > 3500 {
		t.Errorf("the model drifted from ~300 threads and ~3,000 fds: %d and %d", first.Meta.Threads, first.Meta.FDs)
	}
	if per >= 4096 {
		t.Errorf("%d bytes per snapshot, want under 4,096 (measured 3,850)", per)
	}
}

// BenchmarkIdleHostSize reports the idle host's bytes per snapshot:
// go test -run '^$' -bench IdleHostSize ./store
//
// BenchmarkIdleHostSize/state-changes is the same host with one TCP
// connection changing state every minute: 3,891 bytes per snapshot (4,177
// with a state difference for every socket in every record, version 3, and
// parts of 480; 4,382 when a socket's state was part of its chunk, which
// was then stored again).
func BenchmarkIdleHostSize(b *testing.B) {
	for _, c := range []struct {
		name         string
		stateChanges bool
	}{{"idle", false}, {"state-changes", true}} {
		b.Run(c.name, func(b *testing.B) {
			var per int64
			for b.Loop() {
				per, _ = idleHostBytes(b, 100, c.stateChanges)
			}
			b.ReportMetric(float64(per), "bytes/snapshot")
		})
	}
}

// TestSnapshotSize logs what one more snapshot of a busy host costs. It
// asserts only a loose bound, to catch an encoding that stops interning or
// compressing; the number itself is for people (and BenchmarkPut).
func TestSnapshotSize(t *testing.T) {
	db := openTestDB(t)
	mustPut(t, db, syntheticSnapshot(synthThreads, synthStacks, synthFDs, 0))
	start := dbSize(t, db)
	const more = 30
	for i := uint64(1); i <= more; i++ {
		mustPut(t, db, syntheticSnapshot(synthThreads, synthStacks, synthFDs, i))
	}
	growth := (dbSize(t, db) - start) / more
	t.Logf("%d threads, %d stacks, %d fds: database grows %d bytes per snapshot", synthThreads, synthStacks, synthFDs, growth)
	// Every process's fds change between these synthetic takes, so chunks
	// cannot be reused: this is the worst case of the chunked layout.
	if growth > 200_000 {
		t.Errorf("database grows %d bytes per snapshot, want well under 200 kB", growth)
	}
}

func BenchmarkPut(b *testing.B) {
	db := openTestDB(b)
	// Snapshots that differ as consecutive takes do; generated up front.
	variants := make([]*snapshot.Snapshot, 8)
	for i := range variants {
		variants[i] = syntheticSnapshot(synthThreads, synthStacks, synthFDs, uint64(i))
	}
	mustPut(b, db, variants[0]) // the stacks are stored by the first take
	start := dbSize(b, db)
	n := 0
	for b.Loop() {
		mustPut(b, db, variants[n%len(variants)])
		n++
	}
	b.ReportMetric(float64(dbSize(b, db)-start)/float64(n), "bytes/snapshot")
}

func BenchmarkGet(b *testing.B) {
	db := openTestDB(b)
	id := mustPut(b, db, syntheticSnapshot(synthThreads, synthStacks, synthFDs, 0))
	for b.Loop() {
		if _, err := db.Get(id); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRetentionSteadySize measures retention: the idle host taken every
// minute for ten hours with `take --keep-last 60` (a forget after each
// put). The freed pages are reused, so the file stops growing once an
// hour is kept; compact then hands back what the high-water mark holds
// beyond the live data.
func TestRetentionSteadySize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "itersnap.db")
	db, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	h := newIdleHost()
	sizes := map[int]int64{}
	for i := 1; i <= 600; i++ {
		if i > 1 {
			h.step()
		}
		mustPut(t, db, h.snapshot())
		if _, err := db.Forget(Policy{Last: 60}, time.UTC, false); err != nil {
			t.Fatal(err)
		}
		sizes[i] = dbSize(t, db)
	}
	if n := recordCount(t, db); n != 60 {
		t.Errorf("%d snapshots kept, want 60", n)
	}
	checkConsistent(t, db)
	db.Close()
	if _, _, err := Compact(path, Options{}); err != nil {
		t.Fatal(err)
	}
	db, err = Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	compacted := dbSize(t, db)
	db.Close()
	t.Logf("keep-last 60, bytes in use (high-water) after 60 takes: %d, 120: %d, 300: %d, 600: %d; compacted: %d",
		sizes[60], sizes[120], sizes[300], sizes[600], compacted)
	if sizes[600] > sizes[120]*5/4 {
		t.Errorf("the database keeps growing under keep-last 60: %d bytes after 120 takes, %d after 600", sizes[120], sizes[600])
	}
}
