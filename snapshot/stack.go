package snapshot

import (
	"strings"
)

// Stack is a kernel stack as symbolized frames, leaf first (the order the
// kernel and /proc/PID/stack give), each as %pB prints it:
// "do_nanosleep+0x87/0x1a0" or "nfs_wait_bit_killable+0x1c/0x80 [nfs]".
type Stack []string

// Function returns the frame's function name without offset and size, with a
// module suffix kept: "do_nanosleep", "nfs_wait_bit_killable [nfs]".
func Function(frame string) string {
	name, rest, _ := strings.Cut(frame, " ")
	if i := strings.IndexByte(name, '+'); i >= 0 {
		name = name[:i]
	}
	if rest != "" {
		return name + " " + rest
	}
	return name
}

// Folded renders the stack root to leaf, functions joined by ";", as in
// folded-stack files (flamegraph.pl, speedscope).
func (s Stack) Folded() string {
	var b strings.Builder
	for i := len(s) - 1; i >= 0; i-- {
		b.WriteString(Function(s[i]))
		if i > 0 {
			b.WriteByte(';')
		}
	}
	return b.String()
}

// Key is the stack's identity for interning and comparison.
func (s Stack) Key() string { return strings.Join(s, "\n") }

// Interner hands out one index per distinct stack.
type Interner struct {
	index  map[string]int32
	Stacks []Stack
}

// NewInterner returns an empty interner.
func NewInterner() *Interner { return &Interner{index: map[string]int32{}} }

// Intern returns the index of s, adding it when new. An empty stack is -1.
func (in *Interner) Intern(s Stack) int32 {
	if len(s) == 0 {
		return -1
	}
	k := s.Key()
	if i, ok := in.index[k]; ok {
		return i
	}
	i := int32(len(in.Stacks))
	in.index[k] = i
	in.Stacks = append(in.Stacks, s)
	return i
}
