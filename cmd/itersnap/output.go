package main

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Output formats. Every command that writes records goes through records.write,
// so a column means the same in a table, a CSV file and a JSON line.
const (
	formatTable = "table"
	formatCSV   = "csv"
	formatJSON  = "json"
)

var formats = []string{formatTable, formatCSV, formatJSON}

func checkFormat(f string) error {
	for _, ok := range formats {
		if f == ok {
			return nil
		}
	}
	return usagef("unknown --format %q: want %s", f, strings.Join(formats, ", "))
}

// records is a table of typed values with named columns.
type records struct {
	columns []string
	rows    [][]any // string, integer, float64, bool, or nil for "does not apply"
}

func (r *records) add(row ...any) { r.rows = append(r.rows, row) }

// write renders r as an aligned table, CSV with a header row, or JSON lines
// (one object per record, keys in column order).
func (r records) write(w io.Writer, format string) error {
	switch format {
	case formatCSV:
		cw := csv.NewWriter(w)
		cw.Write(r.columns)
		for _, row := range r.rows {
			cells := make([]string, len(row))
			for i, v := range row {
				cells[i] = cell(v)
			}
			cw.Write(cells)
		}
		cw.Flush()
		return cw.Error()
	case formatJSON:
		var b []byte
		for _, row := range r.rows {
			b = append(b[:0], '{')
			for i, v := range row {
				if i > 0 {
					b = append(b, ',')
				}
				b = strconv.AppendQuote(b, r.columns[i])
				b = append(b, ':')
				v, err := json.Marshal(v)
				if err != nil {
					return err
				}
				b = append(b, v...)
			}
			b = append(b, '}', '\n')
			if _, err := w.Write(b); err != nil {
				return err
			}
		}
		return nil
	default:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, strings.ToUpper(strings.Join(r.columns, "\t")))
		for _, row := range r.rows {
			for i, v := range row {
				if i > 0 {
					tw.Write([]byte{'\t'})
				}
				io.WriteString(tw, tableCell(v))
			}
			tw.Write([]byte{'\n'})
		}
		return tw.Flush()
	}
}

// cell renders a value for CSV: plain, machine-readable.
func cell(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64)
	case time.Time:
		return v.Format(time.RFC3339)
	default:
		return fmt.Sprint(v)
	}
}

// tableCell renders a value for people: empty strings show as "-" so columns
// stay aligned, and tabs in names cannot break the table.
func tableCell(v any) string {
	switch v := v.(type) {
	case nil:
		return "-"
	case interface{ Human() string }:
		return v.Human()
	case string:
		if v == "" {
			return "-"
		}
		return strings.ReplaceAll(v, "\t", " ")
	case float64:
		return strconv.FormatFloat(v, 'f', 2, 64)
	case time.Time:
		return v.Format("2006-01-02 15:04:05")
	default:
		return fmt.Sprint(v)
	}
}

// withOutput runs fn with where a command writes its records: stdout, or
// with -o FILE a temporary file beside FILE, renamed into place only when fn
// succeeds, so a reader never sees half a report.
func withOutput(path string, stdout io.Writer, fn func(w io.Writer) error) error {
	if path == "" || path == "-" {
		return fn(stdout)
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		// Name the file the user asked for, not the temporary one.
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	defer os.Remove(f.Name()) // a no-op once renamed
	if err := fn(f); err != nil {
		f.Close()
		return err
	}
	err = f.Close()
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	return nil
}
