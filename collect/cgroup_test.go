//go:build linux

package collect

import (
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/itersnap/itersnap/bpf/bpftest"
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
