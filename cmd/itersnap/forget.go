package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/store"
)

// retention is the policy flags that forget and take share.
type retention struct {
	last, hourly, daily int
	within              string
}

func (r *retention) bind(cmd *cobra.Command, all bool) {
	f := cmd.Flags()
	f.IntVar(&r.last, "keep-last", 0, "keep the `N` latest snapshots")
	f.StringVar(&r.within, "keep-within", "", "keep snapshots taken at most `DURATION` before the latest (30m, 24h, 7d)")
	if all {
		f.IntVar(&r.hourly, "keep-hourly", 0, "keep the latest snapshot of each of the `N` latest hours")
		f.IntVar(&r.daily, "keep-daily", 0, "keep the latest snapshot of each of the `N` latest days")
	}
}

// policy checks the flags; ok is false when none was given.
func (r *retention) policy() (p store.Policy, ok bool, err error) {
	for name, n := range map[string]int{"--keep-last": r.last, "--keep-hourly": r.hourly, "--keep-daily": r.daily} {
		if n < 0 {
			return p, false, usagef("%s %d: want a count of 1 or more", name, n)
		}
	}
	p = store.Policy{Last: r.last, Hourly: r.hourly, Daily: r.daily}
	if r.within != "" {
		if p.Within, err = parseDuration(r.within); err != nil {
			return p, false, usagef("--keep-within %q: %v", r.within, err)
		}
	}
	return p, !p.Empty(), nil
}

// parseDuration is time.ParseDuration plus days ("7d", "1d12h"), which is
// how retention is usually said.
func parseDuration(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i >= 0 {
		n, err := strconv.ParseUint(s[:i], 10, 16)
		if err != nil {
			return 0, fmt.Errorf("want a duration like 30m, 24h or 7d")
		}
		days, s = time.Duration(n)*24*time.Hour, s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("want a duration like 30m, 24h or 7d")
	}
	if d+days <= 0 {
		return 0, fmt.Errorf("want a duration above zero")
	}
	return d + days, nil
}

type forgetOptions struct {
	*globalOptions
	retention
	dryRun bool
}

func newForgetCmd(g *globalOptions) *cobra.Command {
	o := &forgetOptions{globalOptions: g}
	cmd := &cobra.Command{
		Use:   "forget --keep-last N | --keep-within DURATION | --keep-hourly N | --keep-daily N [--dry-run]",
		Short: "Remove the snapshots a retention policy does not keep",
		Long: `Remove the snapshots that no --keep rule keeps, and the chunks and stacks
only they used; their space is reused by later takes (itersnap compact hands
it back to the filesystem). A snapshot is kept when any rule keeps it, and
every rule keeps the latest. --keep-within counts back from the latest
snapshot, not from now; hours and days are in local time.

Prints one row per snapshot: snapshot, time, action (keep or remove),
reasons (why it is kept). --dry-run prints the same and changes nothing.
` + exitStatusHelp,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runForget(o, cmd.OutOrStdout())
		},
	}
	o.bind(cmd, true)
	g.bindOutput(cmd, true)
	cmd.Flags().BoolVar(&o.dryRun, "dry-run", false, "say what would be removed, and remove nothing")
	return cmd
}

func runForget(o *forgetOptions, stdout io.Writer) error {
	p, ok, err := o.policy()
	if err != nil {
		return err
	}
	if !ok {
		return usagef("forget needs a policy: --keep-last, --keep-within, --keep-hourly or --keep-daily")
	}
	// A dry run only reads: it shares the lock with other readers.
	open := o.openDB
	if !o.dryRun {
		open = func() (*store.DB, error) { return store.Open(o.db, store.Options{Timeout: o.lockTimeout}) }
	}
	db, err := open()
	if err != nil {
		return err
	}
	plan, err := db.Forget(p, time.Local, o.dryRun)
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	rows := make([]output.ForgetRow, len(plan))
	for i, d := range plan {
		rows[i] = output.ForgetRow{Snapshot: d.ID, Time: d.Meta.Time, Keep: d.Keep, Reasons: d.Reasons}
	}
	return o.withOutput(stdout, func(w io.Writer, opts output.Options) error {
		return output.WriteRecords(w, output.ForgetColumns, rows, opts)
	})
}
