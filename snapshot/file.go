package snapshot

import "strings"

// File is one open file descriptor of a process.
type File struct {
	PID   uint32 // thread group owning the fd table
	FD    uint32
	Mode  uint32 // inode i_mode: file type and permission bits
	Flags uint32 // open flags, O_CLOEXEC included, as /proc/PID/fdinfo shows them
	Dev   uint64 // device number as stat(2) reports it (userspace encoding)
	Inode uint64
	Path  string // as readlink(/proc/PID/fd/N) shows it
	// Socket is what the kernel knows of a socket fd's sock; nil for other
	// fds (and for a socket whose sock could not be read: MissingSocket).
	// A pointer because most fds are not sockets: a File stays 64 bytes,
	// which is most of a take's memory at 200,000 fds.
	Socket *Socket `json:",omitempty"`
	Missing
}

// File type bits of i_mode (S_IFMT).
const (
	sIFMT   = 0o170000
	sIFSOCK = 0o140000
	sIFLNK  = 0o120000
	sIFREG  = 0o100000
	sIFBLK  = 0o060000
	sIFDIR  = 0o040000
	sIFCHR  = 0o020000
	sIFIFO  = 0o010000
)

const anonPrefix = "anon_inode:"

// Kind classifies the fd: file, dir, char, block, pipe, socket, symlink, or,
// for anonymous inodes, the anon inode's name (eventfd, eventpoll, timerfd,
// signalfd, inotify, bpf-map, pidfd, io_uring, ...).
//
// Anon inodes are told apart by name, not mode: fs/anon_inodes.c gives them a
// mode without file type bits on most kernels, and d_path renders them as
// "anon_inode:[eventfd]" (or "anon_inode:bpf-map").
func (f File) Kind() string {
	if name, ok := strings.CutPrefix(f.Path, anonPrefix); ok {
		name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
		if name != "" {
			return name
		}
		return "anon_inode"
	}
	switch f.Mode & sIFMT {
	case sIFREG:
		return "file"
	case sIFDIR:
		return "dir"
	case sIFCHR:
		return "char"
	case sIFBLK:
		return "block"
	case sIFIFO:
		return "pipe"
	case sIFSOCK:
		return "socket"
	case sIFLNK:
		return "symlink"
	}
	return "unknown"
}

// Deleted reports a file unlinked while open (d_path appends " (deleted)").
func (f File) Deleted() bool { return strings.HasSuffix(f.Path, " (deleted)") }
