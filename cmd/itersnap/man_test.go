package main

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra/doc"
)

var manDir = flag.String("man", "", "write the man pages into this directory (make man)")

// TestManPages writes a man page per command with cobra's doc package, into
// -man DIR for `make man` (section 1: itersnap.1, itersnap-take.1, ...) or
// a temporary directory, and checks that every command has its page and
// that it holds the command's help.
func TestManPages(t *testing.T) {
	dir := *manDir
	if dir == "" {
		dir = t.TempDir()
	} else if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	root := newRootCmd(&bytes.Buffer{}, &bytes.Buffer{}, func(string) string { return "" })
	root.DisableAutoGenTag = true   // pages that do not change with the day they are made
	root.InitDefaultCompletionCmd() // cobra adds it at Execute: a page for it too
	header := &doc.GenManHeader{Title: "ITERSNAP", Section: "1", Source: "itersnap", Manual: "itersnap manual"}
	if err := doc.GenManTree(root, header, dir); err != nil {
		t.Fatal(err)
	}
	for _, c := range append(root.Commands(), root) {
		if !c.IsAvailableCommand() && c != root {
			continue
		}
		name := strings.ReplaceAll(c.CommandPath(), " ", "-") + ".1"
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("no man page for %s: %v", c.CommandPath(), err)
			continue
		}
		if !bytes.Contains(b, []byte(".SH NAME")) || !bytes.Contains(b, []byte(c.Short[:min(len(c.Short), 20)])) {
			t.Errorf("%s does not hold the command's help", name)
		}
	}
}
