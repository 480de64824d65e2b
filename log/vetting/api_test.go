package vetting

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/log/problem"
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

// TestAddResponseWire: the form a server encodes is the JSON of the API
// types, byte for byte: a result with its index, flag and receipt, and a
// failed item as its problem alone, single or in a batch, and it reads
// back as what was written.
func TestAddResponseWire(t *testing.T) {
	ok := AddResponse{Index: 0, Duplicate: true, Receipt: "a.b.c"}
	failed := AddResponse{Index: 7, Receipt: "ignored", Problem: &problem.Details{Type: "about:blank", Title: "Overloaded", Status: 503}}
	for _, c := range []struct {
		v, wire any
		want    string
	}{
		{ok, ok.Wire(), `{"index":0,"duplicate":true,"receipt":"a.b.c"}`},
		{failed, failed.Wire(), `{"problem":{"type":"about:blank","title":"Overloaded","status":503}}`},
		{BatchResponse{Entries: []AddResponse{ok, failed}}, BatchResponse{Entries: []AddResponse{ok, failed}}.Wire(),
			`{"entries":[{"index":0,"duplicate":true,"receipt":"a.b.c"},{"problem":{"type":"about:blank","title":"Overloaded","status":503}}]}`},
	} {
		a, err := json.Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		b, err := json.Marshal(c.wire)
		if err != nil {
			t.Fatal(err)
		}
		if string(a) != c.want || string(b) != c.want {
			t.Errorf("Marshal = %s, of Wire %s; want %s", a, b, c.want)
		}
	}
	var back BatchResponse
	b, _ := json.Marshal(BatchResponse{Entries: []AddResponse{ok, failed}}.Wire())
	if err := json.Unmarshal(b, &back); err != nil || len(back.Entries) != 2 || back.Entries[0] != ok || back.Entries[1].Problem == nil || back.Entries[1].Problem.Status != 503 || back.Entries[1].Index != 0 {
		t.Fatalf("read back %+v, %v", back, err)
	}
}
