package output

import (
	"strings"
	"unicode/utf8"
)

const hexDigits = "0123456789abcdef"

// Escape returns s as a table shows it: printable UTF-8 as it is, and every
// control character (C0, DEL, C1), backslash and byte that is not UTF-8
// escaped, so that the text cannot move the cursor, change colours, split a
// row or a cell, or reach text/tabwriter's escape character 0xFF. The
// escapes are Go's (and lsof's): \n, \r, \t, \\, \xHH for other bytes below
// 0x20, DEL and invalid bytes, \u00HH for C1 code points.
func Escape(s string) string {
	if !needsTableEscape(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			writeHexByte(&b, s[i])
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20 || r == 0x7f:
			writeHexByte(&b, byte(r))
		case r >= 0x80 && r <= 0x9f:
			b.WriteString(`\u00`)
			b.WriteByte(hexDigits[r>>4])
			b.WriteByte(hexDigits[r&0xf])
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func needsTableEscape(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= 0x7f || c == '\\' {
			return true
		}
	}
	return false
}

// Clean returns s as CSV and JSON carry it: valid UTF-8 byte for byte, and
// each byte that is not UTF-8 written \xHH, so the file is valid UTF-8 and
// the name is not lost (encoding/json would turn the byte into U+FFFD).
// Control characters are left to the format: encoding/csv quotes a field
// that holds a newline, encoding/json writes \n and \u001b.
func Clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			writeHexByte(&b, s[i])
		} else {
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

func writeHexByte(b *strings.Builder, c byte) {
	b.WriteString(`\x`)
	b.WriteByte(hexDigits[c>>4])
	b.WriteByte(hexDigits[c&0xf])
}
