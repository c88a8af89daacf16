package export

import (
	"io"
	"strconv"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
)

// OpenMetrics for Prometheus, through node_exporter's textfile collector:
// a diff's findings (WriteDiffMetrics) or the health of the latest take
// (WriteTakeMetrics). Every metric is a gauge without a timestamp, so the
// file reads the same to an OpenMetrics parser and to the Prometheus text
// parser node_exporter uses (both skip "# UNIT" and "# EOF" there).
// expfmt writes and escapes (prometheus/common's openmetrics_create.go);
// label values are process names and paths, so bytes that are not UTF-8
// are written \xHH first (output.Clean), as in CSV and JSON.

// DefaultMaxSeries is how many fd_leak groups get series of their own.
const DefaultMaxSeries = 20

// MetricsOptions bounds what WriteDiffMetrics writes.
type MetricsOptions struct {
	// MaxSeries is how many fd_leak groups, in the report's order (most
	// urgent first), get per-group series; the rest are only counted.
	// Zero or less is DefaultMaxSeries.
	MaxSeries int
}

// WriteDiffMetrics writes r, the diff of a range ending at b, as
// OpenMetrics: per finding kind a count; per fd_leak group (the first
// MaxSeries) its fds at B, growth per hour and, when known, seconds until
// its process runs out of fds; threads blocked at B and stuck threads; and
// B's take (time, duration, collector).
func WriteDiffMetrics(w io.Writer, r *diff.Report, b *snapshot.Snapshot, opts MetricsOptions) error {
	maxSeries := opts.MaxSeries
	if maxSeries <= 0 {
		maxSeries = DefaultMaxSeries
	}
	m := newMetrics()
	findings := m.gauge("itersnap_findings", "", "Findings of the diff, per kind (newly_blocked counts threads newly in D at B).")
	for _, k := range diff.AllKinds {
		findings.sample(float64(r.Count(k)), "finding", string(k))
	}
	fds := m.gauge("itersnap_fd_leak_fds", "", "Open fds at B of a leaking fd group (same process, kind and target), for the most urgent groups.")
	growth := m.gauge("itersnap_fd_leak_growth_per_hour", "", "Growth of a leaking fd group from A to B, in fds per hour.")
	exhausts := m.gauge("itersnap_fd_leak_exhausts_in_seconds", "seconds", "Time until the leaking process reaches its RLIMIT_NOFILE at the measured rate; absent when it never does (unlimited, unknown, not growing).")
	for i, f := range r.FDLeaks {
		if i == maxSeries {
			break
		}
		labels := []string{"pid", strconv.FormatUint(uint64(f.PID), 10), "comm", f.Comm,
			"container", containerOf(b, f.PID), "kind", f.Kind, "target", f.Target}
		fds.sample(float64(f.FDsB), labels...)
		growth.sample(f.GrowthPerHour, labels...)
		if in, ok := exhaustsIn(f); ok {
			exhausts.sample(in, labels...)
		}
	}
	m.gauge("itersnap_fd_leak_groups", "", "Leaking fd groups found, with series of their own or not (--max-series bounds those).").
		sample(float64(len(r.FDLeaks)))
	blocked := 0
	for i := range b.Tasks {
		if b.Tasks[i].Blocked() {
			blocked++
		}
	}
	m.gauge("itersnap_threads_blocked", "", "Threads in uninterruptible sleep (D) at B.").sample(float64(blocked))
	m.gauge("itersnap_threads_stuck", "", "Threads blocked, not killable and without a context switch in every snapshot of the range.").
		sample(float64(len(r.Stuck)))
	m.gauge("itersnap_diff_span_seconds", "seconds", "Time from snapshot A to snapshot B.").sample(r.Span.Seconds())
	m.gauge("itersnap_diff_snapshots", "", "Snapshots in the diff's range.").sample(float64(len(r.IDs)))
	m.gauge("itersnap_diff_reboot", "", "1 when the range spans a reboot, so nothing was compared.").sample(boolFloat(r.Reboot != nil))
	m.take(b)
	return m.write(w)
}

// WriteTakeMetrics writes the health of the latest take, latest (nil when
// the database has none), and how many snapshots the database holds.
func WriteTakeMetrics(w io.Writer, latest *snapshot.Snapshot, snapshots int) error {
	m := newMetrics()
	m.gauge("itersnap_snapshots", "", "Snapshots in the database.").sample(float64(snapshots))
	if latest != nil {
		m.take(latest)
	}
	return m.write(w)
}

// exhaustsIn is seconds until f's process runs out of fds at the rate
// the diff measured, when it ever does.
func exhaustsIn(f diff.FDLeakFinding) (float64, bool) { return f.ExhaustsIn.Seconds(), f.Exhausts }

// containerOf is the container of process pid at b, by its leader's
// cgroup ("" when none, which Prometheus treats as no label).
func containerOf(b *snapshot.Snapshot, pid uint32) string {
	for i := range b.Tasks {
		if t := &b.Tasks[i]; t.PID == pid && t.TID == pid {
			return t.Container()
		}
	}
	return ""
}

// take describes the snapshot's take: when, how long, with what.
func (m *metrics) take(s *snapshot.Snapshot) {
	meta := &s.Meta
	m.gauge("itersnap_take_timestamp_seconds", "seconds", "When the take began, in seconds since the Unix epoch.").
		sample(float64(meta.Time.UnixNano()) / 1e9)
	m.gauge("itersnap_take_duration_seconds", "seconds", "How long the take took to load, collect and symbolize.").
		sample(meta.Duration.Seconds())
	// The ID is a value, not a label: a label that changes every minute
	// would make a new series every minute.
	m.gauge("itersnap_take_snapshot", "", "The take's snapshot ID.").sample(float64(s.ID))
	m.gauge("itersnap_take_info", "", "The take's collector (bpf, procfs) and kernel, as labels; always 1.").
		sample(1, "collector", meta.Collector, "kernel", meta.Kernel)
	m.gauge("itersnap_take_partial", "", "1 when the take could not read everything (its notes say what).").
		sample(boolFloat(meta.Partial != ""))
	m.gauge("itersnap_take_threads", "", "Threads the take recorded.").sample(float64(meta.Threads))
	m.gauge("itersnap_take_fds", "", "Open fds the take recorded.").sample(float64(meta.FDs))
}

// metrics collects metric families in the order they are declared.
type metrics struct{ families []*dto.MetricFamily }

func newMetrics() *metrics { return &metrics{} }

type gauge struct{ mf *dto.MetricFamily }

func (m *metrics) gauge(name, unit, help string) gauge {
	mf := &dto.MetricFamily{Name: &name, Help: &help, Type: dto.MetricType_GAUGE.Enum()}
	if unit != "" {
		mf.Unit = &unit
	}
	m.families = append(m.families, mf)
	return gauge{mf}
}

// sample adds a value with labels given as name, value pairs.
func (g gauge) sample(v float64, labels ...string) {
	metric := &dto.Metric{Gauge: &dto.Gauge{Value: &v}}
	for i := 0; i+1 < len(labels); i += 2 {
		name, value := labels[i], output.Clean(labels[i+1])
		metric.Label = append(metric.Label, &dto.LabelPair{Name: &name, Value: &value})
	}
	g.mf.Metric = append(g.mf.Metric, metric)
}

// write writes every family that has samples, then "# EOF".
func (m *metrics) write(w io.Writer) error {
	for _, mf := range m.families {
		if len(mf.Metric) == 0 {
			continue // OpenMetrics allows an empty family, the text format's parsers do not all
		}
		if _, err := expfmt.MetricFamilyToOpenMetrics(w, mf); err != nil {
			return err
		}
	}
	_, err := expfmt.FinalizeOpenMetrics(w)
	return err
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
