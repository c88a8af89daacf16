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

	n := 0
	for _, c := range chunks {
		n += len(c.doing)
	}
	stackIDs := make([]uint64, 0, n)
	n = 0
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
// s.Files (with a cache that asks for no s.Files, the runs alone hold
// them).
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
	// chunk by chunk. chunks are as stored (shared with the cache); what
	// this snapshot's threads are doing goes in now, and its fds in files.
	var chunks []chunk
	if cache != nil {
		chunks = cache.spare[:0]
		cache.spare = nil
	}
	// Grown once: by doubling, a take's read-back of 200 chunks asked
	// for twice the memory, fresh pages that each cost a fault.
	chunks = slices.Grow(chunks, len(r.chunkIDs))
	threads, nFiles, fdChunks, at := 0, 0, 0, 0
	for _, id := range r.chunkIDs {
		c, err := cache.chunkAt(id, &at, lookup, &u)
		if err != nil {
			return nil, err
		}
		chunks = append(chunks, c)
		threads += len(c.tasks)
		nFiles += len(c.files)
		if len(c.files) > 0 {
			fdChunks++
		}
	}
	now := make([]doing, 0, threads)
	files := make([][]snapshot.File, len(chunks))
	for i, c := range chunks {
		now = append(now, c.doing...)
		files[i] = c.files
	}
	d := decoder{buf: columns}
	if n := d.count(); n != threads && d.err == nil {
		return nil, fmt.Errorf("%d thread states for %d threads", n, threads)
	}
	// What each thread is doing is its chunk's base plus the record's
	// difference, one column after the other.
	for i := range now {
		now[i].state += uint32(d.varint())
	}
	for i := range now {
		now[i].stack += uint64(d.varint())
	}
	for i := range now {
		now[i].switches += uint64(d.varint())
	}
	moved := make([]bool, len(chunks)) // chunks whose sockets changed state since the chunk was stored
	var states [][]uint8               // per chunk, its sockets' states where they moved on from the base
	switch r.version {
	case encRecord:
		states = readSockDeltas(&d, chunks)
	case encRecordV3:
		states = readSockDeltasV3(&d, chunks)
	}
	for i, st := range states {
		if st != nil {
			// The chunk's fds are not as it stored them: a walk must
			// count this run again (see FileRun). A copy: the chunk is
			// shared by every snapshot a walk decodes with it.
			moved[i] = true
			files[i] = withSocketStates(chunks[i].files, st)
		}
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
	fill := true
	if cache != nil {
		stacks.frames = cache.stacks
		s.Tasks, s.Files = cache.tasks, cache.files
		fill = !cache.noFiles
	}
	counting := cache.counting()
	if counting {
		cache.nThreads, cache.nFiles = threads, nFiles
		fill = false
	} else {
		s.Tasks = slices.Grow(s.Tasks, threads)
	}
	if fill {
		s.Files = slices.Grow(s.Files, nFiles)
	}
	// Where each chunk's threads start in now.
	starts := make([]int, len(chunks))
	for i, n := 1, 0; i < len(chunks); i++ {
		n += len(chunks[i-1].tasks)
		starts[i] = n
	}
	runs := make([]FileRun, 0, fdChunks)
	end := 0
	for _, i := range order {
		c := chunks[i]
		for j, t := range c.tasks {
			x := now[starts[i]+j]
			t.State, t.Switches, t.Stack = x.state, x.switches, -1
			ref := x.stack
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
			if !counting {
				s.Tasks = append(s.Tasks, t)
			}
		}
		if fs := files[i]; len(fs) > 0 {
			id := r.chunkIDs[i]
			if moved[i] {
				id = 0
			}
			runs = append(runs, FileRun{ChunkID: id, Start: end, End: end + len(fs), Files: fs})
			end += len(fs)
			if fill {
				s.Files = append(s.Files, fs...)
			}
		}
	}
	s.Stacks = stacks.stacks
	cache.keep(r.chunkIDs, chunks)
	return runs, nil
}

// withSocketStates returns a copy of files whose sockets, in file order,
// are in states; a socket whose state changes is copied too.
func withSocketStates(files []snapshot.File, states []uint8) []snapshot.File {
	files = slices.Clone(files)
	k := 0
	for j := range files {
		if files[j].Socket.IsZero() || k >= len(states) {
			continue
		}
		if files[j].Socket.State != states[k] {
			so := *files[j].Socket
			so.State = states[k]
			files[j].Socket = &so
		}
		k++
	}
	return files
}

// readSockDeltas reads a version 4 record's socket states: the sockets
// that moved on from their chunk's base, listed by their index among all
// of the chunks' sockets, in table order. It returns, per chunk, its
// sockets' states when some moved, else nil.
func readSockDeltas(d *decoder, chunks []chunk) [][]uint8 {
	sockets := 0
	for _, c := range chunks {
		sockets += len(c.sockStates)
	}
	n := d.count()
	if n > sockets {
		d.fail(fmt.Errorf("%d socket state differences for %d sockets", n, sockets))
		return nil
	}
	at := make([]int, n)
	next := 0
	for i := range at {
		gap := d.uvarint()
		if gap >= uint64(sockets-next) {
			d.fail(errors.New("socket state difference past the last socket"))
			return nil
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
			return nil
		}
		states[i][k-first] = uint8(v)
	}
	return states
}

// readSockDeltasV3 reads a version 3 record's socket states, a difference
// for every socket, as readSockDeltas returns them.
func readSockDeltasV3(d *decoder, chunks []chunk) [][]uint8 {
	sockets := 0
	for _, c := range chunks {
		sockets += len(c.sockStates)
	}
	if n := d.count(); n != sockets && d.err == nil {
		d.fail(fmt.Errorf("%d socket states for %d sockets", n, sockets))
		return nil
	}
	states := make([][]uint8, len(chunks))
	for i, c := range chunks {
		for j, base := range c.sockStates {
			delta := d.varint()
			v := int64(base) + delta
			if v < 0 || v > math.MaxUint8 {
				d.fail(errors.New("socket state out of range"))
			}
			if delta != 0 && states[i] == nil {
				states[i] = bytes.Clone(c.sockStates)
			}
			if states[i] != nil {
				states[i][j] = uint8(v)
			}
		}
	}
	return states
}
