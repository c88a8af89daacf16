//go:build linux

package bpftest

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// Cgroup makes the cgroup v2 cgroups rel (a path below the hierarchy's
// mount; its missing ancestors too) and removes them when the test ends,
// after the processes in them are gone (cleanups run last first: start the
// processes after Cgroup). It returns the cgroup's directory.
func Cgroup(t testing.TB, rel string) string {
	t.Helper()
	dir := cgroup2Mount(t)
	var made []string
	t.Cleanup(func() {
		for i := len(made) - 1; i >= 0; i-- {
			if err := os.Remove(made[i]); err != nil {
				t.Errorf("remove cgroup: %v", err)
			}
		}
	})
	for _, e := range strings.Split(rel, "/") {
		dir = filepath.Join(dir, e)
		if err := os.Mkdir(dir, 0o755); err == nil {
			made = append(made, dir)
		} else if !os.IsExist(err) {
			t.Fatalf("make cgroup: %v", err)
		}
	}
	return dir
}

// MoveToCgroup moves process pid into the cgroup whose directory is dir.
func MoveToCgroup(t testing.TB, dir string, pid int) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		t.Fatalf("move %d into cgroup %s: %v", pid, dir, err)
	}
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted, from
// /proc/self/mountinfo: /sys/fs/cgroup, or /sys/fs/cgroup/unified on a
// hybrid host. (collect.Cgroup2Mount does this for itersnap; a bpf test
// cannot import collect.)
func cgroup2Mount(t testing.TB) string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// 41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
		before, after, _ := strings.Cut(sc.Text(), " - ")
		fields := strings.Fields(before)
		if strings.HasPrefix(after, "cgroup2 ") && len(fields) >= 5 && !strings.ContainsRune(fields[4], '\\') {
			return fields[4]
		}
	}
	t.Fatal("no cgroup2 mount in /proc/self/mountinfo")
	return ""
}

// Sleeper starts sleep(1) for an hour, a process of one thread, and kills
// it when the test ends (or when this process dies).
func Sleeper(t testing.TB) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "3600")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}
