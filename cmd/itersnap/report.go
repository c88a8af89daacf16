package main

import (
	"bytes"
	"io"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/report"
	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

type reportOptions struct {
	*globalOptions
}

func newReportCmd(g *globalOptions) *cobra.Command {
	o := &reportOptions{globalOptions: g}
	return &cobra.Command{
		Use:   "report A B [-o FILE.html]",
		Short: "Write a self-contained HTML incident report of a diff",
		Long: `Write one HTML file to attach to an incident report: it needs no network
and no other file. It holds the host, kernel, time range and snapshots from
A to B; the summary of ` + "`itersnap diff A B`" + `; a flame graph of every thread's
kernel stack at B, blocked and stuck threads coloured apart, searchable and
zoomable; a chart of the open fds of the fd_leak suspects in every snapshot
of the range; a table of each kind of finding and its CSV as a download
(the same bytes as ` + "`itersnap diff A B --only KIND --format csv`" + `).

Without -o the page goes to stdout; with -o FILE it is renamed into place
only when complete. --format does not apply.
` + exitStatusHelp,
		Args:        cobra.ExactArgs(2),
		Annotations: map[string]string{formatsAnnotation: "none"},
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(o, args[0], args[1], cmd.OutOrStdout())
		},
	}
}

func runReport(o *reportOptions, refA, refB string, stdout io.Writer) error {
	opts := diff.Options{}
	r, heads, b, err := walkRange(o.globalOptions, refA, refB, opts, true)
	if err != nil {
		return err
	}
	in, err := reportInput(heads, b, r, opts)
	if err != nil {
		return err
	}
	return withOutput(o.output, stdout, func(w io.Writer) error { return report.Render(w, in) })
}

// reportInput lays out r, the range compared as `itersnap diff A B` does
// with its defaults: the summary, the finding tables and their CSV come
// from the same code, so the report and the diff never disagree.
func reportInput(heads []diff.Head, b *snapshot.Snapshot, r *diff.Report, opts diff.Options) (report.Input, error) {
	in := report.Input{Heads: heads, B: b, Diff: r, Notes: r.Notes}

	entries := make([]store.Entry, len(heads))
	for i, h := range heads {
		entries[i] = store.Entry{ID: h.ID, Meta: h.Meta}
	}
	list := listRecords(entries)
	in.SnapshotTable = report.Table{Columns: list.columns, Rows: list.texts()}

	counts, lines := summarize(r, opts)
	for _, c := range counts {
		in.Summary = append(in.Summary, report.SummaryRow{Kind: c.kind, Count: c.count, Counted: c.counted, Detail: c.worst})
	}
	in.SummaryLines = lines

	rows := findingRows(r)
	for _, k := range diff.AllKinds {
		var csv bytes.Buffer
		if err := tabulate(rows, allColumns, &k).write(&csv, formatCSV); err != nil {
			return in, err
		}
		table := tabulate(rows, kindColumns[k], &k)
		in.Findings = append(in.Findings, report.Findings{
			Kind:  k,
			Table: report.Table{Columns: table.columns, Rows: table.texts()},
			CSV:   csv.Bytes(),
		})
	}
	return in, nil
}
