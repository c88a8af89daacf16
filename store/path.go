package store

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// ErrBadPath: the path cannot hold a database at all (empty, ending in a
// separator, a directory, a file of a kernel filesystem, somebody else's
// bbolt file or symlink). Errors that wrap it also wrap ErrUnreadable.
var ErrBadPath = errors.New("not a database path")

// ErrCannotWrite: this user may not create or write the database file or
// its directory. Errors that wrap it also wrap ErrUnreadable.
var ErrCannotWrite = errors.New("cannot write the database")

// newPathError is newError for a path that cannot hold a database.
func newPathError(path string, format string, args ...any) error {
	return &storeError{msg: fmt.Sprintf(format, args...), kind: ErrUnreadable, cause: ErrBadPath, path: path}
}

// checkPath refuses, before anything is created, a path that cannot be a
// database file: so that a take with a path ending in / does not create
// the directory and then fail, and a file of /proc (whose size is 0) is
// not taken for an empty database.
func checkPath(path string) error {
	switch {
	case path == "":
		return newPathError(path, "database path is empty")
	case strings.HasSuffix(path, "/") || strings.HasSuffix(path, string(filepath.Separator)):
		return newPathError(path, "database path %s ends in %c: it names a directory, not a file", path, path[len(path)-1])
	}
	if info, err := os.Stat(path); err == nil && info.IsDir() {
		return newPathError(path, "database %s is a directory, not a file", path)
	}
	// The file, or the nearest directory above it that exists.
	for p := path; ; p = filepath.Dir(p) {
		if _, err := os.Stat(p); err == nil || !errors.Is(err, fs.ErrNotExist) {
			if name := kernelFS(p); name != "" {
				return newPathError(path, "database %s is on %s, a kernel filesystem, which cannot hold a database", path, name)
			}
			return nil
		}
		if p == filepath.Dir(p) {
			return nil
		}
	}
}

// DBPath returns the database path an error from this package is about, or
// "" when it is about none (or is not this package's): the command line
// adds its flag's name to errors about the path it was given.
func DBPath(err error) string {
	var se *storeError
	if errors.As(err, &se) {
		return se.path
	}
	return ""
}
