# itersnap. `make` builds, `make test` runs the tests (as root they load the
# real BPF programs), `make bench` compares the BPF and procfs collectors,
# `make bench-diff` times diff over a day of minutely snapshots, `make fuzz`
# runs each fuzz target for FUZZTIME (10s).
#
# The BPF objects (bpf/itersnap_{x86,arm64}_bpfel.{go,o}) are generated and
# committed, so building needs no clang. `make generate` rebuilds them and
# needs clang, llvm and libbpf's headers:
#     apt-get update && apt-get install -y clang llvm libbpf-dev
# The kernel types come from the small hand-written bpf/itersnap.h
# (preserve_access_index structs), not from a generated vmlinux.h.

GO ?= go

.PHONY: build cross test test-kernels bench bench-diff fuzz generate vet clean man

# CGO_ENABLED=0: a static binary, as the five shipped builds are (cross).
# Only the net package (linked through pflag) would use cgo, for name
# lookups itersnap never makes, and the dynamic loader and libc's start-up
# (CPUID probes, each a trap to the hypervisor in a VM) cost a dynamically
# linked itersnap ~2 ms of every run, a sixth of an idle host's take.
build:
	CGO_ENABLED=0 $(GO) build -o itersnap ./cmd/itersnap

# The five builds itersnap ships: take runs on Linux only, analysis
# (list, show, diff, report, copy, forget, compact) everywhere.
CROSS = linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
cross:
	@set -e; for t in $(CROSS); do \
		echo "build $$t"; \
		CGO_ENABLED=0 GOOS=$${t%/*} GOARCH=$${t#*/} $(GO) build -o /dev/null ./cmd/itersnap; \
	done

test:
	$(GO) test -count=1 ./...

# Runs the tests that load BPF (bpf, collect, cmd/itersnap's kernel tests)
# in qemu on a matrix of Debian kernels (5.10, which must refuse; 6.1, 6.12,
# 7.x; 6.1 on arm64), once per BPF object. Needs root; the first run installs
# qemu and downloads the kernels into .cache/test-kernels.
test-kernels:
	GO=$(GO) scripts/test-kernels

vet:
	$(GO) vet ./...

# A man page per command (itersnap.1, itersnap-take.1, ...) in man/, made
# with cobra's doc package by a test (so the binary does not carry it):
#     make man && man -l man/itersnap-diff.1
man:
	$(GO) test -count=1 -run '^TestManPages$$' ./cmd/itersnap -args -man $(CURDIR)/man

# Starts a workload of 2,000 threads and 15,000 fds and times both collectors
# and whole takes side by side (ratios, peak RSS), and on 2,000 threads and
# 20,000 fds the kernel walk of the programs before and after they read
# sockets and cgroups (BenchmarkSocketCost), a collection with --container
# applied in the kernel against an unfiltered one (BenchmarkCgroupFilter),
# and the fd program against a walk of the same fds that does nothing per
# fd (BenchmarkFDProgram, 40 pairs). Then whole takes, BPF and procfs in
# turns, on an idle host, on an idle host of 500 cgroups (100 in use) and
# at 2,000 threads and 20,000 fds (BENCH_SCALE=L: also 20,000 threads and
# 200,000 fds, minutes): ratio, where the time goes, peak RSS, CPU per
# take, and the floor every take pays (a take its flags refuse).
# TakeScales times its own pairs of takes: one run (1x), else go test runs
# it again for b.N.
bench:
	$(GO) test -run '^$$' -bench 'Collectors|SocketCost|CgroupFilter' -benchtime 10x -count 1 ./cmd/itersnap
	$(GO) test -run '^$$' -bench 'FDProgram' -benchtime 40x -count 1 ./cmd/itersnap
	$(GO) test -run '^$$' -bench 'TakeScales' -benchtime 1x -count 1 -timeout 30m ./cmd/itersnap

# Builds a database of 1,440 minutely snapshots of a 2,000-thread,
# 20,000-fd host (a few minutes) and times whole `itersnap diff` processes
# over 10, 100 and 1,440 of them beside the diff that loads every snapshot
# first, with each one's peak RSS and CPU time. DIFF_SCALE=large runs
# 100 snapshots of 20,000 threads and 200,000 fds instead, all runs both,
# quick 100 snapshots of the day's host.
# DIFF_DIR=DIR keeps the databases there and reuses them.
DIFF_SCALE ?= day
DIFF_DIR ?=
bench-diff:
	DIFF_SCALE=$(DIFF_SCALE) DIFF_DIR=$(DIFF_DIR) $(GO) test -run '^$$' -bench 'DiffRange' -benchtime 1x -count 1 -timeout 60m ./cmd/itersnap

# Fuzz targets, one package:Target per entry: the one list `make fuzz` and
# .ci/run go through. `make test` already runs their seeds (testdata/fuzz).
FUZZ_TARGETS = \
	./bpf:FuzzDecodeTasks \
	./bpf:FuzzDecodeFiles \
	./store:FuzzDecodeSnapshot
FUZZTIME ?= 10s

# Runs each fuzz target for FUZZTIME (go test -fuzz takes one at a time). A
# failing input is saved under the package's testdata/fuzz: commit it with
# the fix, and it stays a seed.
fuzz:
	@set -e; for t in $(FUZZ_TARGETS); do \
		echo "fuzz $${t%%:*} $${t#*:} for $(FUZZTIME)"; \
		$(GO) test -run '^$$' -fuzz "^$${t#*:}\$$" -fuzztime $(FUZZTIME) "$${t%%:*}"; \
	done

generate:
	$(GO) generate ./bpf

clean:
	rm -f itersnap
	rm -rf man
