// Package store keeps itersnap's snapshots in one bbolt file.
//
// Layout (see schema.go for the buckets, encode.go for the values): each
// snapshot is two values under its ID, a small metadata value that `list`
// reads alone and a compressed record of its tasks and fds; kernel stacks are
// stored once in the whole database and records refer to them by ID.
//
// Nothing here prints or exits: errors wrap one of the sentinels below, and
// the command line maps them to exit codes with errors.Is.
package store

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

var (
	// ErrNotFound: a well-formed reference names no snapshot in the database.
	ErrNotFound = errors.New("snapshot not found")
	// ErrUnreadable: the database file is missing, not a bbolt file,
	// corrupt, not readable by this user, or from a newer itersnap.
	ErrUnreadable = errors.New("database missing or unreadable")
	// ErrLocked: another process held the file lock past Options.Timeout.
	ErrLocked = errors.New("database locked")
	// ErrBadRef: a snapshot reference that is not an ID, latest or latest~N.
	ErrBadRef = errors.New("bad snapshot reference")
	// ErrCorrupt: a bbolt file whose pages or values are damaged (or cut
	// short). Every error that wraps it also wraps ErrUnreadable.
	ErrCorrupt = errors.New("database corrupt")
)

// DefaultTimeout is how long Open waits for the file lock when
// Options.Timeout is zero. bbolt's own zero means "wait forever", which
// would hang a cron job behind a long diff.
const DefaultTimeout = 5 * time.Second

// Options configures Open.
type Options struct {
	// ReadOnly opens with a shared lock and never creates or changes the
	// file: list, show and diff need only read access to it.
	ReadOnly bool
	// Timeout bounds the wait for the file lock; zero or less means
	// DefaultTimeout.
	Timeout time.Duration
}

// DB is an open itersnap database.
type DB struct {
	bolt *bolt.DB
	path string
}

// Open opens the database at path. A read-write open creates the file (0600)
// and its parent directories (0700) when missing, and creates or migrates the
// schema; a read-only open never creates anything.
//
// A read-write open holds the exclusive file lock until Close: the caller
// opens only once collection is done, so the lock covers the commit alone.
func Open(path string, opts Options) (*DB, error) {
	bdb, err := openFile(path, opts)
	if err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		removeStale(path)
	}
	db, err := useBolt(bdb, path, opts.ReadOnly)
	return db, atPath(err, path)
}

// Probe says whether a read-write Open of path would get the file: the
// path is allowed, the directories and (when missing) the database are
// created, the file is bbolt's, its lock can be had within the timeout,
// and its schema is not newer than this itersnap's. It is what a take asks
// before it spends a collection on the database, and it walks only the
// pages the schema version is read through (the root bucket's and the
// meta bucket's): the walk of every page in use (store/pages.go), whose
// cost grows with the database (half a millisecond for a day of a
// 2,000-thread host's minutely snapshots), is left to the Open for the
// commit, which fails the same way on what it finds.
func Probe(path string, opts Options) error {
	opts.ReadOnly = false
	bdb, err := openFile(path, opts)
	if err != nil {
		return err
	}
	db := &DB{bolt: bdb, path: path}
	version, err := db.checkedVersion(bucketMeta)
	if err == nil && version > SchemaVersion {
		err = db.newerSchema(version)
	}
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	return atPath(err, path)
}

// openFile is the part of Open that gets the file: the path's checks, the
// directories and the database created when missing, bbolt's open and the
// file lock.
func openFile(path string, opts Options) (*bolt.DB, error) {
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if err := checkPath(path); err != nil {
		return nil, err
	}
	if !opts.ReadOnly {
		if err := checkSymlinks(path); err != nil {
			return nil, err
		}
		// MkdirAll leaves existing directories (and their modes) alone.
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, atPath(newError(ErrUnreadable, writeCause(err), "cannot create the directory for database %s: %v", path, pathErr(err)), path)
		}
	}

	bdb, err := openBolt(path, opts.ReadOnly, false, timeout)
	if !opts.ReadOnly && errors.Is(err, fs.ErrNotExist) {
		if err = create(path, timeout); err == nil {
			bdb, err = openBolt(path, false, false, timeout)
		}
	}
	if err != nil {
		return nil, atPath(openError(path, opts.ReadOnly, timeout, err), path)
	}
	return bdb, nil
}

// useBolt checks (and on a read-write open, creates or migrates) the schema
// of an open bbolt file.
func useBolt(bdb *bolt.DB, path string, readOnly bool) (*DB, error) {
	db := &DB{bolt: bdb, path: path}
	if err := db.checkSchema(readOnly); err != nil {
		_ = bdb.Close()
		return nil, err
	}
	return db, nil
}

// create makes a new database at path that is whole from the moment the path
// names it: it is built under a temporary name in the same directory, with
// its schema, and linked into place. So a take killed while creating the
// database leaves no file, or a whole empty database, never an empty or
// half-written file that later takes would have to refuse (a file at the
// path that is not a database is not ours to overwrite). Two takes creating
// at once both link; the one that loses opens the winner's file.
func create(path string, timeout time.Duration) error {
	tmp := path + ".creating." + strconv.FormatUint(rand.Uint64(), 36)
	bdb, err := openBolt(tmp, false, true, timeout)
	if err != nil {
		return err
	}
	db, err := useBolt(bdb, tmp, false)
	if err == nil {
		err = db.Close()
	}
	if err == nil {
		if err = os.Link(tmp, path); errors.Is(err, fs.ErrExist) {
			err = nil
		}
	}
	_ = os.Remove(tmp)
	if err != nil {
		return err
	}
	// The new name must outlive a power cut as much as the commit after it.
	if dir, err := os.Open(filepath.Dir(path)); err == nil {
		_ = dir.Sync()
		_ = dir.Close()
	}
	return nil
}

// removeStale removes what create left when it was killed: temporary files
// of path older than a minute (creating one takes milliseconds). Every
// read-write open looks, so a leftover goes with the next take after that.
func removeStale(path string) {
	dir, prefix := filepath.Dir(path), filepath.Base(path)+".creating."
	entries, _ := os.ReadDir(dir) // not Glob: the path may hold * or [
	for _, e := range entries {
		if !e.Type().IsRegular() || !strings.HasPrefix(e.Name(), prefix) {
			continue
		}
		if info, err := e.Info(); err == nil && time.Since(info.ModTime()) > time.Minute {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// checkSymlinks refuses to write through a symlink that another user owns:
// root running take with --db /tmp/x, where someone planted /tmp/x -> a
// file of root's, would otherwise write root's database over that file;
// and the same for a directory: /tmp/d -> /etc with --db /tmp/d/x.db. It
// resolves the path as the kernel does, link by link (at most 40, as
// fs/namei.c's MAXSYMLINKS), and checks each link's owner. A symlink of the
// writer's own is fine; one on the way to the directory may also be
// root's (the system's, like /var/run -> /run), but the link that names
// the file itself must be the writer's.
func checkSymlinks(path string) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil // no working directory: the open says what is wrong
	}
	todo := strings.Split(abs, string(filepath.Separator))
	cur := string(filepath.Separator)
	for links := 0; len(todo) > 0; {
		name := todo[0]
		todo = todo[1:]
		if name == "" || name == "." {
			continue
		}
		next := filepath.Join(cur, name)
		info, err := os.Lstat(next)
		if err != nil {
			return nil // missing: there is nothing further to follow
		}
		if info.Mode()&fs.ModeSymlink == 0 {
			cur = next
			continue
		}
		final := len(todo) == 0
		if uid, ok := ownerUID(info); ok && int(uid) != os.Geteuid() && (final || uid != 0) {
			if next == abs {
				return newPathError(path, "database %s is a symlink owned by uid %d, not by this user: refusing to write through it", path, uid)
			}
			return newPathError(path, "database %s: %s is a symlink owned by uid %d, not by this user: refusing to write through it", path, next, uid)
		}
		if links++; links > 40 {
			return nil // ELOOP: the open says so
		}
		target, err := os.Readlink(next)
		if err != nil {
			return nil
		}
		if filepath.IsAbs(target) {
			cur = string(filepath.Separator)
		}
		todo = append(strings.Split(target, string(filepath.Separator)), todo...)
	}
	return nil
}

// openBolt opens the bbolt file, which must exist unless create is set,
// turning a bbolt panic or a memory fault (a truncated file is mapped past
// its end) into ErrUnreadable.
func openBolt(path string, readOnly, create bool, timeout time.Duration) (bdb *bolt.DB, err error) {
	// A fresh struct, not a copy of bolt.DefaultOptions: the package default
	// is shared with every other bbolt user in the process.
	o := &opener{exclusive: !readOnly, create: create, timeout: timeout}
	options := &bolt.Options{
		ReadOnly: readOnly,
		Timeout:  timeout,
		OpenFile: o.open,
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			// bbolt.Open panicked half-way: close the file it was given,
			// which also drops the lock. The mapping leaks; this is an
			// error path of a short-lived command.
			if o.file != nil {
				_ = o.file.Close()
			}
			bdb, err = nil, newCorrupt(nil, "database %s is corrupt: %v", path, r)
		}
	}()
	return bolt.Open(path, 0o600, options)
}

// openError maps bbolt's and the OS's open errors onto the sentinels, as one
// line that names the path and says what to do next.
func openError(path string, readOnly bool, timeout time.Duration, err error) error {
	var se *storeError
	switch {
	case errors.As(err, &se):
		return err
	case errors.Is(err, berrors.ErrTimeout):
		return newError(ErrLocked, err, "database %s is locked by another itersnap (waited %v)", path, timeout)
	case errors.Is(err, errEmptyFile):
		return newPathError(path, "database %s is an empty file, not an itersnap database: remove it", path)
	case errors.Is(err, errNotRegular):
		return newPathError(path, "database %s is not a regular file", path)
	case readOnly && errors.Is(err, fs.ErrNotExist):
		return newError(ErrUnreadable, err, "no database at %s", path)
	case errors.Is(err, fs.ErrPermission):
		if readOnly {
			return newError(ErrUnreadable, err, "cannot read database %s: permission denied (ask for read access, or copy the file)", path)
		}
		return newError(ErrUnreadable, writeCause(err), "cannot write database %s: permission denied", path)
	case errors.Is(err, berrors.ErrInvalid), errors.Is(err, berrors.ErrVersionMismatch), errors.Is(err, berrors.ErrChecksum):
		return newError(ErrUnreadable, err, "database %s is not a bbolt file or is corrupt (%v)", path, err)
	}
	var pe *fs.PathError
	var errno syscall.Errno
	if !errors.As(err, &pe) && !errors.As(err, &errno) {
		// Not the OS's: bbolt's own check of the file failed ("file size
		// too small", a bad meta or freelist page).
		return newError(ErrUnreadable, err, "database %s is not a bbolt file or is corrupt (%v)", path, err)
	}
	return newError(ErrUnreadable, err, "cannot open database %s: %v", path, pathErr(err))
}

// writeCause is err, and ErrCannotWrite when err is a refused permission.
func writeCause(err error) error {
	if errors.Is(err, fs.ErrPermission) {
		return errors.Join(ErrCannotWrite, err)
	}
	return err
}

// pathErr drops the path from an *fs.PathError, which the caller's message
// already names.
func pathErr(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Path returns the database file's path as given to Open.
func (db *DB) Path() string { return db.path }

// Close releases the file lock and closes the file.
func (db *DB) Close() error {
	if err := db.bolt.Close(); err != nil {
		return fmt.Errorf("close database %s: %w", db.path, err)
	}
	return nil
}

// view runs fn in a read transaction. A corrupt file can make bbolt panic or
// fault on a page read (bbolt trusts its pages); that becomes ErrUnreadable
// instead of a crash with a Go stack trace.
func (db *DB) view(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer db.recoverCorrupt(&err)
	return db.bolt.View(fn)
}

// update is view for the one write transaction of Put and of migrations.
// bbolt rolls the transaction back before the panic reaches us.
func (db *DB) update(fn func(*bolt.Tx) error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer db.recoverCorrupt(&err)
	return db.bolt.Update(fn)
}

// recoverCorrupt must be deferred directly (recover works only there), after
// SetPanicOnFault(true) so that a fault on the mapping is a panic, not a
// crash: "used by programs that mmap files that may be truncated".
func (db *DB) recoverCorrupt(err *error) {
	r := recover()
	if r == nil {
		return
	}
	if _, fault := r.(interface{ Addr() uintptr }); fault {
		*err = newCorrupt(nil, "database %s is corrupt: a page could not be read (file truncated, or changed while open)", db.path)
		return
	}
	*err = newCorrupt(nil, "database %s is corrupt: %v", db.path, r)
}
