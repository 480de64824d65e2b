package passport

import (
	"strings"
	"testing"
)

// TestParseSPCNumbers: an SPC table resolves each code to its numbers and
// ranges; a malformed table is refused whole, saying where.
func TestParseSPCNumbers(t *testing.T) {
	spcs, err := ParseSPCNumbers([]byte(`{"1234": ["12025550100,100", "18001231234"], "99": ["15550000000"]}`))
	if err != nil {
		t.Fatal(err)
	}
	l, ok := spcs("1234")
	if !ok || !l.Covers("12025550199") || l.Covers("12025550200") || !l.Covers("18001231234") {
		t.Fatalf("SPC 1234: %v, %v", l, ok)
	}
	if _, ok := spcs("4321"); ok {
		t.Fatal("an SPC not in the table resolved")
	}
	for _, c := range []struct{ in, want string }{
		{`{"1234": ["12025550100,1"]}`, "at least 2"},
		{`{"1234": ["12-025"]}`, "SPC 1234"},
		{`{"1234": [], "1234": ["1"]}`, "duplicate key"},
		{`{"1234": ["1"]} {}`, "more than one value"},
		{`["1234"]`, "cannot unmarshal"},
		{strings.Repeat(" ", MaxSPCNumbers+1), "at most"},
	} {
		if _, err := ParseSPCNumbers([]byte(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%.40q: %v, want %q", c.in, err, c.want)
		}
	}
}

func FuzzParseSPCNumbers(f *testing.F) {
	f.Add([]byte(`{"1234": ["12025550100,100", "18001231234"]}`))
	f.Add([]byte(`{"1": ["1,2"], "2": ["#*"]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		spcs, err := ParseSPCNumbers(b)
		if err == nil && spcs == nil {
			t.Fatal("no error and no table")
		}
	})
}
