package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/export"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
)

type listOptions struct {
	*globalOptions
}

func newListCmd(g *globalOptions) *cobra.Command {
	o := &listOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List snapshots, oldest first",
		Long: `List snapshots, one row per snapshot, oldest first.

COLUMNS
  id, time (RFC 3339), host, kernel, collector (bpf or procfs), threads,
  processes, fds, label, duration (seconds spent collecting), filter,
  partial (true when the collector lacked the privilege to read every
  stack or fd: show's notes say what is missing)

--format openmetrics writes the take's health for Prometheus instead:
itersnap_snapshots, and of the latest take itersnap_take_timestamp_seconds,
_duration_seconds, _snapshot, _threads, _fds and _info{collector,kernel}.
` + exitStatusHelp,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{formatsAnnotation: formatOpenMetrics},
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runList(o, cmd.OutOrStdout())
		},
	}
	g.bindOutput(cmd, true)
	return cmd
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
	rows := make([]*snapshot.Snapshot, len(entries))
	for i, e := range entries {
		rows[i] = &snapshot.Snapshot{ID: e.ID, Meta: e.Meta}
	}
	return o.withOutput(stdout, func(w io.Writer, opts output.Options) error {
		if o.format == formatOpenMetrics {
			var latest *snapshot.Snapshot
			if len(rows) > 0 {
				latest = rows[len(rows)-1]
			}
			return export.WriteTakeMetrics(w, latest, len(rows))
		}
		return output.WriteRecords(w, output.SnapshotColumns, rows, opts)
	})
}
