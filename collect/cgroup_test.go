//go:build linux

package collect

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/bpf/bpftest"
	"github.com/itersnap/itersnap/snapshot"
)

// TestWalkCgroups: the getdents walk finds the same cgroups, with the same
// ids, as a walk that stats every directory (filepath.WalkDir, which it
// replaced), on the host's hierarchy with a nested tree of the test's own
// whose names hold a space, a tab and an escape (cgroupfs refuses a
// newline).
func TestWalkCgroups(t *testing.T) {
	bpftest.RequireBPF(t) // root, to make cgroups
	mnt, root, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	base := filepath.Join(mnt, "itersnap-test-"+randomHex(t, 6))
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(made[i]); err != nil {
				t.Errorf("remove cgroup: %v", err)
			}
		}
	})
	for _, rel := range []string{"", "a b", "a b/tab\there", "a b/tab\there/\x1b[31mred", "c", "c/d", "c/d/e", "c/d/e/f"} {
		dir := filepath.Join(base, rel)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatalf("make cgroup: %v", err)
		}
		made = append(made, dir)
	}

	got, err := walkCgroups()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]uint64{}
	err = filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(mnt, p)
		want[path.Join(root, "/"+filepath.ToSlash(rel))] = fi.Sys().(*syscall.Stat_t).Ino
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(want) < 9 {
		t.Fatalf("the stat walk found %d cgroups, fewer than the test made", len(want))
	}
	if diff := cmp.Diff(want, got.byPath); diff != "" {
		t.Errorf("cgroups by path (-stat walk +getdents walk):\n%s", diff)
	}
	for p, id := range got.byPath {
		if got.byID[id] != p {
			t.Errorf("id %d of %q resolves to %q", id, p, got.byID[id])
		}
	}
}

// TestCgroupPaths builds paths from names as the kernel gives them: each
// cgroup with its parent's id, the root with none; a cgroup with a missing
// ancestor gets no path, and a loop (no kernel makes one) ends.
func TestCgroupPaths(t *testing.T) {
	names := map[uint64]cgroupName{
		1:  {0, ""},
		2:  {1, "system.slice"},
		3:  {2, "a b\t\x1b[31m"},
		4:  {3, "docker-1.scope"},
		5:  {9, "orphan"}, // 9 was not named
		6:  {5, "below-orphan"},
		7:  {8, "loop"},
		8:  {7, "loop"},
		10: {1, "init.scope"},
	}
	want := map[uint64]string{
		1:  "/",
		2:  "/system.slice",
		3:  "/system.slice/a b\t\x1b[31m",
		4:  "/system.slice/a b\t\x1b[31m/docker-1.scope",
		10: "/init.scope",
	}
	if diff := cmp.Diff(want, cgroupPaths(names)); diff != "" {
		t.Errorf("cgroupPaths (-want +got):\n%s", diff)
	}
}

// TestCgroupNames: the BPF collector names a task's cgroup from what the
// kernel wrote in the task walk, without reading the hierarchy, and gets
// the path /proc/PID/cgroup shows, with hostile and NAME_MAX names; a chain
// deeper than one task's records carry is named by the process's other
// threads, and where there are none, or the chain is deeper than the
// programs look, from the hierarchy.
func TestCgroupNames(t *testing.T) {
	bpftest.RequireBPF(t)
	if !inInitialCgroupNS() {
		t.Skip("not in the initial cgroup namespace: the kernel's names are not used")
	}
	_, root, err := Cgroup2Mount()
	if err != nil {
		t.Fatal(err)
	}
	base := "itersnap-test-" + randomHex(t, 6)
	// chain makes base/prefix/1/2/.../depth below the mount, some levels
	// with hostile names or names of NAME_MAX bytes, and returns it and
	// its directory.
	chain := func(t *testing.T, prefix string, depth int) (rel, dir string) {
		rel = filepath.Join(base, prefix)
		for i := 1; i <= depth; i++ {
			name := fmt.Sprint(i)
			switch i % 10 {
			case 3:
				name = "tab\there \x1b[31m" + name
			case 5:
				name += strings.Repeat("n", 255-len(name))
			}
			rel = filepath.Join(rel, name)
		}
		return rel, bpftest.Cgroup(t, rel)
	}

	for _, c := range []struct {
		name     string
		depth    int
		threaded bool // a Go child (several threads), else sleep(1) (one)
		walk     bool // whether the hierarchy must be read
	}{
		{"shallow, one thread", 4, false, false},
		// 16 cgroup records per task: the other threads name the rest.
		{"deeper than a task's records, threads", 20, true, false},
		{"deeper than a task's records, one thread", 20, false, true},
		// Deeper than the programs look up from a task (32).
		{"deeper than the programs look", 40, true, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rel, dir := chain(t, strings.ReplaceAll(c.name, " ", "-"), c.depth)
			var pid int
			if c.threaded {
				pid = int(startNetChild(t, nil).pid)
			} else {
				pid = bpftest.Sleeper(t).Process.Pid
			}
			bpftest.MoveToCgroup(t, dir, pid)
			procCgroup, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", pid))
			if err != nil {
				t.Fatal(err)
			}
			want := filepath.Join(root, "/"+rel)
			if !strings.Contains(string(procCgroup), "0::"+want+"\n") {
				t.Fatalf("/proc/%d/cgroup: %q, want 0::%s", pid, procCgroup, want)
			}
			var st BPFStats
			s, err := BPF{Stats: &st}.Collect(context.Background(), snapshot.Filter{PIDs: []uint32{uint32(pid)}})
			if err != nil {
				t.Fatalf("BPF collect: %+v", err)
			}
			tasks := tasksOf(s, uint32(pid))
			if len(tasks) == 0 || c.threaded != (len(tasks) > 1) {
				t.Fatalf("%d threads of pid %d", len(tasks), pid)
			}
			for _, task := range tasks {
				if task.Cgroup != want {
					t.Errorf("tid %d: cgroup %q, want %q", task.TID, task.Cgroup, want)
				}
			}
			if st.CgroupWalk != c.walk {
				t.Errorf("the hierarchy was read: %v, want %v (%d cgroups named)", st.CgroupWalk, c.walk, st.CgroupsNamed)
			}
			if st.CgroupsNamed < min(c.depth, 16) {
				t.Errorf("%d cgroups named, want at least %d", st.CgroupsNamed, min(c.depth, 16))
			}
		})
	}
}
