package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"

	bolt "go.etcd.io/bbolt"
)

// bbolt trusts its pages: it reads them through its mapping of the file, so
// a page overwritten with garbage sends it to addresses outside the file (a
// fault), into loops, or to counts of billions. Tx.Check is no exception,
// and it walks the pages in a goroutine of its own, where no recover can
// catch the fault. So before bbolt walks a file's tree, the pageWalker
// walks it with ReadAt, bounds-checked Go that trusts nothing it reads,
// from the meta page the transaction uses to every page a bucket reaches.
//
// The on-disk layout it reads is bbolt's (go.etcd.io/bbolt
// internal/common/page.go, meta.go, bucket.go), in the host's byte order:
//
//	page header, 16 bytes: id uint64, flags uint16, count uint16, overflow uint32
//	branch element, 16 bytes: pos uint32, ksize uint32, pgid uint64
//	leaf element, 16 bytes: flags uint32, pos uint32, ksize uint32, vsize uint32
//	(pos counts from the element itself; a leaf's value follows its key)
//	meta, after the header: magic, version, page size, flags (uint32 each),
//	root bucket {root pgid, sequence uint64}, freelist, pgid, txid, checksum (uint64)
//	bucket value: {root pgid, sequence uint64}, then, when root is 0, the
//	bucket's one leaf page inline
//
// bbolt writes every page at its own position and stamps it with its id, so
// a page whose header names another id, or whose flags are neither branch
// nor leaf, is not bbolt's. That is the cheap walk every Open makes: the
// header of each page in use and the elements of branch pages (a few
// hundred microseconds per thousand pages). The full walk of Check also
// checks that every leaf element lies inside its page.
const (
	pageHeaderSize = 16
	elementSize    = 16
	bucketHeader   = 16

	branchPageFlag   = 0x01
	leafPageFlag     = 0x02
	freelistPageFlag = 0x10
	noFreelist       = ^uint64(0)
	bucketLeafFlag   = 0x01

	boltMagic = 0xED0CDAED
)

// maxPageProblems bounds what one walk reports: a file of random bytes
// would otherwise give one line per page.
const maxPageProblems = 20

// pageWalker walks the page tree of one transaction's view of the file.
type pageWalker struct {
	file     io.ReaderAt
	pageSize uint64
	hwm      uint64 // the transaction's high-water mark: pages 0..hwm-1 are in use or free
	full     bool   // check every leaf's elements, not only its header
	only     []byte // when set, the one top-level bucket whose pages are walked
	seen     []bool // pages reached, by id
	head     [pageHeaderSize + 8]byte
	problems []string
	more     int // problems found past maxPageProblems
}

func (w *pageWalker) problem(format string, args ...any) {
	if len(w.problems) == maxPageProblems {
		w.more++
		return
	}
	w.problems = append(w.problems, fmt.Sprintf(format, args...))
}

// walkPages checks the pages of tx's tree in file; full also checks every
// leaf's elements (Check does, so that Tx.Check cannot fault on them).
// With only set it checks the root bucket's pages and those of the
// top-level bucket only names, and no other bucket's: what a read of that
// bucket alone goes through.
func walkPages(tx *bolt.Tx, file io.ReaderAt, pageSize int, full bool, only []byte) []string {
	w := &pageWalker{file: file, pageSize: uint64(pageSize), hwm: uint64(tx.Size()) / uint64(pageSize), full: full, only: only}
	w.seen = make([]bool, w.hwm)
	root, ok := w.meta(uint64(tx.ID()))
	if ok {
		w.tree(root, "root bucket")
	}
	if w.more > 0 {
		w.problems = append(w.problems, fmt.Sprintf("(and %d more damaged pages)", w.more))
	}
	return w.problems
}

// meta returns the root bucket's root page from the meta page of
// transaction txid (bbolt alternates between pages 0 and 1).
func (w *pageWalker) meta(txid uint64) (uint64, bool) {
	for _, id := range []uint64{0, 1} {
		b := make([]byte, pageHeaderSize+64)
		if _, err := w.file.ReadAt(b, int64(id*w.pageSize)); err != nil {
			continue
		}
		m := b[pageHeaderSize:]
		if binary.NativeEndian.Uint32(m[0:]) != boltMagic || binary.NativeEndian.Uint64(m[48:]) != txid {
			continue
		}
		if free := binary.NativeEndian.Uint64(m[32:]); free != noFreelist {
			w.freelist(free)
		}
		root := binary.NativeEndian.Uint64(m[16:])
		if root < 2 || root >= w.hwm {
			w.problem("meta page %d: root bucket at page %d, outside the %d pages in use", id, root, w.hwm)
			return 0, false
		}
		return root, true
	}
	w.problem("no meta page of transaction %d", txid)
	return 0, false
}

// freelist checks the header of the freelist page, which bbolt reads
// when it opens a file to write, and Tx.Check reads always: its count
// (0xFFFF: the count is the first uint64 after the header) must fit in it.
func (w *pageWalker) freelist(id uint64) {
	if id < 2 || id >= w.hwm {
		w.problem("freelist: page %d is outside the %d pages in use", id, w.hwm)
		return
	}
	head := w.head[:]
	if _, err := w.file.ReadAt(head, int64(id*w.pageSize)); err != nil {
		w.problem("freelist: page %d cannot be read: %v", id, err)
		return
	}
	stored, flags := binary.NativeEndian.Uint64(head[0:]), binary.NativeEndian.Uint16(head[8:])
	count, overflow := uint64(binary.NativeEndian.Uint16(head[10:])), uint64(binary.NativeEndian.Uint32(head[12:]))
	ids := uint64(0)
	if count == 0xFFFF {
		count, ids = binary.NativeEndian.Uint64(head[pageHeaderSize:]), 1
	}
	switch {
	case stored != id || flags != freelistPageFlag:
		w.problem("freelist: page %d is not a bbolt freelist page", id)
	case id+overflow >= w.hwm || count > w.hwm || pageHeaderSize+(ids+count)*8 > (1+overflow)*w.pageSize:
		w.problem("freelist: page %d lists %d pages, more than fit in it or in the file", id, count)
	default:
		for i := uint64(0); i <= overflow; i++ {
			w.seen[id+i] = true
		}
	}
}

// tree checks the subtree at page id, the root of what (a bucket's name).
func (w *pageWalker) tree(id uint64, what string) {
	if id < 2 || id >= w.hwm {
		w.problem("%s: page %d is outside the %d pages in use", what, id, w.hwm)
		return
	}
	if w.seen[id] {
		w.problem("%s: page %d is reached twice", what, id)
		return
	}
	w.seen[id] = true
	head := w.head[:pageHeaderSize]
	if _, err := w.file.ReadAt(head, int64(id*w.pageSize)); err != nil {
		w.problem("%s: page %d cannot be read: %v", what, id, err)
		return
	}
	stored := binary.NativeEndian.Uint64(head[0:])
	flags := binary.NativeEndian.Uint16(head[8:])
	overflow := uint64(binary.NativeEndian.Uint32(head[12:]))
	switch {
	case stored != id:
		w.problem("%s: page %d is not a bbolt page (its header says page %d)", what, id, stored)
		return
	case flags != branchPageFlag && flags != leafPageFlag:
		w.problem("%s: page %d is not a bbolt page (flags %#x)", what, id, flags)
		return
	case id+overflow >= w.hwm:
		w.problem("%s: page %d runs %d pages past the %d in use", what, id, overflow, w.hwm)
		return
	}
	for i := uint64(1); i <= overflow; i++ {
		w.seen[id+i] = true
	}
	// Leaves of the root bucket hold the buckets; other leaves are read
	// whole only by the full walk.
	if flags == leafPageFlag && !w.full && what != "root bucket" {
		return
	}
	page := make([]byte, (1+overflow)*w.pageSize)
	if _, err := w.file.ReadAt(page, int64(id*w.pageSize)); err != nil {
		w.problem("%s: page %d cannot be read: %v", what, id, err)
		return
	}
	w.elements(page, id, what)
}

// elements checks the elements of page (one page, or a bucket's inline
// page) and walks what they refer to.
func (w *pageWalker) elements(page []byte, id uint64, what string) {
	flags := binary.NativeEndian.Uint16(page[8:])
	count := uint64(binary.NativeEndian.Uint16(page[10:]))
	if pageHeaderSize+count*elementSize > uint64(len(page)) {
		w.problem("%s: page %d claims %d elements, more than fit in it", what, id, count)
		return
	}
	for i := range count {
		e := page[pageHeaderSize+i*elementSize:]
		at := pageHeaderSize + i*elementSize
		if flags == branchPageFlag {
			pos, ksize := uint64(binary.NativeEndian.Uint32(e[0:])), uint64(binary.NativeEndian.Uint32(e[4:]))
			if at+pos+ksize > uint64(len(page)) {
				w.problem("%s: page %d: key %d lies outside the page", what, id, i)
				return
			}
			w.tree(binary.NativeEndian.Uint64(e[8:]), what)
			continue
		}
		eflags := binary.NativeEndian.Uint32(e[0:])
		pos, ksize, vsize := uint64(binary.NativeEndian.Uint32(e[4:])), uint64(binary.NativeEndian.Uint32(e[8:])), uint64(binary.NativeEndian.Uint32(e[12:]))
		if at+pos+ksize+vsize > uint64(len(page)) {
			w.problem("%s: page %d: entry %d lies outside the page", what, id, i)
			return
		}
		if eflags&bucketLeafFlag == 0 {
			continue
		}
		if w.only != nil && what == "root bucket" && !bytes.Equal(page[at+pos:at+pos+ksize], w.only) {
			continue
		}
		name := fmt.Sprintf("bucket %q", page[at+pos:at+pos+ksize])
		value := page[at+pos+ksize : at+pos+ksize+vsize]
		if len(value) < bucketHeader {
			w.problem("%s: page %d: %s has a value of %d bytes", what, id, name, len(value))
			continue
		}
		if root := binary.NativeEndian.Uint64(value); root != 0 {
			w.tree(root, name)
			continue
		}
		inline := value[bucketHeader:]
		if len(inline) < pageHeaderSize || binary.NativeEndian.Uint16(inline[8:]) != leafPageFlag {
			w.problem("%s: page %d: %s is inline but holds no leaf", what, id, name)
			continue
		}
		w.elements(inline, id, name)
	}
}

// walkPages walks the pages of tx's view of the database file (only: see
// the walkPages function).
func (db *DB) walkPages(tx *bolt.Tx, full bool, only []byte) ([]string, error) {
	f, err := os.Open(db.path)
	if err != nil {
		return nil, newError(ErrUnreadable, err, "cannot open database %s: %v", db.path, pathErr(err))
	}
	defer f.Close()
	var file io.ReaderAt = f
	if data, unmap, err := mapFile(f, tx.Size()); err == nil {
		defer unmap()
		file = bytes.NewReader(data)
	}
	return walkPages(tx, file, db.bolt.Info().PageSize, full, only), nil
}
