package store

import (
	"encoding/binary"
	"errors"
	"math"
	"net/netip"
	"slices"

	"github.com/itersnap/itersnap/snapshot"
)

// Version 2 chunks (encChunk) end their body with the columns of what
// itersnap learned to record with sockets and containers, after the
// version 1 body, so that a chunk of either version decodes with the same
// code and a version 1 chunk reads as "nothing recorded":
//
//	body       strings | tasks | files | task extras | file extras
//	task extras  columns, one value per task: cgroup string# + 1 (0 for
//	           none), Δcgroup id, ns_pid − pid (zigzag)
//	file extras  a column of shape string# + 1 per fd (0: not a socket, or
//	           nothing known), then for the sockets whose shape has
//	           addresses, a column of local ports and one of remote ports,
//	           2 bytes big-endian each (an ephemeral port is 3 as a varint)
//	shape      a string: uvarint family, type, protocol, state, netns |
//	           local address | remote address | unix path, each of the
//	           last three as uvarint len | bytes
//
// What a socket is but its ports (its "shape") repeats across a process's
// sockets (200 connections to one database in one state are one shape), so
// it goes in the body's string table once, as do cgroup paths.

// shape is a socket without its ports, as a string-table entry.
func shape(s *snapshot.Socket) string {
	var e encoder
	for _, v := range []uint64{uint64(s.Family), uint64(s.Type), uint64(s.Protocol), uint64(s.State), uint64(s.NetNS)} {
		e.uvarint(v)
	}
	for _, a := range []netip.Addr{s.Local.Addr(), s.Remote.Addr()} {
		var b []byte
		if a.IsValid() {
			b = a.AsSlice()
		}
		e.uvarint(uint64(len(b)))
		e.buf = append(e.buf, b...)
	}
	e.string(s.Path)
	return string(e.buf)
}

// hasPorts reports whether a socket's ports are stored: when its shape
// has addresses.
func hasPorts(s *snapshot.Socket) bool { return s.Local.Addr().IsValid() || s.Remote.Addr().IsValid() }

// extraStrings numbers the strings the extras use, after the body's own,
// in ts's reused columns.
func (ts *tableScratch) extraStrings(tasks []snapshot.Task, files []snapshot.File) (cgroups, shapes []uint64) {
	cgroups = slices.Grow(ts.cgroups[:0], len(tasks))[:len(tasks)]
	for i, t := range tasks {
		cgroups[i] = 0
		if t.Cgroup != "" {
			cgroups[i] = ts.strs.ref(t.Cgroup) + 1
		}
	}
	shapes = slices.Grow(ts.shapes[:0], len(files))[:len(files)]
	for i := range files {
		shapes[i] = 0
		if so := files[i].Socket; !so.IsZero() {
			shapes[i] = ts.strs.ref(ts.shape(so)) + 1
		}
	}
	ts.cgroups, ts.shapes = cgroups, shapes
	return cgroups, shapes
}

// shape is the shape string of so, made once per Socket: the collectors
// give sockets that are alike one Socket, and a host's unbound unix
// sockets are most of its sockets. A chunk keeps its sockets' states apart
// (chunk.sockStates), as it does threads': the shape it stores has state 0.
func (ts *tableScratch) shape(so *snapshot.Socket) string {
	if s, ok := ts.shapes1[so]; ok {
		return s
	}
	c := *so
	c.State = 0
	s := shape(&c)
	if ts.shapes1 == nil {
		ts.shapes1 = map[*snapshot.Socket]string{}
	}
	ts.shapes1[so] = s
	return s
}

func encodeExtras(e *encoder, tasks []snapshot.Task, files []snapshot.File, cgroups, shapes []uint64) {
	for _, c := range cgroups {
		e.uvarint(c)
	}
	var prevID uint64
	for _, t := range tasks {
		e.varint(int64(t.CgroupID - prevID))
		prevID = t.CgroupID
	}
	for _, t := range tasks {
		e.varint(int64(t.NSPID) - int64(t.PID))
	}
	for _, ref := range shapes {
		e.uvarint(ref)
	}
	for i := range files {
		if s := files[i].Socket; !s.IsZero() && hasPorts(s) {
			e.buf = binary.BigEndian.AppendUint16(e.buf, s.Local.Port())
		}
	}
	for i := range files {
		if s := files[i].Socket; !s.IsZero() && hasPorts(s) {
			e.buf = binary.BigEndian.AppendUint16(e.buf, s.Remote.Port())
		}
	}
}

func decodeExtras(d *decoder, str func(uint64) string, tasks []snapshot.Task, files []snapshot.File) {
	for i := range tasks {
		if ref := d.uvarint(); ref != 0 {
			tasks[i].Cgroup = str(ref - 1)
		}
	}
	var prevID uint64
	for i := range tasks {
		prevID += uint64(d.varint())
		tasks[i].CgroupID = prevID
	}
	for i := range tasks {
		tasks[i].NSPID = d.delta32(tasks[i].PID)
	}
	refs := make([]uint64, len(files))
	sockets := 0
	for i := range files {
		if refs[i] = d.uvarint(); refs[i] != 0 {
			sockets++
		}
	}
	// One array for the chunk's sockets, not an allocation each.
	slab := make([]snapshot.Socket, 0, sockets)
	var ported []*snapshot.Socket
	for i, ref := range refs {
		if ref == 0 {
			continue
		}
		slab = append(slab, snapshot.Socket{})
		s := &slab[len(slab)-1]
		if err := parseShape(str(ref-1), s); err != nil {
			d.fail(err)
			return
		}
		files[i].Socket = s
		if hasPorts(s) {
			ported = append(ported, s)
		}
	}
	for _, s := range ported {
		if s.Local.Addr().IsValid() {
			s.Local = netip.AddrPortFrom(s.Local.Addr(), d.port())
		} else if d.port() != 0 {
			d.fail(errors.New("socket port without an address"))
		}
	}
	for _, s := range ported {
		if s.Remote.Addr().IsValid() {
			s.Remote = netip.AddrPortFrom(s.Remote.Addr(), d.port())
		} else if d.port() != 0 {
			d.fail(errors.New("socket port without an address"))
		}
	}
}

var errBadShape = errors.New("bad socket record")

// parseShape undoes shape; the ports are left zero.
func parseShape(b string, s *snapshot.Socket) error {
	d := decoder{buf: []byte(b)}
	s.Family, s.Type, s.Protocol = d.uint16(), d.uint16(), d.uint16()
	state := d.uvarint()
	s.NetNS = d.uint32()
	if state > math.MaxUint8 || s.Family == 0 {
		return errBadShape
	}
	s.State = uint8(state)
	for _, end := range []*netip.AddrPort{&s.Local, &s.Remote} {
		n := d.uvarint()
		if n == 0 {
			continue
		}
		if n != 4 && n != 16 || n > uint64(len(d.buf)) {
			return errBadShape
		}
		a, _ := netip.AddrFromSlice(d.buf[:n])
		d.buf = d.buf[n:]
		*end = netip.AddrPortFrom(a, 0)
	}
	s.Path = d.string()
	return d.done()
}

func (d *decoder) uint16() uint16 { return uint16(d.uvarintUpTo(math.MaxUint16)) }

func (d *decoder) port() uint16 {
	if len(d.buf) < 2 {
		d.fail(errShort)
		return 0
	}
	p := binary.BigEndian.Uint16(d.buf)
	d.buf = d.buf[2:]
	return p
}
