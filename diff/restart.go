package diff

import (
	"cmp"
	"slices"
)

// restarts pairs processes that went with processes new at B: first by pid
// (the same pid with a new start time), then by comm and parent (a
// service restarted under a new pid). Only a process seen in two or more
// snapshots counts as gone: a service lives across takes, while a command
// run from a shell loop is seen once and is not restarted by the next run.
// Kernel threads come and go by design and own no fds; they are not
// tracked.
func (w *Walk) restarts() []Restart {
	b := w.last.i
	var gone, born []*life
	for _, l := range w.lives {
		switch {
		case l.last < b && l.count >= 2:
			gone = append(gone, l)
		case l.last == b && l.first > 0:
			born = append(born, l)
		}
	}
	// Map iteration order is random; pairing must not be.
	byAge := func(x, y *life) int {
		return cmp.Or(cmp.Compare(x.start, y.start), cmp.Compare(x.pid, y.pid))
	}
	slices.SortFunc(gone, byAge)
	slices.SortFunc(born, byAge)

	var out []Restart
	paired := map[*life]bool{}
	pair := func(old, now *life) {
		paired[old], paired[now] = true, true
		out = append(out, Restart{
			PID: now.pid, OldPID: old.pid,
			Comm: now.comm, OldComm: old.comm,
			PPID:     now.ppid,
			OldStart: old.start, NewStart: now.start,
		})
	}

	bornByPID := map[uint32]*life{}
	for _, l := range born {
		if _, ok := bornByPID[l.pid]; !ok {
			bornByPID[l.pid] = l
		}
	}
	for _, old := range gone {
		if l, ok := bornByPID[old.pid]; ok && !paired[l] && l.start > old.start {
			pair(old, l)
		}
	}

	type service struct {
		comm string
		ppid uint32
	}
	waiting := map[service][]*life{}
	for _, l := range born {
		if !paired[l] {
			s := service{l.comm, l.ppid}
			waiting[s] = append(waiting[s], l)
		}
	}
	for _, old := range gone {
		if paired[old] {
			continue
		}
		s := service{old.comm, old.ppid}
		if next := waiting[s]; len(next) > 0 {
			pair(old, next[0])
			waiting[s] = next[1:]
		}
	}
	return out
}
