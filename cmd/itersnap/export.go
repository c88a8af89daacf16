package main

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/export"
	"github.com/itersnap/itersnap/snapshot"
	"github.com/itersnap/itersnap/store"
)

type exportOptions struct {
	*globalOptions
	to       string
	onlyNew  bool
	findings bool
}

func newExportCmd(g *globalOptions) *cobra.Command {
	o := &exportOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "export REF|A..B... --to DIR | export --new --to DIR",
		Short: "Write snapshots as Parquet tables for DuckDB, ClickHouse, Spark or Trino",
		Long: `Write the chosen snapshots (IDs, latest, latest~N, or ranges A..B) as
Parquet files (zstd, typed columns) in a Hive layout that analytics engines
read as one table per kind across many hosts:

  DIR/<table>/host=<host>/date=<YYYY-MM-DD>/<first>-<last>.parquet

one file per table, host and day (UTC), named by the first and last
snapshot ID in it. Tables:

  snapshots  list's columns, plus boot_id and notes
  tasks      show --tasks's columns, the stack as stack_id, then host,
             boot_id, time, ppid, start_time, switches, killable, uid, limit
  fds        show --fds's columns, then host, boot_id, time, start_time,
             dev, inode, target
  stacks     stack_id → frames (root to leaf) and the folded stack
  findings   with --findings: diff's columns, for each snapshot against the
             one before it in the database, or one diff A B per range A..B

Every row carries host, boot_id and time. Files are written under hidden
temporary names and renamed into place whole; the paths written are
printed, one a line.

--new exports the snapshots no earlier export --new has written (the
database remembers the last one, so it must be writable): from cron,
"itersnap export --new --to /var/spool/itersnap" ships each snapshot once.
` + exitStatusHelp,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runExport(o, args, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.to, "to", "", "the export `DIR`")
	f.BoolVar(&o.onlyNew, "new", false, "export the snapshots not exported by --new before, and remember them")
	f.BoolVar(&o.findings, "findings", false, "also write the findings table")
	return cmd
}

// exportPlan is what one export writes: snapshot IDs in order, and the
// diffs whose findings go with them.
type exportPlan struct {
	ids    []uint64
	pairs  bool              // findings of each snapshot against the one before it
	before map[uint64]uint64 // the snapshot before each in the database
	ranges [][2]uint64       // findings of diff A B over each range
}

func runExport(o *exportOptions, args []string, stdout io.Writer) error {
	switch {
	case o.to == "":
		return usagef("export needs --to DIR")
	case o.onlyNew && len(args) > 0:
		return usagef("export --new takes no snapshot references: it exports what is new")
	case !o.onlyNew && len(args) == 0:
		return usagef("export needs snapshot references (IDs, latest~N, A..B) or --new")
	}
	db, err := o.openDB()
	if err != nil {
		return err
	}
	plan, err := planExport(db, args, o.onlyNew)
	db.Close() // each snapshot is read on its own: a long export never holds the lock
	if err != nil || len(plan.ids) == 0 {
		return err
	}
	plan.pairs = plan.pairs && o.findings
	if !o.findings {
		plan.ranges = nil
	}
	files, err := writeExport(o, plan)
	if err != nil {
		return err
	}
	for _, f := range files {
		fmt.Fprintln(stdout, f)
	}
	if o.onlyNew {
		rw, err := store.Open(o.db, store.Options{Timeout: o.lockTimeout})
		if err != nil {
			return fmt.Errorf("snapshots through %d were exported, but not marked (the next export --new writes them again): %w", plan.ids[len(plan.ids)-1], err)
		}
		defer rw.Close()
		return rw.MarkExported(plan.ids[len(plan.ids)-1])
	}
	return nil
}

// planExport resolves the references, or with onlyNew finds the snapshots
// after the last one marked exported.
func planExport(db *store.DB, args []string, onlyNew bool) (exportPlan, error) {
	all, err := db.Range(1, ^uint64(0))
	if err != nil {
		return exportPlan{}, err
	}
	p := exportPlan{before: map[uint64]uint64{}}
	for i := 1; i < len(all); i++ {
		p.before[all[i]] = all[i-1]
	}
	if onlyNew {
		through, err := db.ExportedThrough()
		if err != nil {
			return exportPlan{}, err
		}
		for _, id := range all {
			if id > through {
				p.ids = append(p.ids, id)
			}
		}
		p.pairs = true
		return p, nil
	}
	seen := map[uint64]bool{}
	for _, ref := range args {
		ids, err := resolveRange(db, ref)
		if err != nil {
			return exportPlan{}, err
		}
		if strings.Contains(ref, "..") {
			if len(ids) >= 2 {
				p.ranges = append(p.ranges, [2]uint64{ids[0], ids[len(ids)-1]})
			}
		} else {
			p.pairs = true
		}
		for _, id := range ids {
			if !seen[id] {
				seen[id] = true
				p.ids = append(p.ids, id)
			}
		}
	}
	slices.Sort(p.ids)
	return p, nil
}

// writeExport reads each snapshot of the plan and adds it to the dataset;
// nothing is renamed into place unless every snapshot was written.
func writeExport(o *exportOptions, plan exportPlan) ([]string, error) {
	d := export.NewDataset(o.to, o.findings)
	ok := false
	defer func() {
		if !ok {
			d.Abort()
		}
	}()
	singles := map[uint64]bool{}
	if plan.pairs {
		for _, id := range plan.ids {
			singles[id] = true
		}
		for _, r := range plan.ranges {
			for _, id := range plan.ids {
				if id > r[0] && id <= r[1] {
					delete(singles, id) // in a range: the range's diff covers it
				}
			}
		}
	}
	var prev *snapshot.Snapshot
	for _, id := range plan.ids {
		s, err := o.getSnapshot(id)
		if errors.Is(err, store.ErrNotFound) && o.onlyNew {
			continue // forgotten since the export began
		}
		if err != nil {
			return nil, err
		}
		if err := d.Add(s); err != nil {
			return nil, err
		}
		if singles[id] {
			if before, err := o.snapshotBefore(plan.before[id], prev); err != nil {
				return nil, err
			} else if before != nil {
				if err := d.AddFindings(diff.Compare([]*snapshot.Snapshot{before, s}, diff.Options{}), s); err != nil {
					return nil, err
				}
			}
		}
		prev = s
	}
	for _, r := range plan.ranges {
		snaps, err := loadRange(o.globalOptions, strconv.FormatUint(r[0], 10), strconv.FormatUint(r[1], 10), true)
		if err != nil {
			return nil, err
		}
		if err := d.AddFindings(diff.Compare(snaps, diff.Options{}), snaps[len(snaps)-1]); err != nil {
			return nil, err
		}
	}
	files, err := d.Close()
	ok = true // Close removed what it did not rename
	return files, err
}

// getSnapshot reads one snapshot, holding the shared lock only meanwhile.
func (o *exportOptions) getSnapshot(id uint64) (*snapshot.Snapshot, error) {
	db, err := o.openDB()
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Get(id)
}

// snapshotBefore reads snapshot id, the one before a snapshot being
// exported (prev, when it is the one just read); nil when there is none,
// or it was forgotten since the export began.
func (o *exportOptions) snapshotBefore(id uint64, prev *snapshot.Snapshot) (*snapshot.Snapshot, error) {
	if id == 0 {
		return nil, nil
	}
	if prev != nil && prev.ID == id {
		return prev, nil
	}
	s, err := o.getSnapshot(id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return s, err
}
