package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// itersnapBinary builds the itersnap binary into a directory of tb's, as
// `make build` does (static: CGO_ENABLED=0), and returns its path: what the benchmarks run when
// they measure memory. The test binary is no stand-in there, as it links
// the DuckDB driver of the fleet test: an idle-host take in it peaks at
// ~37 MB, in itersnap at ~14.
func itersnapBinary(tb testing.TB) string {
	tb.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(tb.TempDir(), "itersnap")
	build := exec.Command(goCmd, "build", "-o", bin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0") // static, as make build
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// reportedPeakKB is the peak RSS a process said on stderr: itersnap -v's
// "itersnap: peak RSS N kB", or measuredRole's "VmHWM N"; 0 when it said
// neither. (A Go parent's getrusage cannot tell: see measuredRole.)
func reportedPeakKB(stderr string) int64 {
	var kb int64
	for line := range strings.Lines(stderr) {
		fmt.Sscanf(line, "itersnap: peak RSS %d kB", &kb)
		fmt.Sscanf(line, "VmHWM %d", &kb)
	}
	return kb
}
