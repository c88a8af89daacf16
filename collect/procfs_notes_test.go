//go:build linux

package collect

import "testing"

func TestGroupDigits(t *testing.T) {
	for n, want := range map[int]string{0: "0", 7: "7", 999: "999", 1000: "1,000", 2156: "2,156", 1234567: "1,234,567", -4200: "-4,200"} {
		if got := groupDigits(n); got != want {
			t.Errorf("groupDigits(%d) = %q, want %q", n, got, want)
		}
	}
}

// TestPartialSummary: what a walk refused, in the words of take's warning.
func TestPartialSummary(t *testing.T) {
	w := &procfsWalk{}
	if got := w.partial(10, 3); got != "" {
		t.Errorf("nothing refused: %q", got)
	}
	for range 2150 {
		w.gaps.stack.n++
	}
	w.gaps.fdTable.n, w.deniedFDs = 2, 1
	if got, want := w.partial(2156, 110), "no stacks for 2,150 of 2,156 threads, fds of 3 of 110 processes"; got != want {
		t.Errorf("partial = %q, want %q", got, want)
	}
}
