//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"time"
	"unsafe"

	"github.com/cilium/ebpf/link"
)

// The records are little-endian: the programs are built for bpfel.
var le = binary.LittleEndian

// errShort says the data ends inside a record: at the end of the stream an
// error, before it a record the next read completes.
var errShort = errors.New("short")

// readSize is what each read of an iterator asks for. kernel/bpf/bpf_iter.c's
// bpf_seq_read hands out at most its 32 KB seq buffer per read, and a task's
// or fd's records always fit in it, so a buffer of twice that never has to
// grow, and records are decoded where they were read.
const readSize = 64 << 10

// WalkTimes is where a walk's time went: in the kernel (the reads, which run
// the program over the next tasks or fds) and decoding what they returned;
// and how many bytes and records (threads, fds) the kernel wrote: with
// filters set, what passed them in the kernel.
type WalkTimes struct {
	Kernel, Decode time.Duration
	Bytes          int64
	Records        int
}

// stream runs the iterator it and hands decode the records as they are read,
// in the reused buffer *bufp: decode returns how many bytes it used, and the rest
// (the start of a record the next read completes) moves to the buffer's
// start. At the end of the stream decode is called with final set.
//
// kernel/bpf/bpf_iter.c returns EAGAIN after visiting 1M objects without
// output, to let the reader breathe; the next read carries on where it
// stopped.
func stream(it *link.Iter, bufp *[]byte, times *WalkTimes, decode func(data []byte, final bool) (int, error)) error {
	r, err := it.Open()
	if err != nil {
		return fmt.Errorf("open iterator: %w", err)
	}
	defer r.Close()
	if len(*bufp) < 2*readSize {
		*bufp = make([]byte, 2*readSize)
	}
	buf, n := *bufp, 0
	for {
		if len(buf)-n < readSize {
			// A record longer than a read (never written by our programs,
			// whose records fit the seq buffer): make room for it.
			buf = append(buf[:n], make([]byte, len(buf))...)
			buf = buf[:cap(buf)]
			*bufp = buf
		}
		start := time.Now()
		m, err := r.Read(buf[n : n+readSize])
		mid := time.Now()
		times.Kernel += mid.Sub(start)
		times.Bytes += int64(m)
		n += m
		final := err == nil && m == 0 || errors.Is(err, io.EOF)
		switch {
		case final:
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("read iterator: %w", err)
		}
		used, derr := decode(buf[:n], final)
		times.Decode += time.Since(mid)
		if derr != nil || final {
			return derr
		}
		n = copy(buf, buf[used:n])
	}
}

// TaskVisitor is what the task walk's records are handed to, in stream
// order. None may keep the slices it is given: they are reused or alias
// the read buffer. A nil func skips those records.
type TaskVisitor struct {
	// Task is called for every thread that passed the filter, with its
	// stack (return addresses, leaf first; empty when the kernel gave
	// none).
	Task func(rec *TaskRecord, stack []uint64)
	// Symbol is called with the symbol of each of the stacks' addresses,
	// "function+0xoff/0xsize [module]" as /proc/PID/stack prints it, the
	// first time the walk meets the address; text is nil when the kernel
	// could not symbolize it (bpf_snprintf failed).
	Symbol func(rec *SymbolRecord, text []byte)
	// Cgroup is called for each cgroup v2 cgroup the walk names: the
	// cgroups of the threads that passed, and their ancestors, each once
	// and before the cgroups below it (itersnap.bpf.c cgroup_rec). name is
	// the cgroup directory's name ("" for the root), nil when the kernel
	// could not read it.
	Cgroup func(rec *CgroupRecord, name []byte)
}

// Tasks runs the task iterator and hands its records to v. One Tasks and
// one Files may run at the same time.
func (o *Objects) Tasks(times *WalkTimes, v TaskVisitor) error {
	// Each walk starts with no address symbolized, whatever an earlier
	// walk of the same programs (pinned ones: an earlier take) left.
	// (Named cgroups need no clearing: the kernel tells walks apart.)
	if err := clearSymbolized(o.symbolized); err != nil {
		return err
	}
	stack := make([]uint64, 0, 128)
	task := v.Task
	v.Task = func(rec *TaskRecord, stack []uint64) {
		times.Records++
		if task != nil {
			task(rec, stack)
		}
	}
	return stream(o.task, &o.taskBuf, times, func(data []byte, final bool) (int, error) {
		return decodeTaskStream(data, final, stack, &v)
	})
}

// decodeTasks walks the task iterator's whole output: each task record
// followed by its StackBytes of addresses, NrSyms symbol records, each
// followed by its SymBytes of text, and NrCgroups cgroup records, each
// followed by its NameBytes of name. Input it cannot walk to its end is an
// error, never a panic (FuzzDecodeTasks).
func decodeTasks(data []byte, v TaskVisitor) error {
	_, err := decodeTaskStream(data, true, make([]uint64, 0, 128), &v)
	return err
}

// decodeTaskStream decodes the whole tasks at the start of data and returns
// the bytes they took. Unless final, a task cut short by the end of data is
// left for the next call; stack is the reused buffer of addresses.
func decodeTaskStream(data []byte, final bool, stack []uint64, v *TaskVisitor) (int, error) {
	var rec TaskRecord
	var srec SymbolRecord
	var crec CgroupRecord
	size, symSize, cgSize := int(unsafe.Sizeof(rec)), int(unsafe.Sizeof(srec)), int(unsafe.Sizeof(crec))
	off := 0
	for off < len(data) {
		// Check that the whole task is there before handing any of it out.
		n, err := taskLen(data[off:], &rec)
		if errors.Is(err, errShort) && !final {
			return off, nil
		}
		if err != nil {
			return off, fmt.Errorf("at byte %d: %w", off, err)
		}
		unit := data[off : off+n]
		stack = stack[:0]
		for i := size; i < size+int(max(rec.StackBytes, 0)); i += 8 {
			stack = append(stack, le.Uint64(unit[i:]))
		}
		if v.Task != nil {
			v.Task(&rec, stack)
		}
		p := size + len(stack)*8
		for range rec.NrSyms {
			decode(&srec, unit[p:p+symSize])
			p += symSize
			var text []byte
			if srec.SymBytes >= 0 {
				text = unit[p : p+int(srec.SymBytes)]
				p += len(text)
			}
			if v.Symbol != nil {
				v.Symbol(&srec, text)
			}
		}
		for range rec.NrCgroups {
			decode(&crec, unit[p:p+cgSize])
			p += cgSize
			var name []byte
			if crec.NameBytes >= 0 {
				name = unit[p : p+int(crec.NameBytes)]
				p += len(name)
			}
			if v.Cgroup != nil {
				v.Cgroup(&crec, name)
			}
		}
		off += n
	}
	return off, nil
}

// taskLen returns the length of the task at data's start with its stack,
// symbols and cgroups, decoding its record into rec; errShort when data
// ends first.
func taskLen(data []byte, rec *TaskRecord) (int, error) {
	var srec SymbolRecord
	var crec CgroupRecord
	size, symSize, cgSize := int(unsafe.Sizeof(*rec)), int(unsafe.Sizeof(srec)), int(unsafe.Sizeof(crec))
	if len(data) < size {
		return 0, fmt.Errorf("task record truncated: %w", errShort)
	}
	decode(rec, data[:size])
	off := size
	if n := int(rec.StackBytes); n > 0 {
		if n%8 != 0 {
			return 0, fmt.Errorf("task %d: bad stack length %d", rec.Tid, n)
		}
		if len(data)-off < n {
			return 0, fmt.Errorf("task %d: stack length %d: %w", rec.Tid, n, errShort)
		}
		off += n
	}
	for range rec.NrSyms {
		if len(data)-off < symSize {
			return 0, fmt.Errorf("task %d: symbol record truncated: %w", rec.Tid, errShort)
		}
		decode(&srec, data[off:off+symSize])
		off += symSize
		if n := int(srec.SymBytes); n >= 0 {
			if len(data)-off < n {
				return 0, fmt.Errorf("task %d: symbol length %d: %w", rec.Tid, n, errShort)
			}
			off += n
		}
	}
	for range rec.NrCgroups {
		if len(data)-off < cgSize {
			return 0, fmt.Errorf("task %d: cgroup record truncated: %w", rec.Tid, errShort)
		}
		decode(&crec, data[off:off+cgSize])
		off += cgSize
		if n := int(crec.NameBytes); n >= 0 {
			if n > cgroupNameMax {
				return 0, fmt.Errorf("task %d: bad cgroup name length %d", rec.Tid, n)
			}
			if len(data)-off < n {
				return 0, fmt.Errorf("task %d: cgroup name length %d: %w", rec.Tid, n, errShort)
			}
			off += n
		}
	}
	return off, nil
}

// cgroupNameMax is NAME_MAX (include/uapi/linux/limits.h): the longest
// name a cgroup directory can have.
const cgroupNameMax = 255

// SockRecord is what the task_file iterator read of a socket fd's struct
// sock (itersnap.bpf.c sock_rec).
type SockRecord = itersnapSockRec

// Files runs the task_file iterator and calls fn for every fd of every
// process that passed the filter, with the path as bpf_d_path renders it. path
// is nil when bpf_d_path failed (rec.PathBytes < 0). For a socket, sock is
// what the kernel read of its sock and name a unix socket's bound name
// (sun_path's bytes, an abstract name starting with a NUL; nil when
// unbound); both are nil for other fds. fn must not keep path, sock or
// name: they are reused or alias the read buffer.
func (o *Objects) Files(times *WalkTimes, fn func(rec *FileRecord, path []byte, sock *SockRecord, name []byte)) error {
	pseudo := make([]byte, 0, pseudoBytes)
	count := func(rec *FileRecord, path []byte, sock *SockRecord, name []byte) {
		times.Records++
		fn(rec, path, sock, name)
	}
	return stream(o.file, &o.fileBuf, times, func(data []byte, final bool) (int, error) {
		return decodeFileStream(data, final, pseudo, count)
	})
}

// anonPrefix starts an anon inode's path: the kernel sends only its name
// (PATH_ANON), d_path would print "anon_inode:NAME".
const anonPrefix = "anon_inode:"

// pseudoBytes holds the longest path userspace writes: "anon_inode:" and a
// name of up to 255 bytes (ANON_NAME_BYTES less the NUL).
const pseudoBytes = len(anonPrefix) + 256

// decodeFiles walks the task_file iterator's whole output: each record
// followed by PathBytes of path when its PathSource is PATH_FOLLOWS (or of
// the anon inode's name, PATH_ANON), or by a sock record and NameBytes of
// unix name when it is PATH_SOCKET. Input it cannot walk to its end is an
// error, never a panic (FuzzDecodeFiles).
func decodeFiles(data []byte, fn func(rec *FileRecord, path []byte, sock *SockRecord, name []byte)) error {
	_, err := decodeFileStream(data, true, make([]byte, 0, pseudoBytes), fn)
	return err
}

// decodeFileStream decodes the whole records at the start of data and
// returns the bytes they took, as decodeTaskStream; pseudo is the reused
// buffer for socket, pipe and anon inode paths. A record cut by the end of
// data waits for the next read unless final.
func decodeFileStream(data []byte, final bool, pseudo []byte, fn func(rec *FileRecord, path []byte, sock *SockRecord, name []byte)) (int, error) {
	var rec FileRecord
	var srec SockRecord
	size, sockSize := int(unsafe.Sizeof(rec)), int(unsafe.Sizeof(srec))
	short := func(off int, err error) (int, error) {
		if !final {
			return off, nil
		}
		return off, err
	}
	off := 0
	for off < len(data) {
		if len(data)-off < size {
			return short(off, fmt.Errorf("file record truncated at byte %d", off))
		}
		decode(&rec, data[off:off+size])
		n := size
		var path, name []byte
		var sock *SockRecord
		switch rec.PathSource {
		case itersnapPathSourcePATH_SOCKET:
			path = strconv.AppendUint(append(pseudo[:0], "socket:["...), rec.Ino, 10)
			path = append(path, ']')
			if len(data)-off-n < sockSize {
				return short(off, fmt.Errorf("pid %d fd %d: socket record truncated at byte %d", rec.Pid, rec.Fd, off+n))
			}
			decode(&srec, data[off+n:off+n+sockSize])
			n += sockSize
			sock = &srec
			if l := int(srec.NameBytes); l >= 0 {
				if l > unixPathMax {
					return off, fmt.Errorf("pid %d fd %d: bad unix name length %d", rec.Pid, rec.Fd, l)
				}
				if len(data)-off-n < l {
					return short(off, fmt.Errorf("pid %d fd %d: bad unix name length %d", rec.Pid, rec.Fd, l))
				}
				name = data[off+n : off+n+l]
				n += l
			}
		case itersnapPathSourcePATH_PIPE:
			path = strconv.AppendUint(append(pseudo[:0], "pipe:["...), rec.Ino, 10)
			path = append(path, ']')
		default:
			p := int(rec.PathBytes)
			if p < 0 {
				break
			}
			if len(data)-off-n < p {
				return short(off, fmt.Errorf("pid %d fd %d: bad path length %d", rec.Pid, rec.Fd, p))
			}
			path = data[off+n : off+n+p]
			n += p
			if rec.PathSource == itersnapPathSourcePATH_ANON {
				path = append(append(pseudo[:0], anonPrefix...), path...)
			}
		}
		fn(&rec, path, sock, name)
		off += n
	}
	return off, nil
}

// unixPathMax is UNIX_PATH_MAX (include/uapi/linux/un.h): the most a unix
// socket's name can be.
const unixPathMax = 108

// decode copies one record out of the stream. The records are host-endian
// structs laid out by bpf2go (structs.HostLayout); copying bytes into an
// aligned value avoids both reflection and unaligned access.
func decode[T TaskRecord | SymbolRecord | CgroupRecord | FileRecord | SockRecord](dst *T, src []byte) {
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), unsafe.Sizeof(*dst)), src)
}
