//go:build linux

package collect

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/itersnap/itersnap/snapshot"
	"golang.org/x/sys/unix"
)

// Procfs collects from /proc: the fallback when BPF cannot be loaded, the
// oracle the BPF collector is tested against, and the baseline it is
// benchmarked against. It records the same fields as the BPF collector,
// except whether a D wait is killable (snapshot.MissingKillable).
//
// Per thread it reads task/TID/stat, task/TID/status and task/TID/stack; per
// process limits and, per fd, the fd link, a stat(2) through it and
// fdinfo/N. Whatever it cannot read is marked in the record's snapshot.Missing bits
// and summarized in snapshot.Meta.Notes; tasks and fds that go away while it reads
// are left out, as if it had looked a moment later.
type Procfs struct {
	// Root is where procfs is mounted; empty means /proc. Tests point it at a
	// fake tree.
	Root string
}

var _ Collector = Procfs{}

// Name implements Collector.
func (Procfs) Name() string { return "procfs" }

// procfsTickNs converts stat's starttime to ns. fs/proc/array.c prints
// nsec_to_clock_t(task->start_boottime), in USER_HZ ticks, and USER_HZ is
// 100 on every architecture Go runs Linux on. The BPF collector records
// start_boottime in ns; truncated to 10 ms it equals ticks*procfsTickNs.
const procfsTickNs = 10_000_000

// Collect implements Collector. Only a failure to read the procfs root
// itself is an error.
func (p Procfs) Collect(ctx context.Context, f snapshot.Filter) (*snapshot.Snapshot, error) {
	start := time.Now()
	root := p.Root
	if root == "" {
		root = "/proc"
	}
	rootfd, err := unix.Open(root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("procfs: open %s: %w", root, err)
	}
	defer unix.Close(rootfd)

	s := &snapshot.Snapshot{Meta: snapshot.Meta{Time: start, Collector: "procfs", Filter: f}}
	s.Meta.Hostname, s.Meta.Kernel, s.Meta.BootID, s.Meta.Notes = HostMeta()

	w := newProcfsWalk(rootfd, f.ByTask())
	var pids []uint32
	if len(f.Comms) == 0 && len(f.PIDs) > 0 {
		// Only the named processes can match: no need to list /proc.
		pids = slices.Clone(f.PIDs)
		slices.Sort(pids)
		pids = slices.Compact(pids)
	} else {
		pids, err = listNumbers(rootfd, ".", nil, w.dirBuf)
		if err != nil {
			return nil, fmt.Errorf("procfs: list %s: %w", root, err)
		}
		// In pid order, as the kernel's iterators go, so that stacks are
		// interned in a stable order.
		slices.Sort(pids)
	}
	for _, pid := range pids {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		w.process(pid)
	}

	s.Tasks, s.Files, s.Stacks = w.tasks, w.files, w.stacks.Stacks
	s.Meta.Notes = append(s.Meta.Notes, cgroupIDs(s.Tasks)...)
	keepCgroups(s, f)
	s.Meta.Notes = append(s.Meta.Notes, w.notes()...)
	s.Sort()
	s.Finish()
	if s.Meta.Partial = w.partial(s.Meta.Threads, s.Meta.Processes); s.Meta.Partial != "" {
		s.Meta.Notes = append(s.Meta.Notes, "partial: "+s.Meta.Partial)
	}
	s.Meta.Duration = time.Since(start)
	return s, nil
}

// procfsWalk is one Collect's state: results, reused buffers and the tally
// of what could not be read.
type procfsWalk struct {
	filter snapshot.Filter
	root   int // dirfd of the procfs root

	tasks []snapshot.Task
	files []snapshot.File

	stacks *snapshot.Interner
	// rawStacks maps a stack file's text to its interned index, so that a
	// stack seen before costs one map lookup and no parsing.
	rawStacks map[string]int32

	buf     []byte // file contents
	linkBuf []byte // readlink targets
	dirBuf  []byte // getdents records
	tids    []uint32
	fds     []uint32

	net procfsNet

	gaps procfsGaps
	// deniedFDs counts processes whose fd links could not be read
	// (their fds are recorded without paths).
	deniedFDs int
}

func newProcfsWalk(rootfd int, f snapshot.Filter) *procfsWalk {
	return &procfsWalk{
		filter:    f,
		root:      rootfd,
		stacks:    snapshot.NewInterner(),
		rawStacks: map[string]int32{},
		buf:       make([]byte, 0, 16<<10),
		net:       procfsNet{read: map[uint64]bool{}, socks: map[uint64]snapshot.Socket{}},
		dirBuf:    make([]byte, 32<<10),
	}
}

// process records the threads and fds of one thread group, if the filter
// keeps them and the process is still there once they are read.
func (w *procfsWalk) process(pid uint32) {
	f := w.filter
	pidMatch := slices.Contains(f.PIDs, pid)
	if !f.Empty() && len(f.Comms) == 0 && !pidMatch {
		return
	}
	pidName := strconv.FormatUint(uint64(pid), 10)
	pidfd, err := openDirAt(w.root, pidName)
	if err != nil {
		if !vanished(err) {
			w.gaps.process.add(err)
		}
		return
	}
	defer unix.Close(pidfd)
	taskfd, err := openDirAt(pidfd, "task")
	if err != nil {
		if !vanished(err) {
			w.gaps.process.add(err)
		}
		return
	}
	defer unix.Close(taskfd)
	w.tids, err = listNumbers(taskfd, ".", w.tids[:0], w.dirBuf)
	if err != nil {
		if !vanished(err) {
			w.gaps.process.add(err)
		}
		return
	}
	slices.Sort(w.tids)

	// The process's name is its leader's (task/PID/stat holds what
	// /proc/PID/stat does), so the filter can be decided before the other
	// threads are read.
	leader, err := w.stat(taskfd, pidName)
	if err != nil {
		return
	}
	leaderComm := string(kernelComm(leader.comm, leader.flags))
	leader.comm = nil // points into w.buf, which the next read reuses
	all := f.Empty() || pidMatch || slices.ContainsFunc(f.Comms, func(c string) bool { return snapshot.TruncComm(c) == leaderComm })
	if !all && len(f.Comms) == 0 {
		return
	}

	firstTask, firstFile := len(w.tasks), len(w.files)
	drop := func() { w.tasks, w.files = w.tasks[:firstTask], w.files[:firstFile] }
	for _, tid := range w.tids {
		tidName, st, comm := pidName, leader, leaderComm
		if tid != pid {
			tidName = strconv.FormatUint(uint64(tid), 10)
			if st, err = w.stat(taskfd, tidName); err != nil {
				continue
			}
			if c := kernelComm(st.comm, st.flags); string(c) != leaderComm {
				comm = string(c)
			}
		}
		if !all && !f.Match(pid, comm, leaderComm) {
			continue
		}
		t, gone := w.thread(taskfd, pid, tid, tidName, st, comm)
		if gone {
			if tid == pid {
				// The leader stays until the whole group is reaped: the
				// process is gone (or pid named a thread, not a process).
				drop()
				return
			}
			continue
		}
		w.tasks = append(w.tasks, t)
	}
	tasks := w.tasks[firstTask:]
	if len(tasks) == 0 {
		return
	}

	// RLIMIT_NOFILE is per process (signal_struct).
	limit, err := readAt(pidfd, "limits", &w.buf)
	var nofile uint64
	if err == nil {
		nofile, err = parseNoFileLimit(limit)
	}
	switch {
	case err == nil:
	case vanished(err):
		drop()
		return
	default:
		w.gaps.limits.add(err)
	}
	for i := range tasks {
		tasks[i].NoFileLimit = nofile
		if err != nil {
			tasks[i].Missing |= snapshot.MissingLimit
		}
	}

	// The fd table, once per process, filtered as the BPF collector does:
	// by the comm of the task that owns the table and its leader's.
	owner, ownerComm := pidName, leaderComm
	dirfd, fdDir, infoDir := pidfd, "fd", "fdinfo"
	if leader.state == 'Z' || leader.state == 'X' {
		// An exited leader has no files (exit_files); its live threads
		// still share a table, which kernel/bpf/task_iter.c visits
		// through the first of them. So does /proc/PID/task/TID/fd.
		for _, t := range tasks {
			if t.TID != pid && t.ExitState == 0 {
				owner, ownerComm = strconv.FormatUint(uint64(t.TID), 10), t.Comm
				dirfd, fdDir, infoDir = taskfd, owner+"/fd", owner+"/fdinfo"
				break
			}
		}
	}
	if f.Match(pid, ownerComm, leaderComm) && w.fdTable(pid, dirfd, fdDir, infoDir) {
		drop()
		return
	}
	w.sockets(pidfd, w.files[firstFile:])
}

// sockets fills the Socket of the process's socket fds from the socket
// tables of its network namespace.
func (w *procfsWalk) sockets(pidfd int, files []snapshot.File) {
	var netns uint64
	var nsErr error
	for i := range files {
		f := &files[i]
		if f.Kind() != "socket" {
			continue
		}
		if netns == 0 && nsErr == nil {
			netns, nsErr = w.netns(pidfd)
			if nsErr == nil {
				nsErr = w.net.namespace(pidfd, netns, &w.buf)
			}
			if nsErr != nil {
				w.gaps.netns.add(nsErr)
			}
		}
		s, ok := w.net.socks[f.Inode]
		if !ok {
			f.Missing |= snapshot.MissingSocket
			w.gaps.socket.n++
			continue
		}
		f.Socket = &s
	}
}

// netns returns the inode of the process's network namespace, from the
// ns/net link ("net:[4026531840]").
func (w *procfsWalk) netns(pidfd int) (uint64, error) {
	link, err := readlinkAt(pidfd, "ns/net", &w.linkBuf)
	if err != nil {
		return 0, err
	}
	digits, ok := bytes.CutPrefix(link, []byte("net:["))
	digits, ok2 := bytes.CutSuffix(digits, []byte("]"))
	v, ok3 := parseDecimal(digits)
	if !ok || !ok2 || !ok3 {
		return 0, fmt.Errorf("ns/net is %q", link)
	}
	return v, nil
}

// stat reads and parses task/TID/stat. Errors other than the thread's
// disappearance are tallied; either way the thread is skipped.
func (w *procfsWalk) stat(taskfd int, tidName string) (taskStat, error) {
	b, err := readAt(taskfd, tidName+"/stat", &w.buf)
	if err != nil {
		if !vanished(err) {
			w.gaps.stat.add(err)
		}
		return taskStat{}, err
	}
	st, err := parseStat(b)
	if err != nil {
		w.gaps.stat.add(err)
	}
	return st, err
}

// thread builds the task record from its stat and reads its status and
// stack. gone reports that the thread went away meanwhile (or, for a
// leader, that pid is a thread id and not a process).
func (w *procfsWalk) thread(taskfd int, pid, tid uint32, tidName string, st taskStat, comm string) (t snapshot.Task, gone bool) {
	t = snapshot.Task{
		PID: pid, TID: tid, PPID: st.ppid, Comm: comm,
		Flags:     st.flags,
		StartTime: st.start * procfsTickNs,
		Stack:     -1,
	}
	var ok bool
	t.State, t.ExitState, t.Missing, ok = stateFromLetter(st.state)
	if !ok {
		w.gaps.state.add(fmt.Errorf("%q", st.state))
	}

	b, err := readAt(taskfd, tidName+"/status", &w.buf)
	var status taskStatus
	if err == nil {
		status, err = parseStatus(b)
	}
	switch {
	case err == nil:
		if tid == pid && status.tgid != pid {
			return t, true
		}
		t.UID, t.Switches, t.NSPID = status.euid, status.switches, status.nsTgid
	case vanished(err) && !stillThere(taskfd, tidName):
		return t, true
	default:
		t.Missing |= snapshot.MissingStatus
		w.gaps.status.add(err)
	}

	b, err = readAt(taskfd, tidName+"/cgroup", &w.buf)
	if err == nil {
		t.Cgroup, err = parseCgroupV2(b)
	}
	switch {
	case err == nil:
	case vanished(err) && !stillThere(taskfd, tidName):
		return t, true
	default:
		t.Missing |= snapshot.MissingCgroup
		w.gaps.cgroup.add(err)
	}

	b, err = readAt(taskfd, tidName+"/stack", &w.buf)
	switch {
	case err == nil:
		t.Stack = w.intern(b)
		if t.Stack < 0 {
			// stack_trace_save_tsk gives nothing for a task running on
			// another CPU or one whose stack is gone (exiting, zombie).
			t.Missing |= snapshot.MissingStack
			w.gaps.noStack.n++
		}
	case vanished(err) && !stillThere(taskfd, tidName):
		return t, true
	default:
		t.Missing |= snapshot.MissingStack
		w.gaps.stack.add(err)
	}
	return t, false
}

// intern returns the Stacks index of a stack file's text, -1 when empty.
func (w *procfsWalk) intern(text []byte) int32 {
	if i, ok := w.rawStacks[string(text)]; ok {
		return i
	}
	i := w.stacks.Intern(appendStackFrames(nil, text))
	w.rawStacks[string(text)] = i
	return i
}

// fdTable records the fds in dirfd's fdDir. gone reports that the process
// went away meanwhile.
func (w *procfsWalk) fdTable(pid uint32, dirfd int, fdDir, infoDir string) (gone bool) {
	fdfd, err := openDirAt(dirfd, fdDir)
	if err != nil {
		if vanished(err) {
			return true
		}
		w.gaps.fdTable.add(err)
		return false
	}
	defer unix.Close(fdfd)
	w.fds, err = listNumbers(fdfd, ".", w.fds[:0], w.dirBuf)
	if err != nil {
		if vanished(err) {
			return true
		}
		w.gaps.fdTable.add(err)
		return false
	}
	if len(w.fds) == 0 {
		return false
	}
	infofd, infoErr := openDirAt(dirfd, infoDir)
	if infoErr == nil {
		defer unix.Close(infofd)
	} else if vanished(infoErr) {
		return true
	}
	slices.Sort(w.fds)

	// Reading through an fd link needs ptrace access to the process
	// (fs/proc/fd.c proc_fd_access_allowed), granted or refused for the
	// whole table: once refused, the other fds are recorded without trying.
	var denied error
	for _, fd := range w.fds {
		file := snapshot.File{PID: pid, FD: fd}
		if denied != nil {
			file.Missing |= snapshot.MissingPath
			w.gaps.path.add(denied)
			w.gaps.fdStat.add(denied)
			w.gaps.fdInfo.add(denied)
			w.files = append(w.files, file)
			continue
		}

		// An fd closed while we read is left out: ENOENT from any of
		// the three reads.
		name := strconv.FormatUint(uint64(fd), 10)
		link, err := readlinkAt(fdfd, name, &w.linkBuf)
		switch {
		case err == nil:
			file.Path = string(link)
		case vanished(err):
			continue
		default:
			file.Missing |= snapshot.MissingPath
			w.gaps.path.add(err)
			if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
				denied = err
				w.deniedFDs++
			}
		}

		// stat(2) follows the magic link to the open file's inode.
		var st unix.Stat_t
		err = unix.Fstatat(fdfd, name, &st, 0)
		switch {
		case err == nil:
			file.Mode, file.Dev, file.Inode = st.Mode, st.Dev, st.Ino
		case vanished(err):
			continue
		default:
			w.gaps.fdStat.add(err)
		}

		err = infoErr
		if err == nil {
			var b []byte
			if b, err = readAt(infofd, name, &w.buf); err == nil {
				file.Flags, err = parseFDInfoFlags(b)
			}
		}
		switch {
		case err == nil:
		case vanished(err) && err != infoErr:
			continue
		default:
			w.gaps.fdInfo.add(err)
		}
		w.files = append(w.files, file)
	}
	return false
}
