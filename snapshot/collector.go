package snapshot

import "context"

// Collector gathers one snapshot of the running host.
type Collector interface {
	// Name is what Meta.Collector records: "bpf" or "procfs".
	Name() string
	// Collect records every task and fd that passes the filter. It fills
	// Tasks, Files, Stacks and the Meta fields it knows (Collector, Filter,
	// Notes), and calls Finish.
	Collect(ctx context.Context, f Filter) (*Snapshot, error)
}
