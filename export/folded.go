// Package export turns snapshots into the formats other tools read: Brendan
// Gregg's folded stacks (flamegraph.pl, inferno, speedscope), the two-count
// folded lines of differential flame graphs, and pprof profiles.
//
// Everything here is a pure function of snapshots: no I/O but the writer it
// is handed, no printing.
package export

import (
	"bufio"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/itersnap/itersnap/snapshot"
)

// Keep selects the threads to export; nil keeps every thread.
type Keep func(t *snapshot.Task) bool

// Line is one line of a folded-stack file: a thread name and its kernel
// stack root first, escaped and joined by ";", and how many threads share
// them.
type Line struct {
	Stack string // "comm;frame;...;frame"
	Count int
}

// DiffLine is one line of a differential folded file: how many threads
// had the stack in snapshot A and in snapshot B.
type DiffLine struct {
	Stack  string
	CountA int
	CountB int
}

// EscapeName makes a thread or function name safe for one field of a folded
// line. Folded files have no escape of their own: a ";" ends a frame and a
// newline ends the line, and every tool splits on them blindly. So ";", "%"
// and control characters (newline included) become %XX, as in a URL: a
// process named "a;b" shows as the one frame "a%3Bb" in flamegraph.pl, and
// decoding %XX gives the name back. Kernel function names never change.
func EscapeName(s string) string {
	if !needsEscape(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if escaped(c) {
			b.WriteByte('%')
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&15])
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

const hex = "0123456789ABCDEF"

func escaped(c byte) bool { return c == ';' || c == '%' || c < 0x20 || c == 0x7f }

func needsEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if escaped(s[i]) {
			return true
		}
	}
	return false
}

// foldedStack renders a thread as a folded stack: its name, then its kernel
// functions root to leaf. A thread without a recorded stack is its name
// alone.
func foldedStack(comm string, stack snapshot.Stack) string {
	var b strings.Builder
	b.WriteString(EscapeName(comm))
	for i := len(stack) - 1; i >= 0; i-- {
		b.WriteByte(';')
		b.WriteString(EscapeName(snapshot.Function(stack[i])))
	}
	return b.String()
}

// counts counts the kept threads of s by folded stack.
func counts(s *snapshot.Snapshot, keep Keep) map[string]int {
	m := map[string]int{}
	for i := range s.Tasks {
		t := &s.Tasks[i]
		if keep != nil && !keep(t) {
			continue
		}
		m[foldedStack(t.Comm, s.StackOf(*t))]++
	}
	return m
}

// Folded returns one line per distinct (thread name, stack) of s, sorted by
// stack, as stackcollapse scripts write them.
func Folded(s *snapshot.Snapshot, keep Keep) []Line {
	m := counts(s, keep)
	out := make([]Line, 0, len(m))
	for stack, n := range m {
		out = append(out, Line{stack, n})
	}
	slices.SortFunc(out, func(a, b Line) int { return strings.Compare(a.Stack, b.Stack) })
	return out
}

// FoldedDiff returns one line per stack seen in a or b with its count in
// each (0 where absent), sorted by stack: what difffolded.pl writes and
// flamegraph.pl draws as a differential flame graph (width from B, colour
// from B - A). keepA and keepB select the threads of a and b.
func FoldedDiff(a, b *snapshot.Snapshot, keepA, keepB Keep) []DiffLine {
	ma, mb := counts(a, keepA), counts(b, keepB)
	out := make([]DiffLine, 0, len(mb))
	for stack, n := range mb {
		out = append(out, DiffLine{stack, ma[stack], n})
	}
	for stack, n := range ma {
		if _, ok := mb[stack]; !ok {
			out = append(out, DiffLine{stack, n, 0})
		}
	}
	slices.SortFunc(out, func(x, y DiffLine) int { return strings.Compare(x.Stack, y.Stack) })
	return out
}

// WriteFolded writes lines as "STACK COUNT\n".
func WriteFolded(w io.Writer, lines []Line) error {
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		bw.WriteString(l.Stack)
		bw.WriteByte(' ')
		bw.WriteString(strconv.Itoa(l.Count))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}

// WriteFoldedDiff writes lines as "STACK COUNT_A COUNT_B\n".
func WriteFoldedDiff(w io.Writer, lines []DiffLine) error {
	bw := bufio.NewWriter(w)
	for _, l := range lines {
		bw.WriteString(l.Stack)
		bw.WriteByte(' ')
		bw.WriteString(strconv.Itoa(l.CountA))
		bw.WriteByte(' ')
		bw.WriteString(strconv.Itoa(l.CountB))
		bw.WriteByte('\n')
	}
	return bw.Flush()
}
