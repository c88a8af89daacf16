package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/store"
)

func newCheckCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "check",
		Short: "Check that the database is whole: every page and every value",
		Long: `Read the whole database, as restic check does a repository, and print one
line per problem on stdout: pages that are not bbolt's, what bbolt's own
consistency check finds (pages reachable twice or not at all, keys out of
order), and every value that does not decode: each snapshot's metadata and
record with the chunks and stacks it refers to, every chunk, every stack.
A sound database prints one line saying how much was read.

It opens the file read-only (a shared lock) and changes nothing. It reads
every snapshot, so it takes a few seconds per thousand snapshots; take and
every other command check only the page headers, cheaply, before using a
file.
` + exitStatusHelp + `
  check exits 10 when it finds a problem.`,
		Args:        cobra.NoArgs,
		Annotations: map[string]string{formatsAnnotation: "none"},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cmd.Flags().Changed("output") {
				return usagef("check takes no -o: it writes no records")
			}
			return runCheck(g, cmd.OutOrStdout())
		},
	}
}

func runCheck(g *globalOptions, stdout io.Writer) error {
	r, err := store.Check(g.db, store.Options{Timeout: g.lockTimeout})
	if err != nil {
		return err
	}
	for _, p := range r.Problems {
		if err := printf(stdout, "%s\n", p); err != nil {
			return err
		}
	}
	if len(r.Problems) > 0 {
		what := "problems"
		if len(r.Problems) == 1 {
			what = "problem"
		}
		return checkFailed{fmt.Sprintf("database %s is not sound: %d %s (listed on stdout)", g.db, len(r.Problems), what)}
	}
	return printf(stdout, "database %s is sound: %d snapshots, %d chunks, %d stacks read\n", g.db, r.Snapshots, r.Chunks, r.Stacks)
}

// checkFailed ends check with exit 10, as for any unreadable database.
type checkFailed struct{ msg string }

func (e checkFailed) Error() string { return e.msg }
func (e checkFailed) Unwrap() error { return store.ErrUnreadable }
