package store

import (
	"errors"
	"fmt"
)

// storeError is one line for the user (the command line prints it as is)
// that errors.Is matches against its kind, one of the package's sentinels,
// and against its cause (fs.ErrPermission, bbolt's ErrChecksum, ...). Like
// fmt.Errorf with %w, without the sentinel's text in the line.
type storeError struct {
	msg   string
	kind  error
	cause error
	path  string // the database path the error is about, if any (DBPath)
}

func (e *storeError) Error() string { return e.msg }

func (e *storeError) Unwrap() []error {
	if e.cause == nil {
		return []error{e.kind}
	}
	return []error{e.kind, e.cause}
}

// newError formats msg and wraps kind and cause (which may be nil).
func newError(kind, cause error, format string, args ...any) error {
	return &storeError{msg: fmt.Sprintf(format, args...), kind: kind, cause: cause}
}

// newCorrupt is newError for a damaged file: ErrUnreadable and ErrCorrupt.
func newCorrupt(cause error, format string, args ...any) error {
	return &storeError{msg: fmt.Sprintf(format, args...), kind: ErrUnreadable, cause: errors.Join(ErrCorrupt, cause)}
}

// atPath sets the path err is about, when err is a *storeError.
func atPath(err error, path string) error {
	var se *storeError
	if errors.As(err, &se) && se.path == "" {
		se.path = path
	}
	return err
}
