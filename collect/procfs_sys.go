//go:build linux

package collect

import (
	"bytes"
	"encoding/binary"
	"errors"

	"golang.org/x/sys/unix"
)

// The procfs collector reads tens of thousands of small files per take, so
// it works at the system call level: files are opened relative to directory
// fds it already holds (no path walk from /), read into reused buffers, and
// directories are listed with getdents(2) straight into numbers.

// openAt opens name relative to dirfd, read-only.
func openAt(dirfd int, name string, flags int) (int, error) {
	for {
		fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOCTTY|flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openDirAt opens the directory name relative to dirfd.
func openDirAt(dirfd int, name string) (int, error) {
	return openAt(dirfd, name, unix.O_DIRECTORY)
}

// readAt reads the file name (relative to dirfd) whole into *buf, growing it
// when too small, and returns the bytes read. They stay valid until *buf is
// reused.
//
// A read that returns less than the buffer's room is taken as the end of the
// file, which saves the second read(2) that would return 0: /proc files are
// seq_files, and fs/seq_file.c's seq_read_iter keeps filling the caller's
// buffer until it is full or the records run out.
func readAt(dirfd int, name string, buf *[]byte) ([]byte, error) {
	fd, err := openAt(dirfd, name, 0)
	if err != nil {
		return nil, err
	}
	b, err := readFD(fd, *buf)
	unix.Close(fd)
	if cap(b) > cap(*buf) {
		*buf = b[:0]
	}
	return b, err
}

// readWholeAt is readAt for files longer than a page, such as the socket
// tables in /proc/PID/net: fs/seq_file.c hands out at most one buffer of
// records (a page) per read(2), so only a read that returns 0 ends them.
func readWholeAt(dirfd int, name string, buf *[]byte) ([]byte, error) {
	fd, err := openAt(dirfd, name, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	b := (*buf)[:0]
	if cap(b) < 64<<10 {
		b = make([]byte, 0, 64<<10)
	}
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		m, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			*buf = b[:0]
			return nil, err
		}
		if m == 0 {
			*buf = b[:0]
			return b, nil
		}
		b = b[:len(b)+m]
	}
}

func readFD(fd int, b []byte) ([]byte, error) {
	b = b[:cap(b)]
	if len(b) == 0 {
		b = make([]byte, 4096)
	}
	n := 0
	for {
		m, err := unix.Read(fd, b[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return b[:0], err
		}
		n += m
		if m == 0 || n < len(b) {
			return b[:n], nil
		}
		b = append(b, make([]byte, len(b))...)
		b = b[:cap(b)]
	}
}

// readlinkAt returns the target of the symlink name (relative to dirfd),
// using *buf as scratch space.
func readlinkAt(dirfd int, name string, buf *[]byte) ([]byte, error) {
	b := (*buf)[:cap(*buf)]
	if len(b) < unix.PathMax+64 {
		// PATH_MAX, plus room for " (deleted)".
		b = make([]byte, unix.PathMax+64)
		*buf = b[:0]
	}
	for {
		n, err := unix.Readlinkat(dirfd, name, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n < len(b) {
			return b[:n], nil
		}
		// Possibly truncated: try again with more room.
		b = make([]byte, 2*len(b))
		*buf = b[:0]
	}
}

// listNumbers appends to dst the names in the directory name (relative to
// dirfd) that are decimal numbers: pids in /proc, tids in task/, fds in fd/.
// Other names are skipped. buf is scratch space for getdents(2).
func listNumbers(dirfd int, name string, dst []uint32, buf []byte) ([]uint32, error) {
	fd, err := openDirAt(dirfd, name)
	if err != nil {
		return dst, err
	}
	defer unix.Close(fd)
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return dst, err
		}
		if n <= 0 {
			return dst, nil
		}
		dst = parseDirents(buf[:n], dst)
	}
}

// parseDirents appends to dst the names in the getdents(2) records b that
// are decimal numbers.
func parseDirents(b []byte, dst []uint32) []uint32 {
	eachDirent(b, func(_ uint64, _ uint8, name []byte) {
		if v, ok := parseDecimal(name); ok && v <= 1<<32-1 {
			dst = append(dst, uint32(v))
		}
	})
	return dst
}

// eachDirent calls fn with the inode number, type (unix.DT_*) and name
// (without its NUL) of each struct linux_dirent64 record in b
// (include/linux/dirent.h: d_ino u64, d_off s64, d_reclen u16, d_type u8,
// d_name NUL-terminated). name aliases b.
func eachDirent(b []byte, fn func(ino uint64, typ uint8, name []byte)) {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			break
		}
		name := b[nameOff:reclen]
		if i := bytes.IndexByte(name, 0); i >= 0 {
			name = name[:i]
		}
		fn(binary.NativeEndian.Uint64(b[0:8]), b[18], name)
		b = b[reclen:]
	}
}

// parseDecimal parses the leading digits of b, up to a NUL, space or end;
// ok is false when there are none or anything else follows.
func parseDecimal(b []byte) (v uint64, ok bool) {
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if v > (1<<64-1)/10 {
			return 0, false
		}
		v = v*10 + uint64(b[i]-'0')
	}
	if i == 0 || i < len(b) && b[i] != 0 && b[i] != ' ' && b[i] != '\n' && b[i] != '\t' {
		return 0, false
	}
	return v, true
}

// vanished reports the errors that mean the task or fd went away between
// two reads: the normal race of reading /proc, not a failure.
func vanished(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH)
}

// stillThere reports whether name (relative to dirfd) can still be looked
// up. A /proc entry of a reaped task fails the lookup (pid_revalidate).
func stillThere(dirfd int, name string) bool {
	var st unix.Stat_t
	return unix.Fstatat(dirfd, name, &st, unix.AT_SYMLINK_NOFOLLOW) == nil
}
