//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/rlimit"
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

// Objects are the loaded iterator programs.
type Objects struct {
	objs programs
	// object is which build loaded: ObjectMain or ObjectLoops.
	object string
	// mainRefusal is why the kernel refused the main object, when the
	// bounded-loop one loaded instead.
	mainRefusal string
}

// Load sets the filters on the spec and loads the programs into the kernel:
// the main object, or where the kernel refuses it the bounded-loop one
// (bpf/objects.go). A kernel that refuses both gets a *MissingError, which
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
	if err := checkKernel(); err != nil {
		return nil, err
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	if err := rlimit.RemoveMemlock(); err != nil && !errors.Is(err, os.ErrPermission) {
		return nil, fmt.Errorf("raise memlock rlimit: %w", err)
	}

	var o Objects
	var err error
	o.objs, o.object, o.mainRefusal, err = loadPrograms(f)
	if err != nil {
		return nil, err
	}
	return &o, nil
}

// Object says which build of the programs loaded: ObjectMain or
// ObjectLoops.
func (o *Objects) Object() string { return o.object }

// MainRefusal is why the main object did not load, when Object is
// ObjectLoops: "bpf_loop: Linux 5.17" on a kernel without it.
func (o *Objects) MainRefusal() string { return o.mainRefusal }

func setFilter(spec *ebpf.CollectionSpec, f Filter) error {
	var pids [MaxPIDs]uint32
	copy(pids[:], f.PIDs)
	var comms [MaxComms][commLen]byte
	for i, c := range f.Comms {
		// The kernel keeps 15 bytes and a NUL; compare on what it keeps.
		copy(comms[i][:commLen-1], c)
	}
	set := []struct {
		name  string
		value any
	}{
		{"nr_filter_pids", uint32(len(f.PIDs))},
		{"filter_pids", pids},
		{"nr_filter_comms", uint32(len(f.Comms))},
		{"filter_comms", comms},
	}
	for _, s := range set {
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
// loader tries the programs (bpf/objects.go), since distributions backport
// BPF (RHEL 9's 5.14 has bpf_loop, which came in 5.17).
func checkKernel() error {
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return fmt.Errorf("kernel BTF (/sys/kernel/btf/vmlinux) is missing, which the BPF collector needs (CONFIG_DEBUG_INFO_BTF): %w", ebpf.ErrNotSupported)
	}
	return nil
}

// Close unloads the programs.
func (o *Objects) Close() error { return o.objs.Close() }

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
