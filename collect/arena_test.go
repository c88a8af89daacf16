//go:build linux

package collect

import (
	"testing"

	"github.com/itersnap/itersnap/snapshot"
)

// TestPrefaulted: the slice is empty with room for n+room, and the first
// n appends (and the room's) stay in it, without a copy.
func TestPrefaulted(t *testing.T) {
	for _, n := range []int{0, 1, 100, 20_000} {
		s := prefaulted[snapshot.File](n, n/8+256)
		if len(s) != 0 || cap(s) != n+n/8+256 {
			t.Fatalf("n=%d: len %d cap %d, want 0 and %d", n, len(s), cap(s), n+n/8+256)
		}
		first := &s[:1][0]
		for i := range cap(s) {
			s = append(s, snapshot.File{FD: uint32(i)})
		}
		if &s[0] != first || s[cap(s)-1].FD != uint32(cap(s)-1) {
			t.Errorf("n=%d: the appends moved the slice", n)
		}
	}
	if s := prefaulted[struct{}](10, 0); len(s) != 0 || cap(s) != 10 {
		t.Errorf("zero-size elements: len %d cap %d", len(s), cap(s))
	}
}
