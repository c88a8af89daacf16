package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
)

// itersnapBinary builds the itersnap binary into a directory of tb's and
// returns its path, built as `make build` does: what the benchmarks run when they measure memory. The
// test binary is no stand-in there, as it links the DuckDB driver of the
// fleet test: an idle-host take in it peaks at ~37 MB, in itersnap at ~14.
func itersnapBinary(tb testing.TB) string {
	tb.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(tb.TempDir(), "itersnap")
	build := exec.Command(goCmd, "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v: %s", err, out)
	}
	return bin
}

// peakRSSKB is a finished process's peak resident set (getrusage's
// ru_maxrss, in kB on Linux).
func peakRSSKB(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss
	}
	return 0
}
