package idempotency

import (
	"errors"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/log/problem"
)

// TestParseKey quotes RFC 8941's sf-string grammar: DQUOTE *chr DQUOTE,
// chr = unescaped (%x20-21 / %x23-5B / %x5D-7E) / "\" (DQUOTE / "\").
func TestParseKey(t *testing.T) {
	for _, c := range []struct {
		lines []string
		want  string // "" means refused
	}{
		{[]string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`}, "8e03978e-40d5-43e8-bc93-6894a57f9324"},
		{[]string{`  "a b"  `}, "a b"},                  // leading and trailing SP are discarded
		{[]string{`"say \"hi\" \\o/"`}, `say "hi" \o/`}, // the two escapes
		{[]string{`"` + strings.Repeat("k", MaxKeyLen) + `"`}, strings.Repeat("k", MaxKeyLen)},
		{nil, ""},                         // absent: the caller checks first
		{[]string{`"a"`, `"a"`}, ""},      // sent twice
		{[]string{`"a", "b"`}, ""},        // a list, not an item
		{[]string{`8e03978e`}, ""},        // a token, not a string
		{[]string{`""`}, ""},              // empty
		{[]string{`"`}, ""},               // no closing quote
		{[]string{`"abc`}, ""},            // no closing quote
		{[]string{`"a\"`}, ""},            // the closing quote escaped
		{[]string{`"a\n"`}, ""},           // an escape other than \" and \\
		{[]string{`"a";p=1`}, ""},         // parameters
		{[]string{`"a"x`}, ""},            // trailing bytes
		{[]string{"\"a\tb\""}, ""},        // a control character
		{[]string{"\"caf\xc3\xa9\""}, ""}, // not ASCII
		{[]string{`"` + strings.Repeat("k", MaxKeyLen+1) + `"`}, ""}, // too long
		{[]string{`:YWJj:`}, ""},                                     // a byte sequence
	} {
		got, err := ParseKey(c.lines)
		if c.want == "" {
			if err == nil || !errors.Is(err, problem.ErrBadRequest) {
				t.Errorf("ParseKey(%q) = %q, %v; want a bad request", c.lines, got, err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseKey(%q) = %q, %v; want %q", c.lines, got, err, c.want)
		}
		if back, err := ParseKey([]string{FormatKey(got)}); err != nil || back != got {
			t.Errorf("FormatKey(%q) = %s does not parse back: %q, %v", got, FormatKey(got), back, err)
		}
	}
}

// FuzzParseKey: ParseKey never panics, refuses with a bad request, and
// what it accepts is 1 to MaxKeyLen printable ASCII characters that
// FormatKey writes back as a field ParseKey reads the same.
func FuzzParseKey(f *testing.F) {
	for _, s := range []string{`"8e03978e-40d5-43e8-bc93-6894a57f9324"`, `"a\"b\\c"`, `""`, `"a";p`, ` "x" `, `"\`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, field string) {
		key, err := ParseKey([]string{field})
		if err != nil {
			if !errors.Is(err, problem.ErrBadRequest) {
				t.Fatalf("refusal of %q is not a bad request: %v", field, err)
			}
			return
		}
		if len(key) == 0 || len(key) > MaxKeyLen {
			t.Fatalf("%q: key of %d bytes", field, len(key))
		}
		for i := 0; i < len(key); i++ {
			if key[i] < 0x20 || key[i] > 0x7e {
				t.Fatalf("%q: key %q holds byte %#x", field, key, key[i])
			}
		}
		if back, err := ParseKey([]string{FormatKey(key)}); err != nil || back != key {
			t.Fatalf("%q: FormatKey(%q) reads back as %q, %v", field, key, back, err)
		}
	})
}
