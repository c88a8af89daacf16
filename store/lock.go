package store

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	berrors "go.etcd.io/bbolt/errors"
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
	timeout   time.Duration
	file      *os.File // what bbolt was given, to close it if bbolt panics
}

func (o *opener) open(name string, flag int, perm os.FileMode) (*os.File, error) {
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
	created := false
	var f *os.File
	var err error
	if flag&os.O_CREATE != 0 {
		// O_EXCL tells a file this open created from one that was there.
		f, err = os.OpenFile(name, flag|os.O_EXCL, perm)
		if err == nil {
			created = true
		} else if errors.Is(err, fs.ErrExist) {
			f, err = os.OpenFile(name, flag&^os.O_CREATE, perm)
		}
	} else {
		f, err = os.OpenFile(name, flag, perm)
	}
	if err != nil {
		return nil, err
	}
	if err := o.lockNonEmpty(f, created); err != nil {
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
// unless this open created it. An empty file that this open did not create
// is most often a take creating the database right now: it locks the file
// just after creating it and writes it before unlocking, but another open
// can win the lock in between. So an empty file is given until the timeout
// to fill, and refused if it does not.
func (o *opener) lockNonEmpty(f *os.File, created bool) error {
	deadline := time.Now().Add(o.timeout)
	for {
		if err := o.lock(f, deadline); err != nil {
			return err
		}
		info, err := f.Stat()
		switch {
		case err != nil:
			return err
		case !info.Mode().IsRegular():
			return errNotRegular
		case info.Size() > 0 || created:
			return nil
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_UN); err != nil {
			return &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		if time.Now().Add(lockRetry).After(deadline) {
			return errEmptyFile
		}
		time.Sleep(lockRetry)
	}
}

// lock takes flock(2), shared for readers and exclusive for the writer,
// retrying until the deadline; it fails with bbolt's ErrTimeout so that one
// mapping covers both places a wait can end.
func (o *opener) lock(f *os.File, deadline time.Time) error {
	how := syscall.LOCK_SH
	if o.exclusive {
		how = syscall.LOCK_EX
	}
	for {
		err := syscall.Flock(int(f.Fd()), how|syscall.LOCK_NB)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			return &fs.PathError{Op: "flock", Path: f.Name(), Err: err}
		}
		if time.Now().Add(lockRetry).After(deadline) {
			return berrors.ErrTimeout
		}
		time.Sleep(lockRetry)
	}
}
