package diff

import (
	"cmp"
	"slices"
)

// restarts pairs processes gone since A with processes new at B: first by
// pid (the same pid with a new start time), then by comm and parent (a
// service restarted under a new pid). Kernel threads come and go by design
// and own no fds; they are left out.
func (c *comparison) restarts() []Restart {
	a, b := c.views[0], c.views[len(c.views)-1]
	var gone, born []*process
	for key, p := range a.procs {
		if _, ok := b.procs[key]; !ok && !p.leader.KernelThread() {
			gone = append(gone, p)
		}
	}
	for key, p := range b.procs {
		if _, ok := a.procs[key]; !ok && !p.leader.KernelThread() {
			born = append(born, p)
		}
	}
	// Map iteration order is random; pairing must not be.
	byAge := func(x, y *process) int {
		return cmp.Or(cmp.Compare(x.leader.StartTime, y.leader.StartTime), cmp.Compare(x.key.PID, y.key.PID))
	}
	slices.SortFunc(gone, byAge)
	slices.SortFunc(born, byAge)

	var out []Restart
	paired := map[*process]bool{}
	pair := func(old, now *process) {
		paired[old], paired[now] = true, true
		out = append(out, Restart{
			PID: now.key.PID, OldPID: old.key.PID,
			Comm: now.comm(), OldComm: old.comm(),
			PPID:     now.leader.PPID,
			OldStart: old.leader.StartTime, NewStart: now.leader.StartTime,
		})
	}

	bornByPID := map[uint32]*process{}
	for _, p := range born {
		bornByPID[p.key.PID] = p
	}
	for _, old := range gone {
		if p, ok := bornByPID[old.key.PID]; ok {
			pair(old, p)
		}
	}

	type service struct {
		comm string
		ppid uint32
	}
	waiting := map[service][]*process{}
	for _, p := range born {
		if !paired[p] {
			s := service{p.comm(), p.leader.PPID}
			waiting[s] = append(waiting[s], p)
		}
	}
	for _, old := range gone {
		if paired[old] {
			continue
		}
		s := service{old.comm(), old.leader.PPID}
		if next := waiting[s]; len(next) > 0 {
			pair(old, next[0])
			waiting[s] = next[1:]
		}
	}
	return out
}
