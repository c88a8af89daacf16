package output

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestToFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out.csv")
	if err := ToFile(path, func(w io.Writer) error { _, err := io.WriteString(w, "a,b\n"); return err }); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "a,b\n" {
		t.Errorf("%q %v", b, err)
	}
	// A failing writer leaves the old file and no temporary one.
	boom := errors.New("boom")
	if err := ToFile(path, func(w io.Writer) error { io.WriteString(w, "half"); return boom }); err != boom {
		t.Errorf("error %v, want boom", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "a,b\n" {
		t.Errorf("a failed write replaced the file: %q", b)
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("left %v", entries)
	}
	for _, tc := range []struct{ path, want string }{
		{dir, "cannot write " + dir + ": it is a directory"},
		{filepath.Join(dir, "no", "x"), "directory " + filepath.Join(dir, "no") + " does not exist"},
		{filepath.Join(path, "x"), path + " is not a directory"},
	} {
		err := ToFile(tc.path, func(io.Writer) error { t.Error("fn ran"); return nil })
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), ".x.") {
			t.Errorf("ToFile(%s): %v, want %q", tc.path, err, tc.want)
		}
	}
}
