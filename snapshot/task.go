package snapshot

// Task is one thread. PID is the thread group id and TID the thread id, as
// ps names them (the kernel calls them tgid and pid).
type Task struct {
	PID, TID, PPID uint32
	Comm           string
	State          uint32 // raw task->__state bits
	ExitState      uint32 // raw task->exit_state bits (EXIT_ZOMBIE, EXIT_DEAD)
	Flags          uint32 // task->flags (PF_*)
	StartTime      uint64 // task->start_boottime, ns since boot
	Switches       uint64 // nvcsw + nivcsw: unchanged means the task never ran
	UID            uint32 // effective uid
	NoFileLimit    uint64 // RLIMIT_NOFILE soft limit; NoLimit when unlimited
	Stack          int32  // index into Snapshot.Stacks, -1 when none
	// CgroupID is the inode number of the thread's cgroup v2 directory
	// (task->cgroups->dfl_cgrp->kn->id), and Cgroup its path below the
	// cgroup2 mount as the 0:: line of /proc/PID/cgroup shows it ("/" for
	// the root; empty when unknown: MissingCgroup).
	CgroupID uint64 `json:",omitzero"`
	Cgroup   string `json:",omitzero"`
	// NSPID is the process's pid in its own pid namespace (the last field
	// of NStgid in /proc/PID/status; 1 for a container's init). It equals
	// PID in the host's namespace.
	NSPID   uint32 `json:",omitzero"`
	Missing Missing
}

// Container is the container ID that the task's cgroup names, "" when none.
func (t Task) Container() string { return ContainerID(t.Cgroup) }

// Pod is the Kubernetes pod UID that the task's cgroup names, "" when none.
func (t Task) Pod() string { return PodUID(t.Cgroup) }

// NoLimit is RLIM_INFINITY as the kernel stores it.
const NoLimit = ^uint64(0)

// Task state bits from include/linux/sched.h (stable since 5.14; the values
// used here have not moved since 4.14).
const (
	TaskRunning         = 0x0000
	TaskInterruptible   = 0x0001
	TaskUninterruptible = 0x0002
	TaskStopped         = 0x0004
	TaskTraced          = 0x0008
	ExitDead            = 0x0010
	ExitZombie          = 0x0020
	TaskParked          = 0x0040
	TaskDead            = 0x0080
	TaskWakeKill        = 0x0100
	TaskWaking          = 0x0200
	TaskNoLoad          = 0x0400
	TaskNew             = 0x0800
	TaskRTLockWait      = 0x1000
	TaskFrozen          = 0x8000 // 6.1+: frozen by the cgroup freezer or suspend

	TaskIdle     = TaskUninterruptible | TaskNoLoad
	TaskKillable = TaskWakeKill | TaskUninterruptible

	taskReport = TaskRunning | TaskInterruptible | TaskUninterruptible | TaskStopped |
		TaskTraced | ExitDead | ExitZombie | TaskParked
)

// PFKthread is PF_KTHREAD, from include/linux/sched.h.
const PFKthread = 0x00200000

// StateLetters is fs/proc/array.c's task_state_array, indexed by
// task_state_index(): the letters ps prints.
const StateLetters = "RSDTtXZPI"

// StateLetter is the letter ps prints for the task, computed the way
// include/linux/sched.h's __task_state_index() does.
func (t Task) StateLetter() byte {
	state := t.State
	report := (state | t.ExitState) & taskReport
	if state&TaskIdle == TaskIdle {
		return 'I'
	}
	// The kernel reports rtlock waits and frozen tasks as D.
	if state&(TaskRTLockWait|TaskFrozen) != 0 {
		report = TaskUninterruptible
	}
	idx := 0
	for report != 0 { // fls(report)
		idx++
		report >>= 1
	}
	if idx >= len(StateLetters) {
		return '?'
	}
	return StateLetters[idx]
}

// Blocked reports an uninterruptible sleep (ps's D), leaving out idle kernel
// threads (TASK_NOLOAD, ps's I), which sleep that way by design.
func (t Task) Blocked() bool {
	if t.ExitState != 0 {
		return false
	}
	return t.State&TaskUninterruptible != 0 && t.State&TaskNoLoad == 0 ||
		t.State&TaskRTLockWait != 0
}

// Killable reports a blocked wait that a fatal signal ends (TASK_KILLABLE).
// Meaningless when Missing has MissingKillable.
func (t Task) Killable() bool { return t.State&TaskWakeKill != 0 }

// KernelThread reports a kernel thread (PF_KTHREAD).
func (t Task) KernelThread() bool { return t.Flags&PFKthread != 0 }
