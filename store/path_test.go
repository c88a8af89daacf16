package store

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestBadPaths: paths that cannot hold a database are refused before
// anything is created, with ErrBadPath, in a message that names no flag.
func TestBadPaths(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o600)
	for _, tc := range []struct {
		path string
		want string
	}{
		{"", "database path is empty"},
		{filepath.Join(dir, "newdir") + "/", "ends in /"},
		{dir, "is a directory"},
		{empty, "is an empty file"},
	} {
		for _, readOnly := range []bool{true, false} {
			_, err := Open(tc.path, Options{ReadOnly: readOnly})
			if !errors.Is(err, ErrBadPath) || !errors.Is(err, ErrUnreadable) || !strings.Contains(fmt0(err), tc.want) {
				t.Errorf("Open(%q, read-only %v): %v, want ErrBadPath saying %q", tc.path, readOnly, err, tc.want)
			}
			if strings.Contains(fmt0(err), "--") || strings.Contains(fmt0(err), "ITERSNAP_") {
				t.Errorf("Open(%q): %q names a flag", tc.path, err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "newdir")); err == nil {
		t.Errorf("a path ending in / created its directory")
	}
	if runtime.GOOS == "linux" {
		for _, path := range []string{"/proc/self/status", "/sys/kernel/x.db", "/proc/itersnap-test/x.db"} {
			_, err := Open(path, Options{ReadOnly: path == "/proc/self/status"})
			if !errors.Is(err, ErrBadPath) || !strings.Contains(fmt0(err), "kernel filesystem") {
				t.Errorf("Open(%s): %v, want a kernel filesystem refused", path, err)
			}
		}
	}
}

func fmt0(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// TestSymlinkedDirectory: a database under a directory symlink owned by
// another user is refused, as a symlink to the file is; the writer's own
// symlinks and root's are followed.
func TestSymlinkedDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a symlink")
	}
	dir := t.TempDir()
	real := filepath.Join(dir, "real")
	os.Mkdir(real, 0o700)
	planted := filepath.Join(dir, "planted")
	if err := os.Symlink(real, planted); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(planted, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	// Through a second, innocent link of root's to the planted one, and
	// through a relative link inside the planted target's path.
	via := filepath.Join(dir, "via")
	os.Symlink("planted", via)
	for _, path := range []string{
		filepath.Join(planted, "itersnap.db"),
		filepath.Join(planted, "sub", "itersnap.db"),
		filepath.Join(via, "itersnap.db"),
	} {
		_, err := Open(path, Options{})
		if !errors.Is(err, ErrBadPath) || !strings.Contains(fmt0(err), planted+" is a symlink owned by uid 65534") {
			t.Errorf("Open(%s): %v, want the planted directory symlink refused", path, err)
		}
	}
	if entries, _ := os.ReadDir(real); len(entries) != 0 {
		t.Errorf("wrote through the planted symlink: %v", entries)
	}
	// Root's own links are followed.
	db, err := Open(filepath.Join(dir, "mine", "itersnap.db"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	os.Symlink(filepath.Join(dir, "mine"), filepath.Join(dir, "mylink"))
	db, err = Open(filepath.Join(dir, "mylink", "itersnap.db"), Options{})
	if err != nil {
		t.Errorf("through root's own directory symlink: %v", err)
	} else {
		db.Close()
	}
	// Reading needs no such care: readers never write.
	if db, err := Open(filepath.Join(dir, "mylink", "itersnap.db"), Options{ReadOnly: true}); err == nil {
		db.Close()
	}
}
