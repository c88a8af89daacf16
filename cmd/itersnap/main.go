// Command itersnap records snapshots of every thread's kernel stack and every
// process's open fds, gathered in the kernel with BPF iterators, into a bbolt
// database, and compares them to find leaked fds, blocked and stuck tasks.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/itersnap/itersnap/store"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit status. Errors are one
// line on stderr: no usage dump for runtime errors, no Go stack trace.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) (code int) {
	defer func() {
		// A bug must still end in one line and a documented status.
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "itersnap: internal error: %v\n", r)
			code = exitError
		}
	}()
	root := newRootCmd(stdout, stderr, getenv)
	root.SetArgs(args)
	cmd, err := root.ExecuteContextC(ctx)
	code = exitCode(err)
	if err != nil && !errors.Is(err, errFindings) {
		msg := strings.ReplaceAll(strings.TrimSpace(err.Error()), "\n", "; ")
		if code == exitUsage {
			// The help of the command that refused: show --help for a
			// pprof profile to a terminal, say.
			help := "itersnap"
			if cmd != nil {
				help = cmd.CommandPath()
			}
			msg += " (see " + help + " --help)"
		}
		var failed checkFailed
		if errors.Is(err, store.ErrCorrupt) && !errors.As(err, &failed) {
			msg += " (itersnap check lists every problem)"
		}
		fmt.Fprintf(stderr, "itersnap: %s\n", msg)
	}
	if verbose, _ := root.PersistentFlags().GetBool("verbose"); verbose {
		if kb := peakRSSKB(); kb > 0 {
			// What the command cost the host, in its own words: a
			// parent's getrusage would count its own memory too (a Go
			// parent forks with CLONE_VM, and exec keeps the old address
			// space's high-water mark).
			fmt.Fprintf(stderr, "itersnap: peak RSS %d kB\n", kb)
		}
	}
	return code
}

// peakRSSKB is this process's peak resident set (VmHWM in
// /proc/self/status, see proc(5)); 0 where there is no such file.
func peakRSSKB() int64 {
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb
		}
	}
	return 0
}
