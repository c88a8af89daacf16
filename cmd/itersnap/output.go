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
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// Output formats. Every command that writes records goes through records.write,
// so a column means the same in a table, a CSV file and a JSON line.
const (
	formatTable = "table"
	formatCSV   = "csv"
	formatJSON  = "json"

	// Exports for other tools (package export): show's folded stacks and
	// pprof profile, diff's two-count folded stacks.
	formatFolded     = "folded"
	formatPprof      = "pprof"
	formatFoldedDiff = "folded-diff"
)

var formats = []string{formatTable, formatCSV, formatJSON}

// formatsAnnotation lists, in a command's Annotations, the formats it takes
// besides table, csv and json; "none" when it takes no --format at all.
const formatsAnnotation = "itersnap/formats"

// checkFormat checks --format against what cmd writes. An export format
// given to a command that cannot write it is a usage error that says which
// commands can.
func checkFormat(cmd *cobra.Command, f string) error {
	if !cmd.Flags().Changed("format") {
		return nil // the default, table, is every command's
	}
	extra := cmd.Annotations[formatsAnnotation]
	if extra == "none" {
		return usagef("%s takes no --format", cmd.Name())
	}
	allowed := append(slices.Clone(formats), strings.Fields(extra)...)
	if slices.Contains(allowed, f) {
		return nil
	}
	switch f {
	case formatFolded, formatPprof:
		return usagef("--format %s is for show, not %s: want %s", f, cmd.Name(), strings.Join(allowed, ", "))
	case formatFoldedDiff:
		return usagef("--format %s is for diff, not %s: want %s", f, cmd.Name(), strings.Join(allowed, ", "))
	}
	return usagef("unknown --format %q: want %s", f, strings.Join(allowed, ", "))
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

// texts renders every row as a table shows it, for the HTML report.
func (r records) texts() [][]string {
	out := make([][]string, len(r.rows))
	for i, row := range r.rows {
		out[i] = make([]string, len(row))
		for j, v := range row {
			out[i][j] = tableCell(v)
		}
	}
	return out
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

// toStdout reports whether -o names stdout.
func toStdout(path string) bool { return path == "" || path == "-" }

// isTerminal reports whether w is a terminal, where binary output (a pprof
// profile) would only garble the screen.
func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	if !ok {
		return false
	}
	return term.IsTerminal(int(f.Fd()))
}

// withOutput runs fn with where a command writes its records: stdout, or
// with -o FILE a temporary file beside FILE, renamed into place only when fn
// succeeds, so a reader never sees half a report.
func withOutput(path string, stdout io.Writer, fn func(w io.Writer) error) error {
	if toStdout(path) {
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
