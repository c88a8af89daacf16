//go:build linux

// Package bpf holds itersnap's BPF iterator programs and a small API to load
// them with filters set, run them and hand back decoded records.
package bpf

// The generated itersnap_bpfel.go/.o are committed, so building needs no
// clang. `make generate` reruns this (needs clang, llvm and libbpf-dev).
//go:generate go tool bpf2go -tags linux -target amd64,arm64 -type task_rec -type sym_rec -type file_rec -type sock_rec -type path_source itersnap itersnap.bpf.c -- -I/usr/include/x86_64-linux-gnu -O2 -g -Wall
