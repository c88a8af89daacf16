package store

import (
	"encoding/binary"
	"fmt"
	"math"

	bolt "go.etcd.io/bbolt"
)

// Since schema 3 a snapshot's record is stored in parts of at most partSize
// bytes, under the keys ID‖0, ID‖1, ... (the 8-byte ID key and a 4-byte
// big-endian part number), instead of whole under the ID key.
//
// Why: bbolt splits a leaf page only when it holds more than four keys, and
// then leaves at least two keys on each side, so a bucket of ~1 kB values
// appended one per commit ends with two values a page: pages 55% full. On
// an idle host a record is about that size, and its half-empty pages were
// a fifth of the database. Parts a few hundred bytes long fill pages to the
// FillPercent, for 12 bytes of key and 16 of page element per part.
//
// Why 244 bytes (it was 480): when a leaf holds more than a page, bbolt
// (go.etcd.io/bbolt node.go, splitIndex) gives the first page at most all
// but the last three keys, so a page can close with room for a whole part
// left empty. With parts of 480 an idle host's records of ~1.3 kB ended two
// to a page (2.8 kB of 4 kB): the idle host with changing socket states
// cost 4,177 bytes per snapshot. 244 is the part that fills a page to 15
// keys ((4,096 − 16) / 15 − 28); across records of 0.6 to 2.6 kB it fills
// pages to 77–87% with values, where 480 ranged from 63% to 89%. Readers
// join parts of any size.
//
// Records written whole (schema 1 and 2) stay where they are and are read
// as they are: the whole-ID key sorts just before its parts.
const partSize = 244

// partKey is the key of record id's part n.
func partKey(id uint64, n int) []byte {
	return binary.BigEndian.AppendUint32(idKey(id), uint32(n))
}

// putRecord stores record under id, in parts.
func putRecord(b *bolt.Bucket, id uint64, record []byte) error {
	for n := 0; n == 0 || n*partSize < len(record); n++ {
		part := record[n*partSize : min((n+1)*partSize, len(record))]
		if err := b.Put(partKey(id, n), part); err != nil {
			return err
		}
	}
	return nil
}

// getRecord returns record id, whole or joined from its parts, or nil when
// there is none. The value is valid for the transaction's life.
func getRecord(b *bolt.Bucket, id uint64) []byte {
	if v := b.Get(idKey(id)); v != nil {
		return v // written whole, before schema 3
	}
	c := b.Cursor()
	k, first := c.Seek(partKey(id, 0))
	if !isPart(k, id) {
		return nil
	}
	k, v := c.Next()
	if !isPart(k, id) {
		return first // one part: no copy
	}
	record := append(append(make([]byte, 0, 4*partSize), first...), v...)
	for k, v = c.Next(); isPart(k, id); k, v = c.Next() {
		record = append(record, v...)
	}
	return record
}

// isPart says whether k is the key of one of record id's parts.
func isPart(k []byte, id uint64) bool {
	return len(k) == 12 && binary.BigEndian.Uint64(k) == id
}

// deleteRecord deletes record id, whole or in parts.
func deleteRecord(b *bolt.Bucket, id uint64) error {
	if err := b.Delete(idKey(id)); err != nil {
		return err
	}
	for n := 0; ; n++ {
		k := partKey(id, n)
		if b.Get(k) == nil {
			return nil
		}
		if err := b.Delete(k); err != nil {
			return err
		}
	}
}

// lastRecordID returns the highest snapshot ID with a record, or 0.
func lastRecordID(b *bolt.Bucket) uint64 {
	k, _ := b.Cursor().Last()
	if len(k) < 8 {
		return 0
	}
	return binary.BigEndian.Uint64(k)
}

// forEachRecord calls fn with each record, in ID order.
func forEachRecord(b *bolt.Bucket, fn func(id uint64, record []byte) error) error {
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		if len(k) < 8 {
			return fmt.Errorf("record key %x is not a snapshot ID", k)
		}
		id := binary.BigEndian.Uint64(k)
		if err := fn(id, getRecord(b, id)); err != nil || id == math.MaxUint64 {
			return err
		}
		k, _ = c.Seek(idKey(id + 1))
	}
	return nil
}
