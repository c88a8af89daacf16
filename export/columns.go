package export

import (
	"reflect"
	"time"
	"unsafe"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress"
	"github.com/parquet-go/parquet-go/encoding"

	"github.com/itersnap/itersnap/output"
)

// column is one typed Parquet column of a table whose rows are R: its name
// (the CSV's), its Parquet type, and how to read its value from a row. A
// table is a list of columns, in order; adding a column is adding one line
// to the list (tables.go). The constructors below pair each Parquet type
// with the Go type its getter returns, so a column cannot be declared as
// one type and filled with another.
type column[R any] struct {
	name     string
	node     parquet.Node
	repeated bool                                  // a list: values comes from list
	value    func(r *R) (v parquet.Value, ok bool) // ok false is null
	list     func(r *R) []string
}

// integer is a BIGINT column (Parquet INT64).
func integer[R any](name string, get func(*R) int64) column[R] {
	return column[R]{name: name, node: parquet.Int(64), value: func(r *R) (parquet.Value, bool) {
		return parquet.Int64Value(get(r)), true
	}}
}

// unsigned is a UBIGINT column (Parquet INT64 with the unsigned logical
// type), for values that may use all 64 bits: inodes, RLIMIT_INFINITY.
func unsigned[R any](name string, get func(*R) uint64) column[R] {
	return column[R]{name: name, node: parquet.Uint(64), value: func(r *R) (parquet.Value, bool) {
		return parquet.Int64Value(int64(get(r))), true
	}}
}

// optInteger is an integer column that is null where ok is false (the
// column does not apply to the row, or the value is unknown).
func optInteger[R any](name string, get func(*R) (int64, bool)) column[R] {
	return column[R]{name: name, node: parquet.Optional(parquet.Int(64)), value: func(r *R) (parquet.Value, bool) {
		v, ok := get(r)
		return parquet.Int64Value(v), ok
	}}
}

// optUnsigned is unsigned, null where ok is false.
func optUnsigned[R any](name string, get func(*R) (uint64, bool)) column[R] {
	return column[R]{name: name, node: parquet.Optional(parquet.Uint(64)), value: func(r *R) (parquet.Value, bool) {
		v, ok := get(r)
		return parquet.Int64Value(int64(v)), ok
	}}
}

// optReal is a DOUBLE column, null where ok is false.
func optReal[R any](name string, get func(*R) (float64, bool)) column[R] {
	return column[R]{name: name, node: parquet.Optional(parquet.Leaf(parquet.DoubleType)), value: func(r *R) (parquet.Value, bool) {
		v, ok := get(r)
		return parquet.DoubleValue(v), ok
	}}
}

// optBoolean is a BOOLEAN column, null where ok is false.
func optBoolean[R any](name string, get func(*R) (bool, bool)) column[R] {
	return column[R]{name: name, node: parquet.Optional(parquet.Leaf(parquet.BooleanType)), value: func(r *R) (parquet.Value, bool) {
		v, ok := get(r)
		return parquet.BooleanValue(v), ok
	}}
}

// text is a VARCHAR column (Parquet BYTE_ARRAY, STRING logical type),
// dictionary-encoded: names, kinds and paths repeat from row to row.
// Parquet strings must be UTF-8, so invalid bytes are written \xHH, as in
// CSV and JSON (output.Clean).
func text[R any](name string, get func(*R) string) column[R] {
	node := parquet.Encoded(parquet.String(), &parquet.RLEDictionary)
	return column[R]{name: name, node: node, value: func(r *R) (parquet.Value, bool) {
		return stringValue(output.Clean(get(r))), true
	}}
}

// optText is text, null where ok is false.
func optText[R any](name string, get func(*R) (string, bool)) column[R] {
	node := parquet.Optional(parquet.Encoded(parquet.String(), &parquet.RLEDictionary))
	return column[R]{name: name, node: node, value: func(r *R) (parquet.Value, bool) {
		v, ok := get(r)
		return stringValue(output.Clean(v)), ok
	}}
}

// timestamp is a TIMESTAMP column (microseconds, UTC): what DuckDB,
// ClickHouse (DateTime64(6)), Spark and Trino all read as a time.
func timestamp[R any](name string, get func(*R) time.Time) column[R] {
	return column[R]{name: name, node: parquet.Timestamp(parquet.Microsecond), value: func(r *R) (parquet.Value, bool) {
		return parquet.Int64Value(get(r).UnixMicro()), true
	}}
}

// texts is a list of strings (a repeated STRING field, which engines read
// as VARCHAR[] / Array(String)).
func texts[R any](name string, get func(*R) []string) column[R] {
	node := parquet.Repeated(parquet.Encoded(parquet.String(), &parquet.RLEDictionary))
	return column[R]{name: name, node: node, repeated: true, list: get}
}

// table is a Parquet schema and the rows written with it.
type table[R any] struct {
	name    string
	columns []column[R]
	schema  *parquet.Schema
}

func newTable[R any](name string, columns ...column[R]) *table[R] {
	fields := make([]parquet.Field, len(columns))
	for i, c := range columns {
		fields[i] = namedField{Node: c.node, name: c.name}
	}
	return &table[R]{name: name, columns: columns, schema: parquet.NewSchema(name, orderedGroup(fields))}
}

// Columns returns the table's column names, in order.
func (t *table[R]) Columns() []string {
	names := make([]string, len(t.columns))
	for i, c := range t.columns {
		names[i] = c.name
	}
	return names
}

// row appends r's values to buf as one Parquet row. Every column is a leaf
// of the root, so column i is leaf i; definition level 1 marks a present
// value of an optional or repeated column, repetition level 1 a list's
// later elements.
func (t *table[R]) row(buf parquet.Row, r *R) parquet.Row {
	for i, c := range t.columns {
		if c.repeated {
			items := c.list(r)
			if len(items) == 0 {
				buf = append(buf, parquet.NullValue().Level(0, 0, i))
			}
			for j, s := range items {
				buf = append(buf, stringValue(output.Clean(s)).Level(min(j, 1), 1, i))
			}
			continue
		}
		v, ok := c.value(r)
		def := 0
		switch {
		case !ok:
			v = parquet.NullValue()
		case c.node.Optional():
			def = 1
		}
		buf = append(buf, v.Level(0, def, i))
	}
	return buf
}

// stringValue is s as a BYTE_ARRAY value without copying it, as
// parquet.ValueOf does for a string (value.go, makeValueString): the
// writer copies values into its own buffers, and strings never change.
func stringValue(s string) parquet.Value {
	return parquet.ByteArrayValue(unsafe.Slice(unsafe.StringData(s), len(s)))
}

// orderedGroup is a Parquet group whose fields keep the order they were
// given in. parquet.Group is a map and sorts its fields by name
// (parquet-go's node.go, Group.Fields); the CSV's column order is kept
// here so that SELECT * reads like the CSV.
type orderedGroup []parquet.Field

func (g orderedGroup) ID() int                     { return 0 }
func (g orderedGroup) String() string              { return parquet.Group{}.String() }
func (g orderedGroup) Type() parquet.Type          { return parquet.Group{}.Type() }
func (g orderedGroup) Optional() bool              { return false }
func (g orderedGroup) Repeated() bool              { return false }
func (g orderedGroup) Required() bool              { return true }
func (g orderedGroup) Leaf() bool                  { return false }
func (g orderedGroup) Fields() []parquet.Field     { return g }
func (g orderedGroup) Encoding() encoding.Encoding { return nil }
func (g orderedGroup) Compression() compress.Codec { return nil }
func (g orderedGroup) GoType() reflect.Type        { return reflect.TypeOf(map[string]any{}) }

// namedField is a column of an orderedGroup. Rows are built by table.row,
// never by reflection, so Value is not used.
type namedField struct {
	parquet.Node
	name string
}

func (f namedField) Name() string                           { return f.name }
func (f namedField) Value(base reflect.Value) reflect.Value { return reflect.Value{} }
