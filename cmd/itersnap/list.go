package main

import (
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

type listOptions struct {
	*globalOptions
}

func newListCmd(g *globalOptions) *cobra.Command {
	o := &listOptions{globalOptions: g}
	return &cobra.Command{
		Use:   "list",
		Short: "List snapshots, oldest first",
		Long: `List snapshots, one row per snapshot, oldest first.

COLUMNS
  id, time (RFC 3339), host, kernel, collector (bpf or procfs), threads,
  processes, fds, label, duration (seconds spent collecting), filter
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(o, cmd.OutOrStdout())
		},
	}
}

func runList(o *listOptions, stdout io.Writer) error {
	db, err := o.openDB()
	if err != nil {
		return err
	}
	defer db.Close()
	entries, err := db.List()
	if err != nil {
		return err
	}
	r := listRecords(entries)
	return withOutput(o.output, stdout, func(w io.Writer) error { return r.write(w, o.format) })
}

// listRecords has one row per snapshot; report lists its range with it.
func listRecords(entries []store.Entry) records {
	r := records{columns: []string{"id", "time", "host", "kernel", "collector", "threads", "processes", "fds", "label", "duration", "filter"}}
	for _, e := range entries {
		m := e.Meta
		r.add(e.ID, m.Time, m.Hostname, m.Kernel, m.Collector, m.Threads, m.Processes, m.FDs,
			m.Label, m.Duration.Round(time.Millisecond).Seconds(), filterString(m.Filter))
	}
	return r
}

// filterString renders a take's filter as the flags that set it.
func filterString(f snapshot.Filter) string {
	var parts []string
	for _, c := range f.Comms {
		parts = append(parts, "--comm="+c)
	}
	for _, p := range f.PIDs {
		parts = append(parts, "--pid="+itoa(uint64(p)))
	}
	for _, c := range f.Containers {
		parts = append(parts, "--container="+c)
	}
	for _, c := range f.Cgroups {
		parts = append(parts, "--cgroup="+c)
	}
	return strings.Join(parts, " ")
}
