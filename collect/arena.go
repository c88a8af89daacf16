//go:build linux

package collect

import (
	"bytes"
	"os"
	"strconv"
	"unsafe"

	"github.com/itersnap/itersnap/internal/prefault"
)

// arena makes strings of fd paths without an allocation each: a host with
// 200,000 fds would otherwise make 200,000 small strings (most of them
// socket:[N] and pipe:[N]) for the garbage collector to track. The strings
// share blocks that live as long as any of them does.
type arena struct {
	block []byte
}

const arenaBlock = 64 << 10

func (a *arena) string(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > cap(a.block)-len(a.block) {
		a.block = make([]byte, 0, max(arenaBlock, len(b)))
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return unsafe.String(&a.block[start], len(b))
}

// hostCounts estimates how many threads and fds an unfiltered walk meets,
// from counts the kernel keeps: the fourth field of /proc/loadavg is
// runnable/total tasks (fs/proc/loadavg.c, nr_threads), and the first of
// /proc/sys/fs/file-nr the open struct files (fs/file_table.c). fds
// sharing a file (dup, fork) make more fds than files: the caller adds
// room. Zero when a count cannot be read: the slices then grow.
func hostCounts() (threads, files int) {
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		if f := bytes.Fields(b); len(f) >= 4 {
			if _, total, ok := bytes.Cut(f[3], []byte("/")); ok {
				threads, _ = strconv.Atoi(string(total))
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/fs/file-nr"); err == nil {
		if f := bytes.Fields(b); len(f) >= 1 {
			files, _ = strconv.Atoi(string(f[0]))
		}
	}
	const limit = 1 << 24 // a bad count must not allocate gigabytes
	return min(max(threads, 0), limit), min(max(files, 0), limit)
}

// prefaulted makes an empty slice with room for n+room elements, the
// pages of the first n of them already mapped before anything reads them
// (the room stays untouched, so unused room costs no memory). A fresh
// array of megabytes comes straight from the kernel untouched, and the
// garbage collector, running while the walks fill it, scans all of it (it
// has pointers), so the kernel maps its pages to the shared zero page;
// each append to a new page then takes a copy-on-write fault that flushes
// that page from the TLB of every CPU the take's threads ran on, an
// interrupt to the other CPU (in a VM, a trap to the hypervisor). At
// 20,000 threads and 200,000 fds those faults were ~70 ms of a take's
// CPU. The pages are mapped in one madvise (prefault.Populate); where the
// kernel refuses it (before 5.14), a zero is written into each page, which
// faults it once, without the flush. Nothing the collector could see
// changes: the memory is zero either way.
func prefaulted[T any](n, room int) []T {
	s := make([]T, 0, n+room)
	if size := n * int(unsafe.Sizeof(*new(T))); size > 0 {
		mem := unsafe.Slice((*byte)(unsafe.Pointer(unsafe.SliceData(s[:n]))), size)
		if !prefault.Populate(mem) {
			page := os.Getpagesize()
			for i := 0; i < len(mem); i += page {
				mem[i] = 0
			}
		}
	}
	return s
}
