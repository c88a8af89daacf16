package output

import (
	"fmt"
	"sort"
	"strings"

	"github.com/itersnap/itersnap/snapshot"
)

// Keep selects threads; nil keeps every one.
type Keep = func(*snapshot.Task) bool

// TaskRow is one thread of a snapshot: `show --tasks`.
type TaskRow struct {
	Snapshot uint64
	Task     *snapshot.Task
	Stack    string // folded, root to leaf
}

// TaskColumns are `show --tasks`'s columns.
var TaskColumns = []Column[TaskRow]{
	{"snapshot", Whole, func(r TaskRow) Value { return Uint(r.Snapshot) }},
	{"pid", Whole, func(r TaskRow) Value { return Uint(r.Task.PID) }},
	{"tid", Whole, func(r TaskRow) Value { return Uint(r.Task.TID) }},
	{"comm", Whole, func(r TaskRow) Value { return Text(r.Task.Comm) }},
	{"state", Whole, func(r TaskRow) Value { return Text(string(r.Task.StateLetter())) }},
	{"stack", KeepTail, func(r TaskRow) Value { return Text(r.Stack) }},
	{"cgroup", KeepTail, func(r TaskRow) Value { return Text(r.Task.Cgroup) }},
	{"container", KeepHead, func(r TaskRow) Value { return Text(r.Task.Container()) }},
	{"pod", KeepHead, func(r TaskRow) Value { return Text(r.Task.Pod()) }},
	{"ns_pid", Whole, func(r TaskRow) Value { return knownUint(r.Task.NSPID) }},
}

// knownUint is v, or "does not apply" for 0, which no kernel gives a
// namespace or a pid: the collector could not read it.
func knownUint(v uint32) Value {
	if v == 0 {
		return None()
	}
	return Uint(v)
}

// TaskRows lists the threads of s that keep keeps, in snapshot order.
func TaskRows(s *snapshot.Snapshot, keep Keep) []TaskRow {
	out := make([]TaskRow, 0, len(s.Tasks))
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if keep != nil && !keep(t) {
			continue
		}
		out = append(out, TaskRow{s.ID, t, s.StackOf(*t).Folded()})
	}
	return out
}

// FDRow is one open fd of a snapshot: `show --fds`.
type FDRow struct {
	Snapshot uint64
	File     *snapshot.File
	Comm     string // the process's name
}

// FDColumns are `show --fds`'s columns.
var FDColumns = []Column[FDRow]{
	{"snapshot", Whole, func(r FDRow) Value { return Uint(r.Snapshot) }},
	{"pid", Whole, func(r FDRow) Value { return Uint(r.File.PID) }},
	{"comm", Whole, func(r FDRow) Value { return Text(r.Comm) }},
	{"fd", Whole, func(r FDRow) Value { return Uint(r.File.FD) }},
	{"kind", Whole, func(r FDRow) Value { return Text(r.File.Kind()) }},
	{"path", KeepTail, func(r FDRow) Value { return Text(r.File.Path) }},
	{"proto", Whole, func(r FDRow) Value { return Text(r.File.Socket.Proto()) }},
	{"sock_state", Whole, func(r FDRow) Value { return Text(r.File.Socket.StateName()) }},
	{"local", KeepTail, func(r FDRow) Value { return Text(r.File.Socket.LocalEnd()) }},
	{"remote", KeepTail, func(r FDRow) Value { return Text(r.File.Socket.RemoteEnd()) }},
	{"netns", Whole, func(r FDRow) Value { return knownUint(r.File.Socket.NetNSInode()) }},
}

// ProcessesByPID maps each pid to its process: its (leader's) name, which a
// --comm filter also matches, and its container, which --container does.
func ProcessesByPID(s *snapshot.Snapshot) map[uint32]snapshot.Process {
	m := map[uint32]snapshot.Process{}
	for _, p := range s.Processes() {
		m[p.PID] = p
	}
	return m
}

// FDRows lists the fds of the processes f matches, in snapshot order.
func FDRows(s *snapshot.Snapshot, f snapshot.Filter) []FDRow {
	procs := ProcessesByPID(s)
	out := make([]FDRow, 0, len(s.Files))
	for i := range s.Files {
		fd := &s.Files[i]
		p := procs[fd.PID]
		if !f.Match(fd.PID, p.Comm, p.Comm) || !f.MatchContainer(p.Container()) {
			continue
		}
		out = append(out, FDRow{s.ID, fd, p.Comm})
	}
	return out
}

// StackRow is the threads of a snapshot that share one kernel stack:
// `show --stacks`.
type StackRow struct {
	Snapshot uint64
	Threads  int
	States   string // "D(12) S(1)", most first
	Comms    string // the five most common names, "nginx(4) sshd(1) +2 more"
	Stack    string // folded, root to leaf
}

// StackColumns are `show --stacks`'s columns.
var StackColumns = []Column[StackRow]{
	{"snapshot", Whole, func(r StackRow) Value { return Uint(r.Snapshot) }},
	{"threads", Whole, func(r StackRow) Value { return Int(r.Threads) }},
	{"states", Whole, func(r StackRow) Value { return Text(r.States) }},
	{"comms", KeepHead, func(r StackRow) Value { return Text(r.Comms) }},
	{"stack", KeepTail, func(r StackRow) Value { return Text(r.Stack) }},
}

// StackRows groups the threads keep keeps by identical stack, most threads
// first: the question at 3 a.m. is usually "what are all these threads
// waiting on".
func StackRows(s *snapshot.Snapshot, keep Keep) []StackRow {
	type group struct {
		threads int
		states  map[string]int
		comms   map[string]int
		folded  string
	}
	groups := map[string]*group{}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if keep != nil && !keep(t) {
			continue
		}
		folded := s.StackOf(*t).Folded()
		g := groups[folded]
		if g == nil {
			g = &group{states: map[string]int{}, comms: map[string]int{}, folded: folded}
			groups[folded] = g
		}
		g.threads++
		g.states[string(t.StateLetter())]++
		g.comms[t.Comm]++
	}
	list := make([]*group, 0, len(groups))
	for _, g := range groups {
		list = append(list, g)
	}
	sort.Slice(list, func(i, j int) bool {
		if list[i].threads != list[j].threads {
			return list[i].threads > list[j].threads
		}
		return list[i].folded < list[j].folded
	})
	out := make([]StackRow, len(list))
	for i, g := range list {
		out[i] = StackRow{s.ID, g.threads, counts(g.states, 0), counts(g.comms, 5), g.folded}
	}
	return out
}

// counts renders {"D": 3, "S": 1} as "D(3) S(1)", largest first, keeping at
// most limit entries (0 = all).
func counts(m map[string]int, limit int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	var b strings.Builder
	for i, k := range keys {
		if limit > 0 && i == limit {
			fmt.Fprintf(&b, " +%d more", len(keys)-limit)
			break
		}
		if i > 0 {
			b.WriteByte(' ')
		}
		fmt.Fprintf(&b, "%s(%d)", k, m[k])
	}
	return b.String()
}
