//go:build linux

package collect

import (
	"bytes"
	"errors"

	"github.com/itersnap/itersnap/snapshot"
)

// Parsers for the /proc files the procfs collector reads. They work on the
// bytes in place and allocate nothing; callers copy what they keep.

// taskStat holds the fields of /proc/PID/task/TID/stat the snapshot records.
type taskStat struct {
	comm  []byte // as procfs prints it; see kernelComm
	state byte   // field 3
	ppid  uint32 // field 4
	flags uint32 // field 9: task->flags
	start uint64 // field 22: start_boottime in clock ticks
}

var errBadStat = errors.New("malformed stat line")

// parseStat parses a stat line (fs/proc/array.c do_task_stat):
//
//	pid (comm) state ppid pgrp session tty_nr tpgid flags ... starttime ...
//
// comm is printed raw and may hold spaces, parentheses and newlines, so it
// ends at the last ')': no later field can contain one.
func parseStat(b []byte) (taskStat, error) {
	var st taskStat
	open := bytes.IndexByte(b, '(')
	end := bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return st, errBadStat
	}
	st.comm = b[open+1 : end]
	rest := b[end+1:]
	field := 2 // the field rest starts after
	for field < 22 {
		rest = bytes.TrimPrefix(rest, []byte{' '})
		end := bytes.IndexAny(rest, " \n")
		if end < 0 {
			end = len(rest)
		}
		if end == 0 {
			return st, errBadStat
		}
		f := rest[:end]
		rest = rest[end:]
		field++
		ok := true
		switch field {
		case 3:
			st.state = f[0]
			ok = len(f) == 1
		case 4:
			var v uint64
			v, ok = parseDecimal(f)
			st.ppid = uint32(v)
		case 9:
			var v uint64
			v, ok = parseDecimal(f)
			st.flags = uint32(v)
		case 22:
			st.start, ok = parseDecimal(f)
		}
		if !ok {
			return st, errBadStat
		}
	}
	return st, nil
}

// PF_WQ_WORKER from include/linux/sched.h.
const pfWQWorker = 0x00000020

// kernelComm returns task->comm as the kernel keeps it (what the BPF
// collector reads) from the name procfs prints. fs/proc/array.c's
// proc_task_name prints more than task->comm for two kinds of kernel thread:
//   - workqueue workers (PF_WQ_WORKER): task->comm followed by '+' or '-'
//     and the last work's description (kernel/workqueue.c wq_worker_comm),
//     "kworker/0:1-events". Worker names ("kworker/%d:%d[H]",
//     "kworker/u%d:%d") contain neither sign; rescuers ("kworker/R-%s")
//     do, and are only truncated.
//   - kthreads named longer than comm: the full name
//     (kernel/kthread.c get_kthread_comm), of which task->comm is the first
//     TASK_COMM_LEN-1 bytes.
func kernelComm(name []byte, flags uint32) []byte {
	if flags&pfWQWorker != 0 && !bytes.HasPrefix(name, []byte("kworker/R-")) {
		if i := bytes.IndexAny(name, "+-"); i >= 0 {
			name = name[:i]
		}
	}
	if len(name) > snapshot.CommLen {
		name = name[:snapshot.CommLen]
	}
	return name
}

// stateFromLetter synthesizes raw state bits from the letter procfs prints,
// choosing bits for which snapshot.Task.StateLetter gives the letter back. procfs
// cannot tell a killable D from an uninterruptible one (TASK_WAKEKILL is not
// reported), so D is marked snapshot.MissingKillable.
func stateFromLetter(c byte) (state, exitState uint32, missing snapshot.Missing, ok bool) {
	switch c {
	case 'R':
		return snapshot.TaskRunning, 0, 0, true
	case 'S':
		return snapshot.TaskInterruptible, 0, 0, true
	case 'D':
		return snapshot.TaskUninterruptible, 0, snapshot.MissingKillable, true
	case 'T':
		// TASK_STOPPED is __TASK_STOPPED | TASK_WAKEKILL.
		return snapshot.TaskStopped | snapshot.TaskWakeKill, 0, 0, true
	case 't':
		return snapshot.TaskTraced, 0, 0, true
	case 'X':
		return 0, snapshot.ExitDead, 0, true
	case 'Z':
		return 0, snapshot.ExitZombie, 0, true
	case 'P':
		return snapshot.TaskParked, 0, 0, true
	case 'I':
		return snapshot.TaskIdle, 0, 0, true
	}
	return 0, 0, 0, false
}

// taskStatus holds the fields of /proc/PID/task/TID/status the snapshot
// records.
type taskStatus struct {
	tgid     uint32
	euid     uint32
	switches uint64 // voluntary + nonvoluntary context switches
	nsTgid   uint32 // the last field of NStgid: the pid in the process's own namespace
}

var errBadStatus = errors.New("malformed status")

// parseStatus reads Tgid, the effective uid (second value of Uid:, after the
// real uid) and the two context switch counts of this one thread
// (fs/proc/array.c task_context_switch_counts prints p->nvcsw, p->nivcsw).
func parseStatus(b []byte) (taskStatus, error) {
	var st taskStatus
	const (
		haveTgid = 1 << iota
		haveUID
		haveVol
		haveNonvol
		haveAll = haveTgid | haveUID | haveVol | haveNonvol
	)
	have := 0
	for len(b) > 0 && have != haveAll {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		key, val, found := bytes.Cut(line, []byte{':'})
		if !found {
			continue
		}
		val = bytes.TrimLeft(val, " \t")
		var ok bool
		var v uint64
		switch string(key) { // no allocation: the compiler compares in place
		case "Tgid":
			v, ok = parseDecimal(val)
			st.tgid = uint32(v)
			have |= haveTgid
		case "Uid":
			// real, effective, saved, fs
			i := bytes.IndexByte(val, '\t')
			if i < 0 {
				return st, errBadStatus
			}
			v, ok = parseDecimal(bytes.TrimLeft(val[i:], " \t"))
			st.euid = uint32(v)
			have |= haveUID
		case "voluntary_ctxt_switches":
			v, ok = parseDecimal(val)
			st.switches += v
			have |= haveVol
		case "nonvoluntary_ctxt_switches":
			v, ok = parseDecimal(val)
			st.switches += v
			have |= haveNonvol
		case "NStgid":
			// One tgid per pid namespace level, outermost first
			// (fs/proc/array.c task_state); Linux 4.1+.
			fields := bytes.Fields(val)
			if len(fields) == 0 {
				return st, errBadStatus
			}
			v, ok = parseDecimal(fields[len(fields)-1])
			st.nsTgid = uint32(v)
		default:
			continue
		}
		if !ok {
			return st, errBadStatus
		}
	}
	if have != haveAll {
		return st, errBadStatus
	}
	return st, nil
}

var errNoOpenFilesLimit = errors.New(`no "Max open files" line`)

// parseNoFileLimit returns the soft limit on the "Max open files" line of
// /proc/PID/limits (fs/proc/base.c proc_pid_limits):
//
//	Max open files            1024                 524288               files
func parseNoFileLimit(b []byte) (uint64, error) {
	const name = "Max open files"
	i := bytes.Index(b, []byte(name))
	if i < 0 {
		return 0, errNoOpenFilesLimit
	}
	rest := bytes.TrimLeft(b[i+len(name):], " ")
	end := bytes.IndexAny(rest, " \n")
	if end < 0 {
		end = len(rest)
	}
	soft := rest[:end]
	if string(soft) == "unlimited" {
		return snapshot.NoLimit, nil
	}
	v, ok := parseDecimal(soft)
	if !ok {
		return 0, errNoOpenFilesLimit
	}
	return v, nil
}

// appendStackFrames appends the frames of /proc/PID/stack, leaf first as the
// file lists them. Each line is "[<0>] %pB" (fs/proc/base.c proc_pid_stack;
// the address is always printed as 0): the frame is what follows "] ",
// module suffix included: "nfs_wait_bit_killable+0x1c/0x80 [nfs]".
func appendStackFrames(dst snapshot.Stack, b []byte) snapshot.Stack {
	forLines(b, func(line []byte) {
		if bytes.HasPrefix(line, []byte("[<")) {
			if i := bytes.Index(line, []byte("] ")); i >= 0 {
				line = line[i+2:]
			}
		}
		if len(line) > 0 {
			dst = append(dst, string(line))
		}
	})
	return dst
}

var errNoFlags = errors.New(`no "flags:" line`)

// parseFDInfoFlags returns the octal "flags:" value of /proc/PID/fdinfo/N
// (fs/proc/fd.c seq_show: f_flags, plus O_CLOEXEC from the fd table).
func parseFDInfoFlags(b []byte) (uint32, error) {
	const key = "flags:"
	i := bytes.Index(b, []byte(key))
	if i < 0 {
		return 0, errNoFlags
	}
	rest := bytes.TrimLeft(b[i+len(key):], " \t")
	var v uint64
	n := 0
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '7'; n++ {
		v = v<<3 | uint64(rest[n]-'0')
	}
	if n == 0 || v > 1<<32-1 {
		return 0, errNoFlags
	}
	return uint32(v), nil
}

var errNoCgroupV2 = errors.New(`no "0::" line`)

// parseCgroupV2 returns the cgroup v2 path of /proc/PID/cgroup (the "0::"
// line; kernel/cgroup/cgroup.c proc_cgroup_show), which hybrid hosts print
// after the v1 hierarchies' lines.
func parseCgroupV2(b []byte) (string, error) {
	for len(b) > 0 {
		line := b
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			line, b = b[:i], b[i+1:]
		} else {
			b = nil
		}
		if p, ok := bytes.CutPrefix(line, []byte("0::")); ok {
			return string(p), nil
		}
	}
	return "", errNoCgroupV2
}
