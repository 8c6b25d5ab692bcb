package cli

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Names that come from Partner Center or from a person (domain, company,
// reason, --by, an error the server wrote) reach the screen only through
// printable or oneLine, so a name cannot move the cursor, clear the screen,
// retitle the terminal, reverse the text direction or start a forged row.
// Text logs need nothing more: slog's TextHandler already quotes every value
// (and key and message) that holds a rune that is not printable, with
// strconv.Quote's escapes. JSON goes through writeJSON.

// printable returns s with every rune that is not graphic escaped the way Go
// writes it in a string literal: C0 controls (ESC, newline, tab), DEL, the C1
// controls (a terminal may read U+009B as CSI), Unicode format characters
// (bidi overrides, zero-width), line and paragraph separators; an invalid
// UTF-8 byte as \xNN. Graphic runes, spaces included, are kept as they are.
func printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case graphic(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
		i += size
	}
	return b.String()
}

func isPrintable(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !graphic(r) {
			return false
		}
		i += size
	}
	return true
}

func graphic(r rune) bool { return unicode.IsGraphic(r) }

// oneLine is printable for text that may span lines, such as an error a
// server wrote: runs of white space (newlines included) become one space,
// then what is left that is not graphic is escaped.
func oneLine(s string) string {
	return printable(strings.Join(strings.Fields(s), " "))
}

// escapeJSON rewrites, in encoded JSON, the runes encoding/json leaves raw
// although a terminal acts on them (DEL, C1 controls, format characters) as
// \uXXXX escapes. encoding/json already escapes C0 controls, U+2028 and
// U+2029, and replaces invalid UTF-8; outside strings encoded JSON holds only
// graphic ASCII, spaces and newlines, so every rune replaced here is inside a
// string and the result decodes to the same value.
func escapeJSON(b []byte) []byte {
	var out bytes.Buffer
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		switch {
		case r < utf8.RuneSelf && (r == '\n' || r == ' ' || r >= 0x20 && r < 0x7f):
			out.WriteByte(b[i])
		case graphic(r):
			out.Write(b[i : i+size])
		case r > 0xffff:
			r1, r2 := utf16Surrogates(r)
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
		default:
			fmt.Fprintf(&out, `\u%04x`, r)
		}
		i += size
	}
	return out.Bytes()
}

func utf16Surrogates(r rune) (rune, rune) {
	r -= 0x10000
	return 0xd800 + (r>>10)&0x3ff, 0xdc00 + r&0x3ff
}
