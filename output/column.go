package output

// Cut says whether a table may cut a column's cells to fit a terminal, and
// which end it keeps.
type Cut uint8

const (
	Whole    Cut = iota // never cut: numbers, states, short words
	KeepHead            // cut at the end: names, labels, lists of names
	KeepTail            // cut at the start: stacks keep the leaf, paths the file name
)

// Column is one column of a record type T: its name (the CSV header and
// JSON key; a table upper-cases it), whether a table may cut it, and how a
// record fills it. Columns are values of Go variables, so a misspelt column
// is a compile error, not a cell of "-".
type Column[T any] struct {
	Name string
	Cut  Cut
	Get  func(T) Value
}

// Header is a column without its accessor: what a writer needs to know.
type Header struct {
	Name string
	Cut  Cut
}

// Records is a table of values under headers, ready for any writer.
type Records struct {
	Headers []Header
	Rows    [][]Value
}

// Build lays out rows in columns.
func Build[T any](columns []Column[T], rows []T) Records {
	r := Records{Headers: make([]Header, len(columns)), Rows: make([][]Value, 0, len(rows))}
	for i, c := range columns {
		r.Headers[i] = Header{Name: c.Name, Cut: c.Cut}
	}
	for _, row := range rows {
		values := make([]Value, len(columns))
		for i, c := range columns {
			values[i] = c.Get(row)
		}
		r.Rows = append(r.Rows, values)
	}
	return r
}

// Names lists the column names in order: the CSV header.
func Names[T any](columns []Column[T]) []string {
	out := make([]string, len(columns))
	for i, c := range columns {
		out[i] = c.Name
	}
	return out
}

// Texts renders every cell as a table shows it (escaped, "-" where nothing
// applies), whole: the HTML report's tables.
func (r Records) Texts() [][]string {
	out := make([][]string, len(r.Rows))
	for i, row := range r.Rows {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = v.table()
		}
	}
	return out
}

// Columns lists the column names in order.
func (r Records) Columns() []string {
	out := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		out[i] = h.Name
	}
	return out
}
