package output

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// ToFile runs fn with a temporary file beside path, and renames it to path
// only when fn succeeds, so a reader never sees half a report. An error
// names path (not the temporary file) and says why nothing can be written
// there.
func ToFile(path string, fn func(w io.Writer) error) error {
	dir := filepath.Dir(path)
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		return fmt.Errorf("cannot write %s: it is a directory", path)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %s", path, whyNotHere(dir, err))
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	err = f.Close()
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		var le *os.LinkError
		if errors.As(err, &le) {
			err = le.Err
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}

// whyNotHere explains why a file cannot be created in dir: a kernel
// filesystem (procfs answers "no such file or directory" to a create in a
// directory that exists), a directory that is missing or is not one, or
// the error itself.
func whyNotHere(dir string, err error) string {
	if fsName := kernelFS(dir); fsName != "" {
		return fmt.Sprintf("%s is on %s, where no file can be created", dir, fsName)
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	st, serr := os.Stat(dir)
	switch {
	case errors.Is(serr, fs.ErrNotExist):
		return fmt.Sprintf("directory %s does not exist", dir)
	case serr == nil && !st.IsDir():
		return fmt.Sprintf("%s is not a directory", dir)
	case errors.Is(err, fs.ErrPermission):
		return fmt.Sprintf("no permission to create a file in %s", dir)
	}
	return fmt.Sprintf("cannot create a file in %s: %v", dir, err)
}
