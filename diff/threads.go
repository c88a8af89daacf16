package diff

import (
	"strings"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// threadTrack is what the walk keeps of a thread of A: enough to tell at B
// whether it was in every snapshot, on the same stack, blocked, asleep or
// running throughout, and whether it ever ran.
type threadTrack struct {
	seen      int  // index of the latest snapshot that had it
	at        int  // where in that snapshot's Walk.order
	gap       bool // some snapshot after A lacked it
	letterA   byte
	blockedA  bool
	stackKey  string // at A; "" when A recorded none
	sameStack bool   // the stack in every snapshot so far is stackKey
	running   bool   // R in every snapshot so far
	switchesA uint64
	stuckness
	samples int
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

// measure adds task t, one more sighting of a thread whose first switch
// count was switchesA.
func (s *stuckness) measure(t *snapshot.Task, switchesA uint64) {
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
	if t.Switches != switchesA {
		s.same = false
	}
}

// addThreads updates the threads' running state with frame f.
//
// Consecutive snapshots list their threads in the same order (the store's,
// by pid), so each thread is looked for first where the snapshot before
// had it, after the thread found last, and in the map only when it is not
// there: 20,000 threads per snapshot cost comparisons, not hashing.
func (w *Walk) addThreads(f *frame) {
	blocked := map[snapshot.ThreadKey]int{}
	prev, seen := w.order, w.spareOrder[:0]
	next := 0 // where in prev the next thread should be
	dupA := false
	for j := range f.snap.Tasks {
		t := &f.snap.Tasks[j]
		if !w.threadPasses(f, t) {
			continue
		}
		key := w.k.thread(t)
		if t.Blocked() {
			since, ok := w.blockedSince[key]
			if !ok {
				since = f.i
			}
			blocked[key] = since
		}
		var tr *threadTrack
		switch {
		case f.i == 0:
			if _, ok := w.threads[key]; ok {
				dupA = true
			}
			tr = &threadTrack{
				seen: -1, letterA: t.StateLetter(), blockedA: t.Blocked(),
				stackKey: f.stackKey(t), sameStack: true, running: true,
				switchesA: t.Switches,
				stuckness: stuckness{blocked: true, notKill: true, same: true},
			}
			w.threads[key] = tr
		case next < len(prev) && prev[next].key == key:
			tr = prev[next].track
			next++
		default:
			if tr = w.threads[key]; tr != nil && tr.seen == f.i-1 {
				next = tr.at + 1
			}
		}
		seen = append(seen, orderedThread{key, tr})
		if tr == nil || tr.gap {
			continue
		}
		if tr.seen != f.i-1 {
			tr.gap = true
			continue
		}
		tr.seen = f.i
		tr.at = len(seen) - 1
		tr.samples++
		tr.measure(t, tr.switchesA)
		if tr.sameStack && (tr.stackKey == "" || f.stackKey(t) != tr.stackKey) {
			tr.sameStack = false
		}
		tr.running = tr.running && t.StateLetter() == 'R'
	}
	if dupA {
		// The same thread twice in A: the last one counts, wherever the
		// snapshots after find the key.
		for i := range seen {
			seen[i].track = w.threads[seen[i].key]
		}
	}
	w.blockedSince = blocked
	w.order, w.spareOrder = seen, prev
}

// orderedThread is a thread of a snapshot, in the snapshot's order, with
// its track (nil when it was not in A).
type orderedThread struct {
	key   snapshot.ThreadKey
	track *threadTrack
}

// threadPasses reports whether thread t of frame f passes every filter of
// the range.
func (w *Walk) threadPasses(f *frame, t *snapshot.Task) bool {
	return len(w.filters) == 0 || passes(w.filters, t.PID, t.Comm, f.procs[t.PID].comm(), t.Cgroup)
}

// everywhere returns the track of thread key when the thread was in every
// snapshot of the range.
func (w *Walk) everywhere(key snapshot.ThreadKey) *threadTrack {
	tr := w.threads[key]
	if tr == nil || tr.gap || tr.seen != w.last.i {
		return nil
	}
	return tr
}

// eachThreadAtB calls fn for the passing threads of B.
func (w *Walk) eachThreadAtB(fn func(key snapshot.ThreadKey, t *snapshot.Task)) {
	b := w.last
	for j := range b.snap.Tasks {
		t := &b.snap.Tasks[j]
		if w.threadPasses(b, t) {
			fn(w.k.thread(t), t)
		}
	}
}

// newlyBlocked finds threads blocked at B and absent or not blocked at A.
func (w *Walk) newlyBlocked() []BlockedFinding {
	b := w.last
	var out []BlockedFinding
	w.eachThreadAtB(func(key snapshot.ThreadKey, tb *snapshot.Task) {
		if !tb.Blocked() {
			return
		}
		ta := w.threads[key]
		if ta != nil && ta.blockedA {
			return
		}
		f := BlockedFinding{
			Subject:    b.subject(tb),
			State:      stateString(tb),
			Killable:   killable(tb),
			BlockedFor: w.blockedFor(key),
			Stack:      b.snap.StackOf(*tb).Folded(),
			Switches:   tb.Switches,
		}
		if ta != nil {
			f.StateA = string(rune(ta.letterA))
		}
		out = append(out, f)
	})
	return out
}

// blockedFor is a lower bound on how long thread key has been blocked at
// B: from the first snapshot of the unbroken run of snapshots, ending at
// B, in which it was blocked.
func (w *Walk) blockedFor(key snapshot.ThreadKey) time.Duration {
	since, ok := w.blockedSince[key]
	if !ok {
		return 0
	}
	return w.heads[w.last.i].Meta.Time.Sub(w.heads[since].Meta.Time)
}

// stuck finds threads blocked, not killable and without a context switch in
// every snapshot of the range (after the kernel's hung-task detector). It
// also counts the blocked threads that lacked switch counts.
func (w *Walk) stuck() []StuckFinding {
	b := w.last
	var out []StuckFinding
	w.eachThreadAtB(func(key snapshot.ThreadKey, tb *snapshot.Task) {
		if !tb.Blocked() {
			return
		}
		tr := w.everywhere(key)
		if tr == nil {
			return
		}
		if tr.blocked && tr.notKill && tr.noSwitches {
			w.noSwitches++
		}
		if !tr.stuck() {
			return
		}
		f := StuckFinding{
			Subject:    b.subject(tb),
			State:      stateString(tb),
			Killable:   KillableNo,
			BlockedFor: w.span(b.i),
			Stack:      b.snap.StackOf(*tb).Folded(),
			Switches:   tb.Switches,
			Samples:    tr.samples,
		}
		if tr.unknown {
			f.Killable = KillableUnknown
		}
		out = append(out, f)
	})
	return out
}

// unchanged finds the threads that match and whose stack is recorded and
// identical in every snapshot of the range. Idle ones are only counted
// (hidden) unless keepIdle: most threads of a host are idle, and their
// findings' folded stacks would be built to be thrown away.
func (w *Walk) unchanged(match func(Subject) bool, keepIdle bool) (out []UnchangedFinding, hidden int) {
	b := w.last
	w.eachThreadAtB(func(key snapshot.ThreadKey, tb *snapshot.Task) {
		tr := w.everywhere(key)
		if tr == nil || !tr.sameStack {
			return
		}
		subject := b.subject(tb)
		if !match(subject) {
			return
		}
		stack := b.snap.StackOf(*tb)
		class := tr.class(tb, stack)
		if class == ClassIdle && !keepIdle {
			hidden++
			return
		}
		f := UnchangedFinding{
			Subject:   subject,
			Class:     class,
			State:     stateString(tb),
			Stack:     stack.Folded(),
			SwitchesA: tr.switchesA,
			SwitchesB: tb.Switches,
			Samples:   tr.samples,
			For:       w.span(b.i),
		}
		if tb.Blocked() {
			f.Killable = killable(tb)
		}
		out = append(out, f)
	})
	return out, hidden
}

// class tells a thread that cannot make progress from one that merely
// waits for work. A thread asleep (S) in every snapshot is idle however
// often it woke in between (a daemon's loop around nanosleep or
// epoll_wait); running means R in every snapshot, busy in the kernel on
// one stack, which is worth a look, unless that stack is the way back to
// user space (see toUserSpace). Any other mix of states is idle too.
func (tr *threadTrack) class(b *snapshot.Task, stack snapshot.Stack) Class {
	switch {
	case tr.stuck():
		return ClassStuck
	case tr.blocked && tr.same:
		return ClassKillable
	case b.Blocked():
		return ClassBlocked
	case tr.running && !toUserSpace(stack):
		return ClassRunning
	}
	return ClassIdle
}

// toUserSpace reports the stack of a thread preempted on its way back to
// user space: a program busy in user space, caught by the timer interrupt
// (asm_sysvec_apic_timer_interrupt; irqentry_exit_to_user_mode) or at the
// end of a system call, shows that stack in every take, R, and is no
// kernel problem. The functions are kernel/entry/common.c's
// irqentry_exit_to_user_mode, syscall_exit_to_user_mode and
// exit_to_user_mode_loop (5.8+), and arch/x86/entry/common.c's
// prepare_exit_to_usermode and exit_to_usermode_loop before that.
func toUserSpace(stack snapshot.Stack) bool {
	for _, frame := range stack {
		fn := snapshot.Function(frame)
		if strings.Contains(fn, "exit_to_user_mode") || strings.Contains(fn, "exit_to_usermode") {
			return true
		}
	}
	return false
}
