//go:build linux

// Package bpf holds itersnap's BPF iterator programs and a small API to load
// them with filters set, run them and hand back decoded records.
package bpf

// The generated itersnap_*_bpfel.go/.o are committed, so building needs no
// clang. `make generate` reruns this (needs clang, llvm and libbpf-dev).
// itersnap_loops is the same source with bounded loops instead of bpf_loop,
// for kernels before 5.17 (bpf/objects.go picks by trying).
//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type task_rec -type sym_rec -type cgroup_rec -type file_rec -type sock_rec -type path_source itersnap itersnap.bpf.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall
//go:generate go tool bpf2go -tags linux -target amd64,arm64 itersnap_loops itersnap.bpf.c -- -DITERSNAP_LOOPS -I/usr/include/x86_64-linux-gnu -O2 -g -Wall
