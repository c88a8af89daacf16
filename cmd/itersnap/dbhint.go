package main

import (
	"errors"
	"io/fs"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/itersnap/itersnap/store"
)

// dbSource names where the database path came from, for messages.
func dbSource(cmd *cobra.Command) string {
	if cmd.Flags().Changed("db") {
		return "--db"
	}
	return "ITERSNAP_DB"
}

// checkDBPath refuses, as bad usage, a database path that cannot name a
// file whatever is on disk. (ITERSNAP_DB="" is unset: the default.)
func checkDBPath(cmd *cobra.Command, db string) error {
	switch {
	case db == "":
		return usagef("%s needs a path", dbSource(cmd))
	case strings.HasSuffix(db, "/") || strings.HasSuffix(db, string(os.PathSeparator)):
		return usagef("%s %s ends in %c: it names a directory; give a file in it, like %sitersnap.db", dbSource(cmd), db, db[len(db)-1], db)
	}
	return nil
}

// withDBHint adds the next step to errors about the database: store's
// messages are neutral (they name no flag), so the command line says
// which flag or variable chose the path.
func withDBHint(g *globalOptions, fn func(*cobra.Command, []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		if hint := dbHint(err, g.db, dbSource(cmd)); hint != "" {
			return hinted{err, hint}
		}
		return err
	}
}

func dbHint(err error, db, source string) string {
	flag := "--db"
	if source != "--db" {
		flag = "ITERSNAP_DB or --db"
	}
	switch {
	case errors.Is(err, store.ErrLocked):
		return "try again, or raise --lock-timeout"
	case store.DBPath(err) != db:
		return "" // about another file (copy --to), or not about a file
	case errors.Is(err, store.ErrBadPath):
		return "point " + flag + " at an itersnap database file"
	case errors.Is(err, store.ErrCannotWrite) && os.Geteuid() != 0:
		return "run as root, or point " + flag + " elsewhere"
	case errors.Is(err, store.ErrCannotWrite):
		return "point " + flag + " elsewhere"
	case errors.Is(err, fs.ErrNotExist) && errors.Is(err, store.ErrUnreadable):
		return "run itersnap take first, or point " + flag + " at a database"
	}
	return ""
}

// hinted is err with the next step in parentheses.
type hinted struct {
	err  error
	hint string
}

func (h hinted) Error() string { return h.err.Error() + " (" + h.hint + ")" }
func (h hinted) Unwrap() error { return h.err }
