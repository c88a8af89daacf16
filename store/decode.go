package store

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"

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

func decodeStackID(v []byte) (uint64, error) {
	b, err := checkVersion(v, encStackID)
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("stack index entry of %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// decodeRecord splits a records value into the stack IDs and the inflated
// body. It reads v to the end: the caller is inside the transaction.
func decodeRecord(v []byte) (stackIDs []uint64, body []byte, err error) {
	b, err := checkVersion(v, encRecord)
	if err != nil {
		return nil, nil, err
	}
	d := decoder{buf: b}
	n := d.uvarint()
	if d.err != nil || n > uint64(len(d.buf)) {
		return nil, nil, errShort
	}
	table := decoder{buf: d.buf[:n]}
	compressed := d.buf[n:]

	stackIDs = make([]uint64, table.count())
	var prev uint64
	for i := range stackIDs {
		prev += uint64(table.varint())
		stackIDs[i] = prev
	}
	if err := table.done(); err != nil {
		return nil, nil, fmt.Errorf("stack table: %w", err)
	}

	r := flate.NewReader(bytes.NewReader(compressed))
	body, err = io.ReadAll(io.LimitReader(r, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("inflate: %w", err)
	}
	if len(body) > maxBody {
		return nil, nil, errors.New("inflated record too large")
	}
	return stackIDs, body, nil
}

// decodeBody fills s.Tasks and s.Files; s.Stacks is already in place, so
// task stack indexes are checked against it.
func decodeBody(body []byte, s *snapshot.Snapshot) error {
	d := decoder{buf: body}
	strs := make([]string, d.count())
	for i := range strs {
		strs[i] = d.string()
	}
	str := func(i uint64) string {
		if i >= uint64(len(strs)) {
			d.fail(fmt.Errorf("string %d of %d", i, len(strs)))
			return ""
		}
		return strs[i]
	}
	s.Tasks = decodeTasks(&d, str, len(s.Stacks))
	s.Files = decodeFiles(&d, str)
	return d.done()
}

func decodeTasks(d *decoder, str func(uint64) string, nStacks int) []snapshot.Task {
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
	for i := range tasks {
		tasks[i].State = d.uint32()
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
	for i := range tasks {
		tasks[i].Switches = d.uvarint()
	}
	for i := range tasks {
		tasks[i].UID = d.uint32()
	}
	for i := range tasks {
		tasks[i].NoFileLimit = d.uvarint() - 1
	}
	for i := range tasks {
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
	for i := range files {
		ref := d.uvarint()
		if ref&1 != 0 {
			files[i].Path = joinInodePath(str(ref>>1), files[i].Inode)
		} else {
			files[i].Path = str(ref >> 1)
		}
	}
	for i := range files {
		files[i].Missing = d.missing()
	}
	return files
}

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
