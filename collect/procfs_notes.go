//go:build linux

package collect

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// procfsGaps tallies what the procfs collector could not read, for one line
// per kind in snapshot.Meta.Notes.
type procfsGaps struct {
	process procfsGap // /proc/PID or its task/ unreadable: process skipped
	stat    procfsGap // task/TID/stat unreadable: thread skipped
	state   procfsGap // a state letter this code does not know
	status  procfsGap // snapshot.MissingStatus
	stack   procfsGap // MissingStack: unreadable
	noStack procfsGap // MissingStack: the kernel gave no frames
	limits  procfsGap // snapshot.MissingLimit
	fdTable procfsGap // fd/ unreadable: the process's fds are not recorded
	path    procfsGap // snapshot.MissingPath
	fdStat  procfsGap // no mode, dev, inode
	fdInfo  procfsGap // no flags
	cgroup  procfsGap // snapshot.MissingCgroup
	netns   procfsGap // a network namespace's socket tables unreadable
	socket  procfsGap // snapshot.MissingSocket: not in the namespace's tables
}

// procfsGap counts one kind of unreadable field and remembers a few distinct
// reasons.
type procfsGap struct {
	n       int
	reasons []string
}

const gapMaxReasons = 3

var gapUnits = map[string]string{"process": "processes", "thread": "threads", "fd": "fds"}

func (g *procfsGap) add(err error) {
	g.n++
	r := err.Error()
	if len(g.reasons) < gapMaxReasons && !slices.Contains(g.reasons, r) {
		g.reasons = append(g.reasons, r)
	}
}

// notes returns one line per kind of gap, in a fixed order:
//
//	procfs: stack unreadable for 12 threads (permission denied)
func (w *procfsWalk) notes() []string {
	var notes []string
	// so is what the procfsGap costs the snapshot, when the name does not say.
	note := func(g procfsGap, what, unit, so, why string) {
		if g.n == 0 {
			return
		}
		if g.n != 1 {
			unit = gapUnits[unit]
		}
		if why == "" {
			why = strings.Join(g.reasons, "; ")
		}
		notes = append(notes, fmt.Sprintf("procfs: %s for %d %s%s (%s)", what, g.n, unit, so, why))
	}
	g := &w.gaps
	note(g.process, "directory unreadable", "process", ", left out", "")
	note(g.stat, "stat unreadable", "thread", ", left out", "")
	note(g.state, "unknown state letter", "thread", ", recorded as R", "")
	note(g.status, "status unreadable", "thread", ": no uid, no switch counts", "")
	note(g.stack, "stack unreadable", "thread", "", "")
	note(g.noStack, "no kernel stack", "thread", "", "running on another CPU, or exiting")
	note(g.limits, "limits unreadable", "process", "", "")
	note(g.fdTable, "fd table unreadable", "process", ": no fds recorded", "")
	note(g.path, "fd path unreadable", "fd", "", "")
	note(g.fdStat, "fd stat failed", "fd", ": no mode, device, inode", "")
	note(g.fdInfo, "fdinfo unreadable", "fd", ": no flags", "")
	note(g.cgroup, "cgroup unreadable", "thread", "", "")
	note(g.netns, "socket tables unreadable", "process", "", "")
	note(g.socket, "socket not in /proc/PID/net", "fd", "", "netlink, packet or another family, or a socket of another network namespace")
	return notes
}

// partial summarizes, for snapshot.Meta.Partial, what was refused: the
// stacks (fs/proc/base.c proc_pid_stack wants CAP_SYS_ADMIN, so a user
// other than root reads no stack at all, even of its own threads), fd
// tables and fd links (ptrace access: other users' processes), and /proc
// directories. threads and processes are what the snapshot holds.
func (w *procfsWalk) partial(threads, processes int) string {
	var parts []string
	g := &w.gaps
	if g.stack.n > 0 {
		parts = append(parts, fmt.Sprintf("no stacks for %s of %s threads", groupDigits(g.stack.n), groupDigits(threads)))
	}
	if n := g.fdTable.n + w.deniedFDs; n > 0 {
		parts = append(parts, fmt.Sprintf("fds of %s of %s processes", groupDigits(n), groupDigits(processes)))
	}
	if g.process.n > 0 {
		parts = append(parts, fmt.Sprintf("%s processes left out (/proc/PID unreadable)", groupDigits(g.process.n)))
	}
	return strings.Join(parts, ", ")
}

// groupDigits writes n with commas between groups of three digits.
func groupDigits(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
