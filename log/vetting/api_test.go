package vetting

import (
	"strings"
	"testing"
)

// TestParseBatchRequest: the add-batch body is read as strictly as a
// statement: an unknown member, a member given twice (at any depth) or
// anything after the object is refused, not silently resolved.
func TestParseBatchRequest(t *testing.T) {
	for _, c := range []struct {
		in, err string
		n       int
	}{
		{in: `{"statements":["a","b"]}`, n: 2},
		{in: ` {"statements": []} `, n: 0},
		{in: `{"statements":["a"],"statements":["b"]}`, err: `member "statements" appears twice`},
		{in: `{"statements":["a"],"extra":1}`, err: `unknown field "extra"`},
		{in: `{"statements":["a"]}{}`, err: "trailing data"},
		{in: `{"statements":[{"x":1,"x":2}]}`, err: `member "x" appears twice`},
		{in: `{"statements":"a"}`, err: "cannot unmarshal"},
		{in: `{"statements":["a"]`, err: "EOF"},
	} {
		r, err := ParseBatchRequest([]byte(c.in))
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.in, err)
		case c.err == "" && len(r.Statements) != c.n:
			t.Errorf("%s: %d statements, want %d", c.in, len(r.Statements), c.n)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want %q", c.in, err, c.err)
		}
	}
}

func FuzzParseBatchRequest(f *testing.F) {
	for _, s := range []string{`{"statements":["a"]}`, `{"statements":["a"],"statements":[]}`, `{"a":{"b":[{"c":1,"c":2}]}}`, `[{"x":1},{"x":1}]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseBatchRequest(b)
		if err == nil && r == nil {
			t.Fatal("no error and no request")
		}
	})
}
