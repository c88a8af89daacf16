package store

import (
	"bytes"
	"testing"
)

// FuzzDecodeSnapshot feeds arbitrary record and chunk values to the
// stored-snapshot decoder: it must return a snapshot or an error, never
// panic or allocate without bound.
// Run longer with: go test -run '^$' -fuzz FuzzDecodeSnapshot ./store
func FuzzDecodeSnapshot(f *testing.F) {
	// The seeds in testdata/fuzz/FuzzDecodeSnapshot: version 2 records of
	// the sample and idle-host snapshots with two of their chunks, whole and
	// cut in half, and a version 1 record from testdata/store/v1.db.
	stack := encodeFrames(stackSleep)
	meta, _ := encodeMeta(sampleSnapshot().Meta)
	// And version 2 chunks, with sockets and cgroups, each with a record
	// that refers to it alone.
	sock := socketSnapshot()
	var p packer
	for _, c := range splitChunks(sock, make([]uint64, len(sock.Stacks))) {
		v := c.value(&p, c.body(new(encoder), new(tableScratch)))
		record := encodeRecord([]uint64{1}, []chunk{c}, [][]doing{c.doing}, [][]uint8{c.sockStates})
		f.Add(record, v)
		f.Add(record, v[:len(v)/2])
	}
	f.Fuzz(func(t *testing.T, record, chunk []byte) {
		lookup := func(bucket []byte, id uint64) []byte {
			if bytes.Equal(bucket, bucketStacks) {
				return append([]byte{encStack}, stack...)
			}
			return chunk // every chunk ID finds this one
		}
		s, err := decodeSnapshot(1, meta, record, lookup)
		if err == nil {
			for _, task := range s.Tasks {
				s.StackOf(task) // in range or none
			}
		}
		decodeChunk(chunk, &unpacker{})
	})
}
