package diff

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// DefaultMinGrowth is the persistent growth a group of fds needs to be
// reported as a leak (Options.MinGrowth). A one-off open (a config file,
// a log reopened, the shell and lsof of the person looking) grows a group
// by one or two; a leak keeps growing, and over a few snapshots passes 3.
// README, "Findings", says how the scenarios bear it out.
const DefaultMinGrowth = 3

// group is what leaked fds are counted by: the fd's kind and its target.
type group struct {
	kind, target string
}

func groupOf(f *snapshot.File) group { return group{f.Kind(), groupTarget(f)} }

// fdKey is an fd's identity within one process: the same number pointing at
// another file is a close plus an open.
type fdKey struct {
	fd         uint32
	dev, inode uint64
}

func keyOf(f *snapshot.File) fdKey { return fdKey{f.FD, f.Dev, f.Inode} }

// groupTarget is the one place that decides which fds of a process count
// together, so that one leak is one finding: a socket whose sock was read
// by what it is (protocol, state and remote end, as snapshot.Socket.Target
// names it), any other socket "socket:[*]", every pipe "pipe:[*]", and a
// leak into numbered files ("part17.dat",
// "/tmp/x.123") is one group ("part*.dat", "/tmp/x.*").
func groupTarget(f *snapshot.File) string { return GroupTarget(f) }

// GroupTarget is groupTarget for the exports, which name each fd's group
// as fd_leak counts it.
func GroupTarget(f *snapshot.File) string {
	if t := f.Socket.Target(); t != "" {
		return t // a socket whose sock was read: "tcp CLOSE_WAIT 10.0.0.5:5432"
	}
	return Target(f.Path)
}

// Target collapses the numbers in a path that differ between fds of one
// leak. A pseudo file's inode becomes "*" ("socket:[123]" → "socket:[*]",
// "pipe:[456]", "net:[4026531840]"); in a real path, each run of digits
// of the last element does ("/data/part17.dat" → "/data/part*.dat",
// "/tmp/x.123 (deleted)" → "/tmp/x.* (deleted)"), while directories are
// kept ("/proc/42/stat" stays apart from "/proc/43/stat"). Named anon
// inodes ("anon_inode:[eventfd]") are kept as they are.
func Target(path string) string {
	if strings.HasPrefix(path, "/") {
		dir, name := path[:strings.LastIndexByte(path, '/')+1], path[strings.LastIndexByte(path, '/')+1:]
		return dir + collapseDigits(name)
	}
	prefix, rest, ok := strings.Cut(path, ":[")
	if !ok || prefix == "" || !strings.HasSuffix(rest, "]") {
		return path
	}
	digits := strings.TrimSuffix(rest, "]")
	if digits == "" || strings.IndexFunc(digits, notDigit) >= 0 {
		return path
	}
	// Most fds of a busy host are sockets and pipes: one string each,
	// not one per fd.
	switch prefix {
	case "socket":
		return "socket:[*]"
	case "pipe":
		return "pipe:[*]"
	}
	return prefix + ":[*]"
}

func notDigit(r rune) bool { return r < '0' || r > '9' }

// collapseDigits replaces each run of ASCII digits with one "*".
func collapseDigits(s string) string {
	if strings.IndexAny(s, "0123456789") < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	inDigits := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= '0' && c <= '9' {
			if !inDigits {
				b.WriteByte('*')
			}
			inDigits = true
			continue
		}
		inDigits = false
		b.WriteByte(c)
	}
	return b.String()
}

func countGroups(files []snapshot.File) map[group]int {
	counts := map[group]int{}
	for i := range files {
		counts[groupOf(&files[i])]++
	}
	return counts
}

// fdSet is a process's fds in one snapshot: the IDs of its shared runs,
// and every fd's key, sorted. A run that a later snapshot shares (the same
// ID) holds the same fds, so those need no look-up one by one. A sorted
// slice, not a map: 200,000 fds of A and as many before B, built in one
// pass with no hashing and nothing for the garbage collector to scan.
type fdSet struct {
	runs []uint64 // non-zero run IDs
	keys []fdKey  // sorted by compareKeys
}

func compareKeys(a, b fdKey) int {
	return cmp.Or(cmp.Compare(a.fd, b.fd), cmp.Compare(a.dev, b.dev), cmp.Compare(a.inode, b.inode))
}

func newFDSet(p *procFrame) *fdSet {
	set := &fdSet{keys: make([]fdKey, 0, p.fds())}
	for _, r := range p.runs {
		if r.id != 0 {
			set.runs = append(set.runs, r.id)
		}
		for i := range r.files {
			set.keys = append(set.keys, keyOf(&r.files[i]))
		}
	}
	// A store's runs come in fd order; fds read without runs may not.
	if !slices.IsSortedFunc(set.keys, compareKeys) {
		slices.SortFunc(set.keys, compareKeys)
	}
	return set
}

// hasRun reports whether the set's snapshot had run id, and so every fd
// of it. A nil set (a snapshot that lacked the process) has none.
func (s *fdSet) hasRun(id uint64) bool { return s != nil && id != 0 && slices.Contains(s.runs, id) }

func (s *fdSet) has(k fdKey) bool {
	if s == nil {
		return false
	}
	_, ok := slices.BinarySearchFunc(s.keys, k, compareKeys)
	return ok
}

// procTrack is what the walk keeps of a process of A: its fds at A and in
// the snapshot before B (the only ones compared fd by fd), and its counts
// per group as the range goes.
type procTrack struct {
	seen    int // index of the latest snapshot that had it
	samples int // snapshots that had it

	fdsA       *fdSet
	countsA    map[group]int
	totalA     int
	beforeB    *fdSet         // fds in the snapshot before B, when the range has three or more
	counts     map[group]int  // in the latest snapshot
	runIDs     []uint64       // the latest snapshot's runs
	dropped    map[group]bool // groups whose count fell between consecutive snapshots
	fdsPerSnap []int32        // all its fds, per snapshot of the range
}

// life is what the walk keeps of every user process it sees, for
// restarts.
type life struct {
	pid, ppid   uint32
	comm        string
	start       uint64
	count       int // snapshots that saw it
	first, last int // indexes of the first and latest of them
}

// addProcesses updates the processes' running state with frame f.
func (w *Walk) addProcesses(f *frame) {
	n := len(w.heads)
	// The counts of this snapshot's runs, in the map of the one before the
	// last (two maps take turns: a host has thousands of runs).
	runs := w.spareRuns
	clear(runs)
	for _, p := range f.procs {
		if !p.passes {
			continue
		}
		if !p.leader.KernelThread() {
			l := w.lives[p.key]
			if l == nil {
				l = &life{pid: p.key.PID, ppid: p.leader.PPID, comm: p.comm(), start: p.leader.StartTime, first: f.i}
				w.lives[p.key] = l
			}
			l.count++
			l.last = f.i
		}

		pt := w.procs[p.key]
		if f.i == 0 {
			pt = &procTrack{seen: -1, dropped: map[group]bool{}}
			w.procs[p.key] = pt
		}
		if pt == nil {
			continue
		}
		// A snapshot that lacked the process (it cannot: the same
		// identity does not go and come back; but a collector may miss
		// one) is no sample and breaks no trend.
		pt.seen = f.i
		pt.samples++
		counts, recounted := w.countFDs(pt, p, runs)
		total := p.fds()
		if f.i == 0 {
			pt.fdsA, pt.countsA, pt.totalA = newFDSet(p), counts, total
		} else if recounted && !sameCounts(counts, pt.counts) {
			for g, last := range pt.counts {
				if counts[g] < last {
					pt.dropped[g] = true
				}
			}
		}
		pt.counts = counts
		if n >= 3 && f.i == n-2 {
			pt.beforeB = newFDSet(p)
		}
		for len(pt.fdsPerSnap) < f.i {
			pt.fdsPerSnap = append(pt.fdsPerSnap, -1) // lacked it
		}
		pt.fdsPerSnap = append(pt.fdsPerSnap, int32(total))
	}
	w.runs, w.spareRuns = runs, w.runs
}

// countFDs counts process p's fds by group. A run the previous snapshot
// had too (same ID) is not counted again, and a process whose runs are all
// as they were has the counts it had (recounted is false).
func (w *Walk) countFDs(pt *procTrack, p *procFrame, next map[uint64]map[group]int) (counts map[group]int, recounted bool) {
	unchanged := pt.counts != nil && len(p.runs) == len(pt.runIDs)
	for i, r := range p.runs {
		if r.id == 0 || unchanged && pt.runIDs[i] != r.id {
			unchanged = false
		}
	}
	pt.runIDs = pt.runIDs[:0]
	for _, r := range p.runs {
		pt.runIDs = append(pt.runIDs, r.id)
	}
	if unchanged {
		for _, r := range p.runs {
			if c, ok := w.runs[r.id]; ok {
				next[r.id] = c
			}
		}
		return pt.counts, false
	}
	counts = map[group]int{}
	for _, r := range p.runs {
		var c map[group]int
		if r.id != 0 {
			var ok bool
			if c, ok = w.runs[r.id]; !ok {
				c = countGroups(r.files)
			}
			next[r.id] = c
		} else {
			c = countGroups(r.files)
		}
		for g, n := range c {
			counts[g] += n
		}
	}
	return counts, true
}

func sameCounts(a, b map[group]int) bool {
	if len(a) != len(b) {
		return false
	}
	for g, n := range a {
		if b[g] != n {
			return false
		}
	}
	return true
}

// fdLeaks finds, for each process alive (same identity) in every snapshot
// of the range, the groups of fds that persist and grew: new fds are those
// opened after A, open at B, and (with three or more snapshots) already
// open in the snapshot before B, so that an fd living less than one
// interval is churn.
func (w *Walk) fdLeaks() []FDLeakFinding {
	b := w.last
	span := w.span(b.i)
	minGrowth := w.opts.MinGrowth
	if minGrowth <= 0 {
		minGrowth = DefaultMinGrowth
	}
	var out []FDLeakFinding
	for key, pt := range w.procs {
		if pt.seen != b.i {
			continue
		}
		pb := b.procs[key.PID]
		newB := map[group]int{}
		three := len(w.heads) >= 3
		for _, r := range pb.runs {
			// A run A had is all at A; one the snapshot before B had was
			// all open then.
			if pt.fdsA.hasRun(r.id) {
				continue
			}
			allBefore := three && pt.beforeB.hasRun(r.id)
			for i := range r.files {
				f := &r.files[i]
				k := keyOf(f)
				if pt.fdsA.has(k) {
					continue
				}
				if three && !allBefore && !pt.beforeB.has(k) {
					continue
				}
				newB[groupOf(f)]++
			}
		}
		totalB := pb.fds()
		for g, n := range newB {
			growth := pt.counts[g] - pt.countsA[g]
			if min(n, growth) < minGrowth {
				continue
			}
			f := FDLeakFinding{
				Subject: Subject{
					PID: key.PID, Comm: pb.comm(), ProcessComm: pb.comm(),
					ProcessStart: pb.leader.StartTime,
					Container:    pb.leader.Container(), Pod: pb.leader.Pod(),
				},
				Kind:        g.kind,
				Target:      g.target,
				FDsA:        pt.countsA[g],
				FDsB:        pt.counts[g],
				New:         n,
				ProcessFDsA: pt.totalA,
				ProcessFDsB: totalB,
				Monotonic:   !pt.dropped[g],
				Samples:     pt.samples,
			}
			f.GrowthPerHour = perHour(f.Growth(), span)
			f.Evidence = EvidenceHint
			if f.Monotonic && f.Samples >= 3 {
				f.Evidence = EvidenceTrend
			}
			f.Limit, f.LimitUsed = limit(pb.leader, totalB)
			f.ExhaustsIn, f.Exhausts = exhausts(f.Limit, pt.totalA, totalB, span)
			out = append(out, f)
		}
	}
	return out
}

// fdSeries returns the fds of each process with findings in every
// snapshot of the range, in the findings' order.
func (w *Walk) fdSeries(leaks []FDLeakFinding) []FDSeries {
	var out []FDSeries
	done := map[snapshot.ProcessKey]bool{}
	for _, f := range leaks {
		key := snapshot.ProcessKey{PID: f.PID, StartTime: w.k.start(f.ProcessStart)}
		pt := w.procs[key]
		if done[key] || pt == nil {
			continue
		}
		done[key] = true
		s := FDSeries{PID: f.PID, Comm: f.Comm, ProcessStart: f.ProcessStart, FDs: make([]int, len(w.heads))}
		for i := range s.FDs {
			s.FDs[i] = -1
			if i < len(pt.fdsPerSnap) {
				s.FDs[i] = int(pt.fdsPerSnap[i])
			}
		}
		out = append(out, s)
	}
	return out
}

func perHour(n int, span time.Duration) float64 {
	if span <= 0 {
		return 0
	}
	return float64(n) / span.Hours()
}

// limit returns the leader's RLIMIT_NOFILE soft limit (0 when unknown) and
// the fraction of it that fds use (0 when unlimited or unknown).
func limit(leader *snapshot.Task, fds int) (uint64, float64) {
	if leader.Missing&snapshot.MissingLimit != 0 {
		return 0, 0
	}
	l := leader.NoFileLimit
	if l == 0 || l == snapshot.NoLimit {
		return l, 0
	}
	return l, float64(fds) / float64(l)
}

// exhausts is how long a process with fdsA fds at A and fdsB at B, span
// later, takes to reach limit if its fds go on growing at that rate; false
// when it never does (no limit, limit unknown, not growing).
func exhausts(limit uint64, fdsA, fdsB int, span time.Duration) (time.Duration, bool) {
	if limit == 0 || limit == snapshot.NoLimit || span <= 0 || fdsB <= fdsA {
		return 0, false
	}
	left := float64(limit) - float64(fdsB)
	if left <= 0 {
		return 0, true
	}
	perSecond := float64(fdsB-fdsA) / span.Seconds()
	secs := left / perSecond
	if secs >= math.MaxInt64/float64(time.Second) {
		return time.Duration(math.MaxInt64), true
	}
	return time.Duration(secs * float64(time.Second)).Round(time.Second), true
}
