package stict

import (
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"strings"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDTNAuthList is id-pe-TNAuthList (RFC 8226 §9).
var OIDTNAuthList = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 26}

// ErrTNAuthList is returned, wrapped, for an extension value that is not a
// well-formed TNAuthList.
var ErrTNAuthList = errors.New("malformed TNAuthList")

// TNEntry is one entry of a TNAuthList: exactly one field is set.
type TNEntry struct {
	SPC   string   // service provider code
	Range *TNRange // a range of telephone numbers
	One   string   // one telephone number
}

// TNRange is count consecutive telephone numbers from Start.
type TNRange struct {
	Start string
	Count int64
}

// TNAuthList is the telephone-number authorization of an STI certificate.
type TNAuthList []TNEntry

// Limits of a TNAuthList this log accepts.
const (
	maxTNEntries = 1000
	maxSPC       = 64
	maxTN        = 15
)

// Tags of the TNEntry CHOICE: EXPLICIT, context-specific, constructed.
var (
	tagSPC   = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagRange = cbasn1.Tag(1).ContextSpecific().Constructed()
	tagOne   = cbasn1.Tag(2).ContextSpecific().Constructed()
)

// ParseTNAuthList decodes the DER value of a TNAuthList extension
// (RFC 8226 §9):
//
//	TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
//	TNEntry ::= CHOICE {
//	  spc   [0] ServiceProviderCode,     -- IA5String
//	  range [1] TelephoneNumberRange,    -- SEQUENCE { start TelephoneNumber, count INTEGER (2..MAX), ... }
//	  one   [2] TelephoneNumber }        -- IA5String (SIZE (1..15)) (FROM ("0123456789#*"))
//
// It is strict: DER only, no trailing bytes, every constraint checked.
// Certificates in the wild that get this wrong (a missing [0] tag, a
// PrintableString, a truncated length) are refused, with the reason.
func ParseTNAuthList(der []byte) (TNAuthList, error) {
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: not a DER SEQUENCE (or trailing bytes)", ErrTNAuthList)
	}
	var out TNAuthList
	for !seq.Empty() {
		if len(out) == maxTNEntries {
			return nil, fmt.Errorf("%w: more than %d entries", ErrTNAuthList, maxTNEntries)
		}
		var el cryptobyte.String
		var tag cbasn1.Tag
		if !seq.ReadAnyASN1(&el, &tag) {
			return nil, fmt.Errorf("%w: entry %d is not DER", ErrTNAuthList, len(out))
		}
		var e TNEntry
		var err error
		switch tag {
		case tagSPC:
			e.SPC, err = readIA5(&el, "spc")
			if err == nil && (len(e.SPC) == 0 || len(e.SPC) > maxSPC) {
				err = fmt.Errorf("spc is %d characters (1 to %d)", len(e.SPC), maxSPC)
			}
		case tagRange:
			var r cryptobyte.String
			if !el.ReadASN1(&r, cbasn1.SEQUENCE) {
				err = errors.New("range is not a SEQUENCE")
				break
			}
			e.Range = &TNRange{}
			if e.Range.Start, err = readIA5(&r, "range start"); err == nil {
				err = checkTN(e.Range.Start)
			}
			if err != nil {
				break
			}
			var count big.Int
			if !r.ReadASN1Integer(&count) {
				err = errors.New("range count is not an INTEGER")
				break
			}
			if !count.IsInt64() || count.Int64() < 2 {
				err = fmt.Errorf("range count %s is not at least 2", count.String())
				break
			}
			e.Range.Count = count.Int64()
			// "..." in the ASN.1: later fields are allowed and ignored.
		case tagOne:
			if e.One, err = readIA5(&el, "one"); err == nil {
				err = checkTN(e.One)
			}
		default:
			err = fmt.Errorf("unknown tag %#x (want [0] spc, [1] range or [2] one, EXPLICIT)", uint8(tag))
		}
		if err == nil && !el.Empty() {
			err = errors.New("trailing bytes inside the entry")
		}
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrTNAuthList, len(out), err)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no entries", ErrTNAuthList)
	}
	return out, nil
}

func readIA5(s *cryptobyte.String, what string) (string, error) {
	var v cryptobyte.String
	if !s.ReadASN1(&v, cbasn1.IA5String) {
		return "", fmt.Errorf("%s is not an IA5String", what)
	}
	for _, c := range v {
		if c > 0x7f {
			return "", fmt.Errorf("%s has a non-ASCII byte", what)
		}
	}
	return string(v), nil
}

// TNAuthListOf makes a TNAuthList of telephone numbers and "START,COUNT"
// ranges, written as people give them (command lines, an SPC table), and
// checked as ParseTNAuthList checks a certificate's.
func TNAuthListOf(items []string) (TNAuthList, error) {
	var l TNAuthList
	for _, it := range items {
		start, count, isRange := strings.Cut(it, ",")
		if !isRange {
			l = append(l, TNEntry{One: it})
			continue
		}
		n, err := strconv.ParseInt(count, 10, 64)
		if err != nil || n < 2 {
			return nil, fmt.Errorf("range %q: the count must be a number of at least 2", it)
		}
		l = append(l, TNEntry{Range: &TNRange{Start: start, Count: n}})
	}
	der, err := l.Marshal()
	if err != nil {
		return nil, err
	}
	return ParseTNAuthList(der)
}

func checkTN(tn string) error {
	if len(tn) == 0 || len(tn) > maxTN {
		return fmt.Errorf("telephone number %q is %d digits (1 to %d)", tn, len(tn), maxTN)
	}
	if strings.Trim(tn, "0123456789#*") != "" {
		return fmt.Errorf("telephone number %q has characters other than 0-9, # and *", tn)
	}
	return nil
}

// Marshal returns the DER encoding of l (used to make test certificates).
func (l TNAuthList) Marshal() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		for _, e := range l {
			switch {
			case e.SPC != "":
				b.AddASN1(tagSPC, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.SPC)) })
				})
			case e.Range != nil:
				b.AddASN1(tagRange, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.Range.Start)) })
						b.AddASN1Int64(e.Range.Count)
					})
				})
			default:
				b.AddASN1(tagOne, func(b *cryptobyte.Builder) {
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(e.One)) })
				})
			}
		}
	})
	return b.Bytes()
}

// Covers says whether l authorizes telephone number tn (by a single
// number or a range; an SPC covers numbers only through the ecosystem's
// number registries, which this log does not consult).
func (l TNAuthList) Covers(tn string) bool {
	for _, e := range l {
		switch {
		case e.One == tn:
			return true
		case e.Range != nil && len(e.Range.Start) == len(tn):
			start, ok1 := new(big.Int).SetString(e.Range.Start, 10)
			n, ok2 := new(big.Int).SetString(tn, 10)
			if ok1 && ok2 && n.Cmp(start) >= 0 && n.Cmp(new(big.Int).Add(start, big.NewInt(e.Range.Count))) < 0 {
				return true
			}
		}
	}
	return false
}

// HasSPC says whether l names service provider code spc.
func (l TNAuthList) HasSPC(spc string) bool {
	for _, e := range l {
		if e.SPC == spc {
			return true
		}
	}
	return false
}

// Overlaps says whether l authorizes any of the count numbers from start,
// by a single number or a range (of numbers of the same length).
func (l TNAuthList) Overlaps(start string, count int64) bool {
	s, ok := new(big.Int).SetString(start, 10)
	if !ok || count <= 0 {
		return false
	}
	end := new(big.Int).Add(s, big.NewInt(count)) // exclusive
	in := func(tn string, n int64) bool {
		a, ok := new(big.Int).SetString(tn, 10)
		if !ok || len(tn) != len(start) {
			return false
		}
		b := new(big.Int).Add(a, big.NewInt(n))
		return a.Cmp(end) < 0 && b.Cmp(s) > 0
	}
	for _, e := range l {
		switch {
		case e.One != "" && in(e.One, 1):
			return true
		case e.Range != nil && in(e.Range.Start, e.Range.Count):
			return true
		}
	}
	return false
}

// String summarizes l: "spc:1234 range:12025550100+100 tn:18001231234".
func (l TNAuthList) String() string {
	var parts []string
	for _, e := range l {
		switch {
		case e.SPC != "":
			parts = append(parts, "spc:"+e.SPC)
		case e.Range != nil:
			parts = append(parts, fmt.Sprintf("range:%s+%d", e.Range.Start, e.Range.Count))
		default:
			parts = append(parts, "tn:"+e.One)
		}
	}
	return strings.Join(parts, " ")
}

// SPCResolver returns the numbers a service provider code stands for, from
// the ecosystem's number registries (or a local table of them); false if
// it does not know spc.
type SPCResolver func(spc string) (TNAuthList, bool)

// ErrTNNotCovered is returned, wrapped, when a certificate's TNAuthList does
// not authorize a telephone number.
var ErrTNNotCovered = errors.New("telephone number not authorized by the certificate's TNAuthList")

// Authorize says how l authorizes telephone number tn: "tn 12025550100",
// "range 12025550100+100", or, through an SPC entry that spcs resolves,
// "spc 1234 → range 12025550100+100". It returns ErrTNNotCovered if no
// entry covers tn; when l has SPC entries that spcs (which may be nil)
// cannot resolve, the error says a number table is needed.
func (l TNAuthList) Authorize(tn string, spcs SPCResolver) (how string, err error) {
	if err := checkTN(tn); err != nil {
		return "", fmt.Errorf("%w: %v", ErrTNNotCovered, err)
	}
	if how, ok := l.match(tn); ok {
		return how, nil
	}
	var unresolved []string
	for _, e := range l {
		if e.SPC == "" {
			continue
		}
		var nums TNAuthList
		ok := false
		if spcs != nil {
			nums, ok = spcs(e.SPC)
		}
		if !ok {
			unresolved = append(unresolved, e.SPC)
			continue
		}
		// A registry's numbers are numbers: SPCs in them are not followed.
		if how, ok := nums.match(tn); ok {
			return "spc " + e.SPC + " → " + how, nil
		}
	}
	if len(unresolved) > 0 {
		return "", fmt.Errorf("%w: %s is not in %s, and SPC %s needs a table of its numbers (-spc-numbers FILE)", ErrTNNotCovered, tn, l, strings.Join(unresolved, ", "))
	}
	return "", fmt.Errorf("%w: %s is not in %s", ErrTNNotCovered, tn, l)
}

// match finds the one or range entry of l that covers tn.
func (l TNAuthList) match(tn string) (string, bool) {
	for _, e := range l {
		if e.SPC != "" {
			continue
		}
		if TNAuthList([]TNEntry{e}).Covers(tn) {
			if e.Range != nil {
				return fmt.Sprintf("range %s+%d", e.Range.Start, e.Range.Count), true
			}
			return "tn " + e.One, true
		}
	}
	return "", false
}
