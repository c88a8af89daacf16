package report

import (
	"fmt"
	"math"
	"time"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
)

// Chart geometry, in SVG user units.
const (
	chartWidth  = 900.0
	chartHeight = 320.0
	chartLeft   = 60.0 // room for the fd counts
	chartRight  = 40.0 // room for the last time
	chartTop    = 15.0
	chartBottom = 50.0 // room for times and snapshot IDs
	// maxSuspects is how many processes the chart draws: more lines than
	// colours tell apart is noise.
	maxSuspects = 8
)

type chartPoint struct{ X, Y, Title string }

type chartSeries struct {
	Colour int // index into the page's palette
	Label  string
	Points string // polyline "x,y x,y ..."
	Marks  []chartPoint
}

type chartTick struct{ Pos, Label, Sub string }

type fdChart struct {
	Series         []chartSeries
	XTicks, YTicks []chartTick
	PlotBottom     string
	PlotLeft       string
	PlotRight      string
}

// processKey is a process's identity at the coarsest resolution any
// collector records, so that it holds across snapshots of both collectors.
func processKey(pid uint32, start uint64) snapshot.ProcessKey {
	return snapshot.ProcessKey{PID: pid, StartTime: snapshot.TruncStart(start, snapshot.ProcfsStartResolution)}
}

// buildChart counts, in every snapshot of the range, the open fds of the
// processes that diff found leaking (in its order: most growth first).
func buildChart(snaps []*snapshot.Snapshot, leaks []diff.FDLeakFinding) fdChart {
	var c fdChart
	var suspects []diff.FDLeakFinding
	seen := map[snapshot.ProcessKey]bool{}
	for _, f := range leaks {
		k := processKey(f.PID, f.ProcessStart)
		if !seen[k] && len(suspects) < maxSuspects {
			seen[k] = true
			suspects = append(suspects, f)
		}
	}
	if len(suspects) == 0 || len(snaps) == 0 {
		return c
	}

	// fds[i][k]: fds of process k in snapshot i; absent when not running.
	fds := make([]map[snapshot.ProcessKey]int, len(snaps))
	maxFDs := 1
	for i, s := range snaps {
		fds[i] = map[snapshot.ProcessKey]int{}
		starts := map[uint32]uint64{}
		for _, p := range s.Processes() {
			if k := processKey(p.PID, p.StartTime); seen[k] {
				starts[p.PID] = k.StartTime
				fds[i][k] = 0
			}
		}
		for _, f := range s.Files {
			if start, ok := starts[f.PID]; ok {
				k := snapshot.ProcessKey{PID: f.PID, StartTime: start}
				fds[i][k]++
				maxFDs = max(maxFDs, fds[i][k])
			}
		}
	}

	t0 := snaps[0].Meta.Time
	span := snaps[len(snaps)-1].Meta.Time.Sub(t0)
	plotW := chartWidth - chartLeft - chartRight
	plotH := chartHeight - chartTop - chartBottom
	// x by time; by position when the times do not spread (or go back).
	xOf := func(i int) float64 {
		frac := 0.5
		if span > 0 {
			frac = float64(snaps[i].Meta.Time.Sub(t0)) / float64(span)
		} else if len(snaps) > 1 {
			frac = float64(i) / float64(len(snaps)-1)
		}
		return chartLeft + math.Max(0, math.Min(1, frac))*plotW
	}
	top := niceCeil(maxFDs)
	yOf := func(n int) float64 { return chartTop + plotH*(1-float64(n)/float64(top)) }

	for si, f := range suspects {
		k := processKey(f.PID, f.ProcessStart)
		series := chartSeries{Colour: si, Label: fmt.Sprintf("pid %d %s", f.PID, output.Escape(f.Comm))}
		for i, s := range snaps {
			n, ok := fds[i][k]
			if !ok {
				continue
			}
			x, y := num(xOf(i)), num(yOf(n))
			if series.Points != "" {
				series.Points += " "
			}
			series.Points += x + "," + y
			series.Marks = append(series.Marks, chartPoint{X: x, Y: y,
				Title: fmt.Sprintf("pid %d %s: %d fds in snapshot %d (%s)", f.PID, output.Escape(f.Comm), n, s.ID, s.Meta.Time.Local().Format(time.DateTime))})
		}
		c.Series = append(c.Series, series)
	}

	step := max(1, (len(snaps)+9)/10) // at most about ten labelled snapshots
	for i := 0; i < len(snaps); i += step {
		s := snaps[i]
		c.XTicks = append(c.XTicks, chartTick{Pos: num(xOf(i)), Label: s.Meta.Time.Local().Format("15:04:05"), Sub: fmt.Sprintf("#%d", s.ID)})
	}
	if last := len(snaps) - 1; last%step != 0 {
		s := snaps[last]
		c.XTicks = append(c.XTicks, chartTick{Pos: num(xOf(last)), Label: s.Meta.Time.Local().Format("15:04:05"), Sub: fmt.Sprintf("#%d", s.ID)})
	}
	for i := 0; i <= 4; i++ {
		n := top * i / 4
		c.YTicks = append(c.YTicks, chartTick{Pos: num(yOf(n)), Label: fmt.Sprint(n)})
	}
	c.PlotBottom, c.PlotLeft, c.PlotRight = num(chartTop+plotH), num(chartLeft), num(chartWidth-chartRight)
	return c
}

// niceCeil rounds n up to four steps of 1, 2 or 5 times a power of ten:
// 4, 8, 20, 40, 80, 200, ...
func niceCeil(n int) int {
	for p := 1; ; p *= 10 {
		for _, m := range []int{1, 2, 5} {
			if v := 4 * m * p; v >= n {
				return v
			}
		}
	}
}
