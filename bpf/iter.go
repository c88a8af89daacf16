//go:build linux

package bpf

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"syscall"
	"unsafe"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// The records are little-endian: the programs are built for bpfel.
var le = binary.LittleEndian

// run attaches prog as an iterator, reads its whole output and detaches it.
func run(prog *ebpf.Program) ([]byte, error) {
	it, err := link.AttachIter(link.IterOptions{Program: prog})
	if err != nil {
		return nil, fmt.Errorf("attach iterator %s: %w", prog, err)
	}
	defer it.Close()
	r, err := it.Open()
	if err != nil {
		return nil, fmt.Errorf("open iterator %s: %w", prog, err)
	}
	defer r.Close()
	return readAll(r)
}

// readAll reads an iterator fd to its end. kernel/bpf/bpf_iter.c returns
// EAGAIN after visiting 1M objects without output, to let the reader breathe;
// the next read carries on where it stopped.
func readAll(r io.Reader) ([]byte, error) {
	buf := make([]byte, 0, 256<<10)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		switch {
		case err == nil && n == 0, errors.Is(err, io.EOF):
			return buf, nil
		case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, fmt.Errorf("read iterator: %w", err)
		}
	}
}

// Tasks runs the task iterator and calls fn for every thread that passed
// the filter, with its stack (return addresses, leaf first; empty when the
// kernel gave none). fn must not keep stack: it is reused. It returns the
// symbols of the stacks' addresses, "function+0xoff/0xsize [module]" as
// /proc/PID/stack prints them; an address the kernel could not symbolize
// is missing.
func (o *Objects) Tasks(fn func(rec *TaskRecord, stack []uint64)) (map[uint64]string, error) {
	data, err := run(o.objs.DumpTask)
	if err != nil {
		return nil, err
	}
	syms := map[uint64]string{}
	err = decodeTasks(data, fn, func(rec *SymbolRecord, text []byte) {
		if text != nil {
			syms[rec.Addr] = string(text)
		}
	})
	return syms, err
}

// decodeTasks walks the task iterator's output: each task record followed by
// its StackBytes of addresses and NrSyms symbol records, each followed by
// its SymBytes of text. It calls task and sym for them in stream order; text
// is nil when bpf_snprintf failed. Input it cannot walk to its end is an
// error, never a panic (FuzzDecodeTasks).
func decodeTasks(data []byte, task func(rec *TaskRecord, stack []uint64), sym func(rec *SymbolRecord, text []byte)) error {
	var rec TaskRecord
	var srec SymbolRecord
	size, symSize := int(unsafe.Sizeof(rec)), int(unsafe.Sizeof(srec))
	stack := make([]uint64, 0, 128)
	for off := 0; off < len(data); {
		if len(data)-off < size {
			return fmt.Errorf("task record truncated at byte %d", off)
		}
		decode(&rec, data[off:off+size])
		off += size
		stack = stack[:0]
		if n := int(rec.StackBytes); n > 0 {
			if n%8 != 0 || len(data)-off < n {
				return fmt.Errorf("task %d: bad stack length %d", rec.Tid, n)
			}
			for i := 0; i < n; i += 8 {
				stack = append(stack, le.Uint64(data[off+i:]))
			}
			off += n
		}
		task(&rec, stack)
		for range rec.NrSyms {
			if len(data)-off < symSize {
				return fmt.Errorf("task %d: symbol record truncated at byte %d", rec.Tid, off)
			}
			decode(&srec, data[off:off+symSize])
			off += symSize
			var text []byte
			if n := int(srec.SymBytes); n >= 0 {
				if len(data)-off < n {
					return fmt.Errorf("task %d: bad symbol length %d", rec.Tid, n)
				}
				text = data[off : off+n]
				off += n
			}
			sym(&srec, text)
		}
	}
	return nil
}

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
func (o *Objects) Files(fn func(rec *FileRecord, path []byte, sock *SockRecord, name []byte)) error {
	data, err := run(o.objs.DumpFile)
	if err != nil {
		return err
	}
	return decodeFiles(data, fn)
}

// decodeFiles walks the task_file iterator's output: each record followed
// by PathBytes of path when its PathSource is PATH_FOLLOWS, or by a sock
// record and NameBytes of unix name when it is PATH_SOCKET. Input it cannot
// walk to its end is an error, never a panic (FuzzDecodeFiles).
func decodeFiles(data []byte, fn func(rec *FileRecord, path []byte, sock *SockRecord, name []byte)) error {
	var rec FileRecord
	var srec SockRecord
	size, sockSize := int(unsafe.Sizeof(rec)), int(unsafe.Sizeof(srec))
	pseudo := make([]byte, 0, 32)
	for off := 0; off < len(data); {
		if len(data)-off < size {
			return fmt.Errorf("file record truncated at byte %d", off)
		}
		decode(&rec, data[off:off+size])
		off += size
		var path, name []byte
		var sock *SockRecord
		switch rec.PathSource {
		case itersnapPathSourcePATH_SOCKET:
			path = strconv.AppendUint(append(pseudo[:0], "socket:["...), rec.Ino, 10)
			path = append(path, ']')
			if len(data)-off < sockSize {
				return fmt.Errorf("pid %d fd %d: socket record truncated at byte %d", rec.Pid, rec.Fd, off)
			}
			decode(&srec, data[off:off+sockSize])
			off += sockSize
			sock = &srec
			if n := int(srec.NameBytes); n >= 0 {
				if n > unixPathMax || len(data)-off < n {
					return fmt.Errorf("pid %d fd %d: bad unix name length %d", rec.Pid, rec.Fd, n)
				}
				name = data[off : off+n]
				off += n
			}
		case itersnapPathSourcePATH_PIPE:
			path = strconv.AppendUint(append(pseudo[:0], "pipe:["...), rec.Ino, 10)
			path = append(path, ']')
		default:
			n := int(rec.PathBytes)
			if n < 0 {
				break
			}
			if len(data)-off < n {
				return fmt.Errorf("pid %d fd %d: bad path length %d", rec.Pid, rec.Fd, n)
			}
			path = data[off : off+n]
			off += n
		}
		fn(&rec, path, sock, name)
	}
	return nil
}

// unixPathMax is UNIX_PATH_MAX (include/uapi/linux/un.h): the most a unix
// socket's name can be.
const unixPathMax = 108

// decode copies one record out of the stream. The records are host-endian
// structs laid out by bpf2go (structs.HostLayout); copying bytes into an
// aligned value avoids both reflection and unaligned access.
func decode[T TaskRecord | SymbolRecord | FileRecord | SockRecord](dst *T, src []byte) {
	copy(unsafe.Slice((*byte)(unsafe.Pointer(dst)), unsafe.Sizeof(*dst)), src)
}
