package store

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"unsafe"

	"github.com/itersnap/itersnap/internal/prefault"
	"github.com/itersnap/itersnap/snapshot"
)

// Every value starts with a one-byte encoding version, so that a later
// itersnap can change one kind of value without a schema migration, and an
// older one can refuse what it cannot read.
//
//	snapmeta   1 | JSON of snapshot.Meta
//	           (JSON: small, read alone by `list`, readable with `bbolt get`,
//	           and new Meta fields need no new encoding version)
//	records    4 | uvarint len(table) | table | packed(columns)
//	  table    uvarint n | n × Δ chunk ID: the snapshot's process chunks, in
//	           pid order. Outside the packed part so that retention finds the
//	           chunks a record uses without inflating anything.
//	  columns  what changes between takes of an idle host, as differences
//	           from each chunk's base (record.go): per thread in chunk order,
//	           state, stack and nvcsw+nivcsw; then uvarint k | k ×
//	           uvarint gap | k × Δstate: the sockets whose state is not
//	           their chunk's base, by index among all the chunks' sockets
//	           (gap: index − previous listed one's − 1). Version 3 records
//	           had uvarint k | k socket state Δ, one per socket; version 2
//	           none
//	chunks     2 | uvarint len(head) | head | packed(body)
//	  head     pid, fd range, the threads' base states, stacks and switch
//	           counts, then (version 2) uvarint k | k sockets' base states
//	  body     strings | tasks without switches | files | extras
//	           (socket.go; version 1 chunks have no extras)
//	chunkhash  SHA-256 of a chunk's table and unpacked body -> 1 | 8-byte
//	           big-endian chunk ID: the interning index
//	stacks     1 | uvarint n | n × (uvarint len | frame)
//	stackhash  1 | 8-byte big-endian stack ID
//	meta/schema_version  8-byte big-endian, no version byte: it is what
//	           every later itersnap reads first, so its form never changes
//
//	packed     0 | bytes, or 1 | flate(bytes) when that is smaller
//	strings    uvarint n | n × (uvarint len | bytes): each distinct comm and
//	           path once, in first-use order
//	tasks      uvarint n | then one column per field, n values each:
//	           Δpid, tid−pid, Δppid, comm string#, state, exit_state, flags,
//	           Δstart_time, [switches,] uid, nofile+1 (unlimited is 0),
//	           stack index (zigzag, −1 none), missing
//	files      uvarint n | columns: Δpid, Δfd, mode, flags, dev, Δinode,
//	           path ref, missing. path ref is string#<<1, or string#<<1|1
//	           when the path is that string + "[" + inode + "]"
//	           (socket:[123], pipe:[456]), which leaves nothing to store
//	           per socket or pipe but its inode
//
// A snapshot is its metadata, a record, and the process chunks and stacks
// the record refers to. A chunk holds everything about one process but its
// threads' switch counts, so on a host where little changes from one take
// to the next, most processes' chunks are already in the database and a
// snapshot costs its metadata, a list of chunk IDs and the switch counts.
//
// Records of version 1 (itersnap before chunks) are still read:
//
//	records    1 | uvarint len(table) | table | flate(body)
//	  table    uvarint n | n × Δ stack ID; tasks index this table
//	  body     strings | tasks with switches | files
//
// Numbers are varints; Δ is the zigzag difference from the previous
// value (wrapping, so every value round-trips); Δinode is from the
// previous fd of the same file type, since sockets, pipes and files number
// their inodes apart. Columns keep alike values together and records are
// sorted by pid, so deltas are small and flate finds the repeats.
const (
	encMeta     = 1
	encRecordV1 = 1
	encRecordV2 = 2 // before socket states
	encRecordV3 = 3 // a socket state difference for every socket
	encRecord   = 4
	encChunkV1  = 1 // before sockets and containers
	encChunk    = 2
	encStack    = 1
	encID       = 1 // stackhash and chunkhash values
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

// encodeID returns a stackhash or chunkhash value.
func encodeID(id uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte{encID}, id)
}

// idTable writes a table of IDs as zigzag deltas: IDs interned by the same
// take are consecutive, so most deltas are a byte.
func idTable(ids []uint64) []byte {
	var e encoder
	e.uvarint(uint64(len(ids)))
	var prev uint64
	for _, id := range ids {
		e.varint(int64(id - prev))
		prev = id
	}
	return e.buf
}

// encodeTables writes strings | tasks | files: the body of a version 1
// record (with switch counts) and of a process chunk (without: they change
// between takes even when nothing else does, so they live in the record).
//
// With extras (version 2 chunks, socket.go) the cgroup, namespace and
// socket columns follow.
func encodeTables(e *encoder, tasks []snapshot.Task, files []snapshot.File, volatile, extras bool) {
	new(tableScratch).encode(e, tasks, files, volatile, extras)
}

// tableScratch is what encodeTables needs besides its output, kept
// between calls: a take encodes thousands of chunks, one after the other.
type tableScratch struct {
	strs            stringTable
	comms, paths    []uint64
	cgroups, shapes []uint64 // the extras' string numbers (extraStrings)
	scratch         []byte
	shapes1         map[*snapshot.Socket]string // shape of each Socket seen
}

func (ts *tableScratch) encode(e *encoder, tasks []snapshot.Task, files []snapshot.File, volatile, extras bool) {
	if ts.strs.index == nil {
		ts.strs.index = map[string]uint64{}
	}
	clear(ts.strs.index)
	strs := &ts.strs
	strs.list = strs.list[:0]
	// Assign string numbers first: the table goes before the records.
	comms := slices.Grow(ts.comms[:0], len(tasks))[:len(tasks)]
	for i, t := range tasks {
		comms[i] = strs.ref(t.Comm)
	}
	paths := slices.Grow(ts.paths[:0], len(files))[:len(files)]
	for i, f := range files {
		var prefix string
		var ok bool
		prefix, ok, ts.scratch = splitInodePath(f.Path, f.Inode, ts.scratch)
		if ok {
			paths[i] = strs.ref(prefix)<<1 | 1
		} else {
			paths[i] = strs.ref(f.Path) << 1
		}
	}
	ts.comms, ts.paths = comms, paths
	var cgroups, shapes []uint64
	if extras {
		cgroups, shapes = ts.extraStrings(tasks, files)
	}

	e.uvarint(uint64(len(strs.list)))
	for _, str := range strs.list {
		e.string(str)
	}
	encodeTasks(e, tasks, comms, volatile)
	encodeFiles(e, files, paths)
	if extras {
		encodeExtras(e, tasks, files, cgroups, shapes)
	}
}

// packer writes packed values into its buffer with the process's one
// compressor (deflater).
type packer struct {
	out bytes.Buffer
}

// deflater is the one flate.Writer of the process: one costs most of a
// megabyte to set up, a first take stores hundreds of chunks, and a take
// packs both its chunks and its record (at an idle host two writers were
// half of all the take allocated).
var deflater struct {
	sync.Mutex
	w *flate.Writer
}

// pack appends a compression byte and then b, deflated when that is
// smaller (a small chunk or a column of small numbers often is not). The
// level is the default: on the synthetic 15,000-fd snapshot (size_test.go)
// BestCompression saved under 1% for almost three times the CPU, and a take
// from cron should stay cheap.
func (p *packer) pack(e *encoder, b []byte) {
	if len(b) >= 64 {
		p.out.Reset()
		deflater.Lock()
		if deflater.w == nil {
			deflater.w, _ = flate.NewWriter(&p.out, flate.DefaultCompression) // only a bad level fails
			// Its hash tables are most of it: map them in one go.
			prefault.Populate(unsafe.Slice((*byte)(unsafe.Pointer(deflater.w)), unsafe.Sizeof(*deflater.w)))
		} else {
			deflater.w.Reset(&p.out)
		}
		deflater.w.Write(b) // a bytes.Buffer does not fail
		deflater.w.Close()
		deflater.Unlock()
		if p.out.Len() < len(b) {
			e.buf = append(e.buf, packFlate)
			e.buf = append(e.buf, p.out.Bytes()...)
			return
		}
	}
	e.buf = append(e.buf, packRaw)
	e.buf = append(e.buf, b...)
}

const (
	packRaw   = 0
	packFlate = 1
)

func encodeTasks(e *encoder, tasks []snapshot.Task, comms []uint64, volatile bool) {
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
	if volatile {
		for _, t := range tasks {
			e.uvarint(uint64(t.State))
		}
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
	if volatile {
		for _, t := range tasks {
			e.uvarint(t.Switches)
		}
	}
	for _, t := range tasks {
		e.uvarint(uint64(t.UID))
	}
	for _, t := range tasks {
		// RLIM_INFINITY is all ones, ten varint bytes; +1 makes it zero.
		e.uvarint(t.NoFileLimit + 1)
	}
	if volatile {
		for _, t := range tasks {
			e.varint(int64(t.Stack))
		}
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

// appendInodePath appends what splitInodePath split, prefix[inode], to b.
func appendInodePath(b []byte, prefix string, inode uint64) []byte {
	b = append(b, prefix...)
	b = append(b, '[')
	b = strconv.AppendUint(b, inode, 10)
	return append(b, ']')
}
