package output

import (
	"encoding/json"
	"strconv"
	"time"
)

// kind is what a Value holds, and so how each format renders it.
type kind uint8

const (
	kindNone    kind = iota // the column does not apply to this record
	kindText                // a name, path, label, stack or word
	kindInt                 //
	kindUint                //
	kindFloat               //
	kindBool                //
	kindSeconds             // a duration
	kindETA                 // a time to come: a duration a person plans by
	kindTime                // a point in time
)

// Value is one cell of a record, typed so that every format renders it the
// same way:
//
//	kind      table                 CSV                  JSON
//	none      -                     (empty)              null
//	text      escaped, "" as -      cleaned              cleaned string
//	integer   123                   123                  123
//	float     2 decimals            shortest             number
//	bool      true/false            true/false           true/false
//	seconds   1h2m3s (whole s)      seconds (ms)         seconds (ms)
//	eta       2h10m (two units)     seconds (ms)         seconds (ms)
//	time      2006-01-02 15:04:05   RFC 3339 (ns)        RFC 3339 (ns) string
type Value struct {
	kind kind
	s    string
	i    int64
	u    uint64
	f    float64
	t    time.Time
}

// None is the value of a column that does not apply to a record.
func None() Value { return Value{} }

// Text is a name, path, label, stack or word.
func Text(s string) Value { return Value{kind: kindText, s: s} }

// Int is a signed integer.
func Int[I ~int | ~int32 | ~int64](i I) Value { return Value{kind: kindInt, i: int64(i)} }

// Uint is an unsigned integer.
func Uint[U ~uint | ~uint8 | ~uint16 | ~uint32 | ~uint64](u U) Value {
	return Value{kind: kindUint, u: uint64(u)}
}

// Float is a measure with a fraction.
func Float(f float64) Value { return Value{kind: kindFloat, f: f} }

// Bool is true or false.
func Bool(b bool) Value {
	if b {
		return Value{kind: kindBool, u: 1}
	}
	return Value{kind: kindBool}
}

// Seconds is a duration: seconds for machines, 1h2m3s for people.
func Seconds(d time.Duration) Value { return Value{kind: kindSeconds, i: int64(d)} }

// ETA is a time to come (until fds run out, say): seconds for machines,
// its two largest units for people ("3d4h", "2h10m", "4m10s").
func ETA(d time.Duration) Value { return Value{kind: kindETA, i: int64(d)} }

// ShortDuration renders d in its two largest units, as a table shows an
// ETA: "3d4h", "2h10m", "4m10s", "45s".
func ShortDuration(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d >= 48*time.Hour:
		d = d.Round(time.Hour)
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d" + strconv.FormatInt(int64(d%(24*time.Hour)/time.Hour), 10) + "h"
	case d >= time.Hour:
		d = d.Round(time.Minute)
		return strconv.FormatInt(int64(d/time.Hour), 10) + "h" + strconv.FormatInt(int64(d%time.Hour/time.Minute), 10) + "m"
	case d >= time.Minute:
		return strconv.FormatInt(int64(d/time.Minute), 10) + "m" + strconv.FormatInt(int64(d%time.Minute/time.Second), 10) + "s"
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}

// Time is a point in time, in its own location.
func Time(t time.Time) Value { return Value{kind: kindTime, t: t} }

// table renders v for people, before escaping is applied to text.
func (v Value) table() string {
	switch v.kind {
	case kindNone:
		return "-"
	case kindText:
		if v.s == "" {
			return "-"
		}
		return Escape(v.s)
	case kindFloat:
		return strconv.FormatFloat(v.f, 'f', 2, 64)
	case kindSeconds:
		return time.Duration(v.i).Round(time.Second).String()
	case kindETA:
		return ShortDuration(time.Duration(v.i))
	case kindTime:
		return v.t.Format(time.DateTime)
	}
	return v.plain()
}

// plain renders v for CSV: machine-readable, empty when it does not apply.
func (v Value) plain() string {
	switch v.kind {
	case kindNone:
		return ""
	case kindText:
		return Clean(v.s)
	case kindInt:
		return strconv.FormatInt(v.i, 10)
	case kindUint:
		return strconv.FormatUint(v.u, 10)
	case kindFloat:
		return strconv.FormatFloat(v.f, 'f', -1, 64)
	case kindBool:
		return strconv.FormatBool(v.u != 0)
	case kindSeconds, kindETA:
		return strconv.FormatFloat(time.Duration(v.i).Round(time.Millisecond).Seconds(), 'f', -1, 64)
	case kindTime:
		return v.t.Format(time.RFC3339Nano) // as encoding/json writes it
	}
	return ""
}

// appendJSON appends v as a JSON value.
func (v Value) appendJSON(b []byte) ([]byte, error) {
	switch v.kind {
	case kindNone:
		return append(b, "null"...), nil
	case kindText:
		s, err := json.Marshal(Clean(v.s))
		return append(b, s...), err
	case kindFloat:
		s, err := json.Marshal(v.f)
		return append(b, s...), err
	case kindTime:
		s, err := json.Marshal(v.t)
		return append(b, s...), err
	}
	return append(b, v.plain()...), nil
}
