package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	bolt "go.etcd.io/bbolt"
)

// CopyTo writes the snapshots ids into a new database at path, under the
// same IDs, so that "snapshot 37" means the same in the copy attached to an
// incident report. path must not exist: a copy never merges into, or
// overwrites, another database.
func (db *DB) CopyTo(path string, ids []uint64) error {
	if _, err := os.Lstat(path); err == nil {
		return fmt.Errorf("%s already exists: copy into a new file", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return newError(ErrUnreadable, err, "cannot create database %s: %v", path, pathErr(err))
	}
	dst, err := Open(path, Options{})
	if err != nil {
		return err
	}
	err = dst.update(func(tx *bolt.Tx) error {
		// In ID order, so that each snapshot can reuse the chunks of the
		// one before it.
		for _, id := range ids {
			s, err := db.Get(id)
			if err != nil {
				return err
			}
			if _, _, err := put(tx, s, id); err != nil {
				return fmt.Errorf("copy snapshot %d to %s: %w", id, path, err)
			}
		}
		return nil
	})
	if cerr := dst.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path) // no half copy left behind
		return err
	}
	return nil
}

// Compact rewrites the database into a new file and renames it over the
// old one, handing the space of removed snapshots back to the filesystem.
// It holds the exclusive lock throughout; an itersnap that was waiting for
// the lock on the old file finds it replaced and opens the new one
// (opener.open).
func Compact(path string, opts Options) (before, after int64, err error) {
	info, err := os.Stat(path)
	if err != nil {
		// A read-write open would create it: compacting nothing is a mistake.
		return 0, 0, openError(path, true, opts.Timeout, err)
	}
	opts.ReadOnly = false
	db, err := Open(path, opts)
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".compact.*")
	if err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, pathErr(err))
	}
	tmpPath := tmp.Name()
	tmp.Close()
	defer os.Remove(tmpPath) // a no-op once renamed
	dst, err := bolt.Open(tmpPath, 0o600, &bolt.Options{Timeout: opts.Timeout})
	if err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := bolt.Compact(dst, db.bolt, 64<<20); err != nil {
		dst.Close()
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := dst.Close(); err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := os.Chmod(tmpPath, info.Mode().Perm()); err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	compacted, err := os.Stat(tmpPath)
	if err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	if err := os.Rename(tmpPath, path); err != nil {
		return 0, 0, fmt.Errorf("compact %s: %w", path, err)
	}
	return info.Size(), compacted.Size(), nil
}
