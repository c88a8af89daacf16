package diff

import (
	"slices"
	"testing"
	"time"

	"github.com/itersnap/itersnap/snapshot"
)

// TestPartialNoted: a diff over partial snapshots says so in its notes,
// naming them; over whole ones it says nothing of it.
func TestPartialNoted(t *testing.T) {
	a, b, c := newSnap(1, 0), newSnap(2, time.Minute), newSnap(3, 2*time.Minute)
	b.s.Meta.Partial = "no stacks for 5 of 6 threads"
	r := Compare(slicesOf(a, b, c), Options{})
	want := "snapshot 2 is partial (no stacks for 5 of 6 threads): findings may miss what it could not read"
	if !slices.Contains(r.Notes, want) {
		t.Errorf("notes %q, want %q", r.Notes, want)
	}
	c.s.Meta.Partial = "fds of 1 of 2 processes"
	r = Compare(slicesOf(a, b, c), Options{})
	want = "snapshots 2, 3 are partial (the last: fds of 1 of 2 processes): findings may miss what they could not read"
	if !slices.Contains(r.Notes, want) {
		t.Errorf("notes %q, want %q", r.Notes, want)
	}
	b.s.Meta.Partial, c.s.Meta.Partial = "", ""
	if r := Compare(slicesOf(a, b, c), Options{}); len(r.Notes) != 0 {
		t.Errorf("whole snapshots: notes %q", r.Notes)
	}
}

func slicesOf(builders ...*snapBuilder) []*snapshot.Snapshot {
	var out []*snapshot.Snapshot
	for _, b := range builders {
		out = append(out, b.build())
	}
	return out
}
