package passport

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/receipts"
)

// maxFuture is how far in the future an iat may be (clock skew).
const maxFuture = 60 * time.Second

// InclusionProver proves an SCT's entry is in its log (client.SCTProver
// implements it); nil in Options means offline.
type InclusionProver interface {
	ProveSCT(ctx context.Context, log stict.CTLog, leafIndex uint64, merkleTreeLeaf []byte) (check string, err error)
}

// Options of Verify.
type Options struct {
	Now                time.Time     // zero: time.Now()
	Freshness          time.Duration // zero: DefaultFreshness
	Trust              *Trust        // roots, CT logs, required SCTs (from TrustFromConfiguration)
	Original           *PASSporT     // required iff ppt "rsp"
	Disclosures        map[string]Disclosure
	SPCs               stict.SPCResolver
	RequireCommitments bool
	// Online, if set, proves each SCT's entry in its log: for audits,
	// not the call path (a verifier "MUST NOT fetch proofs on the call
	// path", draft-ietf-stir-certificate-transparency).
	Online InclusionProver
	// FetchX5U, if set, fetches the chain of a PASSporT without x5c. It
	// is never called when x5c is present; servers leave it nil (SSRF).
	FetchX5U func(ctx context.Context, url string) ([][]byte, error)
}

// Result is a verified PASSporT.
type Result struct {
	PASSporT   *PASSporT
	Identity   *IdentityHeader // nil for a bare PASSporT
	Leaf       *x509.Certificate
	TNAuthList stict.TNAuthList
	SCTs       []stict.VerifiedSCT
	Checks     []string // one line per passed check, as receipts.Verified
}

// Trust is what Verify trusts: the STI roots, the STI-CT logs whose SCTs
// count, how many distinct ones a certificate needs (0 means 1), and the
// receipts trust (witness policies) the online check uses.
type Trust struct {
	Roots        *stict.Roots
	Logs         []stict.CTLog
	RequiredSCTs int
	Receipts     receipts.Trust
}

// TrustFromConfiguration builds a Trust from a pinned configuration whose
// sti member is set: its roots, its ct_logs (each a type-0x05 vkey of a
// log in logs), required_scts, and, if it has a witness policy, its
// receipts trust.
func TrustFromConfiguration(c *receipts.Configuration) (*Trust, error) {
	if c == nil || c.STI == nil {
		return nil, errors.New("transparency configuration: no sti member (STI roots and CT logs)")
	}
	var pemRoots []byte
	for i, r := range c.STI.Roots {
		der, err := base64.StdEncoding.DecodeString(r)
		if err != nil {
			return nil, fmt.Errorf("transparency configuration: sti root %d: %w", i, err)
		}
		pemRoots = append(pemRoots, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	roots, err := stict.ParseRoots(pemRoots)
	if err != nil {
		return nil, fmt.Errorf("transparency configuration: sti roots: %w", err)
	}
	t := &Trust{Roots: roots, RequiredSCTs: c.STI.RequiredSCTs}
	for _, origin := range c.STI.CTLogs {
		i := slices.IndexFunc(c.Logs, func(l receipts.LogConfiguration) bool { return l.Origin == origin })
		if i < 0 {
			return nil, fmt.Errorf("transparency configuration: sti ct_logs names %q, which is not in logs", origin)
		}
		l, err := stict.CTLogFromVKey(origin, c.Logs[i].VKey, c.Logs[i].URL)
		if err != nil {
			return nil, fmt.Errorf("transparency configuration: ct log %q: %w", origin, err)
		}
		t.Logs = append(t.Logs, l)
	}
	if t.RequiredSCTs < 0 || t.RequiredSCTs > len(t.Logs) || len(t.Logs) == 0 {
		return nil, fmt.Errorf("transparency configuration: required_scts %d with %d CT logs", t.RequiredSCTs, len(t.Logs))
	}
	if c.WitnessPolicy != "" {
		if t.Receipts, err = c.Trust(); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// Verify checks a PASSporT, or an Identity header value carrying one, as a
// called party's verification service does, in this order, each failure
// wrapped in its own sentinel (errors.go; Check names it):
//
//	parse (ErrMalformed) → header: alg ES256, typ passport, ppt known and
//	consistent with the claims, x5c present (ErrHeader) → signature by the
//	x5c leaf (ErrSignature) → iat within o.Freshness, not more than 60 s
//	ahead (ErrStale) → chain to o.Trust's roots (ErrChain) → TNAuthList
//	authorizes orig.tn, or every dest.tn for rsp (ErrTNNotCovered) → claim
//	constraints (ErrConstraint, ErrCommitment) → embedded SCTs of trusted
//	STI-CT logs (ErrSCT) → inclusion, if o.Online (ErrNotIncluded) → rsp
//	orig and dest equal the original's (ErrRSPMismatch).
//
// Call pattern:
//
//	res, err := passport.Verify(ctx, token, passport.Options{Trust: trust})
//	if err != nil { fmt.Println(passport.Check(err), err) }
func Verify(ctx context.Context, token string, o Options) (*Result, error) {
	res, err := verify(ctx, token, o)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// verify is Verify, but on failure it also returns the Result so far,
// whose Checks are those that passed (for VerifyRequest's answer).
func verify(ctx context.Context, token string, o Options) (*Result, error) {
	p, ih, err := ParseAny(token)
	if err != nil {
		return nil, err
	}
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	res := &Result{PASSporT: p, Identity: ih}
	add := func(format string, a ...any) { res.Checks = append(res.Checks, fmt.Sprintf(format, a...)) }

	if err := checkHeader(p, ih, o); err != nil {
		return res, err
	}
	form := "RFC 8225 §9 canonical JSON"
	if !p.Header.Canonical {
		form = "not in RFC 8225 §9 canonical JSON (accepted: the signature covers the bytes sent)"
	}
	ppt := p.Header.PPT
	if ppt == "" {
		ppt = "none (base PASSporT)"
	}
	add("header: alg ES256, typ passport, ppt %s, %s", ppt, form)
	if ih != nil && ih.Info == "" {
		add("Identity header has no info parameter (x5c carries the chain)")
	}

	x5c := p.Header.X5C
	if len(x5c) == 0 {
		// checkHeader allowed this only with FetchX5U and an x5u.
		if x5c, err = o.FetchX5U(ctx, p.Header.X5U); err != nil {
			return res, fmt.Errorf("%w: fetching x5u %s: %v", ErrChain, p.Header.X5U, err)
		}
		if len(x5c) == 0 || len(x5c) > stict.MaxChain {
			return res, fmt.Errorf("%w: x5u %s gave %d certificates", ErrChain, p.Header.X5U, len(x5c))
		}
		add("x5u: fetched %d certificates from %s", len(x5c), p.Header.X5U)
	}
	if err := checkSignature(p, x5c[0]); err != nil {
		return res, err
	}
	add("signature: ES256 by the x5c leaf's key")

	fresh := o.Freshness
	if fresh <= 0 {
		fresh = DefaultFreshness
	}
	iat := time.Unix(p.Claims.IAT, 0)
	switch age := now.Sub(iat); {
	case age > fresh:
		return res, fmt.Errorf("%w: iat %d is %s old, the window is %s (RFC 8224 §6.2)", ErrStale, p.Claims.IAT, age.Round(time.Second), fresh)
	case -age > maxFuture:
		return res, fmt.Errorf("%w: iat %d is %s in the future (at most %s)", ErrStale, p.Claims.IAT, (-age).Round(time.Second), maxFuture)
	default:
		add("freshness: iat %s, %s from now, window %s", iat.UTC().Format(time.RFC3339), age.Round(time.Second), fresh)
	}

	if o.Trust == nil || o.Trust.Roots == nil {
		return res, fmt.Errorf("%w: no trusted STI roots configured", ErrChain)
	}
	v, err := stict.ValidateChain(x5c, o.Trust.Roots, now, false)
	switch {
	case errors.Is(err, stict.ErrTNAuthList):
		return res, fmt.Errorf("%w: %w", ErrTNNotCovered, err)
	case errors.Is(err, stict.ErrConstraints):
		return res, fmt.Errorf("%w: %w", ErrConstraint, err)
	case err != nil:
		return res, fmt.Errorf("%w: %w", ErrChain, err)
	}
	res.Leaf, res.TNAuthList = v.Leaf, v.TNAuthList
	add("chain: %s, to STI root %s, valid until %s", v.Leaf.Subject.CommonName, v.Chain[len(v.Chain)-1].Subject.CommonName, v.Leaf.NotAfter.UTC().Format(time.RFC3339))
	// RFC 9060 delegation (the issuer's TNAuthList encompassing the
	// leaf's) is not checked yet: say so, rather than imply it.
	add("issuer TNAuthList not compared (RFC 9060 delegation not checked)")

	lines, err := checkTN(p, v.TNAuthList, o.SPCs)
	if err != nil {
		return res, err
	}
	res.Checks = append(res.Checks, lines...)

	lines, err = checkConstraints(p, v.Constraints, o)
	if err != nil {
		return res, err
	}
	res.Checks = append(res.Checks, lines...)

	required := o.Trust.RequiredSCTs
	if required <= 0 {
		required = 1
	}
	scts, ignored, err := stict.VerifyEmbeddedSCTs(v.Leaf, v.Chain[1], o.Trust.Logs, required, now)
	for _, l := range ignored {
		add("scts: %s", l)
	}
	if err != nil {
		return res, fmt.Errorf("%w: %w", ErrSCT, err)
	}
	res.SCTs = scts
	for _, s := range scts {
		idx := "no leaf_index"
		if s.HasLeafIndex {
			idx = fmt.Sprintf("leaf_index %d", s.LeafIndex)
		}
		add("scts: SCT of %s at %s, %s", s.Log.Origin, time.UnixMilli(int64(s.Timestamp)).UTC().Format(time.RFC3339), idx)
	}

	if o.Online != nil {
		proved := 0
		for _, s := range scts {
			if !s.HasLeafIndex {
				continue
			}
			line, err := o.Online.ProveSCT(ctx, s.Log, s.LeafIndex, s.Leaf)
			if err != nil {
				return res, fmt.Errorf("%w: %s entry %d: %w", ErrNotIncluded, s.Log.Origin, s.LeafIndex, err)
			}
			res.Checks = append(res.Checks, line)
			proved++
		}
		if proved == 0 {
			return res, fmt.Errorf("%w: no SCT of a trusted log carries a leaf_index (static-ct-api) to prove", ErrNotIncluded)
		}
	}

	if p.Header.PPT == "rsp" {
		if err := checkRSP(p, o.Original); err != nil {
			return res, err
		}
		add("rsp: orig and dest equal the original PASSporT's")
	}
	return res, nil
}

// knownPPT are the PASSporT extensions this verifier understands.
var knownPPT = map[string]bool{"": true, "shaken": true, "rcd": true, "rsp": true}

func checkHeader(p *PASSporT, ih *IdentityHeader, o Options) error {
	h := p.Header
	switch {
	case h.Alg != string(jose.ES256):
		return fmt.Errorf("%w: alg %q, only ES256 is accepted (RFC 8225 §4.2, RFC 8588)", ErrHeader, h.Alg)
	case h.Typ != "passport":
		return fmt.Errorf("%w: typ %q, want \"passport\" (RFC 8225 §4.1)", ErrHeader, h.Typ)
	case !knownPPT[h.PPT]:
		return fmt.Errorf("%w: ppt %q is an extension this verifier does not support (shaken, rcd, rsp)", ErrHeader, h.PPT)
	case h.PPT == "shaken" && (p.Claims.Attest == "" || p.Claims.OrigID == ""):
		return fmt.Errorf("%w: ppt shaken needs the attest and origid claims (RFC 8588 §4)", ErrHeader)
	case h.PPT == "rcd" && p.Claims.Other["rcd"] == nil:
		return fmt.Errorf("%w: ppt rcd needs the rcd claim (RFC 9795)", ErrHeader)
	case h.PPT == "rsp" && o.Original == nil:
		return fmt.Errorf("%w: ppt rsp is checked against the original PASSporT, and none was given", ErrHeader)
	case h.PPT != "rsp" && o.Original != nil:
		return fmt.Errorf("%w: an original PASSporT was given, but this one is not ppt rsp", ErrHeader)
	case len(h.X5C) == 0 && (o.FetchX5U == nil || h.X5U == ""):
		return fmt.Errorf("%w: no x5c (draft-wendt-stir-vesper: PASSporTs MUST carry x5c; x5u is not fetched here)", ErrHeader)
	case ih != nil && ih.Info == "" && len(h.X5C) == 0:
		return fmt.Errorf("%w: the Identity header has no info and the PASSporT no x5c", ErrHeader)
	}
	return nil
}

func checkSignature(p *PASSporT, leafDER []byte) error {
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		return fmt.Errorf("%w: the x5c leaf is not a certificate: %v", ErrChain, err)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return fmt.Errorf("%w: the x5c leaf's key is not ECDSA P-256, which ES256 needs", ErrSignature)
	}
	jws, err := jose.ParseSignedCompact(p.Raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSignature, err)
	}
	payload, err := jws.Verify(pub)
	if err != nil {
		return fmt.Errorf("%w: with the x5c leaf's key (%s): %v", ErrSignature, leaf.Subject.CommonName, err)
	}
	if !bytes.Equal(payload, p.payload) {
		return fmt.Errorf("%w: go-jose verified another payload", ErrSignature)
	}
	return nil
}

// checkTN checks that l authorizes orig.tn, or, for rsp (signed by the
// answering party), every dest.tn. With ppt shaken, an SPC that no table
// resolves is accepted: SHAKEN certificates name the carrier, not the
// number, and attestation says what the carrier vouches for.
func checkTN(p *PASSporT, l stict.TNAuthList, spcs stict.SPCResolver) ([]string, error) {
	var tns []string
	what := "orig"
	if p.Header.PPT == "rsp" {
		what = "dest"
		if len(p.Claims.Dest.TN) == 0 {
			return nil, fmt.Errorf("%w: rsp dest has no tn, so the TNAuthList cannot authorize it", ErrTNNotCovered)
		}
		tns = p.Claims.Dest.TN
	} else {
		if p.Claims.Orig.TN == "" {
			return nil, fmt.Errorf("%w: orig is a URI (%s); a TNAuthList authorizes numbers", ErrTNNotCovered, p.Claims.Orig.URI)
		}
		tns = []string{p.Claims.Orig.TN}
	}
	var lines []string
	for _, tn := range tns {
		how, err := l.Authorize(tn, spcs)
		if err == nil {
			lines = append(lines, fmt.Sprintf("tnauthlist: %s %s authorized by %s", what, tn, how))
			continue
		}
		if p.Header.PPT == "shaken" {
			if spc := unresolvedSPC(l, spcs); spc != "" {
				lines = append(lines, fmt.Sprintf("tnauthlist: service-provider certificate (SPC %s), attestation %s; number %s not checked", spc, p.Claims.Attest, tn))
				continue
			}
		}
		return nil, fmt.Errorf("%s: %w", what, err) // err wraps ErrTNNotCovered
	}
	return lines, nil
}

func unresolvedSPC(l stict.TNAuthList, spcs stict.SPCResolver) string {
	for _, e := range l {
		if e.SPC == "" {
			continue
		}
		if spcs == nil {
			return e.SPC
		}
		if _, ok := spcs(e.SPC); !ok {
			return e.SPC
		}
	}
	return ""
}

// checkConstraints applies the certificate's JWT claim constraints
// (RFC 8226 §8, RFC 9118) with the privacy modes of privacy.go.
func checkConstraints(p *PASSporT, c *stict.Constraints, o Options) ([]string, error) {
	if c == nil {
		return []string{"constraints: none in the certificate"}, nil
	}
	var claims map[string]json.RawMessage
	if err := json.Unmarshal(p.payload, &claims); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	var lines []string
	for _, n := range c.MustInclude {
		if claims[n] == nil {
			return nil, fmt.Errorf("%w: the certificate requires claim %s (mustInclude), which is absent", ErrConstraint, n)
		}
	}
	if len(c.MustInclude) > 0 {
		lines = append(lines, fmt.Sprintf("constraints: claims %s present (mustInclude)", strings.Join(c.MustInclude, ", ")))
	}
	for _, n := range c.MustExclude {
		if claims[n] != nil {
			return nil, fmt.Errorf("%w: the certificate forbids claim %s (mustExclude), which is present", ErrConstraint, n)
		}
	}
	if len(c.MustExclude) > 0 {
		lines = append(lines, fmt.Sprintf("constraints: claims %s absent (mustExclude)", strings.Join(c.MustExclude, ", ")))
	}
	for _, cv := range c.PermittedValues {
		d, disclosed := o.Disclosures[cv.Claim]
		var dp *Disclosure
		if disclosed {
			dp = &d
		}
		raw, from := claims[cv.Claim], "claim"
		if raw == nil && disclosed && d.Value != nil {
			raw, from = d.Value, "disclosed value"
		}
		if raw == nil {
			lines = append(lines, fmt.Sprintf("constraints: %s absent, its permitted values do not apply", cv.Claim))
			continue
		}
		vbytes, err := CanonicalJSON(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %v", ErrConstraint, cv.Claim, err)
		}
		m, err := matchPermitted(vbytes, cv.Values, dp)
		switch {
		case m == matchValue:
			lines = append(lines, fmt.Sprintf("constraints: %s %s is a permitted value", cv.Claim, from))
		case m == matchHash:
			lines = append(lines, fmt.Sprintf("constraints: %s %s matches the permitted SHA-256 hash", cv.Claim, from))
		case m == matchCommit:
			lines = append(lines, fmt.Sprintf("constraints: %s %s matches the commitment with the disclosed salt", cv.Claim, from))
		case m == matchCommitNoSalt && o.RequireCommitments:
			return nil, fmt.Errorf("%w: %s is committed and no salt was disclosed (commitments required)", ErrCommitment, cv.Claim)
		case m == matchCommitNoSalt:
			lines = append(lines, fmt.Sprintf("%s: committed, not verifiable without the holder's salt (claim unauthenticated)", cv.Claim))
		case m == matchCommitWrong:
			detail := "does not match the commitment with the disclosed salt"
			if err != nil {
				detail = err.Error()
			}
			return nil, fmt.Errorf("%w: %s %s %s", ErrCommitment, cv.Claim, from, detail)
		default:
			return nil, fmt.Errorf("%w: %s %s is none of the %d permitted values", ErrConstraint, cv.Claim, from, len(cv.Values))
		}
	}
	return lines, nil
}

// checkRSP checks that an rsp PASSporT carries the original's orig and
// dest (draft-wendt-stir-vesper-06 §"Connected Identity"): orig equal,
// dest equal as sets per member.
func checkRSP(p, original *PASSporT) error {
	if original.Header.PPT == "rsp" {
		return fmt.Errorf("%w: the original is itself an rsp PASSporT", ErrRSPMismatch)
	}
	if p.Claims.Orig != original.Claims.Orig {
		return fmt.Errorf("%w: orig %s, the original's %s", ErrRSPMismatch, origString(p.Claims.Orig), origString(original.Claims.Orig))
	}
	set := func(s []string) []string { return slices.Compact(slices.Sorted(slices.Values(s))) }
	if !slices.Equal(set(p.Claims.Dest.TN), set(original.Claims.Dest.TN)) || !slices.Equal(set(p.Claims.Dest.URI), set(original.Claims.Dest.URI)) {
		return fmt.Errorf("%w: dest %s, the original's %s (a retargeted call?)", ErrRSPMismatch, destString(p.Claims.Dest), destString(original.Claims.Dest))
	}
	return nil
}

func destString(d Dest) string {
	var parts []string
	if len(d.TN) > 0 {
		parts = append(parts, "tn "+strings.Join(d.TN, ","))
	}
	if len(d.URI) > 0 {
		parts = append(parts, "uri "+strings.Join(d.URI, ","))
	}
	return strings.Join(parts, " ")
}

func origString(o Orig) string {
	if o.TN != "" {
		return "tn " + o.TN
	}
	return "uri " + o.URI
}
