package diff

import (
	"github.com/itersnap/itersnap/snapshot"
)

// unchanged finds threads whose stack is recorded and identical in every
// snapshot of the range, idle ones included: Compare drops those unless
// asked to keep them.
func (c *comparison) unchanged() []UnchangedFinding {
	a, b := c.views[0], c.views[len(c.views)-1]
	span := b.snap.Meta.Time.Sub(a.snap.Meta.Time)
	var out []UnchangedFinding
	for key, tb := range b.threads {
		stack := b.snap.StackOf(*tb)
		if len(stack) == 0 {
			continue
		}
		ts, ok := c.everywhere(key)
		if !ok || !sameStack(c.views, ts, stack.Key()) {
			continue
		}
		f := UnchangedFinding{
			Subject:   b.subject(tb),
			Class:     classify(ts),
			State:     stateString(tb),
			Stack:     stack.Folded(),
			SwitchesA: ts[0].Switches,
			SwitchesB: tb.Switches,
			Samples:   len(ts),
			For:       span,
		}
		if tb.Blocked() {
			f.Killable = killable(tb)
		}
		out = append(out, f)
	}
	return out
}

func sameStack(views []*view, ts []*snapshot.Task, key string) bool {
	for i, t := range ts {
		s := views[i].snap.StackOf(*t)
		if len(s) == 0 || s.Key() != key {
			return false
		}
	}
	return true
}

// classify tells a thread that cannot make progress from one that merely
// waits for work, by its state at B and its switch counts.
func classify(ts []*snapshot.Task) Class {
	m := measure(ts)
	b := ts[len(ts)-1]
	switch {
	case m.stuck():
		return ClassStuck
	case m.blocked && m.same:
		return ClassKillable
	case b.Blocked():
		return ClassBlocked
	case b.StateLetter() == 'R':
		return ClassRunning
	}
	return ClassIdle
}
