package diff

import (
	"strings"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// group is what leaked fds are counted by: the fd's kind and its target.
type group struct {
	kind, target string
}

// groupOf is where an fd's group is decided: a socket whose sock was read
// by what it is (snapshot.Socket.Target: "tcp CLOSE_WAIT 10.0.0.5:5432"),
// anything else by its path.
func groupOf(f *snapshot.File) group {
	if t := f.Socket.Target(); t != "" {
		return group{f.Kind(), t}
	}
	return group{f.Kind(), Target(f.Path)}
}

// fdKey is an fd's identity within one process: the same number pointing at
// another file is a close plus an open.
type fdKey struct {
	fd         uint32
	dev, inode uint64
}

func keyOf(f *snapshot.File) fdKey { return fdKey{f.FD, f.Dev, f.Inode} }

// Target collapses the numeric part of a pseudo file's path, so that every
// socket of a process counts in one group: "socket:[123]" becomes
// "socket:[*]", as do "pipe:[456]" and "net:[4026531840]". Named anon inodes
// ("anon_inode:[eventfd]") and real paths are kept as they are.
func Target(path string) string {
	if strings.HasPrefix(path, "/") {
		return path
	}
	prefix, rest, ok := strings.Cut(path, ":[")
	if !ok || prefix == "" || !strings.HasSuffix(rest, "]") {
		return path
	}
	digits := strings.TrimSuffix(rest, "]")
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return path
	}
	return prefix + ":[*]"
}

// fdLeaks compares the fds of each process alive (same identity) at A and B.
func (c *comparison) fdLeaks() []FDLeakFinding {
	a, b := c.views[0], c.views[len(c.views)-1]
	span := b.snap.Meta.Time.Sub(a.snap.Meta.Time)
	var out []FDLeakFinding
	for key, pb := range b.procs {
		pa, ok := a.procs[key]
		if !ok {
			continue
		}
		openAtA := make(map[fdKey]struct{}, len(pa.files))
		for _, f := range pa.files {
			openAtA[keyOf(f)] = struct{}{}
		}
		countA, countB := a.groupCounts(key), b.groupCounts(key)
		newB := map[group]int{}
		for _, f := range pb.files {
			if _, ok := openAtA[keyOf(f)]; !ok {
				newB[groupOf(f)]++
			}
		}
		for g, n := range newB {
			// Churn (as many closed as opened) is not a leak.
			if countB[g] <= countA[g] {
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
				FDsA:        countA[g],
				FDsB:        countB[g],
				New:         n,
				ProcessFDsB: len(pb.files),
			}
			f.GrowthPerHour = perHour(f.Growth(), span)
			f.Monotonic, f.Samples = c.monotonic(key, g)
			f.Limit, f.LimitUsed = limit(pb.leader, f.ProcessFDsB)
			out = append(out, f)
		}
	}
	return out
}

// groupCounts counts the fds of process key by group, once per view.
func (v *view) groupCounts(key snapshot.ProcessKey) map[group]int {
	if counts, ok := v.groups[key]; ok {
		return counts
	}
	counts := map[group]int{}
	if p, ok := v.procs[key]; ok {
		for _, f := range p.files {
			counts[groupOf(f)]++
		}
	}
	v.groups[key] = counts
	return counts
}

// monotonic reports whether group g of process key never shrank between
// consecutive snapshots that saw the process, and how many saw it.
func (c *comparison) monotonic(key snapshot.ProcessKey, g group) (bool, int) {
	monotonic, samples, last := true, 0, 0
	for _, v := range c.views {
		if _, ok := v.procs[key]; !ok {
			continue
		}
		n := v.groupCounts(key)[g]
		if samples > 0 && n < last {
			monotonic = false
		}
		samples++
		last = n
	}
	return monotonic, samples
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
