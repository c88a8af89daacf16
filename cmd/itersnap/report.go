package main

import (
	"io"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/report"
)

type reportOptions struct {
	*globalOptions
}

func newReportCmd(g *globalOptions) *cobra.Command {
	o := &reportOptions{globalOptions: g}
	cmd := &cobra.Command{
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
only when complete.
` + exitStatusHelp,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(o, args[0], args[1], cmd.OutOrStdout())
		},
	}
	g.bindOutput(cmd, false)
	return cmd
}

func runReport(o *reportOptions, refA, refB string, stdout io.Writer) error {
	opts := diff.Options{}
	r, heads, b, err := walkRange(o.globalOptions, refA, refB, opts, true)
	if err != nil {
		return err
	}
	in := report.Input{Heads: heads, B: b, Diff: r, Options: opts}
	return o.withOutput(stdout, func(w io.Writer, _ output.Options) error { return report.Render(w, in) })
}
