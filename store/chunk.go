package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"

	bolt "go.etcd.io/bbolt"

	"github.com/itersnap/itersnap/snapshot"
)

// A chunk is one process's threads, or a range of its fds, stored once for
// as long as consecutive snapshots find it unchanged (see encode.go).
// Threads and fds go apart, and fds in ranges of fdsPerChunk numbers,
// because they change apart: a process that opens a socket must not store
// its threads and all its other fds again.
//
// What a thread is doing (state, stack, switch count) changes between takes
// even when nothing else does, so it is not part of a chunk's content: a
// thread chunk keeps it as of the take that stored the chunk (the base), and
// each record stores how far its threads have moved on from there, which
// for a thread that is where it was is a run of zeros.
//
// The same holds for a socket's state (a connection goes from ESTABLISHED
// to CLOSE_WAIT while its process opens nothing): an fd chunk keeps its
// sockets' states as of the take that stored it, and records store the
// differences.
type chunk struct {
	key   chunkKey
	tasks []snapshot.Task // State, Stack and Switches are in doing
	doing []doing         // per task
	files []snapshot.File // a socket's State is not stored with them: see sockStates
	// sockStates holds, per file with a Socket, in file order, its
	// sk_state.
	sockStates []uint8
}

// doing is the part of a thread that changes from take to take.
type doing struct {
	state    uint32
	stack    uint64 // 0 for none, else the database stack ID + 1
	switches uint64
}

// fdsPerChunk is how many fd numbers one fd chunk covers: a process that
// opens a socket stores again only the chunk with that fd number. Smaller
// chunks cost more chunk references in every record. Version 1 chunks
// covered 64; with socket facts a chunk is larger, and 48 is what keeps
// the idle host (size_test.go) smallest: 3,973 bytes per snapshot against
// 4,382 with 64 and 4,055 with 32.
const (
	fdsPerChunk   = 48
	fdsPerChunkV1 = 64
)

// chunkKey names "the same process's threads (or fds in one range)" across
// snapshots.
type chunkKey struct {
	pid uint32
	fds uint32 // fd number / fdsPerChunk, or threadChunk
}

// threadChunk is the chunkKey.fds of a thread chunk; it sorts first.
const threadChunk = ^uint32(0)

func (k chunkKey) compare(o chunkKey) int {
	if k.pid != o.pid {
		return int(k.pid) - int(o.pid)
	}
	return int(k.fds+1) - int(o.fds+1) // threadChunk+1 wraps to 0
}

// splitChunks groups s's records by process, in pid order: each process's
// threads, then its fds in ranges of fdsPerChunk numbers (an empty range has
// no chunk); within a chunk, records keep their order. dbStackIDs maps
// s.Stacks indexes to database stack IDs.
//
// A collected snapshot is sorted (Snapshot.Sort): then each chunk's records
// are a run of s's, and the chunk holds a sub-slice of them rather than a
// copy (200,000 fds are 11 MB). Threads and sockets keep what they are
// doing in such a chunk; nothing reads it from there (body encodes without
// it, see chunk).
func splitChunks(s *snapshot.Snapshot, dbStackIDs []uint64) []chunk {
	if !sortedForChunks(s) {
		return splitUnsorted(s, dbStackIDs)
	}
	out := make([]chunk, 0, countChunks(s))
	for i := 0; i < len(s.Tasks); {
		j := i + 1
		for j < len(s.Tasks) && s.Tasks[j].PID == s.Tasks[i].PID {
			j++
		}
		out = append(out, chunk{key: chunkKey{s.Tasks[i].PID, threadChunk}, tasks: s.Tasks[i:j:j], doing: doings(s.Tasks[i:j], dbStackIDs)})
		i = j
	}
	for i := 0; i < len(s.Files); {
		k := chunkKey{s.Files[i].PID, s.Files[i].FD / fdsPerChunk}
		j := i + 1
		for j < len(s.Files) && s.Files[j].PID == k.pid && s.Files[j].FD/fdsPerChunk == k.fds {
			j++
		}
		out = append(out, chunk{key: k, files: s.Files[i:j:j], sockStates: sockStates(s.Files[i:j])})
		i = j
	}
	slices.SortStableFunc(out, func(a, b chunk) int { return a.key.compare(b.key) })
	return out
}

// countChunks is how many chunks splitChunks makes of sorted s: a chunk
// is 100 bytes, and at 200,000 fds growing the slice to its ~4,400 by
// doubling allocated a megabyte more than it kept.
func countChunks(s *snapshot.Snapshot) int {
	n := 0
	for i := range s.Tasks {
		if i == 0 || s.Tasks[i].PID != s.Tasks[i-1].PID {
			n++
		}
	}
	for i, f := range s.Files {
		if i == 0 || f.PID != s.Files[i-1].PID || f.FD/fdsPerChunk != s.Files[i-1].FD/fdsPerChunk {
			n++
		}
	}
	return n
}

// sortedForChunks reports whether s's tasks are in pid order and its fds
// in (pid, fd) order.
func sortedForChunks(s *snapshot.Snapshot) bool {
	return slices.IsSortedFunc(s.Tasks, func(a, b snapshot.Task) int { return cmp.Compare(a.PID, b.PID) }) &&
		slices.IsSortedFunc(s.Files, func(a, b snapshot.File) int {
			return cmp.Or(cmp.Compare(a.PID, b.PID), cmp.Compare(a.FD, b.FD))
		})
}

// doings returns what each of tasks is doing.
func doings(tasks []snapshot.Task, dbStackIDs []uint64) []doing {
	out := make([]doing, len(tasks))
	for i, t := range tasks {
		out[i] = doing{state: t.State, switches: t.Switches}
		if t.Stack >= 0 {
			out[i].stack = dbStackIDs[t.Stack] + 1
		}
	}
	return out
}

// sockStates returns the states of files' sockets, in file order; nil
// when there are none.
func sockStates(files []snapshot.File) []uint8 {
	var out []uint8
	for i := range files {
		if !files[i].Socket.IsZero() {
			out = append(out, files[i].Socket.State)
		}
	}
	return out
}

// splitUnsorted is splitChunks for records in any order: it copies them.
func splitUnsorted(s *snapshot.Snapshot, dbStackIDs []uint64) []chunk {
	byKey := map[chunkKey]*chunk{}
	var keys []chunkKey
	get := func(k chunkKey) *chunk {
		c := byKey[k]
		if c == nil {
			c = &chunk{key: k}
			byKey[k] = c
			keys = append(keys, k)
		}
		return c
	}
	for _, t := range s.Tasks {
		c := get(chunkKey{t.PID, threadChunk})
		c.tasks = append(c.tasks, t)
	}
	for _, f := range s.Files {
		c := get(chunkKey{f.PID, f.FD / fdsPerChunk})
		c.files = append(c.files, f)
	}
	slices.SortFunc(keys, chunkKey.compare)
	out := make([]chunk, len(keys))
	for i, k := range keys {
		out[i] = *byKey[k]
		out[i].doing = doings(out[i].tasks, dbStackIDs)
		out[i].sockStates = sockStates(out[i].files)
	}
	return out
}

// body is the chunk's content: what must be equal for a snapshot to reuse
// a stored chunk. It is written into e's buffer, reset first, with ts's
// scratch space: valid until the next call with e.
func (c chunk) body(e *encoder, ts *tableScratch) []byte {
	e.buf = e.buf[:0]
	ts.encode(e, c.tasks, c.files, false, true)
	return e.buf
}

// value returns c's chunks value, with what its threads are doing now as
// the base.
func (c chunk) value(p *packer, body []byte) []byte {
	var head encoder
	head.uvarint(uint64(c.key.pid))
	head.uvarint(uint64(c.key.fds + 1)) // a thread chunk is 0
	head.uvarint(uint64(len(c.doing)))
	for _, d := range c.doing {
		head.uvarint(uint64(d.state))
	}
	for _, d := range c.doing {
		head.uvarint(d.stack)
	}
	for _, d := range c.doing {
		head.uvarint(d.switches)
	}
	head.uvarint(uint64(len(c.sockStates)))
	head.buf = append(head.buf, c.sockStates...)
	e := encoder{buf: []byte{encChunk}}
	e.uvarint(uint64(len(head.buf)))
	e.buf = append(e.buf, head.buf...)
	p.pack(&e, body)
	return e.buf
}

// chunkHead is what can be read of a stored chunk without inflating it.
type chunkHead struct {
	key     chunkKey
	base    []doing
	body    []byte // packed
	version byte   // encChunk, or encChunkV1 without extras
	// sockBase is the sockets' states as of the take that stored the
	// chunk (version 2).
	sockBase []uint8
}

func decodeChunkHead(v []byte) (chunkHead, error) {
	version := byte(encChunk)
	if len(v) > 0 && v[0] == encChunkV1 {
		version = encChunkV1
	}
	head, body, err := splitTable(v, version)
	if err != nil {
		return chunkHead{}, err
	}
	h := chunkHead{body: body, version: version}
	d := decoder{buf: head}
	h.key.pid = d.uint32()
	h.key.fds = d.uint32() - 1
	h.base = make([]doing, d.count())
	for i := range h.base {
		h.base[i].state = d.uint32()
	}
	for i := range h.base {
		h.base[i].stack = d.uvarint()
	}
	for i := range h.base {
		h.base[i].switches = d.uvarint()
	}
	if version == encChunk {
		n := d.count()
		if d.err == nil {
			h.sockBase = bytes.Clone(d.buf[:n]) // v is valid only in its transaction
			d.buf = d.buf[n:]
		}
	}
	return h, d.done()
}

// decodeChunk decodes a chunks value, checking that its records belong to
// its key; doing and the sockets' states are the base.
func decodeChunk(v []byte, u *unpacker) (chunk, error) {
	h, err := decodeChunkHead(v)
	if err != nil {
		return chunk{}, err
	}
	body, err := u.unpack(h.body)
	if err != nil {
		return chunk{}, err
	}
	c := chunk{key: h.key, doing: h.base, sockStates: h.sockBase}
	if c.tasks, c.files, err = decodeTables(body, 0, false, h.version == encChunk); err != nil {
		return chunk{}, err
	}
	sockets := 0
	for _, f := range c.files {
		if !f.Socket.IsZero() {
			sockets++
		}
	}
	if h.version == encChunk && sockets != len(h.sockBase) {
		return chunk{}, fmt.Errorf("%d base states for %d sockets", len(h.sockBase), sockets)
	}
	// The sockets in their base states (the shapes store none), so that
	// a record whose sockets are where they were takes the fds as they
	// are. They were just decoded: nothing shares them yet.
	k := 0
	for _, f := range c.files {
		if !f.Socket.IsZero() && k < len(h.sockBase) {
			f.Socket.State = h.sockBase[k]
			k++
		}
	}
	switch {
	case h.key.fds == threadChunk && (len(c.tasks) == 0 || len(c.files) > 0),
		h.key.fds != threadChunk && (len(c.files) == 0 || len(c.tasks) > 0):
		return chunk{}, fmt.Errorf("chunk %v holds %d threads and %d fds", h.key, len(c.tasks), len(c.files))
	case len(c.tasks) != len(h.base):
		return chunk{}, fmt.Errorf("%d base states for %d threads", len(h.base), len(c.tasks))
	}
	for _, t := range c.tasks {
		if t.PID != h.key.pid {
			return chunk{}, fmt.Errorf("thread of pid %d in a chunk of pid %d", t.PID, h.key.pid)
		}
	}
	per := uint32(fdsPerChunk)
	if h.version == encChunkV1 {
		per = fdsPerChunkV1
	}
	for _, f := range c.files {
		if f.PID != h.key.pid || f.FD/per != h.key.fds {
			return chunk{}, fmt.Errorf("fd %d of pid %d in chunk %v", f.FD, f.PID, h.key)
		}
	}
	return c, nil
}

// storedChunk is a chunk of the latest snapshot.
type storedChunk struct {
	id uint64
	chunkHead
}

// latestChunks returns the chunks of the latest snapshot by key: what a new
// snapshot of a host where little changed can refer to again.
func latestChunks(tx *bolt.Tx) (map[chunkKey]storedChunk, error) {
	records := tx.Bucket(bucketRecords)
	v := getRecord(records, lastRecordID(records))
	if len(v) == 0 || v[0] == encRecordV1 {
		return map[chunkKey]storedChunk{}, nil // none yet, or a version 1 record: no chunks
	}
	r, err := decodeRecordHead(v)
	if err != nil {
		return nil, corruptValue{fmt.Errorf("latest record: %w", err)}
	}
	out := make(map[chunkKey]storedChunk, len(r.chunkIDs))
	chunks := newGetter(tx.Bucket(bucketChunks))
	for _, id := range r.chunkIDs {
		cv := chunks.get(id)
		if cv == nil {
			return nil, corruptValue{fmt.Errorf("latest record: chunk %d is missing", id)}
		}
		h, err := decodeChunkHead(cv)
		if err != nil {
			return nil, corruptValue{fmt.Errorf("chunk %d: %w", id, err)}
		}
		out[h.key] = storedChunk{id, h}
	}
	return out, nil
}

// storeChunks returns the chunk ID and the base of each of chunks: the
// latest snapshot's chunk with the same key when its content is the same,
// else a new chunk. A reused chunk's sockets' base states replace
// chunks[i].sockStates' role as base: they go in sockBases. shared holds
// the reused chunks by ID, as stored (their base) but with chunks' records
// (see Receipt).
func storeChunks(tx *bolt.Tx, chunks []chunk) (ids []uint64, bases [][]doing, sockBases [][]uint8, shared map[uint64]chunk, err error) {
	b := tx.Bucket(bucketChunks)
	if b == nil {
		return nil, nil, nil, nil, errors.New("chunk bucket missing")
	}
	b.FillPercent = appendFill
	latest, err := latestChunks(tx)
	if err != nil {
		return nil, nil, nil, nil, err
	}
	shared = make(map[uint64]chunk, min(len(chunks), len(latest)))
	ids = make([]uint64, len(chunks))
	bases = make([][]doing, len(chunks))
	sockBases = make([][]uint8, len(chunks))
	var p packer
	var u unpacker
	var e encoder
	var ts tableScratch
	for i, c := range chunks {
		body := c.body(&e, &ts)
		if old, ok := latest[c.key]; ok && old.version == encChunk && len(old.base) == len(c.doing) && len(old.sockBase) == len(c.sockStates) {
			oldBody, err := u.unpack(old.body)
			if err != nil {
				return nil, nil, nil, nil, corruptValue{fmt.Errorf("chunk %d: %w", old.id, err)}
			}
			if bytes.Equal(oldBody, body) {
				ids[i], bases[i], sockBases[i] = old.id, old.base, old.sockBase
				shared[old.id] = chunk{key: c.key, tasks: c.tasks, files: c.files, doing: old.base, sockStates: old.sockBase}
				continue
			}
		}
		id, err := b.NextSequence()
		if err != nil {
			return nil, nil, nil, nil, err
		}
		if err := b.Put(idKey(id), c.value(&p, body)); err != nil {
			return nil, nil, nil, nil, err
		}
		ids[i], bases[i], sockBases[i] = id, c.doing, c.sockStates
	}
	return ids, bases, sockBases, shared, nil
}
