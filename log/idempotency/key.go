// Package idempotency makes vesperlog's submission endpoints honour the
// Idempotency-Key request header (draft-ietf-httpapi-idempotency-key-header-07):
// a retry that carries the key of an answered request gets that request's
// answer again, without running it again.
//
// The header is an RFC 8941 Structured Field Item whose value is a String
// (Idempotency-Key: "8e03978e-40d5-43e8-bc93-6894a57f9324"); ParseKey
// reads it, and its fuzz test is FuzzParseKey. The request's fingerprint
// is its endpoint and its whole body. With the key of an earlier request:
//
//   - same fingerprint, answered: that answer again (same status and body);
//   - same fingerprint, still being answered: 409 with Retry-After;
//   - another fingerprint: 422, whatever the first request's state;
//   - a malformed key: 400. Without the header nothing changes.
//
// Records live in the backend's storage.State under Dir, named by a hash
// of (endpoint, key), so that every front end on a backend sees them and
// they survive a restart. Create-if-absent takes a key for one request
// (the in-flight marker); Swap replaces the marker by the answer. Only a
// final answer is kept: a 2xx without Retry-After. Any other answer (a
// refused statement, which changed nothing; a 5xx; a batch in which some
// entries were pushed back) drops the marker, so that a retry runs again.
// A record expires TTL after its first request started; a Sweep removes
// expired records, and a request finding one treats it as absent.
package idempotency

import (
	"fmt"
	"strings"

	"github.com/vesperlog/vesperlog/log/problem"
)

// Header is the request header field's name.
const Header = "Idempotency-Key"

// MaxKeyLen bounds a key, in bytes: a UUID is 36.
const MaxKeyLen = 255

// ParseKey returns the key that the header's field lines carry, or an
// error wrapping problem.ErrBadRequest. It is strict: one field line,
// holding one sf-string of 1 to MaxKeyLen characters and nothing else
// (no parameters, no list).
func ParseKey(lines []string) (string, error) {
	if len(lines) != 1 {
		return "", fmt.Errorf("%w: %s must be sent once, not %d times", problem.ErrBadRequest, Header, len(lines))
	}
	// RFC 8941 4.2: discard leading and trailing spaces.
	v := strings.Trim(lines[0], " ")
	if len(v) > 2*MaxKeyLen+2 { // each character escaped, and the quotes
		return "", fmt.Errorf("%w: %s must be 1 to %d characters", problem.ErrBadRequest, Header, MaxKeyLen)
	}
	if len(v) < 2 || v[0] != '"' {
		return "", fmt.Errorf("%w: %s must be a quoted string (RFC 8941 sf-string), such as %s: \"8e03978e-40d5-43e8-bc93-6894a57f9324\"", problem.ErrBadRequest, Header, Header)
	}
	var b strings.Builder
	for i := 1; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '\\':
			i++
			if i == len(v) || (v[i] != '"' && v[i] != '\\') {
				return "", fmt.Errorf("%w: %s: a backslash may escape only '\"' or '\\'", problem.ErrBadRequest, Header)
			}
			b.WriteByte(v[i])
		case c == '"':
			if i != len(v)-1 {
				return "", fmt.Errorf("%w: %s: nothing may follow the closing quote (no parameters)", problem.ErrBadRequest, Header)
			}
			if b.Len() == 0 || b.Len() > MaxKeyLen {
				return "", fmt.Errorf("%w: %s must be 1 to %d characters, not %d", problem.ErrBadRequest, Header, MaxKeyLen, b.Len())
			}
			return b.String(), nil
		case c < 0x20 || c > 0x7e:
			return "", fmt.Errorf("%w: %s may hold only printable ASCII", problem.ErrBadRequest, Header)
		default:
			b.WriteByte(c)
		}
	}
	return "", fmt.Errorf("%w: %s: the string has no closing quote", problem.ErrBadRequest, Header)
}

// FormatKey returns key as the header's value, an sf-string; key must be
// what ParseKey accepts.
func FormatKey(key string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(key) + `"`
}
