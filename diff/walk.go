package diff

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// Head is what a walk needs to know of a snapshot before it reads its
// records: its ID and metadata (time, boot, collector, filter).
type Head struct {
	ID   uint64
	Meta snapshot.Meta
}

// FileRun says that s.Files[Start:End], all of one process, is one piece
// its store keeps whole (store: a chunk). Consecutive snapshots with a run
// of the same non-zero ID hold the same fds there, so the walk counts them
// once.
type FileRun struct {
	ID         uint64
	Start, End int
	// Files, when not nil, are the run's fds, held apart from s.Files
	// (store.WalkRuns): then s.Files may be empty, and the walk keeps
	// them as they are, unchanged, for as long as it needs them.
	Files []snapshot.File
}

// Walk compares a range one snapshot at a time, in ID order, keeping only
// running state per identity (a thread's stack and states so far, a
// process's fd counts per group, when each was first and last seen) and
// the fds of the snapshots it needs again (A, and the one before B). Its
// memory is that state plus the snapshot being added, however long the
// range.
type Walk struct {
	heads []Head
	opts  Options
	r     *Report
	done  bool // nothing more to compare: a reboot, or fewer than two snapshots

	next    int // index of the next snapshot to add
	k       keyer
	filters []snapshot.Filter
	notes   []string

	threads      map[snapshot.ThreadKey]*threadTrack // threads of A
	order        []orderedThread                     // the passing threads of the latest snapshot, in its order
	spareOrder   []orderedThread                     // the array order had before: the next snapshot's
	blockedSince map[snapshot.ThreadKey]int          // blocked threads of the latest snapshot: index of the first snapshot of their blocked run
	procs        map[snapshot.ProcessKey]*procTrack  // processes of A
	lives        map[snapshot.ProcessKey]*life       // every user process seen, for restarts
	runs         map[uint64]map[group]int            // fd counts of the latest snapshot's runs, by run ID
	spareRuns    map[uint64]map[group]int            // the map runs had before: the next snapshot's
	noSwitches   int
	last         *frame // B, once added
}

// NewWalk starts a comparison of the range heads, in ID order: the first
// is A, the last is B. Add each snapshot next, then call Report.
func NewWalk(heads []Head, opts Options) *Walk {
	w := &Walk{heads: heads, opts: opts, r: &Report{}}
	r := w.r
	if len(heads) == 0 {
		r.Notes = append(r.Notes, "no snapshots to compare")
		w.done = true
		return w
	}
	a, b := heads[0], heads[len(heads)-1]
	r.A, r.B = a.ID, b.ID
	r.Span = b.Meta.Time.Sub(a.Meta.Time)
	for _, h := range heads {
		r.IDs = append(r.IDs, h.ID)
		r.Times = append(r.Times, h.Meta.Time)
	}
	if len(heads) < 2 {
		r.Notes = append(r.Notes, fmt.Sprintf("only snapshot %d: nothing to compare", a.ID))
		w.done = true
		return w
	}
	var notes []string
	r.Reboot, notes = checkBoot(heads)
	r.Notes = append(r.Notes, notes...)
	if r.Reboot != nil {
		w.done = true
		return w
	}
	r.Notes = append(r.Notes, checkTimes(heads)...)
	r.Notes = append(r.Notes, checkPartial(heads)...)
	w.k, w.filters, w.notes = comparisonRules(heads)
	r.Notes = append(r.Notes, w.notes...)

	w.threads = map[snapshot.ThreadKey]*threadTrack{}
	w.blockedSince = map[snapshot.ThreadKey]int{}
	w.procs = map[snapshot.ProcessKey]*procTrack{}
	w.lives = map[snapshot.ProcessKey]*life{}
	w.runs, w.spareRuns = map[uint64]map[group]int{}, map[uint64]map[group]int{}
	return w
}

// Done reports that the walk needs no more records: the range spans a
// reboot or has fewer than two snapshots, or every snapshot was added.
// A caller may then stop reading.
func (w *Walk) Done() bool { return w.done || w.next == len(w.heads) }

// Add compares the next snapshot of the range. runs, which may be nil,
// name the pieces of s.Files that the store shares between snapshots (see
// FileRun); without them every fd is counted in every snapshot.
func (w *Walk) Add(s *snapshot.Snapshot, runs []FileRun) error {
	if w.next >= len(w.heads) {
		return errors.New("diff: more snapshots than the range holds")
	}
	if s.ID != w.heads[w.next].ID {
		return fmt.Errorf("diff: snapshot %d added where the range has %d", s.ID, w.heads[w.next].ID)
	}
	i := w.next
	w.next++
	if w.done {
		return nil
	}
	f, err := w.newFrame(i, s, runs)
	if err != nil {
		return err
	}
	w.addThreads(f)
	w.addProcesses(f)
	if i == len(w.heads)-1 {
		w.last = f
	}
	return nil
}

// Report returns the findings. Call it once, after the last Add.
func (w *Walk) Report() *Report {
	r := w.r
	if w.done && w.last == nil {
		return r
	}
	if w.last == nil {
		r.Notes = append(r.Notes, fmt.Sprintf("only %d of the range's %d snapshots were read: nothing compared", w.next, len(w.heads)))
		return r
	}
	opts := w.opts
	r.Restarts = keep(w.restarts(), func(x Restart) bool {
		return opts.Filter.Match(x.PID, x.Comm, x.Comm) || opts.Filter.Match(x.OldPID, x.OldComm, x.OldComm)
	})
	sortRestarts(r.Restarts)

	match := func(s Subject) bool {
		return opts.Filter.Match(s.PID, s.Comm, s.ProcessComm) && opts.Filter.MatchContainer(s.Container)
	}
	if opts.wants(FDLeak) {
		r.FDLeaks = keep(w.fdLeaks(), func(f FDLeakFinding) bool { return match(f.Subject) })
		sortFDLeaks(r.FDLeaks)
		r.FDSeries = w.fdSeries(r.FDLeaks)
	}
	if opts.wants(NewlyBlocked) {
		r.NewlyBlocked = keep(w.newlyBlocked(), func(f BlockedFinding) bool { return match(f.Subject) })
		sortBlocked(r.NewlyBlocked)
	}
	if opts.wants(Stuck) {
		r.Stuck = keep(w.stuck(), func(f StuckFinding) bool { return match(f.Subject) })
		sortStuck(r.Stuck)
	}
	if opts.wants(UnchangedStack) {
		r.Unchanged, r.IdleHidden = w.unchanged(match, opts.IncludeIdle)
		sortUnchanged(r.Unchanged)
	}
	r.Notes = append(r.Notes, r.killableNotes()...)
	if w.noSwitches > 0 && opts.wants(Stuck) {
		r.Notes = append(r.Notes, fmt.Sprintf("%s blocked in every snapshot without switch counts: not reported as stuck", plural(w.noSwitches, "thread")))
	}
	return r
}

// frame is one snapshot as the walk sees it: its processes by pid, each
// with its leader, identity and fds.
type frame struct {
	i     int
	snap  *snapshot.Snapshot
	procs map[uint32]*procFrame // every process, passing the filters or not
	keys  []string              // stack keys by s.Stacks index, computed on demand
}

type procFrame struct {
	key    snapshot.ProcessKey // start time normalized for the comparison
	leader *snapshot.Task      // the group leader, or its lowest thread when the leader was filtered out
	passes bool                // kept by every filter of the range
	runs   []fileRun
}

func (p *procFrame) comm() string { return p.leader.Comm }

// fileRun is a FileRun's fds; id 0 is never shared.
type fileRun struct {
	id    uint64
	files []snapshot.File
}

func (p *procFrame) fds() int {
	n := 0
	for _, r := range p.runs {
		n += len(r.files)
	}
	return n
}

func (w *Walk) newFrame(i int, s *snapshot.Snapshot, runs []FileRun) (*frame, error) {
	f := &frame{i: i, snap: s, procs: map[uint32]*procFrame{}}
	var p *procFrame // the latest task's: a process's threads come together
	for j := range s.Tasks {
		t := &s.Tasks[j]
		if p == nil || p.leader.PID != t.PID {
			p = f.procs[t.PID]
		}
		switch {
		case p == nil:
			p = &procFrame{leader: t}
			f.procs[t.PID] = p
		case snapshot.BetterLeader(p.leader, t):
			p.leader = t
		}
	}
	for pid, p := range f.procs {
		p.key = snapshot.ProcessKey{PID: pid, StartTime: w.k.start(p.leader.StartTime)}
		p.passes = passes(w.filters, pid, p.comm(), p.comm(), p.leader.Cgroup)
	}
	files := s.Files
	if runs == nil {
		// One unshared run per process: the fds sorted by pid, in a copy
		// (the kernel's order is not stable, and s is the caller's).
		files = slices.Clone(s.Files)
		slices.SortStableFunc(files, func(a, b snapshot.File) int { return cmp.Compare(a.PID, b.PID) })
		for start := 0; start < len(files); {
			end := start + 1
			for end < len(files) && files[end].PID == files[start].PID {
				end++
			}
			runs = append(runs, FileRun{Start: start, End: end})
			start = end
		}
	}
	for _, r := range runs {
		fs := r.Files
		if fs == nil {
			if r.Start < 0 || r.End > len(files) || r.Start >= r.End {
				return nil, fmt.Errorf("diff: snapshot %d: fd run %d..%d of %d fds", s.ID, r.Start, r.End, len(files))
			}
			fs = files[r.Start:r.End]
		}
		if len(fs) == 0 {
			return nil, fmt.Errorf("diff: snapshot %d: empty fd run", s.ID)
		}
		pid := fs[0].PID
		if fs[len(fs)-1].PID != pid {
			return nil, fmt.Errorf("diff: snapshot %d: fd run %d..%d spans processes", s.ID, r.Start, r.End)
		}
		// An fd whose process has no task (it started between the task
		// and the file walk) has no identity to compare.
		if p := f.procs[pid]; p != nil && p.passes {
			p.runs = append(p.runs, fileRun{r.ID, fs})
		}
	}
	return f, nil
}

// stackKey is the identity of task t's stack in frame f, "" when it has
// none.
func (f *frame) stackKey(t *snapshot.Task) string {
	if t.Stack < 0 || int(t.Stack) >= len(f.snap.Stacks) {
		return ""
	}
	if f.keys == nil {
		f.keys = make([]string, len(f.snap.Stacks))
	}
	k := f.keys[t.Stack]
	if k == "" {
		k = f.snap.Stacks[t.Stack].Key()
		f.keys[t.Stack] = k
	}
	return k
}

// subject describes thread t of frame f.
func (f *frame) subject(t *snapshot.Task) Subject {
	p := f.procs[t.PID]
	return Subject{
		PID: t.PID, TID: t.TID, Comm: t.Comm,
		ProcessComm: p.comm(), ProcessStart: p.leader.StartTime,
		ThreadStart: t.StartTime,
		Container:   p.leader.Container(), Pod: p.leader.Pod(),
	}
}

// span is the time from A to the snapshot at index i.
func (w *Walk) span(i int) time.Duration {
	return w.heads[i].Meta.Time.Sub(w.heads[0].Meta.Time)
}
