//go:build linux

package bpf

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
)

// The two builds of itersnap.bpf.c (bpf/gen.go), by the name a snapshot's
// Meta.Collector records for each.
const (
	// ObjectMain symbolizes stacks in bpf_loop callbacks (Linux 5.17, or a
	// backport: RHEL 9's 5.14 has it).
	ObjectMain = "bpf"
	// ObjectLoops is built with -DITERSNAP_LOOPS: the same programs with
	// bounded loops, for kernels without bpf_loop (Ubuntu 22.04's 5.15).
	// The verifier walks each loop iteration, so it loads more slowly.
	ObjectLoops = "bpf-loops"
)

// ForceLoopsEnv, when set to a non-empty value, makes Load skip the main
// object and load the bounded-loop one, so tests cover it on kernels that
// load both.
const ForceLoopsEnv = "ITERSNAP_BPF_LOOPS"

// programs are the programs Load loads: the iterators, and the maps they
// use. The objects also hold test programs (test_comm_equal), which only
// tests load.
type programs struct {
	DumpTask   *ebpf.Program `ebpf:"dump_task"`
	DumpFile   *ebpf.Program `ebpf:"dump_file"`
	Symbolized *ebpf.Map     `ebpf:"symbolized"`
}

func (p *programs) Close() error {
	return errors.Join(p.DumpTask.Close(), p.DumpFile.Close(), p.Symbolized.Close())
}

// object is one build of the programs.
type object struct {
	name  string
	spec  func() (*ebpf.CollectionSpec, error)
	bytes []byte // the ELF, which a pin's name hashes (pin.go)
}

var (
	mainObject  = object{ObjectMain, loadItersnap, _ItersnapBytes}
	loopsObject = object{ObjectLoops, loadItersnap_loops, _Itersnap_loopsBytes}
)

// MissingError is the kernel refusing both objects: what each refused
// program needs that this kernel lacks, as read from the kernel's refusal.
type MissingError struct {
	// Features are one line each, "bpf_snprintf: Linux 5.13", or the
	// program and the verifier's last words when the refusal names no
	// known feature.
	Features []string
	// Err is the refusal of the bounded-loop object as a whole (an
	// *ebpf.VerifierError, for its log).
	Err error
}

func (e *MissingError) Error() string {
	return "the kernel refused the BPF programs: " + strings.Join(e.Features, "; ")
}

// Unwrap makes a MissingError both ebpf.ErrNotSupported and its load error.
func (e *MissingError) Unwrap() []error { return []error{ebpf.ErrNotSupported, e.Err} }

// loadPrograms loads the main object and, where the kernel refuses it, the
// bounded-loop one. It returns which one loaded and why the main one did
// not ("" when it did).
func loadPrograms(f Filter) (p *programs, name, mainRefusal string, err error) {
	p = new(programs)
	if os.Getenv(ForceLoopsEnv) == "" {
		err := loadObject(mainObject, f, p)
		if err == nil {
			return p, ObjectMain, "", nil
		}
		if errors.Is(err, ErrPermission) {
			return nil, "", "", err
		}
		mainRefusal = refusal(err)
	} else {
		mainRefusal = ForceLoopsEnv + " is set"
	}
	if err := loadObject(loopsObject, f, p); err != nil {
		if errors.Is(err, ErrPermission) {
			return nil, "", "", err
		}
		return nil, "", "", &MissingError{Features: refusedFeatures(loopsObject, f), Err: err}
	}
	return p, ObjectLoops, mainRefusal, nil
}

// candidates are the objects whose pins a take may open: the one a load
// would try first, then the bounded-loop one (on a kernel that refused the
// main object, an earlier take pinned that).
func candidates() []object {
	if os.Getenv(ForceLoopsEnv) != "" {
		return []object{loopsObject}
	}
	return []object{mainObject, loopsObject}
}

// objectNamed is the object Load reports as name.
func objectNamed(name string) object {
	if name == ObjectLoops {
		return loopsObject
	}
	return mainObject
}

// loadObject loads obj's iterators, with the filters set, into to.
func loadObject(obj object, f Filter, to any) error {
	spec, err := obj.spec()
	if err != nil {
		return err
	}
	if err := setFilter(spec, f); err != nil {
		return err
	}
	if err := spec.LoadAndAssign(to, nil); err != nil {
		if errors.Is(err, os.ErrPermission) { // EPERM and EACCES
			return fmt.Errorf("%w: %v", ErrPermission, err)
		}
		return fmt.Errorf("load BPF object %s: %w", obj.name, err)
	}
	return nil
}

// refusedFeatures loads each of obj's iterators alone, so that each names
// its own refusal (the verifier stops at a program's first error, and at
// the collection's first refused program), and says what each lacks.
func refusedFeatures(obj object, f Filter) []string {
	var task struct {
		P *ebpf.Program `ebpf:"dump_task"`
	}
	var file struct {
		P *ebpf.Program `ebpf:"dump_file"`
	}
	var out []string
	for _, one := range []struct {
		name string
		to   any
		prog **ebpf.Program
	}{{"dump_task", &task, &task.P}, {"dump_file", &file, &file.P}} {
		err := loadObject(obj, f, one.to)
		if err == nil {
			(*one.prog).Close()
			continue
		}
		feature := refusal(err)
		if !strings.Contains(feature, ": Linux ") {
			feature = one.name + ": " + feature
		}
		if !slices.Contains(out, feature) {
			out = append(out, feature)
		}
	}
	return out
}

// features are the helpers the programs call that came late, with the
// mainline release that brought them to iterator programs.
var features = map[asm.BuiltinFunc]string{
	asm.FnLoop:         "bpf_loop: Linux 5.17",
	asm.FnSnprintf:     "bpf_snprintf: Linux 5.13",
	asm.FnDPath:        "bpf_d_path in iterator programs: Linux 5.12",
	asm.FnGetTaskStack: "bpf_get_task_stack: Linux 5.9",
	asm.FnSeqWrite:     "bpf_seq_write: Linux 5.8",
	asm.FnSockFromFile: "bpf_sock_from_file: Linux 5.11",
}

// A helper call as the verifier prints the instruction (kernel/bpf/disasm.c
// print_bpf_insn): "call bpf_d_path#147", or "call unknown#181" for a
// helper this kernel does not know. Compiled on first use: only a refused
// load reads a verifier log, and every itersnap process would pay for it.
var callInsn = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`\bcall [a-z_0-9]+#([0-9]+)`) })

// refusal says which feature err, a refused load, shows missing. The
// verifier prints each instruction before it checks it, so the last helper
// call in its log is the one it refused when the last line is about a call:
//   - "invalid func unknown#165": the kernel has no such helper
//     (kernel/bpf/verifier.c check_helper_call);
//   - "unknown func bpf_loop#181": not for this program type;
//   - "helper call is not allowed in probe": the helper's allowed() said no,
//     as bpf_d_path's did for iterators before 5.12 (kernel/trace/bpf_trace.c
//     bpf_d_path_allowed).
//
// Anything else comes back as the verifier's last line, or the error.
func refusal(err error) string {
	var verr *ebpf.VerifierError
	if !errors.As(err, &verr) || len(verr.Log) == 0 {
		return err.Error()
	}
	// The error is the last line before the statistics the verifier
	// prints after it (kernel/bpf/verifier.c print_verification_stats).
	last := ""
	for i := len(verr.Log) - 1; i >= 0 && last == ""; i-- {
		last = strings.TrimSpace(verr.Log[i])
		for _, stats := range []string{"processed ", "verification time ", "stack depth "} {
			if strings.HasPrefix(last, stats) {
				last = ""
			}
		}
	}
	aboutCall := strings.Contains(last, "func ") || strings.Contains(last, "helper call")
	if aboutCall {
		for i := len(verr.Log) - 1; i >= 0; i-- {
			m := callInsn().FindStringSubmatch(verr.Log[i])
			if m == nil {
				continue
			}
			id, _ := strconv.Atoi(m[1])
			if f, ok := features[asm.BuiltinFunc(id)]; ok {
				return f
			}
			return fmt.Sprintf("helper %s (#%d): %s", asm.BuiltinFunc(id), id, last)
		}
	}
	return "verifier: " + last
}
