package store

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/itersnap/itersnap/snapshot"
)

// Every value starts with a one-byte encoding version, so that a later
// itersnap can change one kind of value without a schema migration, and an
// older one can refuse what it cannot read.
//
//	snapmeta   1 | JSON of snapshot.Meta
//	           (JSON: small, read alone by `list`, readable with `bbolt get`,
//	           and new Meta fields need no new encoding version)
//	records    1 | uvarint len(table) | table | flate(body)
//	  table    uvarint n | n × Δ stack ID   (snapshot.Stacks[i] is the i-th ID;
//	           ID 0 is an empty stack). Outside the compressed body so that
//	           retention can find the stacks a record uses without inflating it.
//	  body     strings | tasks | files
//	  strings  uvarint n | n × (uvarint len | bytes): each distinct comm and
//	           path once per snapshot, in first-use order
//	  tasks    uvarint n | then one column per field, n values each:
//	           Δpid, tid−pid, Δppid, comm string#, state, exit_state, flags,
//	           Δstart_time, switches, uid, nofile+1 (unlimited is 0),
//	           stack index (zigzag, −1 none), missing
//	  files    uvarint n | columns: Δpid, Δfd, mode, flags, dev, Δinode,
//	           path ref, missing. path ref is string#<<1, or string#<<1|1
//	           when the path is that string + "[" + inode + "]"
//	           (socket:[123], pipe:[456]), which leaves nothing to store
//	           per socket or pipe but its inode
//	stacks     1 | uvarint n | n × (uvarint len | frame)
//	stackhash  1 | 8-byte big-endian stack ID
//	meta/schema_version  8-byte big-endian, no version byte: it is what
//	           every later itersnap reads first, so its form never changes
//
// Numbers are varints; Δ is the zigzag difference from the previous
// record's field (wrapping, so every value round-trips); Δinode is from the
// previous fd of the same file type, since sockets, pipes and files number
// their inodes apart. Columns keep alike values together and records are
// sorted by pid, so deltas are small and flate finds the repeats.
const (
	encMeta    = 1
	encRecord  = 1
	encStack   = 1
	encStackID = 1
)

// encodeMeta returns the snapmeta value.
func encodeMeta(m snapshot.Meta) ([]byte, error) {
	j, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	return append([]byte{encMeta}, j...), nil
}

// encodeFrames returns a stack without the version byte: the bytes that its
// hash is taken over.
func encodeFrames(st snapshot.Stack) []byte {
	var e encoder
	e.uvarint(uint64(len(st)))
	for _, frame := range st {
		e.string(frame)
	}
	return e.buf
}

// encodeStackID returns the stackhash value.
func encodeStackID(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{encStackID}, id)
}

// encodeRecord returns the records value from the stack IDs of the
// snapshot's Stacks and its compressed body.
func encodeRecord(stackIDs []uint64, body []byte) []byte {
	var table encoder
	table.uvarint(uint64(len(stackIDs)))
	var prev uint64
	for _, id := range stackIDs {
		table.varint(int64(id - prev))
		prev = id
	}
	var e encoder
	e.buf = make([]byte, 0, 1+binary.MaxVarintLen64+len(table.buf)+len(body))
	e.buf = append(e.buf, encRecord)
	e.uvarint(uint64(len(table.buf)))
	e.buf = append(e.buf, table.buf...)
	e.buf = append(e.buf, body...)
	return e.buf
}

// encodeBody returns the compressed body: everything but the stacks, which
// the tasks refer to by index into s.Stacks, so it needs no transaction.
func encodeBody(s *snapshot.Snapshot) ([]byte, error) {
	for _, t := range s.Tasks {
		if int(t.Stack) >= len(s.Stacks) {
			return nil, fmt.Errorf("task %d: stack index %d, but the snapshot has %d stacks", t.TID, t.Stack, len(s.Stacks))
		}
	}
	var e encoder
	strs := stringTable{index: map[string]uint64{}}
	// Assign string numbers first: the table goes before the records.
	comms := make([]uint64, len(s.Tasks))
	for i, t := range s.Tasks {
		comms[i] = strs.ref(t.Comm)
	}
	paths := make([]uint64, len(s.Files))
	var scratch []byte
	for i, f := range s.Files {
		var prefix string
		var ok bool
		prefix, ok, scratch = splitInodePath(f.Path, f.Inode, scratch)
		if ok {
			paths[i] = strs.ref(prefix)<<1 | 1
		} else {
			paths[i] = strs.ref(f.Path) << 1
		}
	}

	e.uvarint(uint64(len(strs.list)))
	for _, str := range strs.list {
		e.string(str)
	}
	encodeTasks(&e, s.Tasks, comms)
	encodeFiles(&e, s.Files, paths)

	var out bytes.Buffer
	// The default level: on the synthetic 15,000-fd snapshot (size_test.go)
	// BestCompression saves under 1% for almost three times the CPU
	// (33 ms against 12 ms), and a take from cron should stay cheap.
	w, err := flate.NewWriter(&out, flate.DefaultCompression)
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(e.buf); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func encodeTasks(e *encoder, tasks []snapshot.Task, comms []uint64) {
	e.uvarint(uint64(len(tasks)))
	var prev uint32
	for _, t := range tasks {
		e.varint(int64(t.PID) - int64(prev))
		prev = t.PID
	}
	for _, t := range tasks {
		e.varint(int64(t.TID) - int64(t.PID))
	}
	prev = 0
	for _, t := range tasks {
		e.varint(int64(t.PPID) - int64(prev))
		prev = t.PPID
	}
	for _, c := range comms {
		e.uvarint(c)
	}
	for _, t := range tasks {
		e.uvarint(uint64(t.State))
	}
	for _, t := range tasks {
		e.uvarint(uint64(t.ExitState))
	}
	for _, t := range tasks {
		e.uvarint(uint64(t.Flags))
	}
	var prevStart uint64
	for _, t := range tasks {
		e.varint(int64(t.StartTime - prevStart))
		prevStart = t.StartTime
	}
	for _, t := range tasks {
		e.uvarint(t.Switches)
	}
	for _, t := range tasks {
		e.uvarint(uint64(t.UID))
	}
	for _, t := range tasks {
		// RLIM_INFINITY is all ones, ten varint bytes; +1 makes it zero.
		e.uvarint(t.NoFileLimit + 1)
	}
	for _, t := range tasks {
		e.varint(int64(t.Stack))
	}
	for _, t := range tasks {
		e.uvarint(uint64(t.Missing))
	}
}

func encodeFiles(e *encoder, files []snapshot.File, paths []uint64) {
	e.uvarint(uint64(len(files)))
	var prev uint32
	for _, f := range files {
		e.varint(int64(f.PID) - int64(prev))
		prev = f.PID
	}
	prev = 0
	for _, f := range files {
		e.varint(int64(f.FD) - int64(prev))
		prev = f.FD
	}
	for _, f := range files {
		e.uvarint(uint64(f.Mode))
	}
	for _, f := range files {
		e.uvarint(uint64(f.Flags))
	}
	for _, f := range files {
		e.uvarint(f.Dev)
	}
	var prevInode [16]uint64
	for _, f := range files {
		k := f.Mode >> 12 & 0xf
		e.varint(int64(f.Inode - prevInode[k]))
		prevInode[k] = f.Inode
	}
	for _, p := range paths {
		e.uvarint(p)
	}
	for _, f := range files {
		e.uvarint(uint64(f.Missing))
	}
}

// stringTable numbers distinct strings in first-use order.
type stringTable struct {
	index map[string]uint64
	list  []string
}

func (st *stringTable) ref(s string) uint64 {
	if i, ok := st.index[s]; ok {
		return i
	}
	i := uint64(len(st.list))
	st.index[s] = i
	st.list = append(st.list, s)
	return i
}

// splitInodePath reports whether path is prefix + "[" + inode + "]", the
// form d_path gives sockets, pipes and other pseudo files, and returns the
// prefix. Only an exact match is split, so joinInodePath gives back the same
// bytes. scratch is reused between calls.
func splitInodePath(path string, inode uint64, scratch []byte) (string, bool, []byte) {
	if len(path) < 3 || path[len(path)-1] != ']' {
		return "", false, scratch
	}
	scratch = append(scratch[:0], '[')
	scratch = strconv.AppendUint(scratch, inode, 10)
	scratch = append(scratch, ']')
	prefix, ok := cutSuffix(path, scratch)
	return prefix, ok, scratch
}

func cutSuffix(s string, suffix []byte) (string, bool) {
	if len(s) < len(suffix) || s[len(s)-len(suffix):] != string(suffix) {
		return s, false
	}
	return s[:len(s)-len(suffix)], true
}

// joinInodePath undoes splitInodePath.
func joinInodePath(prefix string, inode uint64) string {
	b := make([]byte, 0, len(prefix)+22)
	b = append(b, prefix...)
	b = append(b, '[')
	b = strconv.AppendUint(b, inode, 10)
	b = append(b, ']')
	return string(b)
}
