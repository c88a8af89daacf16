// Package snapshot is itersnap's data model: snapshots of tasks, fds and
// interned stacks, and the identities that compare them across snapshots.
// It is pure Go and builds on every OS; the collectors that fill it are in
// package collect (Linux only).
package snapshot

import (
	"cmp"
	"slices"
	"sort"
	"strings"
	"time"
)

// Snapshot is everything one `itersnap take` recorded.
type Snapshot struct {
	// ID is assigned by the store; zero until the snapshot is stored.
	ID     uint64
	Meta   Meta
	Tasks  []Task  // one per thread
	Files  []File  // one per open fd, once per fd table
	Stacks []Stack // interned kernel stacks; Task.Stack indexes this slice
}

// Meta describes how and where a snapshot was taken. The store keeps it apart
// from the records so that `itersnap list` never decodes a whole snapshot.
type Meta struct {
	Time      time.Time     // when collection started
	Hostname  string        //
	Kernel    string        // uname -r
	BootID    string        // /proc/sys/kernel/random/boot_id: task identities are per boot
	Collector string        // "bpf", "bpf-loops" (the bounded-loop BPF object) or "procfs"
	Filter    Filter        // what the collector was asked to keep
	Label     string        // free text from `take --label`
	Duration  time.Duration // load + collect + symbolize, before the commit
	Notes     []string      // what the collector could not record, one line each
	// Partial says what the collector could not read for lack of
	// privilege, e.g. "no stacks for 2,150 of 2,156 threads, fds of 3 of
	// 110 processes" (procfs run as a user other than root); empty when
	// the snapshot holds everything the filter kept.
	Partial string `json:",omitempty"`

	// Counts, filled by Finish, so that listing needs no records.
	Threads   int
	Processes int
	FDs       int
}

// Filter selects tasks by process id or by name; a task that matches any
// entry is kept. Containers and Cgroups narrow that further: a task is kept
// only when, besides, its container ID starts with one of Containers or its
// cgroup is one of Cgroups or below it. An empty filter keeps everything.
type Filter struct {
	Comms      []string `json:",omitempty"`
	PIDs       []uint32 `json:",omitempty"`
	Containers []string `json:",omitempty"` // container ID prefixes
	Cgroups    []string `json:",omitempty"` // cgroup v2 paths: "/system.slice"
}

// The most entries a Filter may have: the sizes of the BPF program's filter
// arrays (bpf/itersnap.bpf.c), which the procfs collector honours too.
const (
	MaxFilterPIDs  = 64
	MaxFilterComms = 16
)

// Empty reports whether the filter keeps every task.
func (f Filter) Empty() bool {
	return len(f.Comms) == 0 && len(f.PIDs) == 0 && len(f.Containers) == 0 && len(f.Cgroups) == 0
}

// ByTask is the filter's pid and name part alone: what a collector can
// apply to a task before it knows the task's cgroup.
func (f Filter) ByTask() Filter { return Filter{Comms: f.Comms, PIDs: f.PIDs} }

// MatchCgroup reports whether a task in this cgroup passes the filter's
// container and cgroup part (true when it has none).
func (f Filter) MatchCgroup(cgroup string) bool {
	if len(f.Containers) == 0 && len(f.Cgroups) == 0 {
		return true
	}
	if id := ContainerID(cgroup); id != "" {
		for _, c := range f.Containers {
			if strings.HasPrefix(id, c) {
				return true
			}
		}
	}
	for _, c := range f.Cgroups {
		if InCgroup(cgroup, c) {
			return true
		}
	}
	return false
}

// MatchContainer reports whether a container ID passes the filter's
// Containers (true when it has none): the ID starts with one of them.
func (f Filter) MatchContainer(id string) bool {
	if len(f.Containers) == 0 {
		return true
	}
	for _, c := range f.Containers {
		if id != "" && strings.HasPrefix(id, c) {
			return true
		}
	}
	return false
}

// InCgroup reports whether cgroup is parent or below it: "/a/b" is in "/a"
// and in "/", "/ab" is not in "/a".
func InCgroup(cgroup, parent string) bool {
	if cgroup == "" {
		return false
	}
	parent = strings.TrimSuffix(parent, "/")
	return parent == "" || cgroup == parent || strings.HasPrefix(cgroup, parent+"/")
}

// Match reports whether a task with this pid, thread comm and process comm
// passes the filter. The collectors apply the same rule (the BPF collector in
// the kernel), so a procfs snapshot and a BPF snapshot with one filter agree.
func (f Filter) Match(pid uint32, comm, processComm string) bool {
	if len(f.Comms) == 0 && len(f.PIDs) == 0 {
		return true
	}
	for _, p := range f.PIDs {
		if p == pid {
			return true
		}
	}
	for _, c := range f.Comms {
		c = TruncComm(c)
		if c == comm || c == processComm {
			return true
		}
	}
	return false
}

// CommLen is the kernel's TASK_COMM_LEN less the terminating NUL.
const CommLen = 15

// TruncComm cuts a name to what the kernel keeps in task->comm.
func TruncComm(s string) string {
	if len(s) > CommLen {
		return s[:CommLen]
	}
	return s
}

// Missing marks the fields of a record that its collector could not read.
type Missing uint16

const (
	MissingStack    Missing = 1 << iota // no kernel stack (exiting task, or /proc/PID/stack unreadable)
	MissingKillable                     // procfs shows D but not whether the wait is killable
	MissingPath                         // the fd's path could not be resolved
	MissingLimit                        // RLIMIT_NOFILE could not be read
	MissingStatus                       // uid or switch counts could not be read
	MissingSocket                       // a socket fd's sock could not be read (or found in /proc/PID/net)
	MissingCgroup                       // the task's cgroup path could not be resolved
)

// Finish fills the counts in Meta. Collectors call it once records are in.
func (s *Snapshot) Finish() {
	s.Meta.Threads = len(s.Tasks)
	s.Meta.FDs = len(s.Files)
	s.Meta.Processes = countProcesses(s.Tasks)
}

// countProcesses is how many pids tasks hold: by counting runs when they
// are in pid order (as Sort leaves them: a map sized for 20,000 threads
// allocated 600 kB to count 200 processes), else with a set.
func countProcesses(tasks []Task) int {
	if slices.IsSortedFunc(tasks, func(a, b Task) int { return cmp.Compare(a.PID, b.PID) }) {
		n := 0
		for i := range tasks {
			if i == 0 || tasks[i].PID != tasks[i-1].PID {
				n++
			}
		}
		return n
	}
	pids := map[uint32]struct{}{}
	for _, t := range tasks {
		pids[t.PID] = struct{}{}
	}
	return len(pids)
}

// Sort orders records by pid, tid and fd, so that output and encodings are
// stable whatever order the kernel iterated in.
func (s *Snapshot) Sort() {
	sortTasks(s.Tasks)
	// A walk's fds come in this order already (its tasks by tid, so
	// each process at its leader's, and each table's fds by number):
	// checking is one pass, sorting 200,000 fds with sort.Slice was 10 ms.
	byFile := func(a, b File) int { return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.FD, b.FD)) }
	if !slices.IsSortedFunc(s.Files, byFile) {
		slices.SortFunc(s.Files, byFile)
	}
}

// sortTasks orders tasks by pid and tid. A walk meets threads in tid
// order, so a process's threads are scattered among other processes'
// wherever tids were handed out again: sorting is needed, and sorting the
// 120-byte tasks themselves copies two in every comparison (10 ms at
// 20,000 threads). So the (pid, tid) keys are sorted with their indexes,
// and the tasks then moved into place along the permutation's cycles,
// each once.
func sortTasks(tasks []Task) {
	byTask := func(a, b Task) int { return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.TID, b.TID)) }
	if slices.IsSortedFunc(tasks, byTask) {
		return
	}
	type keyed struct {
		key uint64 // pid << 32 | tid
		at  int    // where the task is
	}
	order := make([]keyed, len(tasks))
	for i, t := range tasks {
		order[i] = keyed{uint64(t.PID)<<32 | uint64(t.TID), i}
	}
	slices.SortFunc(order, func(a, b keyed) int { return cmp.Compare(a.key, b.key) })
	// Position j gets the task at order[j].at; -1 marks a placed one.
	for i := range order {
		if order[i].at < 0 {
			continue
		}
		first := tasks[i]
		j := i
		for {
			from := order[j].at
			order[j].at = -1
			if from == i {
				tasks[j] = first
				break
			}
			tasks[j] = tasks[from]
			j = from
		}
	}
}

// StackOf returns the task's kernel stack, or nil when none was recorded.
func (s *Snapshot) StackOf(t Task) Stack {
	if t.Stack < 0 || int(t.Stack) >= len(s.Stacks) {
		return nil
	}
	return s.Stacks[t.Stack]
}

// Process is a thread group, seen through its leader.
type Process struct {
	PID         uint32
	PPID        uint32
	Comm        string
	StartTime   uint64
	UID         uint32
	NoFileLimit uint64
	Threads     int
	Cgroup      string // the leader's cgroup v2 path
	NSPID       uint32 // the pid in the process's own pid namespace
}

// Container is the container ID that the process's cgroup names.
func (p Process) Container() string { return ContainerID(p.Cgroup) }

// Pod is the Kubernetes pod UID that the process's cgroup names.
func (p Process) Pod() string { return PodUID(p.Cgroup) }

// Processes derives one Process per thread group, ordered by pid. When the
// leader is not in the snapshot (filtered by thread name), the lowest thread
// stands in for it.
func (s *Snapshot) Processes() []Process {
	byPID := map[uint32]*Process{}
	leaders := map[uint32]Task{}
	var order []uint32
	for _, t := range s.Tasks {
		p, ok := byPID[t.PID]
		if !ok {
			p = &Process{PID: t.PID}
			byPID[t.PID] = p
			order = append(order, t.PID)
		}
		p.Threads++
		if cur := leaders[t.PID]; !ok || BetterLeader(&cur, &t) {
			leaders[t.PID] = t
			p.PPID, p.Comm, p.StartTime, p.UID, p.NoFileLimit = t.PPID, t.Comm, t.StartTime, t.UID, t.NoFileLimit
			p.Cgroup, p.NSPID = t.Cgroup, t.NSPID
		}
	}
	sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
	out := make([]Process, 0, len(order))
	for _, pid := range order {
		out = append(out, *byPID[pid])
	}
	return out
}

// DropProcess removes every record of process pid. `take` drops itself:
// the collecting process is new in every snapshot and says nothing about
// the host.
func (s *Snapshot) DropProcess(pid uint32) {
	tasks := s.Tasks[:0]
	for _, t := range s.Tasks {
		if t.PID != pid {
			tasks = append(tasks, t)
		}
	}
	s.Tasks = tasks
	files := s.Files[:0]
	for _, f := range s.Files {
		if f.PID != pid {
			files = append(files, f)
		}
	}
	s.Files = files
	s.Finish()
}
