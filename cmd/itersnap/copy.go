package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/store"
)

func newCopyCmd(g *globalOptions) *cobra.Command {
	var to string
	cmd := &cobra.Command{
		Use:   "copy REF... --to FILE.db",
		Short: "Write chosen snapshots into a new database, for an incident report",
		Long: `Write the chosen snapshots into a new database file, under their own IDs, to
attach to an incident report: list, show and diff read it anywhere, without
root. A REF is an ID, latest, latest~N, or a range A..B (every snapshot from
A to B, as diff reads them: copy the range a diff looked at to reproduce it).
FILE must not exist.
` + exitStatusHelp,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if to == "" {
				return usagef("copy needs --to FILE.db")
			}
			db, err := g.openDB()
			if err != nil {
				return err
			}
			defer db.Close()
			var ids []uint64
			seen := map[uint64]bool{}
			for _, ref := range args {
				refIDs, err := resolveRange(db, ref)
				if err != nil {
					return err
				}
				for _, id := range refIDs {
					if !seen[id] {
						seen[id] = true
						ids = append(ids, id)
					}
				}
			}
			slices.Sort(ids)
			return db.CopyTo(to, ids)
		},
	}
	cmd.Flags().StringVar(&to, "to", "", "the new database `FILE`")
	return cmd
}

// resolveRange resolves REF or A..B to snapshot IDs.
func resolveRange(db *store.DB, ref string) ([]uint64, error) {
	a, b, isRange := strings.Cut(ref, "..")
	if !isRange {
		id, err := db.Resolve(ref)
		return []uint64{id}, err
	}
	switch {
	case a == "" && b == "":
		return nil, usagef("range %q needs a start and an end, like 3..7", ref)
	case b == "":
		return nil, usagef("range %q needs an end, like %s..latest", ref, a)
	case a == "":
		return nil, usagef("range %q needs a start, like 1..%s", ref, b)
	}
	return rangeIDs(db, a, b, true)
}
