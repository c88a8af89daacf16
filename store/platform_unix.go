//go:build !windows

package store

import (
	"errors"
	"io/fs"
	"os"
	"syscall"
	"time"

	berrors "go.etcd.io/bbolt/errors"
)

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

// ownerUID returns the uid owning the file that info describes.
func ownerUID(info fs.FileInfo) (uint32, bool) {
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return st.Uid, true
}

// mapFile maps size bytes of f read-only, for the page walk (pages.go):
// reading a page header through the mapping costs no system call. It is a
// []byte, so a read past its end is a bounds check, not a fault; a file
// cut short while mapped faults, which the caller's view recovers.
func mapFile(f *os.File, size int64) (data []byte, unmap func(), err error) {
	if size <= 0 || int64(int(size)) != size {
		return nil, nil, errors.New("cannot map the file")
	}
	data, err = syscall.Mmap(int(f.Fd()), 0, int(size), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return data, func() { _ = syscall.Munmap(data) }, nil
}
