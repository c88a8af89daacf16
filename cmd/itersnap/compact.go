package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/store"
)

func newCompactCmd(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "compact",
		Short: "Rewrite the database to hand freed space back to the filesystem",
		Long: `Rewrite the database into a new file and rename it into place. forget frees
pages for later takes to reuse; compact returns them to the filesystem. It
holds the database's lock throughout, so takes wait (up to --lock-timeout)
rather than write to the old file. Prints the sizes before and after.
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			before, after, err := store.Compact(g.db, store.Options{Timeout: g.lockTimeout})
			if err != nil {
				return err
			}
			return printf(cmd.OutOrStdout(), "%s: %d -> %d bytes\n", output.Escape(g.db), before, after)
		},
	}
}

func printf(w io.Writer, format string, args ...any) error {
	_, err := fmt.Fprintf(w, format, args...)
	return err
}
