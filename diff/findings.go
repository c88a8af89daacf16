package diff

import (
	"cmp"
	"slices"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// Subject is who a finding is about, as seen in B. (PID, ProcessStart) is
// the process identity and (TID, ThreadStart) the thread identity; start
// times are the raw kernel values, ns since boot.
type Subject struct {
	PID          uint32
	TID          uint32 // 0 for process findings (fd_leak)
	Comm         string // the thread's comm; the process's for fd_leak
	ProcessComm  string
	ProcessStart uint64
	ThreadStart  uint64 // 0 for process findings
	// Container and Pod are the container ID and Kubernetes pod UID that
	// the process's cgroup in B names ("" when none).
	Container string `json:",omitzero"`
	Pod       string `json:",omitzero"`
}

// Process returns the process identity.
func (s Subject) Process() snapshot.ProcessKey {
	return snapshot.ProcessKey{PID: s.PID, StartTime: s.ProcessStart}
}

// Thread returns the thread identity; zero for process findings.
func (s Subject) Thread() snapshot.ThreadKey {
	return snapshot.ThreadKey{TID: s.TID, StartTime: s.ThreadStart}
}

// Killable values: whether a blocked wait ends on a fatal signal.
const (
	KillableYes     = "yes"
	KillableNo      = "no"
	KillableUnknown = "unknown" // procfs shows D without TASK_WAKEKILL
)

// FDLeakFinding is a group of fds of one process, same kind and target,
// whose fds persist and grew from A to B.
type FDLeakFinding struct {
	Subject
	Kind          string  // snapshot.File.Kind(): file, socket, pipe, eventfd, ...
	Target        string  // path with numbers collapsed ("socket:[*]", "/data/part*.dat"), or a socket's group ("tcp CLOSE_WAIT 10.0.0.5:5432")
	FDsA, FDsB    int     // fds in the group at A and at B
	New           int     // fds in the group opened after A, open at B and, with 3+ snapshots, in the one before B (by fd, dev, inode)
	ProcessFDsA   int     // every fd of the process at A
	ProcessFDsB   int     // every fd of the process at B
	GrowthPerHour float64 // (FDsB-FDsA) per hour of Span; 0 when Span is 0
	Monotonic     bool    // the group never shrank between snapshots that saw the process
	Samples       int     // snapshots of the range that saw the process; 2 means one diff, a hint
	Evidence      string  // EvidenceHint or EvidenceTrend
	Limit         uint64  // RLIMIT_NOFILE soft limit at B; snapshot.NoLimit unlimited, 0 unknown
	LimitUsed     float64 // ProcessFDsB/Limit; 0 when unlimited or unknown
	// ExhaustsIn is how long, at the rate the process's fds grew from A
	// to B, until it holds Limit fds; set when Exhausts is (a known
	// limit, and growing).
	ExhaustsIn time.Duration
	Exhausts   bool
}

// Evidence values: how much a leak finding rests on.
const (
	EvidenceHint  = "hint"  // two snapshots, or a count that fell along the way
	EvidenceTrend = "trend" // monotonic growth over three or more snapshots
)

// FDSeries is a process's open fds in each snapshot of a range.
type FDSeries struct {
	PID          uint32
	Comm         string
	ProcessStart uint64
	FDs          []int // by snapshot, as Report.IDs; -1 where a snapshot lacked the process
}

// Growth is the group's net growth from A to B.
func (f FDLeakFinding) Growth() int { return f.FDsB - f.FDsA }

// BlockedFinding is a thread blocked (D) in B that was absent or not blocked
// in A.
type BlockedFinding struct {
	Subject
	State      string        // state letter at B (D)
	StateA     string        // state letter at A; empty when the thread is new since A
	Killable   string        // yes, no, unknown
	BlockedFor time.Duration // at least: B's time minus the first snapshot of the trailing blocked run; 0 when only B
	Stack      string        // folded, root to leaf
	Switches   uint64        // nvcsw + nivcsw at B
}

// StuckFinding is a thread blocked and not killable in every snapshot of
// the range without a single context switch, like the kernel's hung-task
// detector.
type StuckFinding struct {
	Subject
	State      string        // state letter at B (D)
	Killable   string        // no, or unknown when any snapshot lacks the bit
	BlockedFor time.Duration // at least: Span
	Stack      string        // folded, root to leaf, at B
	Switches   uint64        // unchanged in every snapshot
	Samples    int           // snapshots in the range
}

// Class classifies a thread whose stack did not change.
type Class string

// Classes, most severe first.
const (
	ClassStuck    Class = "stuck"    // meets the stuck definition
	ClassKillable Class = "killable" // blocked in every snapshot, killable, switches unchanged
	ClassBlocked  Class = "blocked"  // blocked at B otherwise
	ClassRunning  Class = "running"  // R in every snapshot: busy in the kernel
	ClassIdle     Class = "idle"     // asleep (S) in every snapshot whatever its switches, or any other mix
)

var classRank = map[Class]int{ClassStuck: 0, ClassKillable: 1, ClassBlocked: 2, ClassRunning: 3, ClassIdle: 4}

// UnchangedFinding is a thread whose (non-empty) stack is identical in every
// snapshot of the range.
type UnchangedFinding struct {
	Subject
	Class     Class
	State     string // state letter at B
	Killable  string // yes, no, unknown when blocked at B; empty otherwise
	Stack     string // folded, root to leaf
	SwitchesA uint64
	SwitchesB uint64
	Samples   int           // snapshots in the range
	For       time.Duration // unchanged for at least: Span
}

// sortFDLeaks ranks leaks by urgency: the soonest to run out of fds
// first, then those without a limit in sight by growth per hour.
func sortFDLeaks(fs []FDLeakFinding) {
	slices.SortFunc(fs, func(a, b FDLeakFinding) int {
		if a.Exhausts != b.Exhausts {
			if a.Exhausts {
				return -1
			}
			return 1
		}
		return cmp.Or(
			cmp.Compare(a.ExhaustsIn, b.ExhaustsIn),
			cmp.Compare(b.GrowthPerHour, a.GrowthPerHour),
			cmp.Compare(b.Growth(), a.Growth()),
			cmp.Compare(a.PID, b.PID),
			cmp.Compare(a.ProcessStart, b.ProcessStart),
			cmp.Compare(a.Kind, b.Kind),
			cmp.Compare(a.Target, b.Target),
		)
	})
}

func cmpThread(a, b Subject) int {
	return cmp.Or(
		cmp.Compare(a.PID, b.PID),
		cmp.Compare(a.TID, b.TID),
		cmp.Compare(a.ThreadStart, b.ThreadStart),
	)
}

func sortBlocked(fs []BlockedFinding) {
	slices.SortFunc(fs, func(a, b BlockedFinding) int { return cmpThread(a.Subject, b.Subject) })
}

func sortStuck(fs []StuckFinding) {
	slices.SortFunc(fs, func(a, b StuckFinding) int {
		return cmp.Or(cmp.Compare(b.BlockedFor, a.BlockedFor), cmpThread(a.Subject, b.Subject))
	})
}

func sortUnchanged(fs []UnchangedFinding) {
	slices.SortFunc(fs, func(a, b UnchangedFinding) int {
		return cmp.Or(cmp.Compare(classRank[a.Class], classRank[b.Class]), cmpThread(a.Subject, b.Subject))
	})
}

func sortRestarts(rs []Restart) {
	slices.SortFunc(rs, func(a, b Restart) int {
		return cmp.Or(
			cmp.Compare(a.PID, b.PID),
			cmp.Compare(a.OldPID, b.OldPID),
			cmp.Compare(a.NewStart, b.NewStart),
		)
	})
}
