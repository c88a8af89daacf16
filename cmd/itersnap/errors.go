package main

import (
	"errors"
	"fmt"

	"github.com/itersnap/itersnap/store"
)

// Exit statuses, as DESIGN.md's command line contract lists them.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitFindings = 3
	exitDB       = 10
	exitLocked   = 11
)

const exitStatusHelp = `
EXIT STATUS
  0   success
  1   error
  2   bad usage (unknown flag, bad snapshot reference, unknown format)
  3   findings present (diff --fail-on-findings only)
  10  database missing or unreadable
  11  database locked past --lock-timeout`

// usageError is bad input on the command line: exit 2.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func usagef(format string, args ...any) error {
	return usageError{fmt.Errorf(format, args...)}
}

// runError marks an error returned by a command's run function. Cobra's own
// errors (unknown command, wrong number of arguments) carry no mark: they
// are usage errors.
type runError struct{ err error }

func (e runError) Error() string { return e.err.Error() }
func (e runError) Unwrap() error { return e.err }

// errFindings ends `diff --fail-on-findings` with exit 3 and no message.
var errFindings = errors.New("findings present")

func exitCode(err error) int {
	var usage usageError
	var run runError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFindings):
		return exitFindings
	case errors.Is(err, store.ErrLocked):
		return exitLocked
	case errors.Is(err, store.ErrUnreadable):
		return exitDB
	case errors.Is(err, store.ErrBadRef), errors.As(err, &usage):
		return exitUsage
	case errors.As(err, &run):
		return exitError
	default:
		return exitUsage
	}
}
