//go:build linux

package bpf

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"

	"github.com/itersnap/itersnap/bpf/bpftest"
)

// The test binary doubles as the child processes of the pin tests: TestMain
// runs a role instead of the tests when pinRoleEnv is set.
const pinRoleEnv = "ITERSNAP_BPF_TEST_ROLE"

func TestMain(m *testing.M) {
	switch os.Getenv(pinRoleEnv) {
	case "":
		os.Exit(m.Run())
	case "kill-while-pinning":
		killWhilePinningRole(os.Args[1], os.Args[2], os.Args[3])
	case "nobody":
		nobodyRole(os.Args[1:])
	case "sleep":
		for {
			time.Sleep(time.Hour)
		}
	}
	os.Exit(2)
}

func roleCmd(role string, args ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), pinRoleEnv+"="+role)
	return cmd
}

func openPins(t *testing.T, f Filter, dir string) *Objects {
	t.Helper()
	bpftest.RequireBPF(t)
	o, err := Open(f, dir)
	if err != nil {
		t.Fatalf("Open: %+v", err)
	}
	t.Cleanup(func() { o.Close() })
	return o
}

// entries lists dir, with the pins of each directory in it.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != dir {
			rel, _ := filepath.Rel(dir, path)
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func wantPins(t *testing.T, dir string, f Filter) {
	t.Helper()
	name, err := testPinName(f)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{name, name + "/file", name + "/symbolized", name + "/task"}
	if got := entries(t, dir); !slices.Equal(got, want) {
		t.Errorf("%s holds %q, want %q", dir, got, want)
	}
}

// TestPinThenOpen: the first Open loads and pins, the second opens the
// pins, and both walk.
func TestPinThenOpen(t *testing.T) {
	dir := bpftest.PinDir(t)
	f := Filter{PIDs: []uint32{uint32(os.Getpid())}}
	for i, want := range []Source{Pinned, Opened, Opened} {
		o := openPins(t, f, dir)
		if o.Source != want || o.PinError != nil {
			t.Fatalf("Open %d: %v (%v), want %v", i, o.Source, o.PinError, want)
		}
		fds := 0
		if err := o.Files(new(WalkTimes), func(*FileRecord, []byte, *SockRecord, []byte) { fds++ }); err != nil || fds == 0 {
			t.Fatalf("Open %d: %d fds, %v", i, fds, err)
		}
		o.Close()
	}
	wantPins(t, dir, f)
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("pin directory: %v, %v; want mode 0700", st.Mode(), err)
	}
	for _, p := range entries(t, dir) {
		if st, err := os.Stat(filepath.Join(dir, p)); err == nil && !st.IsDir() && st.Mode().Perm() != 0o600 {
			t.Errorf("pin %s: mode %v, want 0600", p, st.Mode())
		}
	}
}

// TestPinnedWalkStartsClean: a walk of pinned programs symbolizes every
// address of its own, whatever the earlier walk claimed in the shared
// symbolized map, and names every task's cgroup, whatever the earlier walk
// named in the programs' map of named cgroups. Unfiltered, and a process
// ends after the first walk, so that the walks' tasks have other seq_nums
// than the ones that claimed addresses and cgroups before: the process in
// a cgroup of its own, which comes after it, is one seq_num earlier in the
// later walks.
func TestPinnedWalkStartsClean(t *testing.T) {
	dir := bpftest.PinDir(t)
	cgroup := bpftest.Cgroup(t, "itersnap-test-pin-"+strconv.Itoa(os.Getpid()))
	ends := bpftest.Sleeper(t)
	bpftest.MoveToCgroup(t, cgroup, bpftest.Sleeper(t).Process.Pid)
	for i := range 3 {
		if i == 1 {
			ends.Process.Kill()
			ends.Wait()
		}
		o := openPins(t, Filter{}, dir)
		syms := map[uint64]bool{}
		var addrs []uint64
		cgroups := cgroupChains{}
		err := o.Tasks(new(WalkTimes), TaskVisitor{Task: func(rec *TaskRecord, stack []uint64) {
			addrs = append(addrs, stack...)
			cgroups.task(rec)
		}, Symbol: func(rec *SymbolRecord, _ []byte) { syms[rec.Addr] = true },
			Cgroup: cgroups.named})
		if err != nil {
			t.Fatal(err)
		}
		missing := 0
		for _, a := range addrs {
			if !syms[a] {
				missing++
			}
		}
		if missing > 0 || len(addrs) == 0 {
			t.Errorf("walk %d (%v): %d of %d addresses have no symbol", i, o.Source, missing, len(addrs))
		}
		if unnamed := cgroups.unnamed(); len(unnamed) > 0 {
			t.Errorf("walk %d (%v): threads %v have cgroups the walk did not name", i, o.Source, unnamed)
		}
		o.Close()
	}
}

// cgroupChains gathers a task walk's threads' cgroups and the cgroups the
// walk named.
type cgroupChains struct {
	tasks  map[uint32]uint64 // tid: cgroup id
	parent map[uint64]uint64 // a named cgroup's parent (0: the root)
}

func (c *cgroupChains) task(rec *TaskRecord) {
	if c.tasks == nil {
		c.tasks = map[uint32]uint64{}
	}
	c.tasks[rec.Tid] = rec.CgroupId
}

func (c *cgroupChains) named(rec *CgroupRecord, name []byte) {
	if c.parent == nil {
		c.parent = map[uint64]uint64{}
	}
	if name != nil {
		c.parent[rec.Id] = rec.ParentId
	}
}

// unnamed returns the threads whose cgroup, or one of its ancestors, the
// walk did not name.
func (c *cgroupChains) unnamed() []uint32 {
	var out []uint32
	for tid, id := range c.tasks {
		for depth := 0; id != 0; depth++ {
			parent, ok := c.parent[id]
			if !ok || depth > 255 {
				out = append(out, tid)
				break
			}
			id = parent
		}
	}
	slices.Sort(out)
	return out
}

// TestPinNames: the pin's name changes with every filter constant and with
// the object's bytes.
func TestPinNames(t *testing.T) {
	filters := []Filter{
		{}, {PIDs: []uint32{1}}, {PIDs: []uint32{2}}, {PIDs: []uint32{1, 2}},
		{Comms: []string{"a"}}, {Comms: []string{"b"}}, {PIDs: []uint32{1}, Comms: []string{"a"}},
	}
	seen := map[string]int{}
	for i, f := range filters {
		name, err := testPinName(f)
		if err != nil {
			t.Fatal(err)
		}
		if j, ok := seen[name]; ok {
			t.Errorf("filters %+v and %+v share pin %s", filters[j], f, name)
		}
		seen[name] = i
	}
	before, _ := pinName(mainObject, Filter{})
	other := mainObject
	other.bytes = append(bytes.Clone(other.bytes), 0)
	if after, _ := pinName(other, Filter{}); after == before {
		t.Errorf("another object has the same pin name %s", after)
	}
	if loops, _ := pinName(loopsObject, Filter{}); loops == before {
		t.Errorf("the bounded-loop object has the main object's pin name %s", loops)
	}
}

// TestPinNotReused: a take never opens pins of other filters or of another
// object (here: another binary's pins, planted under another name), and
// removes them when it pins its own.
func TestPinNotReused(t *testing.T) {
	dir := bpftest.PinDir(t)
	a, b := Filter{PIDs: []uint32{uint32(os.Getpid())}}, Filter{Comms: []string{"no-such-comm"}}
	openPins(t, a, dir).Close()
	o := openPins(t, b, dir)
	if o.Source != Pinned {
		t.Errorf("Open with other filters: %v, want %v", o.Source, Pinned)
	}
	o.Close()
	wantPins(t, dir, b)

	// Another binary's pins: ours, under another hash.
	name, _ := testPinName(b)
	other := strings.Repeat("0", len(name))
	if err := os.Rename(filepath.Join(dir, name), filepath.Join(dir, other)); err != nil {
		t.Fatal(err)
	}
	o = openPins(t, b, dir)
	if o.Source != Pinned {
		t.Errorf("Open next to another object's pins: %v, want %v", o.Source, Pinned)
	}
	o.Close()
	wantPins(t, dir, b)
}

// TestUnpin: nothing is left, neither in bpffs nor in the kernel.
func TestUnpin(t *testing.T) {
	dir := bpftest.PinDir(t)
	o := openPins(t, Filter{}, dir)
	info, err := o.task.Info()
	if err != nil {
		t.Fatal(err)
	}
	o.Close()
	if err := Unpin(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("after Unpin: %v", err)
	}
	// The kernel frees a program whose last reference went after an RCU
	// grace period.
	deadline := time.Now().Add(5 * time.Second)
	for {
		p, err := ebpf.NewProgramFromID(info.Program)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if err == nil {
			p.Close()
		}
		if time.Now().After(deadline) {
			t.Fatalf("program %d still loaded after Unpin: %v", info.Program, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := Unpin(dir); err != nil {
		t.Errorf("Unpin of nothing: %v", err)
	}
	if err := Unpin(t.TempDir()); err == nil {
		t.Error("Unpin of a directory not on bpffs: no error")
	}
}

// TestPinsNotForNobody: the pins are root's alone. Even where every
// directory on the way is open to all, nobody can neither read a pinned
// iterator (open(2) of the pin runs it) nor open it with BPF_OBJ_GET.
func TestPinsNotForNobody(t *testing.T) {
	dir := bpftest.PinDir(t)
	f := Filter{}
	openPins(t, f, dir).Close()
	name, _ := testPinName(f)
	pin := filepath.Join(dir, name, pinTask)
	for _, open := range []bool{false, true} {
		if open {
			for d := filepath.Dir(pin); d != "/"; d = filepath.Dir(d) {
				if strings.HasPrefix(d, os.TempDir()+"/") || strings.HasPrefix(d, dir) {
					if err := os.Chmod(d, 0o755); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		out, err := roleCmd("nobody", pin).CombinedOutput()
		if err != nil {
			t.Fatalf("nobody (directories open %v): %v: %s", open, err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			t.Log(line)
			if !strings.HasSuffix(line, ": refused") {
				t.Errorf("nobody (directories open %v): %s", open, line)
			}
		}
	}
	// The next take closes the directory again.
	openPins(t, f, dir).Close()
	if st, err := os.Stat(dir); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("pin directory after a take: %v, %v; want 0700", st.Mode(), err)
	}
}

// nobodyRole becomes nobody and tries to read the pin at args[0]; it prints
// one line per try, ending in "refused" or in what it got.
func nobodyRole(args []string) {
	const nobody = 65534
	if err := syscall.Setgroups(nil); err != nil {
		fmt.Println("setgroups:", err)
		return
	}
	if err := syscall.Setgid(nobody); err != nil {
		fmt.Println("setgid:", err)
		return
	}
	if err := syscall.Setuid(nobody); err != nil {
		fmt.Println("setuid:", err)
		return
	}
	if f, err := os.Open(args[0]); err != nil {
		fmt.Printf("open(2) %v: refused\n", err)
	} else {
		b := make([]byte, 4096)
		n, _ := f.Read(b)
		fmt.Printf("open(2): read %d bytes\n", n)
	}
	if l, err := link.LoadPinnedLink(args[0], nil); err != nil {
		fmt.Printf("BPF_OBJ_GET %v: refused\n", err)
	} else {
		l.Close()
		fmt.Println("BPF_OBJ_GET: opened")
	}
	if os.Getuid() != nobody {
		fmt.Println("still uid", os.Getuid())
	}
	os.Exit(0)
}

// pinStages are where pinHook is called, in order.
var pinStages = []string{"temporary directory", "pinned task", "pinned file", "pinned symbolized", "removed others"}

// TestKilledWhilePinning kills a take (SIGKILL, in a child process) at each
// stage of pinning; the next take pins, and leaves the pins it would have
// left had nothing happened.
func TestKilledWhilePinning(t *testing.T) {
	bpftest.RequireBPF(t)
	dir := bpftest.PinDir(t)
	f := Filter{PIDs: []uint32{uint32(os.Getpid())}}
	for _, stage := range pinStages {
		err := roleCmd("kill-while-pinning", dir, stage, fmt.Sprint(os.Getpid())).Run()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
			t.Fatalf("child to be killed at %q: %v", stage, err)
		}
		o := openPins(t, f, dir)
		if o.Source != Pinned || o.PinError != nil {
			t.Errorf("after a kill at %q: %v (%v), want %v", stage, o.Source, o.PinError, Pinned)
		}
		o.Close()
		wantPins(t, dir, f)
		// Leave other pins for the next child to replace.
		if err := Unpin(dir); err != nil {
			t.Fatal(err)
		}
		openPins(t, Filter{}, dir).Close()
	}
}

// killWhilePinningRole pins the programs for the filter of pid under dir
// and kills itself at stage.
func killWhilePinningRole(dir, stage, pid string) {
	var p uint32
	fmt.Sscan(pid, &p)
	pinHook = func(s string) {
		if s == stage {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
		}
	}
	o, err := Open(Filter{PIDs: []uint32{p}}, dir)
	fmt.Println("not killed:", o, err)
	os.Exit(1)
}

// TestConcurrentOpens: takes that open, pin and walk the same programs at
// once all succeed, and each walk is whole (all its symbols).
func TestConcurrentOpens(t *testing.T) {
	bpftest.RequireBPF(t)
	dir := bpftest.PinDir(t)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 8 {
		wg.Go(func() {
			for range 3 {
				o, err := Open(Filter{}, dir)
				if err != nil {
					errs <- err
					return
				}
				syms := map[uint64]bool{}
				var addrs []uint64
				err = o.Tasks(new(WalkTimes), TaskVisitor{Task: func(_ *TaskRecord, stack []uint64) {
					addrs = append(addrs, stack...)
				}, Symbol: func(rec *SymbolRecord, _ []byte) { syms[rec.Addr] = true }})
				if err == nil {
					err = o.Files(new(WalkTimes), func(*FileRecord, []byte, *SockRecord, []byte) {})
				}
				o.Close()
				for _, a := range addrs {
					if err == nil && !syms[a] {
						err = fmt.Errorf("take %d (%v): address %#x not symbolized", i, o.Source, a)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	wantPins(t, dir, Filter{})
}

// testPinName is the pin name of f's programs as this run loads them: the
// bounded-loop object's where ITERSNAP_BPF_LOOPS forces it.
func testPinName(f Filter) (string, error) { return pinName(candidates()[0], f) }
