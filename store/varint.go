package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// encoder appends the primitives of the binary encoding: unsigned varints,
// zigzag varints for deltas that may go down, and length-prefixed strings.
type encoder struct{ buf []byte }

func (e *encoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }
func (e *encoder) varint(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }

func (e *encoder) string(s string) {
	e.uvarint(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

var errShort = errors.New("value ends early or has a bad varint")

// decoder reads what encoder wrote. The first error sticks and later reads
// return zeros, so a decode loop checks err once at the end. Nothing it
// reads can make it allocate more than the input could hold.
type decoder struct {
	buf []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uint32() uint32 { return uint32(d.uvarintUpTo(math.MaxUint32)) }

// uvarintUpTo reads a uvarint that must not exceed max (a field narrower
// than 64 bits); a larger one fails the decoder and reads as 0.
func (d *decoder) uvarintUpTo(max uint64) uint64 {
	v := d.uvarint()
	if v > max {
		d.fail(fmt.Errorf("value %d out of range (at most %d)", v, max))
		return 0
	}
	return v
}

// count reads a number of elements that each take at least one more byte,
// so a corrupt count cannot ask for a huge slice.
func (d *decoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return 0
	}
	return int(n)
}

// stringTable reads a count and that many strings, copied into one string
// whose pieces they are: a chunk's body has dozens, and one allocation each
// was much of what a walk left to collect.
func (d *decoder) stringTable() []string {
	n := d.count()
	table := d.buf
	for range n {
		if l := d.uvarint(); l > uint64(len(d.buf)) {
			d.fail(errShort)
		} else {
			d.buf = d.buf[l:]
		}
	}
	if d.err != nil {
		return nil
	}
	all := string(table[:len(table)-len(d.buf)])
	strs := make([]string, n)
	off := 0
	for i := range strs {
		l, k := binary.Uvarint(table[off:]) // read above: cannot fail
		off += k
		strs[i] = all[off : off+int(l)]
		off += int(l)
	}
	return strs
}

// string copies: the input is a bbolt value, valid only in its transaction.
func (d *decoder) string() string {
	n := d.uvarint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// done reports the sticky error, or trailing bytes the format does not have.
func (d *decoder) done() error {
	if d.err == nil && len(d.buf) != 0 {
		return errors.New("value has trailing bytes")
	}
	return d.err
}
