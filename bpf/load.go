//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// Limits of the in-kernel filters (the sizes of the arrays in
// itersnap.bpf.c).
const (
	MaxPIDs    = 64
	MaxComms   = 16
	MaxCgroups = 64
	commLen    = 16 // TASK_COMM_LEN
)

// TaskRecord, SymbolRecord, CgroupRecord and FileRecord are the fixed
// records the iterators write; bpf2go generates them from the C structs, so
// there is one definition.
type (
	TaskRecord   = itersnapTaskRec
	SymbolRecord = itersnapSymRec
	CgroupRecord = itersnapCgroupRec
	FileRecord   = itersnapFileRec
)

// Filter selects tasks in the kernel: a task passes when its tgid is in PIDs
// or its comm or its process's comm is in Comms (either empty: every task),
// and, when ByCgroup is set, when its cgroup v2 cgroup is one of Cgroups or
// below one. ByCgroup with no Cgroups keeps nothing. The zero Filter keeps
// everything.
type Filter struct {
	PIDs     []uint32
	Comms    []string
	ByCgroup bool
	Cgroups  []Cgroup
}

// Cgroup is a cgroup v2 cgroup as the kernel knows it: its kernfs node id
// (its directory's inode number) and its depth below the root (the root
// is at level 0).
type Cgroup struct {
	ID    uint64
	Level uint32
}

// ErrPermission means the kernel refused to load BPF for lack of privilege.
var ErrPermission = errors.New("loading BPF needs root (CAP_BPF, CAP_PERFMON)")

// Objects are the iterator programs, loaded by this process or opened from
// their pins (pin.go): the iterator links the walks open, and the map of
// per-walk state that each walk clears.
type Objects struct {
	objs       *programs // nil when opened from pins
	task, file *link.Iter
	symbolized *ebpf.Map
	lock       *os.File // the pin directory, locked while this process walks
	// The read buffers of the task and fd walks, each reused by every
	// walk of its iterator: the two walks may run at once.
	taskBuf, fileBuf []byte

	// Source is how the programs came to be: loaded for this take only,
	// loaded and then pinned, or opened from pins.
	Source Source
	// PinError says why programs loaded by Open were not pinned (nil when
	// they were, or were opened from pins).
	PinError error

	// object is which build of the programs this is: ObjectMain or
	// ObjectLoops (objects.go).
	object string
	// mainRefusal is why the kernel refused the main object, when this
	// process loaded the bounded-loop one instead.
	mainRefusal string
}

// Load sets the filters on the spec and loads the programs into the kernel:
// the main object, or where the kernel refuses it the bounded-loop one
// (objects.go). A kernel that refuses both gets a *MissingError, which
// names what it lacks and wraps ebpf.ErrNotSupported and the verifier's
// error (print that with %+v for the whole log); a refusal for lack of
// privilege wraps ErrPermission.
func Load(f Filter) (*Objects, error) {
	if len(f.PIDs) > MaxPIDs {
		return nil, fmt.Errorf("at most %d pid filters", MaxPIDs)
	}
	if len(f.Comms) > MaxComms {
		return nil, fmt.Errorf("at most %d comm filters", MaxComms)
	}
	if len(f.Cgroups) > MaxCgroups {
		return nil, fmt.Errorf("at most %d cgroup filters", MaxCgroups)
	}
	if err := checkKernel(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK: lift it
	// before loading, as cilium/ebpf's rlimit.RemoveMemlock does there.
	// (Not that package: its init probes the kernel with a BPF map in every
	// itersnap process, an `itersnap list` too.) Later kernels charge the
	// memory cgroup, and the limit does not matter.
	unlimited := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &unlimited); err != nil && !errors.Is(err, unix.EPERM) {
		return nil, fmt.Errorf("raise memlock rlimit: %w", err)
	}
	p, name, mainRefusal, err := loadPrograms(f)
	if err != nil {
		return nil, err
	}
	o, err := attach(p)
	if err != nil {
		return nil, err
	}
	o.object, o.mainRefusal = name, mainRefusal
	return o, nil
}

// Object says which build of the programs this is: ObjectMain or
// ObjectLoops.
func (o *Objects) Object() string { return o.object }

// MainRefusal is why the main object did not load, when this process
// loaded ObjectLoops: "bpf_loop: Linux 5.17" on a kernel without it. It is
// empty for programs opened from pins.
func (o *Objects) MainRefusal() string { return o.mainRefusal }

// filterConst is one of the constants the filters set before load.
type filterConst struct {
	name  string
	value any // fixed size: binary.Write encodes it (pinName hashes it)
}

func filterConsts(f Filter) []filterConst {
	var pids [MaxPIDs]uint32
	copy(pids[:], f.PIDs)
	var comms [MaxComms][commLen]byte
	for i, c := range f.Comms {
		// The kernel keeps 15 bytes and a NUL; compare on what it keeps.
		copy(comms[i][:commLen-1], c)
	}
	var ids [MaxCgroups]uint64
	var levels [MaxCgroups]uint32
	for i, c := range f.Cgroups {
		ids[i], levels[i] = c.ID, c.Level
	}
	byCgroup := uint32(0)
	if f.ByCgroup {
		byCgroup = 1
	}
	return []filterConst{
		{"nr_filter_pids", uint32(len(f.PIDs))},
		{"filter_pids", pids},
		{"nr_filter_comms", uint32(len(f.Comms))},
		{"filter_comms", comms},
		{"filter_by_cgroup", byCgroup},
		{"nr_filter_cgroups", uint32(len(f.Cgroups))},
		{"filter_cgroup_ids", ids},
		{"filter_cgroup_levels", levels},
	}
}

func setFilter(spec *ebpf.CollectionSpec, f Filter) error {
	for _, s := range filterConsts(f) {
		v, ok := spec.Variables[s.name]
		if !ok {
			return fmt.Errorf("BPF object has no variable %s", s.name)
		}
		if err := v.Set(s.value); err != nil {
			return fmt.Errorf("set %s: %w", s.name, err)
		}
	}
	return nil
}

// checkKernel says plainly what is missing, before the loader says it
// obscurely. Kernel features are not judged by the release number: the
// loader tries the programs (objects.go), since distributions backport
// BPF (RHEL 9's 5.14 has bpf_loop, which came in 5.17).
func checkKernel() error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("kernel BTF (/sys/kernel/btf/vmlinux) is missing, which the BPF collector needs (CONFIG_DEBUG_INFO_BTF): %w", ebpf.ErrNotSupported)
	}
	return nil
}

// Close closes this process's hold on the programs: they are unloaded
// unless they are pinned. Closing twice does nothing.
func (o *Objects) Close() error {
	var errs []error
	if o.task != nil {
		errs = append(errs, o.task.Close())
	}
	if o.file != nil {
		errs = append(errs, o.file.Close())
	}
	if o.objs != nil {
		errs = append(errs, o.objs.Close()) // o.symbolized among them
	} else if o.symbolized != nil {
		errs = append(errs, o.symbolized.Close())
	}
	if o.lock != nil {
		errs = append(errs, o.lock.Close()) // and with it the lock
	}
	o.task, o.file, o.objs, o.symbolized, o.lock = nil, nil, nil, nil, nil
	return errors.Join(errs...)
}

// CommString turns a NUL-padded comm into a string.
func CommString(c [commLen]int8) string {
	b := make([]byte, 0, commLen)
	for _, ch := range c {
		if ch == 0 {
			break
		}
		b = append(b, byte(ch))
	}
	return string(b)
}
