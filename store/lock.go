package store

import (
	"errors"
	"os"
	"time"
)

var (
	errEmptyFile  = errors.New("empty file")
	errNotRegular = errors.New("not a regular file")
)

// lockRetry is how often a blocked open retries the lock (as bbolt does).
const lockRetry = 50 * time.Millisecond

// opener is bbolt's Options.OpenFile. It takes the file lock itself, before
// bbolt looks at the file, so that "is this file empty?" is asked under the
// lock: bbolt would initialize any empty file it opens read-write, and
// turning someone else's empty file into a database is not ours to do.
// bbolt then locks the same open file again, which flock(2) grants at once.
type opener struct {
	exclusive bool
	create    bool // create the file, which must not exist (see create)
	timeout   time.Duration
	file      *os.File // what bbolt was given, to close it if bbolt panics
}

func (o *opener) open(name string, flag int, perm os.FileMode) (*os.File, error) {
	// bbolt always asks for O_CREATE on a read-write open.
	if o.create {
		flag |= os.O_CREATE | os.O_EXCL
	} else {
		flag &^= os.O_CREATE
	}
	for {
		f, err := o.openOnce(name, flag, perm)
		if err != errReplaced {
			return f, err
		}
	}
}

// errReplaced: the file was renamed over (compact) while this open waited
// for its lock; the lock is on a file nobody will read again.
var errReplaced = errors.New("replaced while waiting for the lock")

func (o *opener) openOnce(name string, flag int, perm os.FileMode) (*os.File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if err := o.lockNonEmpty(f); err != nil {
		f.Close()
		return nil, err
	}
	now, err := os.Stat(name)
	locked, ferr := f.Stat()
	if err == nil && ferr == nil && !os.SameFile(now, locked) {
		f.Close()
		return nil, errReplaced
	}
	o.file = f
	return f, nil
}

// lockNonEmpty locks f and checks that it is a regular file with content,
// unless this open created it. itersnap never leaves an empty file at a
// database's path (see create), so an empty one is somebody else's.
func (o *opener) lockNonEmpty(f *os.File) error {
	if err := o.lock(f, time.Now().Add(o.timeout)); err != nil {
		return err
	}
	info, err := f.Stat()
	switch {
	case err != nil:
		return err
	case !info.Mode().IsRegular():
		return errNotRegular
	case info.Size() == 0 && !o.create:
		return errEmptyFile
	}
	return nil
}
