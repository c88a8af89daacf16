package export

import (
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"io"
	"strconv"

	"github.com/itersnap/itersnap/snapshot"
)

// Profile makes a pprof profile of the kept threads of s: one sample per
// thread, of value 1 in "threads/count", its kernel stack as locations leaf
// first (pprof's order), and string labels pid, tid, comm and state. So
// `go tool pprof -top` counts threads per kernel function, -tagfocus
// 'state=D' narrows to blocked threads, -tagroot comm adds thread names as
// root frames, and -diff_base compares two snapshots.
//
// Frames are functions (offsets dropped, module suffix kept), each one
// location, in one mapping marked as already symbolized, so pprof does not
// look for a binary to symbolize them with.
func Profile(s *snapshot.Snapshot, keep Keep) *ThreadProfile {
	return &ThreadProfile{s: s, keep: keep}
}

// ThreadProfile is a snapshot's threads as a pprof profile, written by
// Write.
type ThreadProfile struct {
	s    *snapshot.Snapshot
	keep Keep
}

// The field numbers of pprof's profile.proto
// (github.com/google/pprof, proto/profile.proto), which is written here
// by hand: the pprof package's profile.Write is its only user in
// itersnap, and linking that package costs every itersnap process, take
// included, its start-up (it compiles a dozen regular expressions at
// init, ~0.35 ms). The tests read what this writes with that package.
const (
	profileSampleType  = 1  // repeated ValueType
	profileSample      = 2  // repeated Sample
	profileMapping     = 3  // repeated Mapping
	profileLocation    = 4  // repeated Location
	profileFunction    = 5  // repeated Function
	profileStringTable = 6  // repeated string
	profileTimeNanos   = 9  // int64
	profilePeriodType  = 11 // ValueType
	profilePeriod      = 12 // int64
	profileComment     = 13 // repeated int64 (string index)

	valueTypeType = 1 // int64 (string index)
	valueTypeUnit = 2

	sampleLocationID = 1 // repeated uint64, packed
	sampleValue      = 2 // repeated int64, packed
	sampleLabel      = 3 // repeated Label

	labelKey = 1 // int64 (string index)
	labelStr = 2

	mappingID           = 1
	mappingFilename     = 5 // int64 (string index)
	mappingHasFunctions = 7 // bool

	locationID        = 1
	locationMappingID = 2
	locationLine      = 4 // repeated Line

	lineFunctionID = 1

	functionID         = 1
	functionName       = 2 // int64 (string index)
	functionSystemName = 3
)

// Write writes the profile gzipped, as pprof's own files are.
func (p *ThreadProfile) Write(w io.Writer) error {
	zw := gzip.NewWriter(w)
	if _, err := zw.Write(p.encode()); err != nil {
		return err
	}
	return zw.Close()
}

// encode is the profile message. Every kernel function is one function
// and one location of the same ID, in the order first met.
func (p *ThreadProfile) encode() []byte {
	s := p.s
	m := s.Meta
	var strs protoStrings
	strs.index("") // string 0 is "", by the format's rule
	var msg, sub, line protoMessage

	valueType := func(field int, typ, unit string) {
		sub.reset()
		sub.int(valueTypeType, strs.index(typ))
		sub.int(valueTypeUnit, strs.index(unit))
		msg.bytes(field, sub.b)
	}
	valueType(profileSampleType, "threads", "count")

	functions := map[string]uint64{}
	var names []string // by ID - 1
	function := func(name string) uint64 {
		id, ok := functions[name]
		if !ok {
			id = uint64(len(names) + 1)
			functions[name] = id
			names = append(names, name)
		}
		return id
	}
	// One list of location IDs per distinct stack: threads share stacks.
	stacks := make([][]uint64, len(s.Stacks))
	var locs []uint64
	label := func(key, value string) {
		line.reset()
		line.int(labelKey, strs.index(key))
		line.int(labelStr, strs.index(value))
		sub.bytes(sampleLabel, line.b)
	}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if p.keep != nil && !p.keep(t) {
			continue
		}
		locs = nil
		if st := t.Stack; st >= 0 && int(st) < len(s.Stacks) {
			if stacks[st] == nil {
				for _, frame := range s.Stacks[st] { // already leaf first
					stacks[st] = append(stacks[st], function(snapshot.Function(frame)))
				}
			}
			locs = stacks[st]
		}
		sub.reset()
		sub.packed(sampleLocationID, locs)
		sub.packed(sampleValue, []uint64{1})
		label("pid", strconv.FormatUint(uint64(t.PID), 10))
		label("tid", strconv.FormatUint(uint64(t.TID), 10))
		label("comm", t.Comm)
		label("state", string(t.StateLetter()))
		msg.bytes(profileSample, sub.b)
	}

	sub.reset()
	sub.uint(mappingID, 1)
	sub.int(mappingFilename, strs.index("[kernel.kallsyms]"))
	sub.uint(mappingHasFunctions, 1)
	msg.bytes(profileMapping, sub.b)
	for i := range names {
		id := uint64(i + 1)
		line.reset()
		line.uint(lineFunctionID, id)
		sub.reset()
		sub.uint(locationID, id)
		sub.uint(locationMappingID, 1)
		sub.bytes(locationLine, line.b)
		msg.bytes(profileLocation, sub.b)
	}
	for i, name := range names {
		sub.reset()
		sub.uint(functionID, uint64(i+1))
		sub.int(functionName, strs.index(name))
		sub.int(functionSystemName, strs.index(name))
		msg.bytes(profileFunction, sub.b)
	}

	msg.int(profileTimeNanos, m.Time.UnixNano())
	valueType(profilePeriodType, "threads", "count")
	msg.int(profilePeriod, 1)
	msg.int(profileComment, strs.index(fmt.Sprintf("itersnap snapshot %d of host %s, kernel %s, taken %s by the %s collector",
		s.ID, m.Hostname, m.Kernel, m.Time.UTC().Format("2006-01-02 15:04:05 UTC"), m.Collector)))
	for _, str := range strs.list {
		msg.string(profileStringTable, str)
	}
	return msg.b
}

// protoStrings is a profile's string table: each string once, by index.
type protoStrings struct {
	ids  map[string]int64
	list []string
}

func (t *protoStrings) index(s string) int64 {
	if t.ids == nil {
		t.ids = map[string]int64{}
	}
	id, ok := t.ids[s]
	if !ok {
		id = int64(len(t.list))
		t.ids[s] = id
		t.list = append(t.list, s)
	}
	return id
}

// protoMessage appends protobuf fields (protobuf's encoding guide: a key
// of field number << 3 | wire type, then a varint, or a length and bytes).
// Zero values are left out, as proto3 does.
type protoMessage struct{ b []byte }

const (
	wireVarint = 0
	wireBytes  = 2
)

func (m *protoMessage) reset() { m.b = m.b[:0] }

func (m *protoMessage) key(field, wire int) {
	m.b = binary.AppendUvarint(m.b, uint64(field)<<3|uint64(wire))
}

func (m *protoMessage) uint(field int, v uint64) {
	if v != 0 {
		m.key(field, wireVarint)
		m.b = binary.AppendUvarint(m.b, v)
	}
}

// int writes an int64 as protobuf does: negative values as ten bytes.
func (m *protoMessage) int(field int, v int64) { m.uint(field, uint64(v)) }

func (m *protoMessage) bytes(field int, b []byte) {
	m.key(field, wireBytes)
	m.b = binary.AppendUvarint(m.b, uint64(len(b)))
	m.b = append(m.b, b...)
}

func (m *protoMessage) string(field int, s string) {
	m.key(field, wireBytes)
	m.b = binary.AppendUvarint(m.b, uint64(len(s)))
	m.b = append(m.b, s...)
}

// packed writes repeated varints as one packed field.
func (m *protoMessage) packed(field int, vs []uint64) {
	if len(vs) == 0 {
		return
	}
	n := 0
	for _, v := range vs {
		n += uvarintLen(v)
	}
	m.key(field, wireBytes)
	m.b = binary.AppendUvarint(m.b, uint64(n))
	for _, v := range vs {
		m.b = binary.AppendUvarint(m.b, v)
	}
}

func uvarintLen(v uint64) int {
	n := 1
	for ; v >= 0x80; v >>= 7 {
		n++
	}
	return n
}
