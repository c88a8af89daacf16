//go:build linux

// Package bpftest holds the helper every kernel test starts with.
package bpftest

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// RequireBPF skips a test that needs to load BPF programs when the process
// cannot (not root, no kernel BTF). With ITERSNAP_REQUIRE_BPF=1, which
// .ci/run sets because CI runs as root on a kernel that has everything, it
// fails instead: a skipped kernel test in CI is a failed test.
func RequireBPF(t testing.TB) {
	t.Helper()
	var why string
	switch {
	case os.Geteuid() != 0:
		why = "not root"
	default:
		if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
			why = "no kernel BTF at /sys/kernel/btf/vmlinux"
		}
	}
	if why == "" {
		return
	}
	if os.Getenv("ITERSNAP_REQUIRE_BPF") == "1" {
		t.Fatalf("BPF test cannot run (%s) but ITERSNAP_REQUIRE_BPF=1", why)
	}
	t.Skipf("BPF test skipped: %s", why)
}

// PinDir returns a pin directory for bpf.Open unique to the test: DIR/itersnap
// under a test directory where Open mounts a bpffs of its own (as it would
// at /sys/fs/bpf). When the test ends the bpffs is unmounted, and with it
// every pin: the programs are unloaded once nothing holds them.
func PinDir(t testing.TB) string {
	t.Helper()
	fs := filepath.Join(t.TempDir(), "bpffs")
	if err := os.Mkdir(fs, 0o700); err != nil {
		t.Fatal(err)
	}
	// Registered after TempDir, so it runs before TempDir removes the
	// directory.
	t.Cleanup(func() {
		// Until nothing is mounted there (EINVAL), so that a test that
		// stacked mounts fails here rather than leave one behind.
		for i := 0; ; i++ {
			err := unix.Unmount(fs, unix.MNT_DETACH)
			if errors.Is(err, unix.EINVAL) {
				if i > 1 {
					t.Errorf("%d bpffs were mounted on %s, want one", i, fs)
				}
				return
			}
			if err != nil {
				t.Errorf("unmount test bpffs: %v", err)
				return
			}
		}
	})
	return filepath.Join(fs, "itersnap")
}
