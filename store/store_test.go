package store

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// cmpOpts is the package's one set of comparison options. Get gives
// records back grouped by process in pid order and numbers stacks in the
// order tasks first use them, so snapshots are compared through canonical:
// what each task's stack is, not where it sits in Stacks. time.Time
// compares with its Equal method.
var cmpOpts = cmp.Options{
	cmpopts.EquateEmpty(),
	cmp.Transformer("canonical", canonical),
}

type canonicalTask struct {
	snapshot.Task
	Frames snapshot.Stack
}

type canonicalSnapshot struct {
	ID    uint64
	Meta  snapshot.Meta
	Tasks []canonicalTask
	Files []snapshot.File
}

func canonical(s *snapshot.Snapshot) canonicalSnapshot {
	if s == nil {
		return canonicalSnapshot{}
	}
	c := canonicalSnapshot{ID: s.ID, Meta: s.Meta, Files: slices.Clone(s.Files)}
	for _, t := range s.Tasks {
		frames := s.StackOf(t)
		t.Stack = min(t.Stack, 0) // where it is in Stacks is no matter, Frames says
		if t.Stack < 0 {
			t.Stack = -1 // every negative index means "no stack"
		}
		c.Tasks = append(c.Tasks, canonicalTask{Task: t, Frames: frames})
	}
	slices.SortStableFunc(c.Tasks, func(a, b canonicalTask) int { return int(a.PID) - int(b.PID) })
	slices.SortStableFunc(c.Files, func(a, b snapshot.File) int { return int(a.PID) - int(b.PID) })
	return c
}

// openTestDB opens a read-write database under t.TempDir(). Cleanup runs
// bbolt's consistency check before closing, so every test also proves the
// file it leaves is consistent.
func openTestDB(t testing.TB) *DB {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "itersnap.db"), Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		checkConsistent(t, db)
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

// checkConsistent runs tx.Check and reports every error it finds.
func checkConsistent(t testing.TB, db *DB) {
	t.Helper()
	err := db.bolt.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("consistency check: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("consistency check: %v", err)
	}
}

// mustPut stores s and fails the test on error.
func mustPut(t testing.TB, db *DB, s *snapshot.Snapshot) uint64 {
	t.Helper()
	id, err := db.Put(s)
	if err != nil {
		t.Fatalf("Put: %v", err)
	}
	return id
}

// bucketLen counts the keys in one bucket.
func bucketLen(t testing.TB, db *DB, name []byte) int {
	t.Helper()
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(name).ForEach(func(k, v []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// recordCount is the number of records, whole or in parts.
func recordCount(t testing.TB, db *DB) int {
	t.Helper()
	n := 0
	err := db.bolt.View(func(tx *bolt.Tx) error {
		return forEachRecord(tx.Bucket(bucketRecords), func(uint64, []byte) error { n++; return nil })
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	stackSleep = snapshot.Stack{"do_nanosleep+0x87/0x1a0", "hrtimer_nanosleep+0xd8/0x1a0", "__x64_sys_nanosleep+0x98/0xd0", "do_syscall_64+0x5b/0x80", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"}
	stackEpoll = snapshot.Stack{"ep_poll+0x2d5/0x310", "do_epoll_wait+0xb8/0xd0", "__x64_sys_epoll_wait+0x6f/0x110", "do_syscall_64+0x5b/0x80", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"}
	stackNFS   = snapshot.Stack{"nfs_wait_bit_killable+0x1c/0x80 [nfs]", "__wait_on_bit+0x31/0x90", "out_of_line_wait_on_bit+0x91/0xb0", "nfs_updatepage+0x1c6/0x9a0 [nfs]"}
)

// sampleSnapshot has every field set, tasks sharing stacks, a task without
// a stack, and fds of several kinds.
func sampleSnapshot() *snapshot.Snapshot {
	s := &snapshot.Snapshot{
		Meta: snapshot.Meta{
			Time:      time.Date(2025, 3, 4, 5, 6, 7, 890123456, time.FixedZone("", 2*3600)),
			Hostname:  "web-1",
			Kernel:    "6.8.0-45-generic",
			BootID:    "0f6c1a9e-6a1c-4f5e-9d7e-2f2b1f6c3e21",
			Collector: "bpf",
			Filter:    snapshot.Filter{Comms: []string{"nginx", "app"}, PIDs: []uint32{100, 4242}},
			Label:     "before deploy",
			Duration:  37 * time.Millisecond,
			Notes:     []string{"bpf: no kernel stack for 1 threads (exiting, or stack unavailable)"},
		},
		Stacks: []snapshot.Stack{stackSleep, stackEpoll, stackNFS},
		Tasks: []snapshot.Task{
			{PID: 100, TID: 100, PPID: 1, Comm: "nginx", State: snapshot.TaskInterruptible, StartTime: 4_000_000_123, Switches: 77, UID: 33, NoFileLimit: 1024, Stack: 1},
			{PID: 100, TID: 101, PPID: 1, Comm: "nginx", State: snapshot.TaskInterruptible, StartTime: 4_000_900_000, Switches: 5, UID: 33, NoFileLimit: 1024, Stack: 1},
			{PID: 4242, TID: 4242, PPID: 100, Comm: "app", State: snapshot.TaskKillable, Flags: 0x400100, StartTime: 9_123_456_789_012, Switches: 1 << 40, UID: 1000, NoFileLimit: snapshot.NoLimit, Stack: 2},
			{PID: 4242, TID: 4250, PPID: 100, Comm: "app-worker", State: snapshot.TaskRunning, ExitState: snapshot.ExitZombie, StartTime: 9_123_456_789_000, NoFileLimit: snapshot.NoLimit, Stack: -1, Missing: snapshot.MissingStack | snapshot.MissingStatus},
			{PID: 4242, TID: 4251, PPID: 100, Comm: "app-worker", State: snapshot.TaskUninterruptible, StartTime: 9_200_000_000_000, Stack: 0, Missing: snapshot.MissingKillable | snapshot.MissingLimit},
		},
		Files: []snapshot.File{
			{PID: 100, FD: 0, Mode: 0o20620, Flags: 0o2, Dev: 0x8800, Inode: 3, Path: "/dev/pts/0"},
			{PID: 100, FD: 3, Mode: 0o140777, Flags: 0o2000002, Dev: 8, Inode: 12345, Path: "socket:[12345]"},
			{PID: 100, FD: 4, Mode: 0o10600, Dev: 14, Inode: 9876543210, Path: "pipe:[9876543210]"},
			{PID: 100, FD: 5, Mode: 0o600, Dev: 15, Inode: 2070, Path: "anon_inode:[eventpoll]"},
			{PID: 4242, FD: 1, Mode: 0o100644, Flags: 0o102001, Dev: 0xfd01, Inode: 555, Path: "/var/log/app.log"},
			{PID: 4242, FD: 2, Mode: 0o100644, Flags: 0o102001, Dev: 0xfd01, Inode: 555, Path: "/var/log/app.log"},
			{PID: 4242, FD: 7, Mode: 0o100600, Dev: 0xfd01, Inode: 777, Path: "/tmp/x [deleted] (deleted)"},
			{PID: 4242, FD: 9, Mode: 0o140777, Dev: 8, Inode: 0, Missing: snapshot.MissingPath},
		},
	}
	s.Finish()
	return s
}

// syntheticSnapshot is a busy host: threads over processes, a few dozen
// distinct 10-frame stacks, and fds that are mostly sockets and pipes.
// seed varies switch counts and some fds, as between two takes.
func syntheticSnapshot(threads, stacks, fds int, seed uint64) *snapshot.Snapshot {
	rnd := rand.New(rand.NewPCG(1, 2)) // the host's layout, the same every time
	vary := rand.New(rand.NewPCG(seed, 3))
	s := &snapshot.Snapshot{Meta: snapshot.Meta{
		Time:      time.Unix(1_700_000_000+int64(seed)*60, 0),
		Hostname:  "db-7.prod.example.com",
		Kernel:    "6.8.0-45-generic",
		BootID:    "0f6c1a9e-6a1c-4f5e-9d7e-2f2b1f6c3e21",
		Collector: "bpf",
		Duration:  40 * time.Millisecond,
	}}
	funcs := []string{"schedule", "schedule_timeout", "futex_wait_queue", "futex_wait", "do_futex", "__x64_sys_futex",
		"ep_poll", "do_epoll_wait", "unix_stream_read_generic", "tcp_recvmsg_locked", "inet_recvmsg", "sock_read_iter",
		"vfs_read", "ksys_read", "pipe_read", "worker_thread", "kthread", "ret_from_fork", "io_schedule", "folio_wait_bit_common"}
	for i := 0; i < stacks; i++ {
		st := make(snapshot.Stack, 10)
		for j := range st {
			st[j] = fmt.Sprintf("%s+0x%x/0x%x", funcs[rnd.IntN(len(funcs))], rnd.IntN(0x200), 0x200+rnd.IntN(0x200))
		}
		st[8], st[9] = "do_syscall_64+0x5b/0x80", "entry_SYSCALL_64_after_hwframe+0x76/0x7e"
		s.Stacks = append(s.Stacks, st)
	}
	comms := []string{"postgres", "java", "nginx", "kworker/u16:3", "systemd-journal", "containerd", "node", "python3"}
	const perProcess = 10
	for i := 0; i < threads; i++ {
		pid := uint32(1000 + (i/perProcess)*37)
		t := snapshot.Task{
			PID: pid, TID: pid + uint32(i%perProcess), PPID: 1,
			Comm:        comms[(i/perProcess)%len(comms)],
			State:       snapshot.TaskInterruptible,
			StartTime:   uint64(1_000_000_000 + (i/perProcess)*7_000_000_000 + (i%perProcess)*1_000_000),
			Switches:    uint64(rnd.IntN(1_000_000)) + vary.Uint64N(100),
			UID:         uint32(999 + rnd.IntN(3)),
			NoFileLimit: 1 << 20,
			Stack:       int32(rnd.IntN(stacks)),
		}
		if i%97 == 0 {
			t.State = snapshot.TaskUninterruptible
		}
		s.Tasks = append(s.Tasks, t)
	}
	nproc := (threads + perProcess - 1) / perProcess
	perFD := fds / nproc
	for p := 0; p < nproc; p++ {
		pid := uint32(1000 + p*37)
		for fd := 0; fd < perFD; fd++ {
			f := snapshot.File{PID: pid, FD: uint32(fd), Flags: 0o2, Dev: 8}
			switch r := rnd.IntN(10); {
			case fd < 3:
				f.Mode, f.Dev, f.Inode, f.Path = 0o20666, 5, 4, "/dev/null"
			case r < 5:
				f.Mode, f.Inode = 0o140777, uint64(30_000_000+rnd.IntN(5_000_000))
				if vary.IntN(20) == 0 { // a socket closed and another opened
					f.Inode = uint64(40_000_000 + vary.IntN(1_000_000))
				}
				f.Path = fmt.Sprintf("socket:[%d]", f.Inode)
			case r < 7:
				f.Mode, f.Dev, f.Inode = 0o10600, 14, uint64(50_000_000+rnd.IntN(1_000_000))
				f.Path = fmt.Sprintf("pipe:[%d]", f.Inode)
			case r < 8:
				f.Mode, f.Dev, f.Inode, f.Path = 0o100640, 0xfd01, 131_077, "/var/log/app.log"
			case r < 9:
				f.Mode, f.Dev, f.Inode, f.Path = 0o600, 15, 2070, "anon_inode:[eventpoll]"
			default:
				f.Mode, f.Dev, f.Inode = 0o100644, 0xfd01, uint64(rnd.IntN(2_000_000))
				f.Path = fmt.Sprintf("/var/lib/postgresql/16/main/base/16384/%d", f.Inode)
			}
			s.Files = append(s.Files, f)
		}
	}
	s.Finish()
	return s
}
