package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/cilium/ebpf"

	"github.com/itersnap/itersnap/bpf"
	"github.com/itersnap/itersnap/collect"
	"github.com/itersnap/itersnap/snapshot"
)

func (o *takeOptions) collect(ctx context.Context, f snapshot.Filter) (*snapshot.Snapshot, error) {
	if o.collector == collectorProcfs {
		return collect.Procfs{}.Collect(ctx, f)
	}
	c := collect.BPF{PinDir: o.pinDir, Stats: new(collect.BPFStats)}
	if o.noPin {
		c.PinDir = ""
	}
	s, err := c.Collect(ctx, f)
	if err == nil {
		o.noteBPF(c.Stats)
	}
	if err == nil || ctx.Err() != nil {
		return s, err
	}
	if o.verbose {
		var missing *bpf.MissingError
		if errors.As(err, &missing) {
			fmt.Fprintf(o.stderr, "itersnap: BPF collector: %+v\n", missing.Err)
		} else {
			fmt.Fprintf(o.stderr, "itersnap: BPF collector: %+v\n", err)
		}
	}
	why := bpfFailure(err)
	if o.collector == collectorBPF {
		return nil, fmt.Errorf("%s: run as root on a kernel with BTF and BPF task iterators, or use --collector procfs", why)
	}
	o.warnf("BPF collector unavailable (%s); reading /proc instead (--collector procfs silences this)", why)
	s, perr := collect.Procfs{}.Collect(ctx, f)
	if perr != nil {
		return nil, perr
	}
	s.Meta.Notes = append(s.Meta.Notes, "bpf collector unavailable: "+why)
	return s, nil
}

// bpfFailure says in one line why the BPF collector did not run.
func bpfFailure(err error) string {
	var verr *ebpf.VerifierError
	var missing *bpf.MissingError
	switch {
	case errors.Is(err, bpf.ErrPermission):
		return bpf.ErrPermission.Error()
	case errors.As(err, &missing):
		return missing.Error()
	case errors.As(err, &verr):
		return "the kernel's verifier rejected the programs (run with --verbose for its log)"
	default:
		return strings.ReplaceAll(err.Error(), "\n", "; ")
	}
}

// noteBPF keeps where a BPF collection's time went for --verbose, and says
// there why its programs were not pinned.
func (o *takeOptions) noteBPF(st *collect.BPFStats) {
	if !o.verbose {
		return
	}
	if st.PinError != nil {
		fmt.Fprintf(o.stderr, "itersnap: %v; loaded for this take only\n", st.PinError)
	}
	if st.KernelCgroupsOff != "" {
		fmt.Fprintf(o.stderr, "itersnap: --container and --cgroup applied after the walk, not in the kernel: %s\n", st.KernelCgroupsOff)
	}
	kernelCgroups := any(st.KernelCgroups)
	if st.KernelCgroups < 0 {
		kernelCgroups = "off"
	}
	o.timings = append(o.timings,
		timing{"programs", strings.ReplaceAll(st.Programs.String(), " ", "-")},
		timing{"open", st.Open},
		timing{"tasks-kernel", st.Tasks.Kernel}, timing{"tasks-decode", st.Tasks.Decode},
		timing{"fds-kernel", st.Files.Kernel}, timing{"fds-decode", st.Files.Decode},
		timing{"finish", st.Finish},
		timing{"tasks-bytes", st.Tasks.Bytes}, timing{"fds-bytes", st.Files.Bytes},
		timing{"tasks-records", st.Tasks.Records}, timing{"fds-records", st.Files.Records},
		timing{"kernel-cgroups", kernelCgroups},
		timing{"cgroups-named", st.CgroupsNamed}, timing{"cgroup-walk", st.CgroupWalk})
}

// unpin removes every pin under dir.
func unpin(dir string) error { return bpf.Unpin(dir) }
