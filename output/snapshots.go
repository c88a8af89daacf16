package output

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// SnapshotColumns are `itersnap list`'s columns, one row per snapshot (only
// ID and Meta are read, so a listing needs no records).
var SnapshotColumns = []Column[*snapshot.Snapshot]{
	{"id", Whole, func(s *snapshot.Snapshot) Value { return Uint(s.ID) }},
	{"time", Whole, func(s *snapshot.Snapshot) Value { return Time(s.Meta.Time) }},
	{"host", KeepHead, func(s *snapshot.Snapshot) Value { return Text(s.Meta.Hostname) }},
	{"kernel", Whole, func(s *snapshot.Snapshot) Value { return Text(s.Meta.Kernel) }},
	{"collector", Whole, func(s *snapshot.Snapshot) Value { return Text(s.Meta.Collector) }},
	{"threads", Whole, func(s *snapshot.Snapshot) Value { return Int(s.Meta.Threads) }},
	{"processes", Whole, func(s *snapshot.Snapshot) Value { return Int(s.Meta.Processes) }},
	{"fds", Whole, func(s *snapshot.Snapshot) Value { return Int(s.Meta.FDs) }},
	{"label", KeepHead, func(s *snapshot.Snapshot) Value { return Text(s.Meta.Label) }},
	{"duration", Whole, func(s *snapshot.Snapshot) Value {
		return Float(s.Meta.Duration.Round(time.Millisecond).Seconds())
	}},
	{"filter", KeepHead, func(s *snapshot.Snapshot) Value { return Text(FilterString(s.Meta.Filter)) }},
	{"partial", Whole, func(s *snapshot.Snapshot) Value { return Bool(s.Meta.Partial != "") }},
}

// FilterString renders a take's filter as the flags that set it.
func FilterString(f snapshot.Filter) string {
	var parts []string
	for _, c := range f.Comms {
		parts = append(parts, "--comm="+c)
	}
	for _, p := range f.PIDs {
		parts = append(parts, "--pid="+strconv.FormatUint(uint64(p), 10))
	}
	for _, c := range f.Containers {
		parts = append(parts, "--container="+c)
	}
	for _, c := range f.Cgroups {
		parts = append(parts, "--cgroup="+c)
	}
	return strings.Join(parts, " ")
}

// WriteSnapshotHeader writes the lines above a table of one snapshot's
// records, which tell a person which snapshot they are looking at.
func WriteSnapshotHeader(w io.Writer, s *snapshot.Snapshot) error {
	m := s.Meta
	var b strings.Builder
	fmt.Fprintf(&b, "# snapshot %d  %s  host %s  kernel %s  collector %s  %d threads  %d processes  %d fds",
		s.ID, m.Time.Format("2006-01-02 15:04:05 MST"), Escape(m.Hostname), Escape(m.Kernel), Escape(m.Collector), m.Threads, m.Processes, m.FDs)
	if m.Label != "" {
		fmt.Fprintf(&b, "  label \"%s\"", Escape(m.Label))
	}
	if !m.Filter.Empty() {
		fmt.Fprintf(&b, "  filter %s", Escape(FilterString(m.Filter)))
	}
	b.WriteByte('\n')
	for _, n := range m.Notes {
		fmt.Fprintf(&b, "# note: %s\n", Escape(n))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
