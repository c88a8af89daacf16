package output

import (
	"slices"
	"unicode/utf8"
)

// minCut is the narrowest a cut column gets, when its header is shorter:
// fewer characters say nothing.
const minCut = 8

// fit cuts the cells of the columns that may be cut, so that each row of
// the table fits in width columns. Columns that may not be cut keep their
// width; the room left is shared among the others, the narrowest first, so
// a column narrower than its share is not cut at all. When even that does
// not fit, each cut column keeps minCut (or its header's width).
//
// Widths are counted in runes, as text/tabwriter counts them; a wide (East
// Asian) character takes two terminal columns and may push a row past the
// edge.
func fit(headers []Header, header []string, cells [][]string, width int) {
	n := len(headers)
	natural := make([]int, n)
	for i := range headers {
		natural[i] = utf8.RuneCountInString(header[i])
	}
	for _, row := range cells {
		for i, c := range row {
			natural[i] = max(natural[i], utf8.RuneCountInString(c))
		}
	}
	total := tablePadding * (n - 1)
	var cut []int
	for i, h := range headers {
		total += natural[i]
		if h.Cut != Whole {
			cut = append(cut, i)
		}
	}
	if total <= width || len(cut) == 0 {
		return
	}
	room := width
	for i, h := range headers {
		if h.Cut == Whole {
			room -= natural[i]
		}
	}
	room -= tablePadding * (n - 1)
	slices.SortStableFunc(cut, func(a, b int) int { return natural[a] - natural[b] })
	limit := make([]int, n)
	for k, i := range cut {
		share := room / (len(cut) - k)
		floor := max(minCut, utf8.RuneCountInString(header[i]))
		limit[i] = max(min(natural[i], share), min(natural[i], floor))
		room -= limit[i]
	}
	for _, row := range cells {
		for _, i := range cut {
			row[i] = cutText(row[i], limit[i], headers[i].Cut)
		}
	}
}

// cutText shortens s to at most n runes, marking the cut with "…": at the
// end for KeepHead, at the start for KeepTail.
func cutText(s string, n int, how Cut) string {
	count := utf8.RuneCountInString(s)
	if count <= n || n < 1 {
		return s
	}
	if how == KeepTail {
		drop := count - (n - 1)
		i := 0
		for ; drop > 0; drop-- {
			_, size := utf8.DecodeRuneInString(s[i:])
			i += size
		}
		return "…" + s[i:]
	}
	i := 0
	for keep := n - 1; keep > 0; keep-- {
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
	}
	return s[:i] + "…"
}
