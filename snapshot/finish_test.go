package snapshot

import "testing"

// TestFinishProcesses: Finish counts processes the same with tasks in pid
// order (runs) and out of it (a set).
func TestFinishProcesses(t *testing.T) {
	sorted := []Task{{PID: 1, TID: 1}, {PID: 1, TID: 2}, {PID: 5, TID: 5}, {PID: 9, TID: 9}, {PID: 9, TID: 10}}
	unsorted := []Task{{PID: 9, TID: 9}, {PID: 1, TID: 1}, {PID: 5, TID: 5}, {PID: 1, TID: 2}, {PID: 9, TID: 10}}
	for name, tasks := range map[string][]Task{"sorted": sorted, "unsorted": unsorted, "none": nil} {
		s := &Snapshot{Tasks: tasks}
		s.Finish()
		want := 3
		if tasks == nil {
			want = 0
		}
		if s.Meta.Processes != want || s.Meta.Threads != len(tasks) {
			t.Errorf("%s: %d processes, %d threads; want %d and %d", name, s.Meta.Processes, s.Meta.Threads, want, len(tasks))
		}
	}
}
