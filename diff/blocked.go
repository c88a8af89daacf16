package diff

import (
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// newlyBlocked finds threads blocked at B and absent or not blocked at A.
func (c *comparison) newlyBlocked() []BlockedFinding {
	a, b := c.views[0], c.views[len(c.views)-1]
	var out []BlockedFinding
	for key, tb := range b.threads {
		if !tb.Blocked() {
			continue
		}
		ta, atA := a.threads[key]
		if atA && ta.Blocked() {
			continue
		}
		f := BlockedFinding{
			Subject:    b.subject(tb),
			State:      stateString(tb),
			Killable:   killable(tb),
			BlockedFor: c.blockedFor(key),
			Stack:      folded(b.snap, tb),
			Switches:   tb.Switches,
		}
		if atA {
			f.StateA = stateString(ta)
		}
		out = append(out, f)
	}
	return out
}

// blockedFor is a lower bound on how long thread key has been blocked: from
// the first snapshot of the unbroken run of snapshots, ending at B, in which
// it was blocked.
func (c *comparison) blockedFor(key snapshot.ThreadKey) time.Duration {
	b := c.views[len(c.views)-1]
	first := b
	for i := len(c.views) - 2; i >= 0; i-- {
		t, ok := c.views[i].threads[key]
		if !ok || !t.Blocked() {
			break
		}
		first = c.views[i]
	}
	return b.snap.Meta.Time.Sub(first.snap.Meta.Time)
}

// stuckness is how a thread seen in every snapshot of the range measures up
// to the stuck definition.
type stuckness struct {
	blocked    bool // blocked in every snapshot
	notKill    bool // and not killable in any (unknown counts as not killable)
	same       bool // switch counts known and identical in every snapshot
	noSwitches bool // some snapshot could not read the switch counts
	unknown    bool // some snapshot could not tell killable
}

func (s stuckness) stuck() bool { return s.blocked && s.notKill && s.same }

func measure(ts []*snapshot.Task) stuckness {
	s := stuckness{blocked: true, notKill: true, same: true}
	for _, t := range ts {
		if !t.Blocked() {
			s.blocked = false
		}
		switch {
		case t.Missing&snapshot.MissingKillable != 0:
			s.unknown = true
		case t.Killable():
			s.notKill = false
		}
		if t.Missing&snapshot.MissingStatus != 0 {
			s.noSwitches = true
			s.same = false
		}
		if t.Switches != ts[0].Switches {
			s.same = false
		}
	}
	return s
}

// stuck finds threads blocked, not killable and without a context switch in
// every snapshot of the range (after the kernel's hung-task detector). It
// also counts the blocked threads that lacked switch counts.
func (c *comparison) stuck() ([]StuckFinding, int) {
	b := c.views[len(c.views)-1]
	span := b.snap.Meta.Time.Sub(c.views[0].snap.Meta.Time)
	var out []StuckFinding
	noSwitches := 0
	for key, tb := range b.threads {
		if !tb.Blocked() {
			continue
		}
		ts, ok := c.everywhere(key)
		if !ok {
			continue
		}
		m := measure(ts)
		if m.blocked && m.notKill && m.noSwitches {
			noSwitches++
		}
		if !m.stuck() {
			continue
		}
		f := StuckFinding{
			Subject:    b.subject(tb),
			State:      stateString(tb),
			Killable:   KillableNo,
			BlockedFor: span,
			Stack:      folded(b.snap, tb),
			Switches:   tb.Switches,
			Samples:    len(ts),
		}
		if m.unknown {
			f.Killable = KillableUnknown
		}
		out = append(out, f)
	}
	return out, noSwitches
}
