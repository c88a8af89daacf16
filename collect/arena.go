//go:build linux

package collect

import (
	"bytes"
	"os"
	"strconv"
	"unsafe"
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
// sharing a file (dup, fork) make more fds than files, so it adds an
// eighth. Zero when a count cannot be read: the slices then grow.
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
	threads = min(max(threads, 0), limit)
	files = min(max(files, 0), limit)
	return threads + threads/16 + 64, files + files/8 + 256
}
