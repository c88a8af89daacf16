package output

import (
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Format is a way of writing records.
type Format string

const (
	Table Format = "table" // aligned columns for people
	CSV   Format = "csv"   // a header row, then one record per row
	JSON  Format = "json"  // JSON lines: one object per record, keys in column order
)

// Formats lists the formats every record type can be written in.
var Formats = []Format{Table, CSV, JSON}

// Options say how to write records.
type Options struct {
	Format Format
	// Width is the terminal's width in columns: a table's wide columns are
	// cut so that each row fits it. 0 writes every cell whole (a pipe, a
	// file, --wide).
	Width int
}

// Write writes r in the format opts asks for.
func Write(w io.Writer, r Records, opts Options) error {
	switch opts.Format {
	case CSV:
		return writeCSV(w, r)
	case JSON:
		return writeJSON(w, r)
	case Table, "":
		return writeTable(w, r, opts.Width)
	}
	return fmt.Errorf("output: unknown format %q", opts.Format)
}

// WriteRecords builds the records of rows in columns and writes them.
func WriteRecords[T any](w io.Writer, columns []Column[T], rows []T, opts Options) error {
	return Write(w, Build(columns, rows), opts)
}

func writeCSV(w io.Writer, r Records) error {
	cw := csv.NewWriter(w)
	cw.Write(r.Columns())
	cells := make([]string, len(r.Headers))
	for _, row := range r.Rows {
		for i, v := range row {
			cells[i] = v.plain()
		}
		cw.Write(cells)
	}
	cw.Flush()
	return cw.Error()
}

func writeJSON(w io.Writer, r Records) error {
	var b []byte
	var err error
	for _, row := range r.Rows {
		b = append(b[:0], '{')
		for i, v := range row {
			if i > 0 {
				b = append(b, ',')
			}
			b = strconv.AppendQuote(b, r.Headers[i].Name)
			b = append(b, ':')
			if b, err = v.appendJSON(b); err != nil {
				return err
			}
		}
		b = append(b, '}', '\n')
		if _, err := w.Write(b); err != nil {
			return err
		}
	}
	return nil
}

// tablePadding is the space between a table's columns.
const tablePadding = 2

func writeTable(w io.Writer, r Records, width int) error {
	header := make([]string, len(r.Headers))
	for i, h := range r.Headers {
		header[i] = strings.ToUpper(h.Name)
	}
	cells := r.Texts()
	if width > 0 {
		fit(r.Headers, header, cells, width)
	}
	// Every cell is escaped: no tab, newline or 0xFF reaches the tabwriter
	// except the ones written here.
	tw := tabwriter.NewWriter(w, 0, 4, tablePadding, ' ', 0)
	writeLine(tw, header)
	for _, row := range cells {
		writeLine(tw, row)
	}
	return tw.Flush()
}

// writeLine writes one row of cells to a tabwriter, which keeps the whole
// table in memory until Flush: its write errors come from Flush.
func writeLine(tw *tabwriter.Writer, cells []string) {
	for i, c := range cells {
		if i > 0 {
			tw.Write([]byte{'\t'})
		}
		io.WriteString(tw, c)
	}
	tw.Write([]byte{'\n'})
}
