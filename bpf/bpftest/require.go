//go:build linux

// Package bpftest holds the helper every kernel test starts with.
package bpftest

import (
	"os"
	"runtime"
	"testing"
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

// SyscallPrefix is how this architecture's kernel names the entry point of
// system call NAME in a stack: __x64_sys_NAME on amd64, __arm64_sys_NAME on
// arm64 (the syscall wrappers of arch/x86 and arch/arm64, since 4.17).
func SyscallPrefix() string {
	if runtime.GOARCH == "arm64" {
		return "__arm64_sys_"
	}
	return "__x64_sys_"
}
