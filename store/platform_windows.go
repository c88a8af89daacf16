package store

import (
	"errors"
	"io/fs"
	"os"
	"time"
)

// lock takes no lock of its own on Windows. bbolt locks the open file itself
// with LockFileEx, retrying until Options.Timeout, and a Windows byte-range
// lock is per handle and not re-entrant: taking it here first would make
// bbolt's own lock on the same handle fail. The empty-file check above is
// then not under the lock; on Windows itersnap only analyses copied
// databases, so no take races it.
func (o *opener) lock(*os.File, time.Time) error { return nil }

// ownerUID: Windows files have no uid; symlinks there need privileges to
// make, and itersnap does not take snapshots there.
func ownerUID(fs.FileInfo) (uint32, bool) { return 0, false }

// mapFile: the page walk reads the file with ReadAt on Windows.
func mapFile(*os.File, int64) ([]byte, func(), error) {
	return nil, nil, errors.New("not mapped on windows")
}
