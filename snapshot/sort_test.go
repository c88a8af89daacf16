package snapshot

import (
	"cmp"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSort: Sort leaves tasks in (pid, tid) order and fds in (pid, fd)
// order, every record kept whole, whatever order they came in: in order
// already, reversed, shuffled, and threads scattered among processes as
// a walk in tid order meets them.
func TestSort(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var tasks []Task
	var files []File
	for pid := uint32(100); pid < 160; pid += 3 {
		for tid := pid; tid < pid+uint32(1+rng.IntN(40)); tid++ {
			tasks = append(tasks, Task{PID: pid, TID: tid, Comm: "c", Switches: uint64(rng.Int64())})
		}
		for fd := range uint32(rng.IntN(30)) {
			files = append(files, File{PID: pid, FD: fd, Inode: rng.Uint64()})
		}
	}
	wantTasks, wantFiles := slices.Clone(tasks), slices.Clone(files)
	byTid := slices.Clone(tasks)
	slices.SortFunc(byTid, func(a, b Task) int { return cmp.Compare(a.TID%7, b.TID%7) })
	for name, order := range map[string]func(){
		"sorted":   func() {},
		"reversed": func() { slices.Reverse(tasks); slices.Reverse(files) },
		"shuffled": func() {
			rng.Shuffle(len(tasks), func(i, j int) { tasks[i], tasks[j] = tasks[j], tasks[i] })
			rng.Shuffle(len(files), func(i, j int) { files[i], files[j] = files[j], files[i] })
		},
		"scattered": func() { copy(tasks, byTid) },
	} {
		tasks, files = slices.Clone(wantTasks), slices.Clone(wantFiles)
		order()
		s := &Snapshot{Tasks: tasks, Files: files}
		s.Sort()
		if !slices.Equal(s.Tasks, wantTasks) {
			t.Errorf("%s: tasks out of order or changed", name)
		}
		if !slices.Equal(s.Files, wantFiles) {
			t.Errorf("%s: fds out of order or changed", name)
		}
	}
}
