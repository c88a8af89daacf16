package report

import (
	"fmt"
	"math"
	"time"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
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

// buildChart draws the open fds, in every snapshot of the range, of the
// processes diff found leaking (in its order: most urgent first), as
// diff's walk counted them (Report.FDSeries): the chart and the findings
// cannot disagree on who a process is.
func buildChart(heads []diff.Head, series []diff.FDSeries) fdChart {
	var c fdChart
	if len(series) > maxSuspects {
		series = series[:maxSuspects]
	}
	if len(series) == 0 || len(heads) == 0 {
		return c
	}
	maxFDs := 1
	for _, s := range series {
		for _, n := range s.FDs {
			maxFDs = max(maxFDs, n)
		}
	}

	t0 := heads[0].Meta.Time
	span := heads[len(heads)-1].Meta.Time.Sub(t0)
	plotW := chartWidth - chartLeft - chartRight
	plotH := chartHeight - chartTop - chartBottom
	// x by time; by position when the times do not spread (or go back).
	xOf := func(i int) float64 {
		frac := 0.5
		if span > 0 {
			frac = float64(heads[i].Meta.Time.Sub(t0)) / float64(span)
		} else if len(heads) > 1 {
			frac = float64(i) / float64(len(heads)-1)
		}
		return chartLeft + math.Max(0, math.Min(1, frac))*plotW
	}
	top := niceCeil(maxFDs)
	yOf := func(n int) float64 { return chartTop + plotH*(1-float64(n)/float64(top)) }

	for si, f := range series {
		line := chartSeries{Colour: si, Label: fmt.Sprintf("pid %d %s", f.PID, output.Escape(f.Comm))}
		for i, s := range heads {
			if i >= len(f.FDs) || f.FDs[i] < 0 {
				continue // the snapshot lacked the process
			}
			n := f.FDs[i]
			x, y := num(xOf(i)), num(yOf(n))
			if line.Points != "" {
				line.Points += " "
			}
			line.Points += x + "," + y
			line.Marks = append(line.Marks, chartPoint{X: x, Y: y,
				Title: fmt.Sprintf("pid %d %s: %d fds in snapshot %d (%s)", f.PID, output.Escape(f.Comm), n, s.ID, s.Meta.Time.Local().Format(time.DateTime))})
		}
		c.Series = append(c.Series, line)
	}

	step := max(1, (len(heads)+9)/10) // at most about ten labelled snapshots
	for i := 0; i < len(heads); i += step {
		s := heads[i]
		c.XTicks = append(c.XTicks, chartTick{Pos: num(xOf(i)), Label: s.Meta.Time.Local().Format("15:04:05"), Sub: fmt.Sprintf("#%d", s.ID)})
	}
	if last := len(heads) - 1; last%step != 0 {
		s := heads[last]
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
