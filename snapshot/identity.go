package snapshot

// Identities across snapshots of one boot. PIDs, TIDs and fd numbers are
// reused, start times are not: a thread is (tid, start time), a process
// (pid, start time of its leader), compared at the coarsest resolution any
// snapshot of the comparison has.

// ThreadKey identifies a thread across snapshots of one boot.
type ThreadKey struct {
	TID       uint32
	StartTime uint64
}

// ProcessKey identifies a process across snapshots of one boot.
type ProcessKey struct {
	PID       uint32
	StartTime uint64
}

// Key returns the thread's identity at full resolution.
func (t Task) Key() ThreadKey { return ThreadKey{t.TID, t.StartTime} }

// ProcfsStartResolution is the resolution of start times read from procfs:
// fs/proc/array.c prints start_boottime in clock ticks (USER_HZ = 100),
// truncated by nsec_to_clock_t. A BPF start time (ns) truncated to it equals
// the procfs value of the same task, so snapshots of both collectors are
// compared at this resolution.
const ProcfsStartResolution = 10_000_000

// StartResolution is the resolution of the start times a collector
// (Meta.Collector) records: nanoseconds for both BPF objects ("bpf",
// "bpf-loops"), ProcfsStartResolution for procfs and anything unknown.
func StartResolution(collector string) uint64 {
	switch collector {
	case "bpf", "bpf-loops":
		return 1
	}
	return ProcfsStartResolution
}

// TruncStart truncates a start time (ns since boot) to resolution ns; a
// resolution of 0 or 1 keeps it whole.
func TruncStart(ns, resolution uint64) uint64 {
	if resolution <= 1 {
		return ns
	}
	return ns - ns%resolution
}

// BetterLeader reports whether t stands for its process better than cur
// does: the group leader (tid == pid) always, else the lowest thread, when
// the leader was filtered out. Every process view (Snapshot.Processes, diff)
// picks its leader with this rule.
func BetterLeader(cur, t *Task) bool {
	return cur.TID != cur.PID && (t.TID == t.PID || t.TID < cur.TID)
}
