package report

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"

	"github.com/itersnap/itersnap/diff"
	"github.com/itersnap/itersnap/output"
	"github.com/itersnap/itersnap/snapshot"
)

// Flame graph geometry, in SVG user units (the SVG scales to the page).
const (
	flameWidth  = 1200.0
	flamePad    = 10.0
	frameHeight = 16.0
	// minFrameWidth: narrower frames are dropped, as flamegraph.pl's
	// --minwidth (0.1 px) does, unless a blocked or stuck thread passes
	// through them: the one stuck thread among 20,000 is the one to find.
	minFrameWidth = 0.1
	// charWidth is the advance of one character of the 11px monospace
	// labels, to cut a label to its frame.
	charWidth = 6.7
)

// Colour classes of a frame, by most of the threads that pass through it.
// Below the groups every frame's threads are of one class; only the root
// mixes them, and stays neutral.
const (
	classOther   = "o" // running or sleeping threads
	classBlocked = "b" // blocked (D) threads
	classStuck   = "s" // stuck threads (diff's stuck finding)
	className    = "t" // a thread name on top of its stack, other threads
	shades       = 5   // per class, varied by name as in flamegraph.pl
)

// node is one frame of the merged tree: every thread whose path from the
// root starts with the same frames passes through the same node.
type node struct {
	name                    string
	comm                    bool // a thread name, not a kernel function
	threads, blocked, stuck int
	children                map[string]*node
}

func (n *node) child(name string, comm bool) *node {
	key := name
	if comm {
		key = "\x00" + name // a thread named like a function is not that function
	}
	c := n.children[key]
	if c == nil {
		c = &node{name: name, comm: comm}
		if n.children == nil {
			n.children = map[string]*node{}
		}
		n.children[key] = c
	}
	return c
}

// flameFrame is one frame as the template draws it: numbers already
// formatted, so the template only places them.
type flameFrame struct {
	X, Y, W, TX, TY string
	Class           string
	Title, Label    string
}

type flameGraph struct {
	Height                  string
	Frames                  []flameFrame
	Threads, Blocked, Stuck int
}

// Groups under the root: stuck and blocked threads merge apart from the
// rest, so that a few hundred of them among 20,000 make a block wide enough
// to see and click, instead of slivers in every stack.
var groups = []string{"[stuck]", "[blocked (D)]", "[running or sleeping]"}

// buildFlame merges the kernel stacks of every thread of s, root first,
// each under its group (stuck, blocked, other), with each thread's name on
// top of its stack: threads waiting in the same place merge whatever their
// names, and the names on top say who waits there. (The folded export
// keeps flamegraph.pl's name-first order.)
func buildFlame(s *snapshot.Snapshot, stuck []diff.StuckFinding) flameGraph {
	stuckKeys := make(map[snapshot.ThreadKey]bool, len(stuck))
	for _, f := range stuck {
		stuckKeys[f.Thread()] = true
	}
	root := &node{name: "all threads"}
	depth := 0
	for i := range s.Tasks {
		t := &s.Tasks[i]
		isStuck := stuckKeys[t.Key()]
		isBlocked := !isStuck && t.Blocked()
		add := func(n *node) {
			n.threads++
			if isStuck {
				n.stuck++
			} else if isBlocked {
				n.blocked++
			}
		}
		add(root)
		group := groups[2]
		switch {
		case isStuck:
			group = groups[0]
		case isBlocked:
			group = groups[1]
		}
		path := root.child(group, false)
		add(path)
		st := s.StackOf(*t)
		for j := len(st) - 1; j >= 0; j-- {
			path = path.child(output.Escape(snapshot.Function(st[j])), false)
			add(path)
		}
		path = path.child(output.Escape(t.Comm), true)
		add(path)
		depth = max(depth, len(st)+3)
	}
	g := flameGraph{Threads: root.threads, Blocked: root.blocked, Stuck: root.stuck}
	if root.threads == 0 {
		return g
	}
	height := float64(depth)*frameHeight + 2*flamePad
	g.Height = num(height)
	scale := (flameWidth - 2*flamePad) / float64(root.threads)
	var walk func(n *node, x float64, level int)
	walk = func(n *node, x float64, level int) {
		w := float64(n.threads) * scale
		if w < minFrameWidth && n.blocked+n.stuck == 0 {
			return
		}
		y := height - flamePad - float64(level+1)*frameHeight
		g.Frames = append(g.Frames, flameFrame{
			X: num(x), Y: num(y), W: num(w), TX: num(x + 3), TY: num(y + 11.5),
			Class: frameClass(n),
			Title: frameTitle(n, root.threads),
			Label: label(n.name, w),
		})
		children := make([]*node, 0, len(n.children))
		for _, c := range n.children {
			children = append(children, c)
		}
		// Groups in their order, then alphabetical, as flamegraph.pl: the
		// x axis is not time.
		slices.SortFunc(children, func(a, b *node) int {
			return cmp.Or(cmp.Compare(groupRank(a), groupRank(b)), cmp.Compare(a.name, b.name), cmp.Compare(b2i(a.comm), b2i(b.comm)))
		})
		for _, c := range children {
			walk(c, x, level+1)
			x += float64(c.threads) * scale
		}
	}
	walk(root, flamePad, 0)
	return g
}

func frameClass(n *node) string {
	class := classOther
	switch {
	case 2*n.stuck > n.threads:
		class = classStuck
	case 2*(n.stuck+n.blocked) > n.threads:
		class = classBlocked
	case n.comm:
		class = className
	}
	h := fnv.New32a()
	h.Write([]byte(n.name))
	return class + strconv.Itoa(int(h.Sum32()%shades))
}

// frameTitle is the frame's tooltip. Its first line is the name alone: the
// page's search matches it.
func frameTitle(n *node, total int) string {
	s := n.name
	if n.comm {
		s += "\nthread name"
	}
	s += fmt.Sprintf("\n%d thread%s (%.2f%%)", n.threads, plural(n.threads), 100*float64(n.threads)/float64(total))
	if n.blocked > 0 {
		s += fmt.Sprintf(", %d blocked", n.blocked)
	}
	if n.stuck > 0 {
		s += fmt.Sprintf(", %d stuck", n.stuck)
	}
	return s
}

// label cuts name to what fits in a frame w wide, as the page's script does
// after a zoom.
func label(name string, w float64) string {
	fit := int((w - 6) / charWidth)
	if fit < 3 {
		return ""
	}
	r := []rune(name)
	if len(r) <= fit {
		return name
	}
	return string(r[:fit-2]) + ".."
}

// num formats a coordinate: two decimals are finer than a pixel.
func num(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }

func groupRank(n *node) int {
	if i := slices.Index(groups, n.name); i >= 0 && !n.comm {
		return i
	}
	return len(groups)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
