package stict

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
	cbasn1 "golang.org/x/crypto/cryptobyte/asn1"
)

// OIDJWTClaimConstraints is id-pe-JWTClaimConstraints (RFC 8226 §8).
var OIDJWTClaimConstraints = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 27}

// OIDEnhancedJWTClaimConstraints is id-pe-eJWTClaimConstraints (RFC 9118).
var OIDEnhancedJWTClaimConstraints = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 7, 1, 33}

// ErrConstraints is returned, wrapped, for an extension value that is not
// well-formed JWTClaimConstraints or EnhancedJWTClaimConstraints, and for
// a certificate that carries both.
var ErrConstraints = errors.New("malformed JWT claim constraints")

// ClaimValues is one permitted-values entry: if Claim is present in a
// PASSporT, its value must be one of Values.
type ClaimValues struct {
	Claim  string
	Values []string
}

// Constraints are the JWT claim constraints of an STI certificate.
type Constraints struct {
	Enhanced        bool // from OID 33 (mustExclude allowed)
	MustInclude     []string
	PermittedValues []ClaimValues
	MustExclude     []string
}

// Limits of constraints this package accepts.
const (
	maxConstraintsDER = 16 << 10
	maxClaimNames     = 64
	maxClaimValues    = 64
	maxConstraintStr  = 1024
)

// Tags of the constraint components: EXPLICIT, context-specific,
// constructed, so each wraps a whole SEQUENCE (A0 len 30 len …).
var (
	tagMustInclude     = cbasn1.Tag(0).ContextSpecific().Constructed()
	tagPermittedValues = cbasn1.Tag(1).ContextSpecific().Constructed()
	tagMustExclude     = cbasn1.Tag(2).ContextSpecific().Constructed()
)

// ParseJWTClaimConstraints decodes the DER value of a JWTClaimConstraints
// extension (RFC 8226 §8, EXPLICIT TAGS):
//
//	JWTClaimConstraints ::= SEQUENCE {
//	  mustInclude     [0] JWTClaimNames OPTIONAL,
//	  permittedValues [1] JWTClaimPermittedValuesList OPTIONAL }
//	  -- at least one of them present
//	JWTClaimPermittedValuesList ::= SEQUENCE SIZE (1..MAX) OF JWTClaimPermittedValues
//	JWTClaimPermittedValues ::= SEQUENCE {
//	  claim     JWTClaimName,
//	  permitted SEQUENCE SIZE (1..MAX) OF UTF8String }
//	JWTClaimNames ::= SEQUENCE SIZE (1..MAX) OF JWTClaimName
//	JWTClaimName ::= IA5String
//
// It is strict: DER only, no trailing bytes, names IA5String, values
// UTF8String, bounded counts and sizes.
func ParseJWTClaimConstraints(der []byte) (*Constraints, error) {
	return parseConstraints(der, false)
}

// ParseEnhancedJWTClaimConstraints decodes the DER value of an
// EnhancedJWTClaimConstraints extension (RFC 9118 §3, EXPLICIT TAGS):
//
//	EnhancedJWTClaimConstraints ::= SEQUENCE {
//	  mustInclude     [0] JWTClaimNames OPTIONAL,
//	  permittedValues [1] JWTClaimValuesList OPTIONAL,
//	  mustExclude     [2] JWTClaimNames OPTIONAL }
//	  -- at least one of them present
//
// with JWTClaimValuesList shaped as RFC 8226's permitted-values list.
func ParseEnhancedJWTClaimConstraints(der []byte) (*Constraints, error) {
	return parseConstraints(der, true)
}

func parseConstraints(der []byte, enhanced bool) (*Constraints, error) {
	if len(der) > maxConstraintsDER {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrConstraints, len(der), maxConstraintsDER)
	}
	in := cryptobyte.String(der)
	var seq cryptobyte.String
	if !in.ReadASN1(&seq, cbasn1.SEQUENCE) || !in.Empty() {
		return nil, fmt.Errorf("%w: not a DER SEQUENCE (or trailing bytes)", ErrConstraints)
	}
	c := &Constraints{Enhanced: enhanced}
	var err error
	// Components appear at most once each, in tag order (DER SEQUENCE).
	if seq.PeekASN1Tag(tagMustInclude) {
		var el cryptobyte.String
		seq.ReadASN1(&el, tagMustInclude)
		if c.MustInclude, err = readClaimNames(&el, "mustInclude"); err != nil {
			return nil, err
		}
	}
	if seq.PeekASN1Tag(tagPermittedValues) {
		var el cryptobyte.String
		seq.ReadASN1(&el, tagPermittedValues)
		if c.PermittedValues, err = readPermittedValues(&el); err != nil {
			return nil, err
		}
	}
	if enhanced && seq.PeekASN1Tag(tagMustExclude) {
		var el cryptobyte.String
		seq.ReadASN1(&el, tagMustExclude)
		if c.MustExclude, err = readClaimNames(&el, "mustExclude"); err != nil {
			return nil, err
		}
	}
	if !seq.Empty() {
		return nil, fmt.Errorf("%w: unexpected component (tags must be [0], [1]%s, EXPLICIT, in order, each once)", ErrConstraints, map[bool]string{true: ", [2]"}[enhanced])
	}
	if c.MustInclude == nil && c.PermittedValues == nil && c.MustExclude == nil {
		return nil, fmt.Errorf("%w: no component present", ErrConstraints)
	}
	return c, nil
}

// readClaimNames reads an EXPLICIT-tagged JWTClaimNames, the whole of el.
func readClaimNames(el *cryptobyte.String, what string) ([]string, error) {
	var seq cryptobyte.String
	if !el.ReadASN1(&seq, cbasn1.SEQUENCE) || !el.Empty() {
		return nil, fmt.Errorf("%w: %s is not a SEQUENCE (or has trailing bytes)", ErrConstraints, what)
	}
	var names []string
	for !seq.Empty() {
		if len(names) == maxClaimNames {
			return nil, fmt.Errorf("%w: %s has more than %d names", ErrConstraints, what, maxClaimNames)
		}
		n, err := readClaimName(&seq)
		if err != nil {
			return nil, fmt.Errorf("%w: %s name %d: %v", ErrConstraints, what, len(names), err)
		}
		names = append(names, n)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: %s is empty", ErrConstraints, what)
	}
	return names, nil
}

func readClaimName(s *cryptobyte.String) (string, error) {
	n, err := readIA5(s, "claim name")
	if err != nil {
		return "", err
	}
	if len(n) == 0 || len(n) > maxConstraintStr {
		return "", fmt.Errorf("claim name is %d bytes (1 to %d)", len(n), maxConstraintStr)
	}
	return n, nil
}

func readPermittedValues(el *cryptobyte.String) ([]ClaimValues, error) {
	var list cryptobyte.String
	if !el.ReadASN1(&list, cbasn1.SEQUENCE) || !el.Empty() {
		return nil, fmt.Errorf("%w: permittedValues is not a SEQUENCE (or has trailing bytes)", ErrConstraints)
	}
	var out []ClaimValues
	for !list.Empty() {
		if len(out) == maxClaimNames {
			return nil, fmt.Errorf("%w: permittedValues has more than %d claims", ErrConstraints, maxClaimNames)
		}
		var entry, vals cryptobyte.String
		if !list.ReadASN1(&entry, cbasn1.SEQUENCE) {
			return nil, fmt.Errorf("%w: permittedValues entry %d is not a SEQUENCE", ErrConstraints, len(out))
		}
		claim, err := readClaimName(&entry)
		if err != nil {
			return nil, fmt.Errorf("%w: permittedValues entry %d: %v", ErrConstraints, len(out), err)
		}
		if !entry.ReadASN1(&vals, cbasn1.SEQUENCE) || !entry.Empty() {
			return nil, fmt.Errorf("%w: permittedValues entry %d (%s): values are not a SEQUENCE (or trailing bytes)", ErrConstraints, len(out), claim)
		}
		cv := ClaimValues{Claim: claim}
		for !vals.Empty() {
			if len(cv.Values) == maxClaimValues {
				return nil, fmt.Errorf("%w: claim %s has more than %d values", ErrConstraints, claim, maxClaimValues)
			}
			var v cryptobyte.String
			if !vals.ReadASN1(&v, cbasn1.UTF8String) {
				return nil, fmt.Errorf("%w: claim %s value %d is not a UTF8String", ErrConstraints, claim, len(cv.Values))
			}
			if !utf8.Valid(v) || len(v) > maxConstraintStr {
				return nil, fmt.Errorf("%w: claim %s value %d is not valid UTF-8 of at most %d bytes", ErrConstraints, claim, len(cv.Values), maxConstraintStr)
			}
			cv.Values = append(cv.Values, string(v))
		}
		if len(cv.Values) == 0 {
			return nil, fmt.Errorf("%w: claim %s has no values", ErrConstraints, claim)
		}
		out = append(out, cv)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: permittedValues is empty", ErrConstraints)
	}
	return out, nil
}

// Marshal returns the DER encoding of c: EnhancedJWTClaimConstraints if
// c.Enhanced, else JWTClaimConstraints. It refuses what the parsers
// would refuse, so that what it writes parses back to c.
func (c *Constraints) Marshal() ([]byte, error) {
	if err := c.check(); err != nil {
		return nil, err
	}
	names := func(b *cryptobyte.Builder, tag cbasn1.Tag, ns []string) {
		if len(ns) == 0 {
			return
		}
		b.AddASN1(tag, func(b *cryptobyte.Builder) {
			b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, n := range ns {
					b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(n)) })
				}
			})
		})
	}
	var b cryptobyte.Builder
	b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
		names(b, tagMustInclude, c.MustInclude)
		if len(c.PermittedValues) > 0 {
			b.AddASN1(tagPermittedValues, func(b *cryptobyte.Builder) {
				b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
					for _, cv := range c.PermittedValues {
						b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
							b.AddASN1(cbasn1.IA5String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(cv.Claim)) })
							b.AddASN1(cbasn1.SEQUENCE, func(b *cryptobyte.Builder) {
								for _, v := range cv.Values {
									b.AddASN1(cbasn1.UTF8String, func(b *cryptobyte.Builder) { b.AddBytes([]byte(v)) })
								}
							})
						})
					}
				})
			})
		}
		names(b, tagMustExclude, c.MustExclude)
	})
	der, err := b.Bytes()
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrConstraints, err)
	}
	if len(der) > maxConstraintsDER {
		return nil, fmt.Errorf("%w: %d bytes, at most %d", ErrConstraints, len(der), maxConstraintsDER)
	}
	return der, nil
}

// check refuses constraints the parsers would refuse.
func (c *Constraints) check() error {
	if len(c.MustInclude) == 0 && len(c.PermittedValues) == 0 && len(c.MustExclude) == 0 {
		return fmt.Errorf("%w: no component present", ErrConstraints)
	}
	if !c.Enhanced && len(c.MustExclude) > 0 {
		return fmt.Errorf("%w: mustExclude needs EnhancedJWTClaimConstraints (RFC 9118)", ErrConstraints)
	}
	name := func(n string) error {
		if len(n) == 0 || len(n) > maxConstraintStr {
			return fmt.Errorf("%w: claim name is %d bytes (1 to %d)", ErrConstraints, len(n), maxConstraintStr)
		}
		for i := 0; i < len(n); i++ {
			if n[i] > 0x7f {
				return fmt.Errorf("%w: claim name %q is not ASCII", ErrConstraints, n)
			}
		}
		return nil
	}
	for _, ns := range [][]string{c.MustInclude, c.MustExclude} {
		if len(ns) > maxClaimNames {
			return fmt.Errorf("%w: more than %d names", ErrConstraints, maxClaimNames)
		}
		for _, n := range ns {
			if err := name(n); err != nil {
				return err
			}
		}
	}
	if len(c.PermittedValues) > maxClaimNames {
		return fmt.Errorf("%w: more than %d permitted-values claims", ErrConstraints, maxClaimNames)
	}
	for _, cv := range c.PermittedValues {
		if err := name(cv.Claim); err != nil {
			return err
		}
		if len(cv.Values) == 0 || len(cv.Values) > maxClaimValues {
			return fmt.Errorf("%w: claim %s has %d values (1 to %d)", ErrConstraints, cv.Claim, len(cv.Values), maxClaimValues)
		}
		for _, v := range cv.Values {
			if !utf8.ValidString(v) || len(v) > maxConstraintStr {
				return fmt.Errorf("%w: claim %s: a value is not valid UTF-8 of at most %d bytes", ErrConstraints, cv.Claim, maxConstraintStr)
			}
		}
	}
	return nil
}

// Extension returns c as a non-critical certificate extension under the
// OID its kind has.
func (c *Constraints) Extension() (pkix.Extension, error) {
	der, err := c.Marshal()
	if err != nil {
		return pkix.Extension{}, err
	}
	id := OIDJWTClaimConstraints
	if c.Enhanced {
		id = OIDEnhancedJWTClaimConstraints
	}
	return pkix.Extension{Id: id, Value: der}, nil
}

// CertificateConstraints parses the claim constraints of c: nil, nil if it
// has none; an error if either extension is malformed, repeated, or both
// are present: which one governs would be a guess (RFC 9118 counsels
// issuers against including both; its exact wording was not checked for
// this comment).
func CertificateConstraints(c *x509.Certificate) (*Constraints, error) {
	var out *Constraints
	for _, e := range c.Extensions {
		var parse func([]byte) (*Constraints, error)
		switch {
		case e.Id.Equal(OIDJWTClaimConstraints):
			parse = ParseJWTClaimConstraints
		case e.Id.Equal(OIDEnhancedJWTClaimConstraints):
			parse = ParseEnhancedJWTClaimConstraints
		default:
			continue
		}
		if out != nil {
			return nil, fmt.Errorf("%w: the certificate carries more than one claim-constraints extension (ambiguous constraints)", ErrConstraints)
		}
		var err error
		if out, err = parse(e.Value); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// String summarizes c: "mustInclude rcd; permitted rcd (1 value); mustExclude crn".
func (c *Constraints) String() string {
	s := ""
	add := func(part string) {
		if s != "" {
			s += "; "
		}
		s += part
	}
	if len(c.MustInclude) > 0 {
		add(fmt.Sprintf("mustInclude %v", c.MustInclude))
	}
	for _, cv := range c.PermittedValues {
		add(fmt.Sprintf("permitted %s (%d values)", cv.Claim, len(cv.Values)))
	}
	if len(c.MustExclude) > 0 {
		add(fmt.Sprintf("mustExclude %v", c.MustExclude))
	}
	return s
}
