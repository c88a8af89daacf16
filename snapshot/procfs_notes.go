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

func (w *procfsWalk) notes() []string {
	var notes []string
	note := func(g gap, what, unit, why string) {
		if g.n == 0 {
			return
		}
		if g.n != 1 {
			unit = plural[unit]
		}
		if why == "" {
			why = strings.Join(g.reasons, "; ")
		}
		notes = append(notes, fmt.Sprintf("procfs: %s for %d %s (%s)", what, g.n, unit, why))
	}
	g := &w.gaps
	note(g.process, "unreadable, skipped", "process", "")
	note(g.stat, "stat unreadable, skipped", "thread", "")
	note(g.state, "unknown state letter", "thread", "")
	note(g.status, "status unreadable (no uid, no switch counts)", "thread", "")
	note(g.stack, "stack unreadable", "thread", "")
	note(g.noStack, "no kernel stack", "thread", "running on another CPU, or exiting")
	note(g.limits, "limits unreadable", "process", "")
	note(g.fdTable, "fds unreadable", "process", "")
	note(g.path, "fd path unreadable", "fd", "")
	note(g.fdStat, "fd stat failed (no mode, device, inode)", "fd", "")
	note(g.fdInfo, "fdinfo unreadable (no flags)", "fd", "")
	return notes
}
