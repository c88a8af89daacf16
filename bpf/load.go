//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"
)

// Limits of the in-kernel filters (the sizes of the arrays in
// itersnap.bpf.c).
const (
	MaxPIDs  = 64
	MaxComms = 16
	commLen  = 16 // TASK_COMM_LEN
)

// TaskRecord, SymbolRecord and FileRecord are the fixed records the
// iterators write; bpf2go generates them from the C structs, so there is one
// definition.
type (
	TaskRecord   = itersnapTaskRec
	SymbolRecord = itersnapSymRec
	FileRecord   = itersnapFileRec
)

// Filter selects tasks in the kernel: a task passes when its tgid is in PIDs
// or its comm or its process's comm is in Comms. Empty keeps everything.
type Filter struct {
	PIDs  []uint32
	Comms []string
}

// ErrPermission means the kernel refused to load BPF for lack of privilege.
var ErrPermission = errors.New("loading BPF needs root (CAP_BPF, CAP_PERFMON)")

// Objects are the iterator programs, loaded by this process or opened from
// their pins (pin.go): the iterator links the walks open, and the map of
// per-walk state that each walk clears.
type Objects struct {
	objs       *itersnapObjects // nil when opened from pins
	task, file *link.Iter
	symbolized *ebpf.Map
	lock       *os.File // the pin directory, locked while this process walks
	buf        []byte   // the read buffer, reused by every walk

	// Source is how the programs came to be: loaded for this take only,
	// loaded and then pinned, or opened from pins.
	Source Source
	// PinError says why programs loaded by Open were not pinned (nil when
	// they were, or were opened from pins).
	PinError error
}

// Load sets the filters on the spec and loads the programs into the kernel.
// A missing kernel feature is reported wrapping ebpf.ErrNotSupported, a
// refusal for lack of privilege wrapping ErrPermission; a verifier error is
// an *ebpf.VerifierError (print it with %+v for the whole log).
func Load(f Filter) (*Objects, error) {
	if len(f.PIDs) > MaxPIDs {
		return nil, fmt.Errorf("at most %d pid filters", MaxPIDs)
	}
	if len(f.Comms) > MaxComms {
		return nil, fmt.Errorf("at most %d comm filters", MaxComms)
	}
	if err := checkKernel(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil && !errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("raise memlock rlimit: %w", err)
	}

	spec, err := loadItersnap()
	if err != nil {
		return nil, err
	}
	if err := setFilter(spec, f); err != nil {
		return nil, err
	}
	objs := new(itersnapObjects)
	if err := spec.LoadAndAssign(objs, nil); err != nil {
		if errors.Is(err, os.ErrPermission) { // EPERM and EACCES
			return nil, fmt.Errorf("%w: %v", ErrPermission, err)
		}
		return nil, fmt.Errorf("load BPF programs: %w", err)
	}
	return attach(objs)
}

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
	return []filterConst{
		{"nr_filter_pids", uint32(len(f.PIDs))},
		{"filter_pids", pids},
		{"nr_filter_comms", uint32(len(f.Comms))},
		{"filter_comms", comms},
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

// minKernel is the oldest kernel the programs load on: iter/task and
// bpf_seq_write came in 5.8, bpf_get_task_stack in 5.9, bpf_d_path in
// iterator programs in 5.12, bpf_snprintf in 5.13, bpf_loop in 5.17.
var minKernel = [2]int{5, 17}

// checkKernel says plainly what is missing, before the verifier says it
// obscurely.
func checkKernel() error {
	var u unix.Utsname
	if err := unix.Uname(&u); err == nil {
		release := unix.ByteSliceToString(u.Release[:])
		var major, minor int
		if _, err := fmt.Sscanf(release, "%d.%d", &major, &minor); err == nil &&
			(major < minKernel[0] || major == minKernel[0] && minor < minKernel[1]) {
			return fmt.Errorf("kernel %s is older than %d.%d, which the BPF collector needs (task iterators with bpf_d_path and bpf_loop): %w",
				release, minKernel[0], minKernel[1], ebpf.ErrNotSupported)
		}
	}
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
