package stict

import (
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

func mustMarshal(t testing.TB, l TNAuthList) []byte {
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestTNAuthList(t *testing.T) {
	for _, c := range []struct {
		name string
		l    TNAuthList
	}{
		{"spc [0]", TNAuthList{{SPC: "1234"}}},
		{"one [2]", TNAuthList{{One: "12025550101"}}},
		{"range [1]", TNAuthList{{Range: &TNRange{Start: "12025550100", Count: 100}}}},
		{"all three", TNAuthList{{SPC: "1234"}, {Range: &TNRange{Start: "18001231234", Count: 2}}, {One: "*67#"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := ParseTNAuthList(mustMarshal(t, c.l))
			if err != nil || !reflect.DeepEqual(got, c.l) {
				t.Fatalf("ParseTNAuthList = %+v, %v", got, err)
			}
		})
	}
	h := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
	for _, c := range []struct {
		name string
		der  []byte
	}{
		{"empty SEQUENCE (SIZE (1..MAX))", h("3000")},
		{"no [0] tag: a bare IA5String (seen in the wild)", h("30061604" + "31323334")},
		{"PrintableString inside [0] (seen in the wild)", h("3008a0061304" + "31323334")},
		{"implicit [0] instead of EXPLICIT", h("30068004" + "31323334")},
		{"truncated length (seen in the wild)", h("3008a0061605" + "31323334")},
		{"trailing bytes after the SEQUENCE", append(mustMarshal(t, TNAuthList{{SPC: "1"}}), 0)},
		{"unknown tag [3]", h("3008a3061604" + "31323334")},
		{"range count 1 (INTEGER (2..MAX))", h("300fa10d300b1606" + "313230323535" + "020101")},
		{"telephone number of 16 digits", mustMarshal(t, TNAuthList{{One: "1234567890123456"}})},
		{"telephone number with a letter", mustMarshal(t, TNAuthList{{One: "1202555010A"}})},
		{"empty telephone number", mustMarshal(t, TNAuthList{{Range: &TNRange{Start: "", Count: 5}}})},
		{"BER indefinite length", h("3080a0061604" + "313233340000")},
		{"not a SEQUENCE", h("0400")},
	} {
		t.Run(c.name, func(t *testing.T) {
			if l, err := ParseTNAuthList(c.der); !errors.Is(err, ErrTNAuthList) {
				t.Fatalf("ParseTNAuthList = %+v, %v; want ErrTNAuthList", l, err)
			}
		})
	}
}

func TestCovers(t *testing.T) {
	l := TNAuthList{{Range: &TNRange{Start: "12025550100", Count: 100}}, {One: "18001231234"}, {SPC: "1234"}}
	for tn, want := range map[string]bool{
		"12025550100": true, "12025550199": true, "12025550200": false, "1202555010": false,
		"18001231234": true, "18001231235": false,
	} {
		if l.Covers(tn) != want {
			t.Errorf("Covers(%s) = %v", tn, !want)
		}
	}
	if !l.HasSPC("1234") || l.HasSPC("9999") {
		t.Error("HasSPC")
	}
}

func FuzzParseTNAuthList(f *testing.F) {
	f.Add(mustMarshal(f, TNAuthList{{SPC: "1234"}, {Range: &TNRange{Start: "18001231234", Count: 2}}, {One: "12025550101"}}))
	f.Add([]byte{0x30, 0x00})
	f.Fuzz(func(t *testing.T, der []byte) {
		l, err := ParseTNAuthList(der)
		if err != nil {
			return
		}
		again, err := ParseTNAuthList(mustMarshal(t, l))
		if err != nil || !reflect.DeepEqual(again, l) {
			t.Fatalf("%+v does not round-trip: %+v, %v", l, again, err)
		}
	})
}

// TestTestPKIEncodings keeps the test PKI's hand-written DER honest.
func TestTestPKIEncodings(t *testing.T) {
	l, err := ParseTNAuthList(stitest.TNAuthListDER)
	if err != nil || len(l) != 2 || !l.Covers("12025550150") || !l.Covers("18001231234") {
		t.Fatalf("TNAuthListDER: %+v, %v", l, err)
	}
	if l, err := ParseTNAuthList(stitest.SPCDER); err != nil || !l.HasSPC("1234") {
		t.Fatalf("SPCDER: %+v, %v", l, err)
	}
}

func TestOverlaps(t *testing.T) {
	l := TNAuthList{{Range: &TNRange{Start: "12025550100", Count: 100}}, {One: "18001231234"}, {SPC: "1234"}}
	for _, c := range []struct {
		start string
		count int64
		want  bool
	}{
		{"12025550100", 1, true},
		{"12025550199", 1, true},
		{"12025550200", 1, false},
		{"12025550000", 100, false},
		{"12025550000", 101, true},
		{"18001231230", 5, true},
		{"18001231235", 5, false},
		{"1202555010", 100, false}, // another length
		{"x", 1, false},
	} {
		if got := l.Overlaps(c.start, c.count); got != c.want {
			t.Errorf("Overlaps(%s, %d) = %v", c.start, c.count, got)
		}
	}
	if s := l.String(); s != "range:12025550100+100 tn:18001231234 spc:1234" {
		t.Errorf("String() = %q", s)
	}
}

func TestAuthorize(t *testing.T) {
	l := TNAuthList{{SPC: "1234"}, {Range: &TNRange{Start: "12025550100", Count: 100}}, {One: "18001231234"}, {One: "*67#"}}
	spcs := func(spc string) (TNAuthList, bool) {
		if spc == "1234" {
			return TNAuthList{{Range: &TNRange{Start: "14155550000", Count: 10}}, {SPC: "9999"}}, true
		}
		return nil, false
	}
	for _, c := range []struct {
		tn   string
		spcs SPCResolver
		how  string // "" for ErrTNNotCovered
		msg  string // in the error
	}{
		{"18001231234", nil, "tn 18001231234", ""},
		{"*67#", nil, "tn *67#", ""},
		{"12025550100", nil, "range 12025550100+100", ""},
		{"12025550199", nil, "range 12025550100+100", ""},
		{"12025550200", nil, "", "SPC 1234 needs a table"},           // start+count is outside
		{"1202555010", nil, "", ""},                                  // shorter number: not a range member
		{"1202555010#", nil, "", ""},                                 // '#' is not a range member
		{"14155550009", nil, "", "-spc-numbers"},                     // SPC unresolvable without a table
		{"14155550009", spcs, "spc 1234 → range 14155550000+10", ""}, // through the SPC
		{"14155550010", spcs, "", "is not in"},                       // resolved, not covered
		{"", spcs, "", "1 to 15"},
		{"+12025550100", spcs, "", "characters other than"},
	} {
		how, err := l.Authorize(c.tn, c.spcs)
		if c.how != "" {
			if err != nil || how != c.how {
				t.Errorf("Authorize(%q) = %q, %v; want %q", c.tn, how, err, c.how)
			}
			continue
		}
		if !errors.Is(err, ErrTNNotCovered) || !strings.Contains(err.Error(), c.msg) {
			t.Errorf("Authorize(%q) = %q, %v; want ErrTNNotCovered with %q", c.tn, how, err, c.msg)
		}
	}
	// Without SPC entries the error names no table.
	if _, err := (TNAuthList{{One: "1"}}).Authorize("2", nil); err == nil || strings.Contains(err.Error(), "spc-numbers") {
		t.Errorf("Authorize without SPC = %v", err)
	}
}
