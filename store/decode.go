package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/klauspost/compress/flate"

	"github.com/itersnap/itersnap/snapshot"
)

// maxBody bounds an inflated record, so that a corrupt one cannot exhaust
// memory; a million fds take about 20 MB.
const maxBody = 1 << 30

// errNewerEncoding marks a value written by a newer itersnap.
var errNewerEncoding = errors.New("encoding version unknown to this itersnap: upgrade itersnap")

// checkVersion strips the encoding version byte.
func checkVersion(v []byte, want byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, errors.New("empty value")
	}
	if v[0] != want {
		return nil, fmt.Errorf("%w (version %d)", errNewerEncoding, v[0])
	}
	return v[1:], nil
}

func decodeMeta(v []byte) (snapshot.Meta, error) {
	var m snapshot.Meta
	j, err := checkVersion(v, encMeta)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(j, &m); err != nil {
		return m, fmt.Errorf("metadata: %w", err)
	}
	return m, nil
}

func decodeFrames(v []byte) (snapshot.Stack, error) {
	b, err := checkVersion(v, encStack)
	if err != nil {
		return nil, err
	}
	d := decoder{buf: b}
	st := make(snapshot.Stack, d.count())
	for i := range st {
		st[i] = d.string()
	}
	return st, d.done()
}

func decodeID(v []byte) (uint64, error) {
	b, err := checkVersion(v, encID)
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("index entry of %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// lookupFunc returns the value of a stack or chunk ID in its bucket, nil
// when there is none. Inside Get it reads the transaction's buckets; the
// fuzz tests hand it a map.
type lookupFunc func(bucket []byte, id uint64) []byte

// decodeSnapshot decodes a snapshot from its metadata and record values and
// the stacks and chunks they refer to. Task.Stack indexes the returned
// Stacks, in the order the tasks first use them.
func decodeSnapshot(id uint64, metaValue, recordValue []byte, lookup lookupFunc) (*snapshot.Snapshot, error) {
	s, _, err := decodeSnapshotCached(id, metaValue, recordValue, lookup, nil)
	return s, err
}

// decodeSnapshotCached is decodeSnapshot with a cache (see Walk), which
// also returns where each fd chunk's fds are.
func decodeSnapshotCached(id uint64, metaValue, recordValue []byte, lookup lookupFunc, cache *decodeCache) (*snapshot.Snapshot, []FileRun, error) {
	meta, err := decodeMeta(metaValue)
	if err != nil {
		return nil, nil, err
	}
	s := &snapshot.Snapshot{ID: id, Meta: meta}
	var runs []FileRun
	if len(recordValue) > 0 && recordValue[0] == encRecordV1 {
		err = decodeRecordV1(recordValue, s, lookup)
	} else {
		runs, err = decodeRecordCached(recordValue, s, lookup, cache)
	}
	if err != nil {
		return nil, nil, err
	}
	return s, runs, nil
}

// stackLoader reads each stack a snapshot uses once, and numbers them for
// Snapshot.Stacks.
type stackLoader struct {
	lookup lookupFunc
	index  map[uint64]int32
	stacks []snapshot.Stack
	frames map[uint64]snapshot.Stack // stacks decoded before, by ID; may be nil
}

func (l *stackLoader) load(id uint64) (int32, error) {
	if i, ok := l.index[id]; ok {
		return i, nil
	}
	st, cached := l.frames[id]
	if id != 0 && !cached { // 0 is an empty stack
		v := l.lookup(bucketStacks, id)
		if v == nil {
			return 0, fmt.Errorf("stack %d is missing", id)
		}
		var err error
		if st, err = decodeFrames(v); err != nil {
			return 0, fmt.Errorf("stack %d: %w", id, err)
		}
		if l.frames != nil {
			l.frames[id] = st
		}
	}
	i := int32(len(l.stacks))
	l.index[id] = i
	l.stacks = append(l.stacks, st)
	return i, nil
}

// splitTable strips the version byte and splits a value into its ID table
// and what follows it.
func splitTable(v []byte, version byte) (table, rest []byte, err error) {
	b, err := checkVersion(v, version)
	if err != nil {
		return nil, nil, err
	}
	d := decoder{buf: b}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf)) {
		return nil, nil, errShort
	}
	return d.buf[:n], d.buf[n:], nil
}

// readIDTable undoes idTable.
func readIDTable(b []byte) ([]uint64, error) {
	d := decoder{buf: b}
	ids := readIDs(&d)
	return ids, d.done()
}

// readIDs reads an ID table from d.
func readIDs(d *decoder) []uint64 {
	ids := make([]uint64, d.count())
	var prev uint64
	for i := range ids {
		prev += uint64(d.varint())
		ids[i] = prev
	}
	return ids
}

// unpacker undoes packer.pack, reusing one decompressor and one buffer: a
// snapshot is hundreds of chunks, and a fresh flate reader for each costs
// more than the decoding. What unpack returns is valid until its next call.
//
// The decompressor is klauspost/compress's flate (already linked, through
// the Parquet writer), not the standard library's: DEFLATE decodes to the
// same bytes whoever decodes it, and it inflates a snapshot's chunks in
// 0.72x the time (1.69 vs 2.34 ms for the synthetic 15,000-fd snapshot's),
// which every take pays comparing its chunks with the latest snapshot's.
// Compression stays the standard library's: the stored bytes depend on
// the compressor.
type unpacker struct {
	r   io.ReadCloser
	out bytes.Buffer
}

func (u *unpacker) unpack(b []byte) ([]byte, error) {
	if len(b) == 0 {
		return nil, errShort
	}
	switch b[0] {
	case packRaw:
		return b[1:], nil
	case packFlate:
		return u.inflate(b[1:])
	}
	return nil, fmt.Errorf("%w (packing %d)", errNewerEncoding, b[0])
}

// inflate decompresses, refusing more than maxBody bytes.
func (u *unpacker) inflate(b []byte) ([]byte, error) {
	if u.r == nil {
		u.r = flate.NewReader(bytes.NewReader(b))
	} else if err := u.r.(flate.Resetter).Reset(bytes.NewReader(b), nil); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	u.out.Reset()
	if _, err := u.out.ReadFrom(io.LimitReader(u.r, maxBody+1)); err != nil {
		return nil, fmt.Errorf("inflate: %w", err)
	}
	if u.out.Len() > maxBody {
		return nil, errors.New("inflated value too large")
	}
	return u.out.Bytes(), nil
}

// decodeRecordV1Head splits a version 1 record into the stack IDs its tasks
// index and its compressed body.
func decodeRecordV1Head(v []byte) (stackIDs []uint64, compressed []byte, err error) {
	table, compressed, err := splitTable(v, encRecordV1)
	if err != nil {
		return nil, nil, err
	}
	if stackIDs, err = readIDTable(table); err != nil {
		return nil, nil, fmt.Errorf("stack table: %w", err)
	}
	return stackIDs, compressed, nil
}

// decodeRecordV1 fills s from a version 1 record: a stack table and one
// compressed body with every record.
func decodeRecordV1(v []byte, s *snapshot.Snapshot, lookup lookupFunc) error {
	stackIDs, compressed, err := decodeRecordV1Head(v)
	if err != nil {
		return err
	}
	var u unpacker
	body, err := u.inflate(compressed)
	if err != nil {
		return err
	}
	// Version 1 tasks index the record's table; give each entry its own
	// slot in Stacks, as that version did.
	stacks := stackLoader{lookup: lookup, index: map[uint64]int32{}}
	s.Stacks = make([]snapshot.Stack, len(stackIDs))
	for i, id := range stackIDs {
		j, err := stacks.load(id)
		if err != nil {
			return err
		}
		s.Stacks[i] = stacks.stacks[j]
	}
	s.Tasks, s.Files, err = decodeTables(body, len(s.Stacks), true, false)
	return err
}

// decodeTables undoes encodeTables; task stack indexes are checked against
// nStacks.
func decodeTables(body []byte, nStacks int, volatile, extras bool) ([]snapshot.Task, []snapshot.File, error) {
	d := decoder{buf: body}
	strs := d.stringTable()
	str := func(i uint64) string {
		if i >= uint64(len(strs)) {
			d.fail(fmt.Errorf("string %d of %d", i, len(strs)))
			return ""
		}
		return strs[i]
	}
	tasks := decodeTasks(&d, str, nStacks, volatile)
	files := decodeFiles(&d, str)
	if extras {
		decodeExtras(&d, str, tasks, files)
	}
	return tasks, files, d.done()
}

func decodeTasks(d *decoder, str func(uint64) string, nStacks int, volatile bool) []snapshot.Task {
	n := d.count()
	if n == 0 {
		return nil
	}
	tasks := make([]snapshot.Task, n)
	var prev uint32
	for i := range tasks {
		prev = d.delta32(prev)
		tasks[i].PID = prev
	}
	for i := range tasks {
		tasks[i].TID = d.delta32(tasks[i].PID)
	}
	prev = 0
	for i := range tasks {
		prev = d.delta32(prev)
		tasks[i].PPID = prev
	}
	for i := range tasks {
		tasks[i].Comm = str(d.uvarint())
	}
	if volatile {
		for i := range tasks {
			tasks[i].State = d.uint32()
		}
	}
	for i := range tasks {
		tasks[i].ExitState = d.uint32()
	}
	for i := range tasks {
		tasks[i].Flags = d.uint32()
	}
	var prevStart uint64
	for i := range tasks {
		prevStart += uint64(d.varint())
		tasks[i].StartTime = prevStart
	}
	if volatile {
		for i := range tasks {
			tasks[i].Switches = d.uvarint()
		}
	}
	for i := range tasks {
		tasks[i].UID = d.uint32()
	}
	for i := range tasks {
		tasks[i].NoFileLimit = d.uvarint() - 1
	}
	for i := range tasks {
		if !volatile {
			tasks[i].Stack = -1
			continue
		}
		st := d.varint()
		if st < math.MinInt32 || st >= int64(nStacks) {
			d.fail(fmt.Errorf("task stack index %d of %d", st, nStacks))
		}
		tasks[i].Stack = int32(st)
	}
	for i := range tasks {
		tasks[i].Missing = d.missing()
	}
	return tasks
}

func decodeFiles(d *decoder, str func(uint64) string) []snapshot.File {
	n := d.count()
	if n == 0 {
		return nil
	}
	files := make([]snapshot.File, n)
	var prev uint32
	for i := range files {
		prev = d.delta32(prev)
		files[i].PID = prev
	}
	prev = 0
	for i := range files {
		prev = d.delta32(prev)
		files[i].FD = prev
	}
	for i := range files {
		files[i].Mode = d.uint32()
	}
	for i := range files {
		files[i].Flags = d.uint32()
	}
	for i := range files {
		files[i].Dev = d.uvarint()
	}
	var prevInode [16]uint64
	for i := range files {
		k := files[i].Mode >> 12 & 0xf
		prevInode[k] += uint64(d.varint())
		files[i].Inode = prevInode[k]
	}
	// A socket's or pipe's path is its prefix and inode ("socket:[123]"):
	// most fds of a busy host. They are written into one array, and made
	// one string whose pieces the fds take, not a string each.
	var scratch [1024]byte
	var ends [fdsPerChunkV1]inodePath
	joined, joinedEnds := scratch[:0], ends[:0]
	for i := range files {
		ref := d.uvarint()
		if ref&1 != 0 {
			joined = appendInodePath(joined, str(ref>>1), files[i].Inode)
			joinedEnds = append(joinedEnds, inodePath{i, len(joined)})
		} else {
			files[i].Path = str(ref >> 1)
		}
	}
	paths, start := string(joined), 0
	for _, p := range joinedEnds {
		files[p.file].Path, start = paths[start:p.end], p.end
	}
	for i := range files {
		files[i].Missing = d.missing()
	}
	return files
}

// inodePath is where in a decoded body's joined inode paths file's ends.
type inodePath struct{ file, end int }

// delta32 reads a zigzag delta from prev that must land in uint32.
func (d *decoder) delta32(prev uint32) uint32 {
	v := int64(prev) + d.varint()
	if v < 0 || v > math.MaxUint32 {
		d.fail(errors.New("delta out of range for 32 bits"))
		return 0
	}
	return uint32(v)
}

func (d *decoder) missing() snapshot.Missing {
	v := d.uvarint()
	if v > math.MaxUint16 {
		d.fail(errors.New("missing bits out of range"))
		return 0
	}
	return snapshot.Missing(v)
}
