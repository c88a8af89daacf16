package output

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutText(t *testing.T) {
	stack := "entry_SYSCALL_64;do_syscall_64;ksys_write;vfs_write;percpu_rwsem_wait"
	for _, tc := range []struct {
		in   string
		n    int
		how  Cut
		want string
	}{
		{stack, 20, KeepTail, "…e;percpu_rwsem_wait"},
		{stack, 20, KeepHead, "entry_SYSCALL_64;do…"},
		{stack, len(stack), KeepTail, stack},
		{"日本語のファイル名.log", 6, KeepTail, "…名.log"},
		{"日本語のファイル名.log", 4, KeepHead, "日本語…"},
		{"abc", 1, KeepHead, "…"},
	} {
		got := cutText(tc.in, tc.n, tc.how)
		if got != tc.want {
			t.Errorf("cutText(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
		if n := utf8.RuneCountInString(got); n > tc.n || !utf8.ValidString(got) {
			t.Errorf("cutText(%q, %d) = %q: %d runes", tc.in, tc.n, got, n)
		}
	}
}

type wideRow struct {
	pid         int
	comm, stack string
}

var wideColumns = []Column[wideRow]{
	{"pid", Whole, func(r wideRow) Value { return Int(r.pid) }},
	{"comm", KeepHead, func(r wideRow) Value { return Text(r.comm) }},
	{"stack", KeepTail, func(r wideRow) Value { return Text(r.stack) }},
}

func TestTableFitsWidth(t *testing.T) {
	rows := []wideRow{
		{100, "nginx", strings.Repeat("frame_from_the_root;", 10) + "percpu_rwsem_wait"},
		{200, "a-very-long-worker-name-indeed", "ep_poll"},
		{300, "\x1b[31mRED", strings.Repeat("x;", 100) + "leaf_function"},
	}
	for _, width := range []int{120, 80, 40} {
		var b bytes.Buffer
		if err := WriteRecords(&b, wideColumns, rows, Options{Format: Table, Width: width}); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
		if len(lines) != 4 {
			t.Fatalf("width %d: %d lines:\n%s", width, len(lines), b.String())
		}
		for _, l := range lines {
			if n := utf8.RuneCountInString(l); n > width {
				t.Errorf("width %d: line of %d: %q", width, n, l)
			}
		}
		for i, leaf := range []string{"percpu_rwsem_wait", "ep_poll", "leaf_function"} {
			if !strings.HasSuffix(lines[i+1], leaf[len(leaf)-7:]) || (width >= 80 && !strings.HasSuffix(lines[i+1], leaf)) {
				t.Errorf("width %d: the leaf is cut off: %q", width, lines[i+1])
			}
		}
		if !strings.HasPrefix(lines[1], "100  nginx ") {
			t.Errorf("width %d: a short name was cut: %q", width, lines[1])
		}
	}
	// Width 0 (a pipe, a file, --wide): every cell whole.
	var b bytes.Buffer
	WriteRecords(&b, wideColumns, rows, Options{Format: Table})
	for _, r := range rows {
		if !strings.Contains(b.String(), Escape(r.stack)) || !strings.Contains(b.String(), Escape(r.comm)) {
			t.Errorf("width 0 cut %q", r.stack)
		}
	}
	if strings.Contains(b.String(), "…") {
		t.Errorf("width 0 cut something:\n%s", b.String())
	}
}

// TestTableNarrowerThanColumns: a terminal too narrow for the columns that
// cannot be cut still gets one line per row, cut columns at their floor.
func TestTableNarrowerThanColumns(t *testing.T) {
	rows := []wideRow{{1, strings.Repeat("c", 30), strings.Repeat("s;", 30) + "leaf"}}
	var b bytes.Buffer
	WriteRecords(&b, wideColumns, rows, Options{Format: Table, Width: 10})
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 2 || lines[1] != "1    ccccccc…  …;s;leaf" {
		t.Errorf("%q", lines)
	}
}
