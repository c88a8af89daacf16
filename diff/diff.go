// Package diff compares snapshots and reports what changed: leaked fds, newly
// blocked threads, stuck threads and stacks that never change.
//
// Everything here is a pure function of the snapshots: no I/O, no printing.
// Tasks, processes and fds are matched by identity (DESIGN.md, "Identity
// across snapshots"), never by pid or fd number alone, with explicit maps.
package diff

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// Kind names a kind of finding, as the CSV "finding" column and --only spell
// it.
type Kind string

const (
	FDLeak         Kind = "fd_leak"
	NewlyBlocked   Kind = "newly_blocked"
	Stuck          Kind = "stuck"
	UnchangedStack Kind = "unchanged_stack"
)

// AllKinds lists every kind, in the order a report presents them.
var AllKinds = []Kind{FDLeak, NewlyBlocked, Stuck, UnchangedStack}

// ParseKind checks a kind name given by a user.
func ParseKind(s string) (Kind, error) {
	for _, k := range AllKinds {
		if string(k) == s {
			return k, nil
		}
	}
	names := make([]string, len(AllKinds))
	for i, k := range AllKinds {
		names[i] = string(k)
	}
	return "", fmt.Errorf("unknown finding %q: want %s", s, strings.Join(names, ", "))
}

// Options narrow a comparison.
type Options struct {
	// Only keeps these kinds of finding; empty keeps all four.
	Only []Kind
	// IncludeIdle keeps unchanged stacks of idle threads (sleeping in S or
	// I, stopped, parked), which are normal and left out by default.
	IncludeIdle bool
	// Filter keeps findings (and restarts) of matching processes only:
	// Filter.Match(pid, thread comm, process comm), and of Filter.Containers
	// (restarts are kept by pid and name alone).
	Filter snapshot.Filter
	// MinGrowth is the persistent growth (new fds that persist, and net
	// growth, whichever is less) a group of fds needs to be an fd leak;
	// zero or less means DefaultMinGrowth.
	MinGrowth int
}

func (o Options) wants(k Kind) bool { return len(o.Only) == 0 || slices.Contains(o.Only, k) }

// Report is what Compare found between the first snapshot of a range (A)
// and the last (B).
type Report struct {
	A, B  uint64        // snapshot IDs
	IDs   []uint64      // every snapshot of the range, in the order given
	Times []time.Time   // when each was taken
	Span  time.Duration // B's time minus A's

	// Reboot is set when the range spans a reboot. Task identities do not
	// survive a reboot, so such a report has no restarts and no findings.
	Reboot *Reboot

	// Restarts are processes that were restarted between A and B. Their fds
	// are not compared: a restart is neither a leak nor an fd drop.
	Restarts []Restart

	FDLeaks      []FDLeakFinding
	NewlyBlocked []BlockedFinding
	Stuck        []StuckFinding
	Unchanged    []UnchangedFinding

	// FDSeries has, for each process with fd_leak findings (in their
	// order), its fds in every snapshot of the range, as the walk counted
	// them.
	FDSeries []FDSeries

	// IdleHidden counts the idle threads with unchanged stacks left out of
	// Unchanged because Options.IncludeIdle was false.
	IdleHidden int

	// Notes say what limits the comparison (different filters, mixed
	// collectors, unknown boot ids or killable bits), one line each.
	Notes []string
}

// Count returns the number of findings of kind k.
func (r *Report) Count(k Kind) int {
	switch k {
	case FDLeak:
		return len(r.FDLeaks)
	case NewlyBlocked:
		return len(r.NewlyBlocked)
	case Stuck:
		return len(r.Stuck)
	case UnchangedStack:
		return len(r.Unchanged)
	}
	return 0
}

// LeakingProcesses is how many processes the fd_leak findings are about.
func (r *Report) LeakingProcesses() int {
	seen := map[snapshot.ProcessKey]bool{}
	for _, f := range r.FDLeaks {
		seen[f.Process()] = true
	}
	return len(seen)
}

// Empty reports a report without findings. Restarts, hidden idle threads and
// notes are not findings.
func (r *Report) Empty() bool {
	for _, k := range AllKinds {
		if r.Count(k) > 0 {
			return false
		}
	}
	return true
}

// Reboot says where the boot id changed in a range.
type Reboot struct {
	Before     uint64 // ID of the last snapshot of the earlier boot
	After      uint64 // ID of the first snapshot of the later boot
	BootBefore string // boot ids
	BootAfter  string
}

// Restart is a process that was replaced between A and B: the same pid with
// a new start time, or the same comm and parent with a new pid while the old
// pid is gone.
type Restart struct {
	PID      uint32 // pid at B
	OldPID   uint32 // pid at A; equal to PID when the pid was reused
	Comm     string // process comm at B
	OldComm  string // process comm at A
	PPID     uint32 // parent at B
	OldStart uint64 // start time at A, ns since boot
	NewStart uint64 // start time at B, ns since boot
}

// Compare compares snaps, every snapshot of a range in ID order: the first
// is A, the last is B. Callers pass at least two; fewer give a report with a
// note and no findings. It is a Walk over snapshots already in memory.
func Compare(snaps []*snapshot.Snapshot, opts Options) *Report {
	heads := make([]Head, len(snaps))
	for i, s := range snaps {
		heads[i] = Head{ID: s.ID, Meta: s.Meta}
	}
	w := NewWalk(heads, opts)
	for _, s := range snaps {
		if w.Done() {
			break
		}
		if w.Add(s, nil) != nil {
			// Cannot happen (the heads are the snapshots', and there are
			// no runs to check); Report would say the range was cut short.
			break
		}
	}
	return w.Report()
}

// checkBoot finds boot id changes. An empty boot id (unreadable when the
// snapshot was taken) is assumed to be the same boot as its neighbours.
// With several reboots in the range, the last one is returned: the range
// from its After to B is the longest comparable one ending at B.
func checkBoot(snaps []Head) (*Reboot, []string) {
	var notes []string
	var unknown []string
	var changes []Reboot
	lastBoot, lastID := "", uint64(0)
	for _, s := range snaps {
		boot := s.Meta.BootID
		if boot == "" {
			unknown = append(unknown, fmt.Sprint(s.ID))
			continue
		}
		if lastBoot != "" && boot != lastBoot {
			changes = append(changes, Reboot{Before: lastID, After: s.ID, BootBefore: lastBoot, BootAfter: boot})
		}
		lastBoot, lastID = boot, s.ID
	}
	if len(unknown) > 0 {
		notes = append(notes, fmt.Sprintf("boot id unknown for snapshot %s: assumed to be the same boot", strings.Join(unknown, ", ")))
	}
	if len(changes) == 0 {
		return nil, notes
	}
	if len(changes) > 1 {
		var between []string
		for _, c := range changes {
			between = append(between, fmt.Sprintf("%d and %d", c.Before, c.After))
		}
		notes = append(notes, fmt.Sprintf("%d reboots in the range: between snapshots %s", len(changes), strings.Join(between, ", ")))
	}
	reboot := changes[len(changes)-1]
	notes = append(notes, fmt.Sprintf("rebooted between snapshots %d and %d: tasks cannot be compared across a reboot", reboot.Before, reboot.After))
	return &reboot, notes
}

// checkTimes notes snapshots whose times go backwards: durations (blocked
// for, growth per hour) are then meaningless.
func checkTimes(snaps []Head) []string {
	var notes []string
	for i := 1; i < len(snaps); i++ {
		if snaps[i].Meta.Time.Before(snaps[i-1].Meta.Time) {
			notes = append(notes, fmt.Sprintf("snapshot %d was taken before snapshot %d: durations are unreliable", snaps[i].ID, snaps[i-1].ID))
		}
	}
	return notes
}

// killableNotes says how many reported threads had no killable bit.
func (r *Report) killableNotes() []string {
	unknown := 0
	for _, f := range r.NewlyBlocked {
		if f.Killable == KillableUnknown {
			unknown++
		}
	}
	for _, f := range r.Stuck {
		if f.Killable == KillableUnknown {
			unknown++
		}
	}
	for _, f := range r.Unchanged {
		if f.Killable == KillableUnknown {
			unknown++
		}
	}
	if unknown == 0 {
		return nil
	}
	return []string{fmt.Sprintf("killable unknown for %s (procfs does not show TASK_WAKEKILL): counted as not killable for stuck", plural(unknown, "reported thread"))}
}

func keep[T any](xs []T, ok func(T) bool) []T {
	var out []T
	for _, x := range xs {
		if ok(x) {
			out = append(out, x)
		}
	}
	return out
}

// plural renders "1 thread", "2 threads".
func plural(n int, noun string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, noun)
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
