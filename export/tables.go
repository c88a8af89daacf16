package export

import (
	"hash/fnv"
	"sync"
	"time"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
)

// The Parquet tables of `itersnap export`, each made on first use: every
// itersnap process, a take from cron among them, would otherwise build
// five tables of Parquet nodes at start (1 ms by GODEBUG=inittrace=1).
// Column names and meanings are the CSV's (README "CSV columns"); every
// row also carries host, boot_id
// and time (its snapshot's), so rows of many hosts mix in one query. Where
// the CSV writes text for a typed value, Parquet keeps the type: integers,
// times as timestamps, booleans as booleans, and null where the CSV's cell
// is empty. New columns are appended to a list, never moved.

// snapshotRow is one snapshot: the snapshots table's row, and the origin of
// every other row.
type snapshotRow struct{ s *snapshot.Snapshot }

func (r *snapshotRow) meta() *snapshot.Meta { return &r.s.Meta }

// origin is the host, boot_id and time columns every table ends its CSV
// columns with; meta gives the row's snapshot.
func origin[R any](meta func(*R) *snapshot.Meta) []column[R] {
	return []column[R]{
		text("host", func(r *R) string { return meta(r).Hostname }),
		text("boot_id", func(r *R) string { return meta(r).BootID }),
		timestamp("time", func(r *R) time.Time { return meta(r).Time }),
	}
}

// snapshotsTable is `itersnap list`'s columns (time and host among them)
// plus boot_id and the snapshot's notes (which say why a partial snapshot
// is partial).
var snapshotsTable = sync.OnceValue(func() *table[snapshotRow] {
	return newTable("snapshots", []column[snapshotRow]{
		unsigned("id", func(r *snapshotRow) uint64 { return r.s.ID }),
		timestamp("time", func(r *snapshotRow) time.Time { return r.s.Meta.Time }),
		text("host", func(r *snapshotRow) string { return r.s.Meta.Hostname }),
		text("kernel", func(r *snapshotRow) string { return r.s.Meta.Kernel }),
		text("collector", func(r *snapshotRow) string { return r.s.Meta.Collector }),
		integer("threads", func(r *snapshotRow) int64 { return int64(r.s.Meta.Threads) }),
		integer("processes", func(r *snapshotRow) int64 { return int64(r.s.Meta.Processes) }),
		integer("fds", func(r *snapshotRow) int64 { return int64(r.s.Meta.FDs) }),
		text("label", func(r *snapshotRow) string { return r.s.Meta.Label }),
		optReal("duration", func(r *snapshotRow) (float64, bool) { return r.s.Meta.Duration.Seconds(), true }),
		text("filter", func(r *snapshotRow) string { return output.FilterString(r.s.Meta.Filter) }),
		optBoolean("partial", func(r *snapshotRow) (bool, bool) { return r.s.Meta.Partial != "", true }),
		text("boot_id", func(r *snapshotRow) string { return r.s.Meta.BootID }),
		texts("notes", func(r *snapshotRow) []string { return r.s.Meta.Notes }),
	}...)
})

// taskRow is one thread of a snapshot.
type taskRow struct {
	s *snapshot.Snapshot
	t *snapshot.Task
}

func (r *taskRow) meta() *snapshot.Meta { return &r.s.Meta }

// tasksTable is `show --tasks`'s columns, with the stack as stack_id (a
// row of the stacks table) and null where the CSV is empty, then origin, then what identifies a thread
// across snapshots (start_time) and what the findings are made of.
var tasksTable = sync.OnceValue(func() *table[taskRow] {
	return newTable("tasks", append(append([]column[taskRow]{
		unsigned("snapshot", func(r *taskRow) uint64 { return r.s.ID }),
		integer("pid", func(r *taskRow) int64 { return int64(r.t.PID) }),
		integer("tid", func(r *taskRow) int64 { return int64(r.t.TID) }),
		text("comm", func(r *taskRow) string { return r.t.Comm }),
		text("state", func(r *taskRow) string { return string(r.t.StateLetter()) }),
		optUnsigned("stack_id", func(r *taskRow) (uint64, bool) { return stackID(r.s.StackOf(*r.t)) }),
		optText("cgroup", func(r *taskRow) (string, bool) { return r.t.Cgroup, r.t.Cgroup != "" }),
		optText("container", func(r *taskRow) (string, bool) { return nonEmpty(r.t.Container()) }),
		optText("pod", func(r *taskRow) (string, bool) { return nonEmpty(r.t.Pod()) }),
		optInteger("ns_pid", func(r *taskRow) (int64, bool) { return int64(r.t.NSPID), r.t.NSPID != 0 }),
	}, origin((*taskRow).meta)...), []column[taskRow]{
		integer("ppid", func(r *taskRow) int64 { return int64(r.t.PPID) }),
		unsigned("start_time", func(r *taskRow) uint64 { return r.t.StartTime }),
		optUnsigned("switches", func(r *taskRow) (uint64, bool) { return r.t.Switches, r.t.Missing&snapshot.MissingStatus == 0 }),
		optBoolean("killable", func(r *taskRow) (bool, bool) { return taskKillable(r.t) }),
		integer("uid", func(r *taskRow) int64 { return int64(r.t.UID) }),
		optUnsigned("limit", func(r *taskRow) (uint64, bool) { return r.t.NoFileLimit, r.t.Missing&snapshot.MissingLimit == 0 }),
	}...)...)
})

// taskKillable is whether a blocked thread's wait ends on a fatal signal;
// null when it is not blocked, or the collector could not tell.
func taskKillable(t *snapshot.Task) (bool, bool) {
	if !t.Blocked() || t.Missing&snapshot.MissingKillable != 0 {
		return false, false
	}
	return t.Killable(), true
}

// fdRow is one open fd; process is its owner as Snapshot.Processes sees it.
type fdRow struct {
	s       *snapshot.Snapshot
	f       *snapshot.File
	process *snapshot.Process
}

func (r *fdRow) meta() *snapshot.Meta { return &r.s.Meta }

// fdsTable is `show --fds`'s columns (the socket's null for other fds),
// then origin, then the fd's identity (the owner's start time, dev,
// inode) and the group diff's fd_leak counts it in ("tcp CLOSE_WAIT
// 10.0.0.5:5432", "socket:[*]", "/data/part*.dat").
var fdsTable = sync.OnceValue(func() *table[fdRow] {
	return newTable("fds", append(append([]column[fdRow]{
		unsigned("snapshot", func(r *fdRow) uint64 { return r.s.ID }),
		integer("pid", func(r *fdRow) int64 { return int64(r.f.PID) }),
		text("comm", func(r *fdRow) string { return r.process.Comm }),
		integer("fd", func(r *fdRow) int64 { return int64(r.f.FD) }),
		text("kind", func(r *fdRow) string { return r.f.Kind() }),
		text("path", func(r *fdRow) string { return r.f.Path }),
		optText("proto", func(r *fdRow) (string, bool) { return nonEmpty(r.f.Socket.Proto()) }),
		optText("sock_state", func(r *fdRow) (string, bool) { return nonEmpty(r.f.Socket.StateName()) }),
		optText("local", func(r *fdRow) (string, bool) { return nonEmpty(r.f.Socket.LocalEnd()) }),
		optText("remote", func(r *fdRow) (string, bool) { return nonEmpty(r.f.Socket.RemoteEnd()) }),
		optInteger("netns", func(r *fdRow) (int64, bool) { n := r.f.Socket.NetNSInode(); return int64(n), n != 0 }),
	}, origin((*fdRow).meta)...), []column[fdRow]{
		unsigned("start_time", func(r *fdRow) uint64 { return r.process.StartTime }),
		unsigned("dev", func(r *fdRow) uint64 { return r.f.Dev }),
		unsigned("inode", func(r *fdRow) uint64 { return r.f.Inode }),
		text("target", func(r *fdRow) string { return diff.GroupTarget(r.f) }),
	}...)...)
})

// stackRow is one distinct kernel stack, with the first snapshot of the
// file that has a thread on it.
type stackRow struct {
	s     *snapshot.Snapshot
	id    uint64
	stack snapshot.Stack
}

func (r *stackRow) meta() *snapshot.Meta { return &r.s.Meta }

// stacksTable maps stack_id to the frames, root → leaf as the CSV's stack
// column reads (frames as the kernel symbolized them, offsets included),
// and the CSV's folded stack.
var stacksTable = sync.OnceValue(func() *table[stackRow] {
	return newTable("stacks", append([]column[stackRow]{
		unsigned("stack_id", func(r *stackRow) uint64 { return r.id }),
		texts("frames", func(r *stackRow) []string { return rootFirst(r.stack) }),
		text("stack", func(r *stackRow) string { return r.stack.Folded() }),
		unsigned("snapshot", func(r *stackRow) uint64 { return r.s.ID }),
	}, origin((*stackRow).meta)...)...)
})

// stackID names a stack by its frames (FNV-1a, 64 bits), so the same stack
// has the same ID in every file, snapshot, database and host; false for a
// thread without a stack.
func stackID(st snapshot.Stack) (uint64, bool) {
	if len(st) == 0 {
		return 0, false
	}
	h := fnv.New64a()
	for _, f := range st {
		h.Write([]byte(f))
		h.Write([]byte{'\n'})
	}
	return h.Sum64(), true
}

func nonEmpty(s string) (string, bool) { return s, s != "" }

func rootFirst(st snapshot.Stack) []string {
	out := make([]string, len(st))
	for i, f := range st {
		out[len(st)-1-i] = f
	}
	return out
}

// findingsTable is `itersnap diff`'s CSV columns, one row per finding,
// then origin (snapshot B's host, boot id and time).
var findingsTable = sync.OnceValue(func() *table[findingRow] {
	return newTable("findings", append([]column[findingRow]{
		text("finding", func(r *findingRow) string { return string(r.kind) }),
		integer("pid", func(r *findingRow) int64 { return int64(r.subject.PID) }),
		integer("tid", func(r *findingRow) int64 { return int64(r.subject.TID) }),
		text("comm", func(r *findingRow) string { return r.subject.Comm }),
		unsigned("snapshot_a", func(r *findingRow) uint64 { return r.a }),
		unsigned("snapshot_b", func(r *findingRow) uint64 { return r.b }),
		optText("state", func(r *findingRow) (string, bool) { return r.state.get() }),
		optBoolean("killable", func(r *findingRow) (bool, bool) { return r.killable.get() }),
		optReal("blocked_for", func(r *findingRow) (float64, bool) { return r.blockedFor.get() }),
		optText("class", func(r *findingRow) (string, bool) { return r.class.get() }),
		optText("kind", func(r *findingRow) (string, bool) { return r.fdKind.get() }),
		optText("target", func(r *findingRow) (string, bool) { return r.target.get() }),
		optInteger("fds_a", func(r *findingRow) (int64, bool) { return r.fdsA.get() }),
		optInteger("fds_b", func(r *findingRow) (int64, bool) { return r.fdsB.get() }),
		optInteger("new_fds", func(r *findingRow) (int64, bool) { return r.newFDs.get() }),
		optInteger("growth", func(r *findingRow) (int64, bool) { return r.growth.get() }),
		optReal("growth_per_hour", func(r *findingRow) (float64, bool) { return r.growthPerHour.get() }),
		optBoolean("monotonic", func(r *findingRow) (bool, bool) { return r.monotonic.get() }),
		optInteger("samples", func(r *findingRow) (int64, bool) { return r.samples.get() }),
		optInteger("process_fds", func(r *findingRow) (int64, bool) { return r.processFDs.get() }),
		optUnsigned("limit", func(r *findingRow) (uint64, bool) { return r.limit.get() }),
		optReal("limit_used", func(r *findingRow) (float64, bool) { return r.limitUsed.get() }),
		optUnsigned("switches_a", func(r *findingRow) (uint64, bool) { return r.switchesA.get() }),
		optUnsigned("switches_b", func(r *findingRow) (uint64, bool) { return r.switchesB.get() }),
		optText("stack", func(r *findingRow) (string, bool) { return r.stack.get() }),
		optText("evidence", func(r *findingRow) (string, bool) { return r.evidence.get() }),
		optReal("exhausts_in", func(r *findingRow) (float64, bool) { return r.exhaustsIn.get() }),
	}, origin(func(r *findingRow) *snapshot.Meta { return r.meta })...)...)
})
