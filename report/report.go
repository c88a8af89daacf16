// Package report renders an incident report: one self-contained HTML file
// (no network, no external scripts or fonts, so it opens from an email
// attachment) with the diff's summary, a flame graph of every thread's
// kernel stack at B, a chart of the leak suspects' open fds across the
// range, a table and a CSV download per kind of finding, and the snapshot
// list.
//
// Graphics are SVG written from Go: a flame graph is rectangles and a line
// chart is polylines, and writing them here keeps the file small, keeps
// every byte of snapshot data behind html/template's escaping, and ships no
// JavaScript library. The only script is the flame graph's search and zoom.
package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
)

// MaxRows is how many findings of one kind the page lists; the embedded CSV
// has them all.
const MaxRows = 500

// Input is what a report shows.
type Input struct {
	// Heads is the range in ID order, A first, B last: the snapshots'
	// metadata.
	Heads []diff.Head
	// B is the last snapshot, whole: the flame graph draws its threads.
	B *snapshot.Snapshot
	// Diff is their comparison, made with Options.
	Diff    *diff.Report
	Options diff.Options
}

// Table is rows of text under named columns, as a table format shows them
// (names escaped by package output's rule; html/template then escapes
// HTML).
type Table struct {
	Columns []string
	Rows    [][]string
}

// Findings is every finding of one kind.
type Findings struct {
	Kind diff.Kind
	Table
	// CSV is what `itersnap diff A B --only KIND --format csv` writes; the
	// page embeds it as a download.
	CSV []byte
}

// Layout is the report's tables, built by package output with the same
// columns as `itersnap list` and `itersnap diff`, so the report and the
// commands never disagree.
type Layout struct {
	Snapshots Table
	Summary   output.Summary
	Findings  []Findings
}

// Build lays out the tables of in.
func Build(in Input) (Layout, error) {
	var l Layout
	// The list's columns read only ID and Meta.
	listed := make([]*snapshot.Snapshot, len(in.Heads))
	for i, h := range in.Heads {
		listed[i] = &snapshot.Snapshot{ID: h.ID, Meta: h.Meta}
	}
	l.Snapshots = tableOf(output.Build(output.SnapshotColumns, listed))
	l.Summary = output.Summarize(in.Diff, in.Options)
	all := output.Findings(in.Diff)
	for _, k := range diff.AllKinds {
		rows := output.OfKind(all, k)
		var csv bytes.Buffer
		if err := output.WriteRecords(&csv, output.FindingColumns, rows, output.Options{Format: output.CSV}); err != nil {
			return l, err
		}
		l.Findings = append(l.Findings, Findings{
			Kind:  k,
			Table: tableOf(output.Build(output.KindColumns[k], rows)),
			CSV:   csv.Bytes(),
		})
	}
	return l, nil
}

func tableOf(r output.Records) Table { return Table{Columns: r.Columns(), Rows: r.Texts()} }

var (
	//go:embed assets/page.html.tmpl
	pageTemplate string
	//go:embed assets/style.css
	styleCSS string
	//go:embed assets/flame.js
	flameJS string

	// Parsed on first use, not at start-up: every itersnap process
	// (a take from cron too) would pay for it.
	pageTmpl = sync.OnceValue(func() *template.Template {
		return template.Must(template.New("page").Parse(pageTemplate))
	})
)

type page struct {
	Hosts, Kernels, From, To, Span string
	Zone                           string
	A, B                           uint64
	Count                          int
	Snapshots                      tableView
	Summary                        []output.KindCount
	SummaryLines, Notes            []string
	Flame                          flameGraph
	Chart                          fdChart
	Findings                       []findingsView
	CSS                            template.CSS
	JS                             template.JS
}

type tableView struct {
	Columns []string
	Rows    [][]cellView
}

type findingsView struct {
	Kind diff.Kind
	tableView
	Total   int
	More    int
	CSVName string
	CSVURL  template.URL
}

type cellView struct{ Class, Text string }

// Render writes the report for in as one HTML page.
func Render(w io.Writer, in Input) error {
	if len(in.Heads) == 0 || in.B == nil || in.Diff == nil {
		return fmt.Errorf("report: no snapshots")
	}
	l, err := Build(in)
	if err != nil {
		return fmt.Errorf("report: %w", err)
	}
	return render(w, in, l)
}

// render writes the page of in laid out as l.
func render(w io.Writer, in Input, l Layout) error {
	a, b := in.Heads[0], in.Heads[len(in.Heads)-1]
	notes := make([]string, len(in.Diff.Notes))
	for i, n := range in.Diff.Notes {
		notes[i] = output.Escape(n)
	}
	p := page{
		Hosts:        distinct(in.Heads, func(h diff.Head) string { return h.Meta.Hostname }),
		Kernels:      distinct(in.Heads, func(h diff.Head) string { return h.Meta.Kernel }),
		From:         a.Meta.Time.Local().Format(time.DateTime),
		To:           b.Meta.Time.Local().Format(time.DateTime),
		Zone:         b.Meta.Time.Local().Format("MST"),
		Count:        len(in.Heads),
		Span:         b.Meta.Time.Sub(a.Meta.Time).Round(time.Second).String(),
		A:            a.ID,
		B:            b.ID,
		Summary:      l.Summary.Counts,
		SummaryLines: l.Summary.Lines,
		Notes:        notes,
		Flame:        buildFlame(in.B, in.Diff.Stuck),
		Chart:        buildChart(in.Heads, in.Diff.FDSeries),
		CSS:          template.CSS(styleCSS),
		JS:           template.JS(flameJS),
	}
	p.Snapshots = viewOf(l.Snapshots)
	for _, f := range l.Findings {
		p.Findings = append(p.Findings, findingsOf(f, a.ID, b.ID))
	}
	// Rendered into memory first: a template error leaves no half page.
	var buf bytes.Buffer
	buf.Grow(1 << 20)
	if err := pageTmpl().Execute(&buf, p); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	_, err := w.Write(buf.Bytes())
	return err
}

func findingsOf(f Findings, a, b uint64) findingsView {
	v := findingsView{
		Kind:    f.Kind,
		Total:   len(f.Rows),
		CSVName: fmt.Sprintf("itersnap-%d-%d-%s.csv", a, b, f.Kind),
		// base64 holds only [A-Za-z0-9+/=]: nothing in it can end the
		// attribute, whatever the names and paths in the CSV.
		CSVURL: template.URL("data:text/csv;charset=utf-8;base64," + base64.StdEncoding.EncodeToString(f.CSV)),
	}
	t := f.Table
	if len(t.Rows) > MaxRows {
		v.More = len(t.Rows) - MaxRows
		t.Rows = t.Rows[:MaxRows]
	}
	v.tableView = viewOf(t)
	return v
}

func viewOf(t Table) tableView {
	v := tableView{Columns: t.Columns}
	for _, row := range t.Rows {
		cells := make([]cellView, len(row))
		for i, text := range row {
			cells[i] = cellView{Class: columnClass(t.Columns[i]), Text: text}
		}
		v.Rows = append(v.Rows, cells)
	}
	return v
}

func columnClass(column string) string {
	switch column {
	case "stack":
		return "stack"
	case "id", "threads", "processes", "fds", "duration", "pid", "tid", "fds_a", "fds_b", "new_fds", "growth", "growth_per_hour", "samples",
		"process_fds", "limit", "limit_used", "switches_a", "switches_b":
		return "num"
	}
	return ""
}

// distinct joins the different values of one field across snapshots.
func distinct(heads []diff.Head, field func(diff.Head) string) string {
	var out []string
	for _, s := range heads {
		if v := output.Escape(field(s)); !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return strings.Join(out, ", ")
}
