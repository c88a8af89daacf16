package diff

import (
	"fmt"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// Builders for the recorded scenarios in testdata/diff. The scenarios are
// written in Go so that a reader sees why each record is there; `go test
// -update` writes them out as JSON, and the tests read the JSON back.

var t0 = time.Date(2025, 3, 14, 9, 0, 0, 0, time.UTC)

const (
	bootID      = "3f6c1d0e-8a52-4c1b-9d7e-2b1f0c9a4e11"
	otherBootID = "a91e44b7-05d3-4f6a-b2c8-7d3e9f1a6c20"
)

// Raw task->__state values.
const (
	stR  = snapshot.TaskRunning
	stS  = snapshot.TaskInterruptible
	stD  = snapshot.TaskUninterruptible
	stDK = snapshot.TaskKillable // D, killable
	stI  = snapshot.TaskIdle
)

const pfKthread = 0x00200000

// sec is a start time s seconds after boot, in ns.
func sec(s float64) uint64 { return uint64(s * 1e9) }

// Kernel stacks, leaf first, as %pB prints them.
var (
	fsyncStack = snapshot.Stack{
		"io_schedule+0x46/0x70",
		"bit_wait_io+0x11/0x60",
		"__wait_on_bit+0x4a/0x120",
		"out_of_line_wait_on_bit+0x8c/0xb0",
		"jbd2_log_wait_commit+0xac/0x120 [jbd2]",
		"ext4_sync_file+0x139/0x390",
		"do_fsync+0x38/0x70",
		"__x64_sys_fsync+0x10/0x20",
		"do_syscall_64+0x5b/0x110",
		"entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	}
	readStack = snapshot.Stack{
		"io_schedule+0x46/0x70",
		"folio_wait_bit_common+0x13d/0x350",
		"filemap_get_pages+0x5f2/0x650",
		"filemap_read+0xe6/0x330",
		"vfs_read+0x23c/0x310",
		"ksys_read+0x6b/0xf0",
		"do_syscall_64+0x5b/0x110",
		"entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	}
	nfsStack = snapshot.Stack{
		"nfs_wait_bit_killable+0x1c/0x80 [nfs]",
		"__wait_on_bit+0x4a/0x120",
		"out_of_line_wait_on_bit+0x8c/0xb0",
		"nfs_lock_and_join_requests+0x11d/0x2b0 [nfs]",
		"nfs_updatepage+0x1a8/0x8e0 [nfs]",
		"nfs_write_end+0x9c/0x220 [nfs]",
		"generic_perform_write+0x121/0x270",
		"nfs_file_write+0x189/0x2b0 [nfs]",
		"vfs_write+0x2a5/0x480",
		"ksys_write+0x6b/0xf0",
		"do_syscall_64+0x5b/0x110",
		"entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	}
	epollStack = snapshot.Stack{
		"ep_poll+0x2b8/0x3b0",
		"do_epoll_wait+0xb6/0xd0",
		"__x64_sys_epoll_wait+0x5f/0xf0",
		"do_syscall_64+0x5b/0x110",
		"entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	}
	futexStack = snapshot.Stack{
		"futex_wait_queue+0x63/0x90",
		"__futex_wait+0x146/0x1c0",
		"futex_wait+0x79/0x120",
		"do_futex+0x105/0x1b0",
		"__x64_sys_futex+0x68/0x1e0",
		"do_syscall_64+0x5b/0x110",
		"entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	}
	kworkerStack = snapshot.Stack{
		"worker_thread+0x1a5/0x3c0",
		"kthread+0xe8/0x120",
		"ret_from_fork+0x34/0x50",
		"ret_from_fork_asm+0x1b/0x30",
	}
	nanosleepStack = snapshot.Stack{
		"hrtimer_nanosleep+0xc9/0x1b0",
		"common_nsleep+0x48/0x60",
		"__x64_sys_clock_nanosleep+0xd2/0x140",
		"do_syscall_64+0x5b/0x110",
		"entry_SYSCALL_64_after_hwframe+0x76/0x7e",
	}
	shrinkStack = snapshot.Stack{
		"shrink_node+0x3a1/0x6f0",
		"do_try_to_free_pages+0xd2/0x360",
		"try_to_free_pages+0xd9/0x1b0",
		"__alloc_pages_slowpath+0x3b2/0xd80",
		"__alloc_pages+0x2b1/0x300",
	}
)

type snapBuilder struct {
	s      *snapshot.Snapshot
	stacks *snapshot.Interner
}

// newSnap starts snapshot id taken at t0+at, on bootID, by the BPF collector.
func newSnap(id uint64, at time.Duration) *snapBuilder {
	return &snapBuilder{
		s: &snapshot.Snapshot{ID: id, Meta: snapshot.Meta{
			Time: t0.Add(at), Hostname: "db1", Kernel: "6.8.0-51-generic",
			BootID: bootID, Collector: "bpf", Duration: 40 * time.Millisecond,
		}},
		stacks: snapshot.NewInterner(),
	}
}

// thread is a user thread with a 1024 fd limit, child of pid 1.
func thread(pid, tid uint32, comm string, state uint32, start, switches uint64) snapshot.Task {
	return snapshot.Task{
		PID: pid, TID: tid, PPID: 1, Comm: comm,
		State: state, StartTime: start, Switches: switches,
		UID: 1000, NoFileLimit: 1024,
	}
}

func kthread(pid uint32, comm string, state uint32, start, switches uint64) snapshot.Task {
	t := thread(pid, pid, comm, state, start, switches)
	t.PPID, t.UID, t.Flags = 2, 0, pfKthread
	return t
}

// task adds t with stack (none when nil).
func (b *snapBuilder) task(t snapshot.Task, stack snapshot.Stack) *snapBuilder {
	t.Stack = b.stacks.Intern(stack)
	if t.Stack < 0 {
		t.Missing |= snapshot.MissingStack
	}
	b.s.Tasks = append(b.s.Tasks, t)
	return b
}

// files adds fds of process pid.
func (b *snapBuilder) files(pid uint32, fs ...snapshot.File) *snapBuilder {
	for _, f := range fs {
		f.PID = pid
		b.s.Files = append(b.s.Files, f)
	}
	return b
}

func (b *snapBuilder) build() *snapshot.Snapshot {
	b.s.Stacks = b.stacks.Stacks
	b.s.Sort()
	b.s.Finish()
	return b.s
}

const oRDWRCloexec = 0o2000002

func socketFD(fd uint32, ino uint64) snapshot.File {
	return snapshot.File{FD: fd, Mode: 0o140777, Flags: oRDWRCloexec, Dev: 8, Inode: ino, Path: fmt.Sprintf("socket:[%d]", ino)}
}

func pipeFD(fd uint32, ino uint64) snapshot.File {
	return snapshot.File{FD: fd, Mode: 0o010600, Flags: 0o2000000, Dev: 14, Inode: ino, Path: fmt.Sprintf("pipe:[%d]", ino)}
}

func fileFD(fd uint32, path string, ino uint64) snapshot.File {
	return snapshot.File{FD: fd, Mode: 0o100640, Flags: 0o2002001, Dev: 0x801, Inode: ino, Path: path}
}

func anonFD(fd uint32, name string, ino uint64) snapshot.File {
	return snapshot.File{FD: fd, Mode: 0o600, Flags: oRDWRCloexec, Dev: 15, Inode: ino, Path: "anon_inode:[" + name + "]"}
}

// stdio is fds 0-2 on /dev/null.
func stdio() []snapshot.File {
	var fs []snapshot.File
	for fd := range uint32(3) {
		fs = append(fs, snapshot.File{FD: fd, Mode: 0o020666, Flags: 0o100002, Dev: 6, Inode: 5, Path: "/dev/null"})
	}
	return fs
}
