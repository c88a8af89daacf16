//go:build linux

// Package collect fills the snapshot model from the running kernel: the BPF
// collector (default; iterators in package bpf) and the procfs collector
// (fallback, test oracle and benchmark baseline). Linux only.
package collect

import (
	"context"

	"github.com/itersnap/itersnap/snapshot"
)

// Collector gathers one snapshot of the running host.
type Collector interface {
	// Name is the collector, "bpf" or "procfs"; Meta.Collector records
	// it, or for BPF which object ran ("bpf-loops").
	Name() string
	// Collect records every task and fd that passes the filter. It fills
	// Tasks, Files, Stacks and the Meta fields it knows (Collector, Filter,
	// Notes), and calls Finish.
	Collect(ctx context.Context, f snapshot.Filter) (*snapshot.Snapshot, error)
}
