package snapshot

import "testing"

// TestStateLetter checks raw state bits against the letters the kernel's
// __task_state_index() gives them.
func TestStateLetter(t *testing.T) {
	const freezable = 0x2000
	for _, tc := range []struct {
		state, exit uint32
		letter      byte
		blocked     bool
		killable    bool
	}{
		{TaskRunning, 0, 'R', false, false},
		{TaskInterruptible, 0, 'S', false, false},
		{TaskInterruptible | freezable, 0, 'S', false, false},
		{TaskUninterruptible, 0, 'D', true, false},
		{TaskKillable | freezable, 0, 'D', true, true}, // a vfork parent
		{TaskIdle, 0, 'I', false, false},
		{TaskIdle | freezable, 0, 'I', false, false},
		{TaskStopped | TaskWakeKill, 0, 'T', false, true},
		{TaskTraced, 0, 't', false, false},
		{TaskParked, 0, 'P', false, false},
		{TaskRTLockWait, 0, 'D', true, false},
		{TaskFrozen, 0, 'D', false, false}, // ps shows D; not a blocked wait
		{TaskDead, ExitZombie, 'Z', false, false},
		{TaskDead, ExitDead, 'X', false, false},
	} {
		task := Task{State: tc.state, ExitState: tc.exit}
		if got := task.StateLetter(); got != tc.letter {
			t.Errorf("state %#x exit %#x: letter %c, want %c", tc.state, tc.exit, got, tc.letter)
		}
		if got := task.Blocked(); got != tc.blocked {
			t.Errorf("state %#x: Blocked %v, want %v", tc.state, got, tc.blocked)
		}
		if got := task.Blocked() && task.Killable(); got != (tc.blocked && tc.killable) {
			t.Errorf("state %#x: killable wait %v", tc.state, got)
		}
	}
}
