//go:build linux

package collect

import (
	"fmt"
	"slices"
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
