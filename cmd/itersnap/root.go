package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/store"
)

const defaultDB = "/var/lib/itersnap/itersnap.db"

// globalOptions are the flags every command shares.
type globalOptions struct {
	db          string
	format      string
	output      string
	lockTimeout time.Duration
	verbose     bool
	wide        bool // tables show every cell whole, even on a terminal
	stderr      io.Writer
	// pinDirDefault is --pin-dir's default: $ITERSNAP_PIN_DIR, else
	// defaultPinDir.
	pinDirDefault string
}

func newRootCmd(stdout, stderr io.Writer, getenv func(string) string) *cobra.Command {
	g := &globalOptions{stderr: stderr, pinDirDefault: defaultPinDir}
	if env := getenv("ITERSNAP_PIN_DIR"); env != "" {
		g.pinDirDefault = env
	}
	lockDefault := store.DefaultTimeout
	var envErr error
	if env := getenv("ITERSNAP_LOCK_TIMEOUT"); env != "" {
		d, err := time.ParseDuration(env)
		if err != nil || d <= 0 {
			envErr = usagef("ITERSNAP_LOCK_TIMEOUT=%q: want a duration above zero, like 5s or 1m", env)
		} else {
			lockDefault = d
		}
	}
	root := &cobra.Command{
		Use:   "itersnap",
		Short: "Snapshot and compare what a Linux host's kernel is doing",
		Long: `itersnap records snapshots of every thread's kernel stack and every
process's open file descriptors, gathered in the kernel with BPF iterators,
into one bbolt database, and compares snapshots to find leaked fds, newly
blocked tasks and stacks that never change.

  itersnap take                 record a snapshot, print its ID
  itersnap list                 list snapshots
  itersnap show latest --fds    one snapshot's records
  itersnap diff latest~1 latest findings between two snapshots
  itersnap report 1 latest -o incident.html
                                an HTML report to attach to an incident
  itersnap forget --keep-within 7d   remove older snapshots
  itersnap copy 3..7 --to incident.db  snapshots for an incident report
  itersnap check                check that the database is whole
` + exitStatusHelp,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, args []string) error {
			if envErr != nil && !cmd.Flags().Changed("lock-timeout") {
				return envErr
			}
			if err := checkDBPath(cmd, g.db); err != nil {
				return err
			}
			if g.lockTimeout <= 0 {
				return usagef("--lock-timeout %v: want a duration above zero (waiting forever would hang cron jobs)", g.lockTimeout)
			}
			return checkOutputFlags(cmd, g)
		},
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		if err, ok := misplacedOutputFlag(cmd, err); ok {
			return err
		}
		return usageError{err}
	})

	dbDefault := defaultDB
	if env := getenv("ITERSNAP_DB"); env != "" {
		dbDefault = env
	}
	pf := root.PersistentFlags()
	pf.StringVar(&g.db, "db", dbDefault, "database `FILE` (default: $ITERSNAP_DB, else "+defaultDB+")")
	pf.DurationVar(&g.lockTimeout, "lock-timeout", lockDefault, "how long to wait for the database lock before exit 11 (default: $ITERSNAP_LOCK_TIMEOUT, else 5s)")
	pf.BoolVarP(&g.verbose, "verbose", "v", false, "print details of errors (the whole BPF verifier log) and what the command cost (take's timings, peak RSS)")
	pf.BoolVar(&g.wide, "wide", false, "tables show every cell whole; on a terminal wide columns are otherwise cut to fit")
	// The usage line already says where the default comes from.
	pf.Lookup("db").DefValue = ""
	pf.Lookup("lock-timeout").DefValue = "0s"

	root.AddCommand(
		newTakeCmd(g),
		newListCmd(g),
		newShowCmd(g),
		newDiffCmd(g),
		newReportCmd(g),
		newForgetCmd(g),
		newCompactCmd(g),
		newCopyCmd(g),
		newCheckCmd(g),
		newExportCmd(g),
		newUnpinCmd(g),
	)
	addCompletions(root, g)
	for _, c := range root.Commands() {
		c.Args = usageArgs(c.Args)
		c.RunE = markRun(withDBHint(g, c.RunE))
		if f := c.Flags().Lookup("pid"); f != nil {
			f.DefValue = "" // not "(default [])"
		}
	}
	return root
}

// usageArgs makes argument-count errors usage errors (exit 2).
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	if check == nil {
		return nil
	}
	return func(cmd *cobra.Command, args []string) error {
		if err := check(cmd, args); err != nil {
			return usageError{err}
		}
		return nil
	}
}

// markRun marks errors from a command's work, so that main tells them from
// cobra's own usage errors.
func markRun(fn func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		if err := fn(cmd, args); err != nil {
			return runError{err}
		}
		return nil
	}
}

// openDB opens the database for reading: list, show and diff need only read
// access, and take a shared lock.
func (g *globalOptions) openDB() (*store.DB, error) {
	return store.Open(g.db, store.Options{ReadOnly: true, Timeout: g.lockTimeout})
}

// warnf writes one warning line to stderr.
func (g *globalOptions) warnf(format string, args ...any) {
	fmt.Fprintf(g.stderr, "itersnap: warning: "+format+"\n", args...)
}
