package output

import (
	"strings"
	"time"
)

// ForgetRow is what a retention policy does with one snapshot.
type ForgetRow struct {
	Snapshot uint64
	Time     time.Time
	Keep     bool
	Reasons  []string // why it is kept: "last 3", "within 24h0m0s", ...
}

// ForgetColumns are `itersnap forget`'s columns.
var ForgetColumns = []Column[ForgetRow]{
	{"snapshot", Whole, func(r ForgetRow) Value { return Uint(r.Snapshot) }},
	{"time", Whole, func(r ForgetRow) Value { return Time(r.Time) }},
	{"action", Whole, func(r ForgetRow) Value {
		if r.Keep {
			return Text("keep")
		}
		return Text("remove")
	}},
	{"reasons", KeepHead, func(r ForgetRow) Value { return Text(strings.Join(r.Reasons, ", ")) }},
}
