package store

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/itersnap/itersnap/snapshot"
)

// recordHead is what can be read of a version 2 record without inflating
// it: enough for retention to know which chunks and stacks are in use.
type recordHead struct {
	chunkIDs []uint64 // ascending: small deltas, whatever the pids
	stackIDs []uint64 // ascending: the stacks the snapshot's threads are in
	columns  []byte   // packed
	version  byte     // encRecord, encRecordV3 with a state difference for every socket, or encRecordV2 without socket states
}

// encodeRecord returns the records value of a snapshot made of chunks,
// stored as ids, whose threads' doing is stored in the chunks as bases.
func encodeRecord(ids []uint64, chunks []chunk, bases [][]doing, sockBases [][]uint8) []byte {
	// In ID order: a snapshot mostly reuses chunks stored together by
	// earlier takes. The chunks' keys put them back in pid order.
	order := make([]int, len(ids))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(ids[a], ids[b]) })
	sortedIDs := make([]uint64, len(ids))
	sortedChunks := make([]chunk, len(ids))
	sortedBases := make([][]doing, len(ids))
	sortedSockBases := make([][]uint8, len(ids))
	for i, j := range order {
		sortedIDs[i], sortedChunks[i], sortedBases[i], sortedSockBases[i] = ids[j], chunks[j], bases[j], sockBases[j]
	}
	ids, chunks, bases, sockBases = sortedIDs, sortedChunks, sortedBases, sortedSockBases

	var stackIDs []uint64
	n := 0
	for _, c := range chunks {
		for _, d := range c.doing {
			if d.stack != 0 {
				stackIDs = append(stackIDs, d.stack-1)
			}
		}
		n += len(c.doing)
	}
	slices.Sort(stackIDs)
	stackIDs = slices.Compact(stackIDs)

	// Columns of differences from the base, so a thread that is where it
	// was is three zeros, and a host where little changed is mostly zeros.
	var col encoder
	col.uvarint(uint64(n))
	for i, c := range chunks {
		for j, d := range c.doing {
			col.varint(int64(d.state) - int64(bases[i][j].state))
		}
	}
	for i, c := range chunks {
		for j, d := range c.doing {
			col.varint(int64(d.stack - bases[i][j].stack))
		}
	}
	for i, c := range chunks {
		for j, d := range c.doing {
			col.varint(int64(d.switches - bases[i][j].switches))
		}
	}
	// Then the sockets whose state is not their chunk's base: an idle
	// host's thousands of sockets are where they were, and a connection
	// that moved on stays a difference in every record until its chunk is
	// stored again, so only those are listed (version 4; version 3 had a
	// difference for every socket).
	var at []uint64 // socket index − previous one's − 1, over all chunks in table order
	var deltas []int64
	next := uint64(0)
	k := uint64(0)
	for i, c := range chunks {
		for j, st := range c.sockStates {
			if delta := int64(st) - int64(sockBases[i][j]); delta != 0 {
				at, deltas = append(at, k-next), append(deltas, delta)
				next = k + 1
			}
			k++
		}
	}
	col.uvarint(uint64(len(at)))
	for _, gap := range at {
		col.uvarint(gap)
	}
	for _, delta := range deltas {
		col.varint(delta)
	}

	tables := append(idTable(ids), idTable(stackIDs)...)
	e := encoder{buf: []byte{encRecord}}
	e.uvarint(uint64(len(tables)))
	e.buf = append(e.buf, tables...)
	var p packer
	p.pack(&e, col.buf)
	return e.buf
}

func decodeRecordHead(v []byte) (recordHead, error) {
	version := byte(encRecord)
	if len(v) > 0 && (v[0] == encRecordV2 || v[0] == encRecordV3) {
		version = v[0]
	}
	tables, columns, err := splitTable(v, version)
	if err != nil {
		return recordHead{}, err
	}
	d := decoder{buf: tables}
	r := recordHead{chunkIDs: readIDs(&d), stackIDs: readIDs(&d), columns: columns, version: version}
	return r, d.done()
}

// decodeRecord fills s's records from a version 2 record and the chunks
// and stacks it refers to.
func decodeRecord(v []byte, s *snapshot.Snapshot, lookup lookupFunc) error {
	_, err := decodeRecordCached(v, s, lookup, nil)
	return err
}

// decodeRecordCached is decodeRecord that, with a cache, takes the chunks
// and stacks the cache holds from it instead of decoding them again, and
// leaves in it those of s. It returns where each fd chunk's fds are in
// s.Files.
func decodeRecordCached(v []byte, s *snapshot.Snapshot, lookup lookupFunc, cache *decodeCache) ([]FileRun, error) {
	r, err := decodeRecordHead(v)
	if err != nil {
		return nil, err
	}
	var u, uc unpacker
	columns, err := uc.unpack(r.columns)
	if err != nil {
		return nil, fmt.Errorf("thread columns: %w", err)
	}
	// The columns follow the table's order: the threads of each chunk,
	// chunk by chunk.
	chunks := make([]chunk, len(r.chunkIDs))
	threads, files := 0, 0
	for i, id := range r.chunkIDs {
		if chunks[i], err = cache.chunk(id, lookup, &u); err != nil {
			return nil, err
		}
		threads += len(chunks[i].tasks)
		files += len(chunks[i].files)
	}
	d := decoder{buf: columns}
	if n := d.count(); n != threads && d.err == nil {
		return nil, fmt.Errorf("%d thread states for %d threads", n, threads)
	}
	// What each thread is doing is its chunk's base plus the record's
	// difference, one column after the other.
	for _, add := range []func(x *doing, delta int64){
		func(x *doing, delta int64) { x.state += uint32(delta) },
		func(x *doing, delta int64) { x.stack += uint64(delta) },
		func(x *doing, delta int64) { x.switches += uint64(delta) },
	} {
		for _, c := range chunks {
			for j := range c.doing {
				add(&c.doing[j], d.varint())
			}
		}
	}
	moved := make([]bool, len(chunks)) // chunks whose sockets changed state since the chunk was stored
	switch r.version {
	case encRecord:
		readSockDeltas(&d, chunks, moved)
	case encRecordV3:
		readSockDeltasV3(&d, chunks, moved)
	}
	if err := d.done(); err != nil {
		return nil, fmt.Errorf("thread columns: %w", err)
	}

	// Back in pid order. Stacks are numbered in the order tasks use them.
	order := make([]int, len(chunks))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int { return chunks[a].key.compare(chunks[b].key) })
	stacks := stackLoader{lookup: lookup, index: map[uint64]int32{}}
	if cache != nil {
		stacks.frames = cache.stacks
		s.Tasks, s.Files = cache.tasks, cache.files
	}
	s.Tasks = slices.Grow(s.Tasks, threads)
	s.Files = slices.Grow(s.Files, files)
	var runs []FileRun
	for _, i := range order {
		c := chunks[i]
		for j, t := range c.tasks {
			now := c.doing[j]
			t.State, t.Switches, t.Stack = now.state, now.switches, -1
			ref := now.stack
			if ref != 0 {
				// Retention keeps the stacks the table lists: one
				// outside it may be gone, or reused.
				if _, listed := slices.BinarySearch(r.stackIDs, ref-1); !listed {
					return nil, fmt.Errorf("thread %d: stack %d is not in the record's table", t.TID, ref-1)
				}
				if t.Stack, err = stacks.load(ref - 1); err != nil {
					return nil, err
				}
			}
			s.Tasks = append(s.Tasks, t)
		}
		if len(c.files) > 0 {
			id := r.chunkIDs[i]
			if moved[i] {
				id = 0
			}
			runs = append(runs, FileRun{ChunkID: id, Start: len(s.Files), End: len(s.Files) + len(c.files)})
			s.Files = append(s.Files, c.files...)
		}
	}
	s.Stacks = stacks.stacks
	cache.keep()
	return runs, nil
}

// readSockDeltas applies a version 4 record's socket states to chunks: the
// sockets that moved on from their chunk's base, listed by their index
// among all of the chunks' sockets, in table order.
func readSockDeltas(d *decoder, chunks []chunk, moved []bool) {
	sockets := 0
	for _, c := range chunks {
		sockets += len(c.sockStates)
	}
	n := d.count()
	if n > sockets {
		d.fail(fmt.Errorf("%d socket state differences for %d sockets", n, sockets))
		return
	}
	at := make([]int, n)
	next := 0
	for i := range at {
		gap := d.uvarint()
		if gap >= uint64(sockets-next) {
			d.fail(errors.New("socket state difference past the last socket"))
			return
		}
		at[i] = next + int(gap)
		next = at[i] + 1
	}
	states := make([][]uint8, len(chunks)) // copies of the chunks' bases, for the chunks that moved
	i, first := 0, 0                       // the chunk of at[k], and its first socket's index
	for _, k := range at {
		for k >= first+len(chunks[i].sockStates) {
			first += len(chunks[i].sockStates)
			i++
		}
		if states[i] == nil {
			states[i] = bytes.Clone(chunks[i].sockStates)
		}
		delta := d.varint()
		v := int64(states[i][k-first]) + delta
		if delta == 0 || v < 0 || v > math.MaxUint8 {
			d.fail(errors.New("socket state difference zero or out of range"))
			return
		}
		states[i][k-first] = uint8(v)
		moved[i] = true
	}
	for i, st := range states {
		if st == nil {
			st = chunks[i].sockStates // a chunk's files carry no state: see extraStrings
		}
		setSockStates(chunks[i], st)
	}
}

// readSockDeltasV3 applies a version 3 record's socket states to chunks: a
// difference for every socket.
func readSockDeltasV3(d *decoder, chunks []chunk, moved []bool) {
	sockets := 0
	for _, c := range chunks {
		sockets += len(c.sockStates)
	}
	if n := d.count(); n != sockets && d.err == nil {
		d.fail(fmt.Errorf("%d socket states for %d sockets", n, sockets))
		return
	}
	for i, c := range chunks {
		states := bytes.Clone(c.sockStates)
		for j := range states {
			delta := d.varint()
			if delta != 0 {
				// The chunk's fds are not as it stored them: a walk
				// must count this run again (see FileRun).
				moved[i] = true
			}
			v := int64(states[j]) + delta
			if v < 0 || v > math.MaxUint8 {
				d.fail(errors.New("socket state out of range"))
			}
			states[j] = uint8(v)
		}
		setSockStates(c, states)
	}
}

// setSockStates gives c's sockets states, one per socket in file order.
func setSockStates(c chunk, states []uint8) {
	k := 0
	for j := range c.files {
		if !c.files[j].Socket.IsZero() && k < len(states) {
			if c.files[j].Socket.State != states[k] {
				// Copied, not changed in place: the chunk's sockets are
				// shared by every snapshot a walk decodes with it.
				so := *c.files[j].Socket
				so.State = states[k]
				c.files[j].Socket = &so
			}
			k++
		}
	}
}
