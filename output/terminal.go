package output

import (
	"io"

	"golang.org/x/term"
)

// Sized is a writer that knows its width: a terminal, or a test's stand-in
// for one.
type Sized interface {
	// TerminalWidth returns the width in columns, or 0 when the writer is
	// not a terminal.
	TerminalWidth() int
}

// TerminalWidth returns w's width in columns when w is a terminal, else 0:
// pipes and files get every cell whole.
func TerminalWidth(w io.Writer) int {
	if s, ok := w.(Sized); ok {
		return s.TerminalWidth()
	}
	f, ok := w.(interface{ Fd() uintptr })
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil || width <= 0 {
		return 0
	}
	return width
}

// IsTerminal reports whether w is a terminal, where binary output (a pprof
// profile) would only garble the screen.
func IsTerminal(w io.Writer) bool {
	if s, ok := w.(Sized); ok {
		return s.TerminalWidth() > 0
	}
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}
