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
	s, err := collect.BPF{}.Collect(ctx, f)
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
