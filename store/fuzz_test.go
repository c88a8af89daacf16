package store

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	bolt "go.etcd.io/bbolt"
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
	// (version 4) that refers to it alone.
	sock := socketSnapshot()
	var p packer
	for _, c := range splitChunks(sock, make([]uint64, len(sock.Stacks))) {
		v := c.value(&p, c.body(new(encoder), new(tableScratch)))
		record := encodeRecord([]uint64{1}, []chunk{c}, [][]doing{c.doing}, [][]uint8{c.sockStates})
		f.Add(record, v)
		f.Add(record, v[:len(v)/2])
		// The same with every socket moved on from the chunk's states.
		moved := make([]uint8, len(c.sockStates))
		for i, st := range c.sockStates {
			moved[i] = st ^ 1
		}
		f.Add(encodeRecord([]uint64{1}, []chunk{c}, [][]doing{c.doing}, [][]uint8{moved}), v)
	}
	// And version 3 records (a state difference for every socket), with
	// their first chunk, from testdata/store/v3-socket-states.db.
	old, err := Open(filepath.Join("..", "testdata", "store", "v3-socket-states.db"), Options{ReadOnly: true})
	if err != nil {
		f.Fatal(err)
	}
	if err := old.bolt.View(func(tx *bolt.Tx) error {
		for id := uint64(1); id <= 2; id++ {
			record := getRecord(tx.Bucket(bucketRecords), id)
			r, err := decodeRecordHead(record)
			if err != nil || r.version != encRecordV3 {
				return fmt.Errorf("record %d: version %d, %v", id, r.version, err)
			}
			f.Add(bytes.Clone(record), bytes.Clone(tx.Bucket(bucketChunks).Get(idKey(r.chunkIDs[0]))))
		}
		return nil
	}); err != nil {
		f.Fatal(err)
	}
	old.Close()
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
