package snapshot

import (
	"fmt"
	"slices"
	"strings"
)

// procfsGaps tallies what the procfs collector could not read, for one line
// per kind in Meta.Notes.
type procfsGaps struct {
	process gap // /proc/PID or its task/ unreadable: process skipped
	stat    gap // task/TID/stat unreadable: thread skipped
	state   gap // a state letter this code does not know
	status  gap // MissingStatus
	stack   gap // MissingStack: unreadable
	noStack gap // MissingStack: the kernel gave no frames
	limits  gap // MissingLimit
	fdTable gap // fd/ unreadable: the process's fds are not recorded
	path    gap // MissingPath
	fdStat  gap // no mode, dev, inode
	fdInfo  gap // no flags
}

// gap counts one kind of unreadable field and remembers a few distinct
// reasons.
type gap struct {
	n       int
	reasons []string
}

const maxReasons = 3

var plural = map[string]string{"process": "processes", "thread": "threads", "fd": "fds"}

func (g *gap) add(err error) {
	g.n++
	r := err.Error()
	if len(g.reasons) < maxReasons && !slices.Contains(g.reasons, r) {
		g.reasons = append(g.reasons, r)
	}
}

// notes returns one line per kind of gap, in a fixed order:
//
//	procfs: stack unreadable for 12 threads (permission denied)
func (w *procfsWalk) notes() []string {
	var notes []string
	// so is what the gap costs the snapshot, when the name does not say.
	note := func(g gap, what, unit, so, why string) {
		if g.n == 0 {
			return
		}
		if g.n != 1 {
			unit = plural[unit]
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
	return notes
}
