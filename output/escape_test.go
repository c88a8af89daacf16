package output

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestEscapeEachControlCharacter(t *testing.T) {
	named := map[rune]string{'\n': `\n`, '\r': `\r`, '\t': `\t`}
	for r := rune(0); r < 0x20; r++ {
		want := named[r]
		if want == "" {
			want = fmt.Sprintf(`\x%02x`, r)
		}
		if got := Escape("a" + string(r) + "b"); got != "a"+want+"b" {
			t.Errorf("Escape(%U) = %q, want %q", r, got, "a"+want+"b")
		}
	}
	if got := Escape("a\x7fb"); got != `a\x7fb` {
		t.Errorf("DEL: %q", got)
	}
	for r := rune(0x80); r <= 0x9f; r++ {
		want := fmt.Sprintf(`a\u%04xb`, r)
		if got := Escape("a" + string(r) + "b"); got != want {
			t.Errorf("Escape(%U) = %q, want %q", r, got, want)
		}
	}
}

func TestEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nginx", "nginx"},
		{"", ""},
		{"\x1b[31mRED", `\x1b[31mRED`},
		{"\x1b[2J.log", `\x1b[2J.log`},
		{"\x1b]0;title\x07", `\x1b]0;title\x07`},
		{"a\xffb", `a\xffb`},
		{"\xc3", `\xc3`},         // a lone lead byte
		{"\xe2\x82", `\xe2\x82`}, // a cut three-byte sequence
		{`C:\temp`, `C:\\temp`},
		{`\x41`, `\\x41`}, // not to be read as an escape
		{"naïve 日本 😀", "naïve 日本 😀"},
		{"a,b \"q\" <script>", "a,b \"q\" <script>"},
		{"\u2028", "\u2028"}, // printable as far as terminals go
	} {
		if got := Escape(tc.in); got != tc.want {
			t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
		}
		got := Escape(tc.in)
		for i := 0; i < len(got); i++ {
			if c := got[i]; c < 0x20 || c == 0x7f || c == 0xff {
				t.Errorf("Escape(%q) holds byte %#x", tc.in, c)
			}
		}
		if !utf8.ValidString(got) {
			t.Errorf("Escape(%q) = %q: not UTF-8", tc.in, got)
		}
	}
}

func TestClean(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"nginx", "nginx"},
		{"a\nb\t\x1b[31m", "a\nb\t\x1b[31m"}, // control characters are the format's business
		{"a\xffb", `a\xffb`},
		{"\xc3(", `\xc3(`},
		{"naïve 日本 😀", "naïve 日本 😀"},
		{`back\slash`, `back\slash`},
	} {
		if got := Clean(tc.in); got != tc.want {
			t.Errorf("Clean(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// hostile names, as a process or a file could be named.
var hostile = []string{
	"\x1b[31mRED", "new\nline", "a,b", `say "hi"`, "<script>alert(1)</script>",
	"bad\xffbyte", "\x1b[2J.log", "tab\there", "naïve 日本", "cr\rhere", "c1\u009bx",
}

type named struct{ name string }

var namedColumns = []Column[named]{
	{"n", Whole, func(named) Value { return Int(1) }},
	{"name", KeepHead, func(r named) Value { return Text(r.name) }},
	{"none", Whole, func(named) Value { return None() }},
}

func namedRows() []named {
	var rows []named
	for _, h := range hostile {
		rows = append(rows, named{h})
	}
	return rows
}

// cleanWant is what CSV and JSON must give back for a name.
func cleanWant(s string) string {
	return strings.ReplaceAll(s, "\xff", `\xff`)
}

func TestTableEscapes(t *testing.T) {
	for _, width := range []int{0, 40} {
		var b bytes.Buffer
		if err := WriteRecords(&b, namedColumns, namedRows(), Options{Format: Table, Width: width}); err != nil {
			t.Fatal(err)
		}
		out := b.String()
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != 1+len(hostile) {
			t.Errorf("width %d: %d lines for %d records:\n%s", width, len(lines), len(hostile), out)
		}
		for i := 0; i < len(out); i++ {
			if c := out[i]; (c < 0x20 && c != '\n') || c == 0x7f || c == 0xff {
				t.Errorf("width %d: table holds byte %#x:\n%q", width, c, out)
			}
		}
		if !utf8.ValidString(out) || strings.Contains(out, "\u009b") {
			t.Errorf("width %d: table not clean UTF-8: %q", width, out)
		}
		// Alignment survives 0xFF: the last column starts at the same
		// place on every line.
		at := strings.Index(lines[0], "NONE")
		for _, l := range lines[1:] {
			if r := []rune(l); len(r) < at || !strings.HasSuffix(l, " -") {
				t.Errorf("width %d: misaligned line %q", width, l)
			}
		}
	}
}

func TestCSVAndJSONKeepNames(t *testing.T) {
	var c, j bytes.Buffer
	if err := WriteRecords(&c, namedColumns, namedRows(), Options{Format: CSV}); err != nil {
		t.Fatal(err)
	}
	if err := WriteRecords(&j, namedColumns, namedRows(), Options{Format: JSON}); err != nil {
		t.Fatal(err)
	}
	if !utf8.Valid(c.Bytes()) || !utf8.Valid(j.Bytes()) {
		t.Fatalf("not valid UTF-8:\n%q\n%q", c.String(), j.String())
	}
	recs, err := csv.NewReader(&c).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1+len(hostile) || strings.Join(recs[0], ",") != "n,name,none" {
		t.Fatalf("csv: %q", recs)
	}
	dec := json.NewDecoder(&j)
	for i, h := range hostile {
		if got := recs[i+1][1]; got != cleanWant(h) {
			t.Errorf("csv gives %q back as %q", h, got)
		}
		if got := recs[i+1][2]; got != "" {
			t.Errorf("csv: none is %q", got)
		}
		var obj map[string]any
		if err := dec.Decode(&obj); err != nil {
			t.Fatalf("json line %d: %v", i, err)
		}
		if got := obj["name"]; got != cleanWant(h) {
			t.Errorf("json gives %q back as %q", h, got)
		}
		if v, ok := obj["none"]; !ok || v != nil {
			t.Errorf("json: none is %v (present %v), want null", v, ok)
		}
	}
}

func TestValueFormats(t *testing.T) {
	cols := []Column[Value]{{"v", Whole, func(v Value) Value { return v }}}
	for _, tc := range []struct {
		v                Value
		table, csv, json string
	}{
		{None(), "-", "", "null"},
		{Text(""), "-", "", `""`},
		{Text("x"), "x", "x", `"x"`},
		{Int(-3), "-3", "-3", "-3"},
		{Uint(uint64(1) << 63), "9223372036854775808", "9223372036854775808", "9223372036854775808"},
		{Float(0.125), "0.12", "0.125", "0.125"},
		{Float(10), "10.00", "10", "10"},
		{Bool(true), "true", "true", "true"},
		{Seconds(3600_400_400_000), "1h0m0s", "3600.4", "3600.4"},
		{Seconds(12_345_678), "0s", "0.012", "0.012"},
		{ETA(7830 * time.Second), "2h11m", "7830", "7830"},
		{ETA(3*24*time.Hour + 4*time.Hour + 20*time.Minute), "3d4h", "274800", "274800"},
		{ETA(250 * time.Second), "4m10s", "250", "250"},
		{ETA(45 * time.Second), "45s", "45", "45"},
	} {
		var tb, cb, jb bytes.Buffer
		WriteRecords(&tb, cols, []Value{tc.v}, Options{Format: Table})
		WriteRecords(&cb, cols, []Value{tc.v}, Options{Format: CSV})
		WriteRecords(&jb, cols, []Value{tc.v}, Options{Format: JSON})
		table := strings.TrimSpace(strings.SplitN(tb.String(), "\n", 2)[1])
		csvCell := strings.TrimSuffix(strings.SplitN(cb.String(), "\n", 2)[1], "\n")
		if table != tc.table || csvCell != tc.csv || jb.String() != `{"v":`+tc.json+"}\n" {
			t.Errorf("%+v: table %q csv %q json %q, want %q %q %q", tc.v, table, csvCell, jb.String(), tc.table, tc.csv, tc.json)
		}
	}
}
