package passport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	cttls "github.com/google/certificate-transparency-go/tls"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

// fixture is a test STI PKI and an STI-CT log signer that issues SCTs in
// process exactly as the log's add-pre-chain does (ValidateChain,
// NewEntry, Signer.SCT), and a Trust that pins both.
type fixture struct {
	p      *stitest.PKI
	log    *stict.Signer
	other  *stict.Signer // a log the trust does not list
	trust  *Trust
	now    time.Time
	nextID uint64
	// leafHashes are the RFC 6962 leaf hashes of the entries the log
	// signed SCTs for, by leaf index.
	leafHashes map[uint64][]byte
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	now := time.Now().Truncate(time.Second)
	p, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{p: p, now: now, trust: &Trust{Roots: roots, RequiredSCTs: 1}}
	for _, s := range []**stict.Signer{&f.log, &f.other} {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		origin := "log.example/stict"
		if s == &f.other {
			origin = "other.example/stict"
		}
		if *s, err = stict.NewSigner(origin, k); err != nil {
			t.Fatal(err)
		}
	}
	l, err := stict.CTLogFromVKey(f.log.Name(), f.log.VKey(), "http://127.0.0.1/stict")
	if err != nil {
		t.Fatal(err)
	}
	f.trust.Logs = []stict.CTLog{l}
	return f
}

// submit returns a stitest submit function for log s.
func (f *fixture) submit(t testing.TB, s *stict.Signer) func([][]byte) ([]byte, error) {
	return func(chain [][]byte) ([]byte, error) {
		v, err := stict.ValidateChain(chain, f.trust.Roots, f.now, true)
		if err != nil {
			return nil, err
		}
		e, err := stict.NewEntry(v, uint64(f.now.Add(-time.Minute).UnixMilli()))
		if err != nil {
			return nil, err
		}
		f.nextID++
		if f.leafHashes == nil {
			f.leafHashes = map[uint64][]byte{}
		}
		f.leafHashes[f.nextID] = e.MerkleLeafHash(f.nextID)
		sct, err := s.SCT(e, f.nextID)
		if err != nil {
			return nil, err
		}
		return cttls.Marshal(*sct)
	}
}

// delegate issues a delegate certificate through the trusted log.
func (f *fixture) delegate(t testing.TB, o stitest.DelegateOptions) *stitest.Cert {
	t.Helper()
	c, err := f.p.IssueDelegate(o, f.submit(t, f.log))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (f *fixture) sign(t testing.TB, c *stitest.Cert, cl Claims, ppt string) string {
	t.Helper()
	tok, err := Sign(cl, SignOptions{Key: c.Key, Chain: f.p.Chain(c), PPT: ppt})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f *fixture) opts() Options { return Options{Now: f.now, Trust: f.trust} }

func (f *fixture) shaken(tn string) Claims {
	return Claims{Orig: Orig{TN: tn}, Dest: Dest{TN: []string{"12155551213"}}, IAT: f.now.Unix(),
		Attest: "A", OrigID: "123e4567-e89b-12d3-a456-426614174000"}
}

func rcdClaims(f *fixture, rcd string) Claims {
	return Claims{Orig: Orig{TN: "12025550101"}, Dest: Dest{TN: []string{"12155551213"}}, IAT: f.now.Unix(),
		Other: map[string]json.RawMessage{"rcd": json.RawMessage(rcd)}}
}

// signRaw signs header and payload JSON as given, with ES256 (or, for
// alg HS256, HMAC with key bytes), for tokens Sign would never make.
func signRaw(t testing.TB, c *stitest.Cert, header, payload string) string {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	var sig []byte
	switch {
	case strings.Contains(header, `"HS256"`):
		m := hmac.New(sha256.New, []byte("secret"))
		m.Write([]byte(in))
		sig = m.Sum(nil)
	case strings.Contains(header, `"none"`):
	default:
		var err error
		if sig, err = (opaque{key: c.Key, pub: c.Key.Public().(*ecdsa.PublicKey)}).SignPayload([]byte(in), "ES256"); err != nil {
			t.Fatal(err)
		}
	}
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func x5cJSON(f *fixture, c *stitest.Cert) string {
	var s []string
	for _, d := range f.p.Chain(c) {
		s = append(s, base64.StdEncoding.EncodeToString(d))
	}
	b, _ := json.Marshal(s)
	return string(b)
}

// TestVerify: what a verification service accepts, with the check lines
// that say why.
func TestVerify(t *testing.T) {
	f := newFixture(t)
	tn := f.delegate(t, stitest.DelegateOptions{Name: "delegate 12025550100+100"})
	spc := f.delegate(t, stitest.DelegateOptions{Name: "SPC 1234", TNAuthList: stitest.SPCDER})
	modes := map[stitest.Mode]*stitest.Cert{}
	for _, m := range []stitest.Mode{stitest.ModeValue, stitest.ModeHash, stitest.ModeCommit} {
		modes[m] = f.delegate(t, stitest.DelegateOptions{Name: fmt.Sprintf("rcd mode %d", m), Extra: []pkix.Extension{stitest.RCDConstraint(m)}})
	}
	answer := f.delegate(t, stitest.DelegateOptions{Name: "answering party", TNAuthList: mustTNAuthList(t, stict.TNAuthList{{One: "12155551213"}})})
	original := f.sign(t, tn, f.shaken("12025550101"), "shaken")
	origP, err := Parse(original)
	if err != nil {
		t.Fatal(err)
	}
	rsp := f.shaken("12025550101")
	rsp.IAT = f.now.Unix() + 5
	commitOpts := f.opts()
	commitOpts.Disclosures = map[string]Disclosure{"rcd": {Salt: stitest.RCDSalt}}
	spcOpts := f.opts()
	spcOpts.SPCs = func(s string) (stict.TNAuthList, bool) {
		return stict.TNAuthList{{Range: &stict.TNRange{Start: "12025550000", Count: 1000}}}, s == "1234"
	}
	rspOpts := f.opts()
	rspOpts.Original = origP
	prover := &fakeProver{}
	onlineOpts := f.opts()
	onlineOpts.Online = prover
	for _, c := range []struct {
		name  string
		token string
		o     Options
		want  []string // substrings of the check lines, in order
	}{
		{"SHAKEN with x5c", original, f.opts(), []string{"ppt shaken, RFC 8225 §9 canonical JSON", "signature: ES256", "freshness", "chain: delegate 12025550100+100", "tnauthlist: orig 12025550101 authorized by range 12025550100+100", "constraints: none", "scts: SCT of log.example/stict"}},
		{"Identity header without info", original + ";alg=ES256;ppt=shaken", f.opts(), []string{"Identity header has no info parameter"}},
		{"Identity header with info", "Identity: " + original + " ; info=<https://cert.example.org/passport.cer> ; ppt=shaken", f.opts(), []string{"header: alg ES256"}},
		{"base PASSporT", f.sign(t, tn, Claims{Orig: Orig{TN: "18001231234"}, Dest: Dest{URI: []string{"sip:bob@example.com"}}, IAT: f.now.Unix() - 59}, ""), f.opts(), []string{"ppt none", "authorized by tn 18001231234"}},
		{"iat 59 s ahead", f.sign(t, tn, Claims{Orig: Orig{TN: "18001231234"}, Dest: Dest{TN: []string{"1"}}, IAT: f.now.Unix() + 59}, ""), f.opts(), []string{"freshness"}},
		{"SPC with SHAKEN (SHAKEN's model)", f.sign(t, spc, f.shaken("14155550100"), "shaken"), f.opts(), []string{"service-provider certificate (SPC 1234), attestation A; number 14155550100 not checked"}},
		{"SPC resolved by a number table", f.sign(t, spc, Claims{Orig: Orig{TN: "12025550999"}, Dest: Dest{TN: []string{"1"}}, IAT: f.now.Unix()}, ""), spcOpts, []string{"spc 1234 → range 12025550000+1000"}},
		{"rcd, transparent value", f.sign(t, modes[stitest.ModeValue], rcdClaims(f, stitest.RCDJSON), "rcd"), f.opts(), []string{"claims rcd present (mustInclude)", "rcd claim is a permitted value"}},
		{"rcd, non-canonical claim JSON", f.sign(t, modes[stitest.ModeValue], rcdClaims(f, `{ "nam" : "Vesper Test Caller" }`), "rcd"), f.opts(), []string{"rcd claim is a permitted value"}},
		{"rcd, hash", f.sign(t, modes[stitest.ModeHash], rcdClaims(f, stitest.RCDJSON), "rcd"), f.opts(), []string{"rcd claim matches the permitted SHA-256 hash"}},
		{"rcd, commitment with salt", f.sign(t, modes[stitest.ModeCommit], rcdClaims(f, stitest.RCDJSON), "rcd"), commitOpts, []string{"matches the commitment with the disclosed salt"}},
		{"rcd, commitment without salt", f.sign(t, modes[stitest.ModeCommit], rcdClaims(f, stitest.RCDJSON), "rcd"), f.opts(), []string{"rcd: committed, not verifiable without the holder's salt (claim unauthenticated)"}},
		{"rsp for the original", f.sign(t, answer, rsp, "rsp"), rspOpts, []string{"tnauthlist: dest 12155551213 authorized by tn 12155551213", "rsp: orig and dest equal"}},
		{"online", original, onlineOpts, []string{"inclusion: proved"}},
		{"non-canonical header (npm jose's order)", signRaw(t, tn, `{"alg":"ES256","typ":"passport","x5c":`+x5cJSON(f, tn)+`}`, `{"orig":{"tn":"12025550101"},"dest":{"tn":["1"]},"iat":`+fmt.Sprint(f.now.Unix())+`}`), f.opts(), []string{"not in RFC 8225 §9 canonical JSON (accepted"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Verify(context.Background(), c.token, c.o)
			if err != nil {
				t.Fatalf("Verify: %v (check %q)", err, Check(err))
			}
			all := strings.Join(res.Checks, "\n")
			at := 0
			for _, w := range c.want {
				i := strings.Index(all[at:], w)
				if i < 0 {
					t.Fatalf("no check line %q after offset %d in:\n%s", w, at, all)
				}
				at += i
			}
			if res.Leaf == nil || len(res.SCTs) != 1 || len(res.TNAuthList) == 0 {
				t.Fatalf("Result = %+v", res)
			}
		})
	}
	// x5u: fetched only when there is no x5c, and only with FetchX5U.
	fetched := 0
	x5uOpts := f.opts()
	x5uOpts.FetchX5U = func(ctx context.Context, url string) ([][]byte, error) {
		fetched++
		if url != "https://cert.example.org/passport.pem" {
			return nil, fmt.Errorf("fetched %s", url)
		}
		return f.p.Chain(tn), nil
	}
	noX5C, err := Sign(f.shaken("12025550101"), SignOptions{Key: tn.Key, NoX5C: true, X5U: "https://cert.example.org/passport.pem", PPT: "shaken"})
	if err != nil {
		t.Fatal(err)
	}
	if res, err := Verify(context.Background(), noX5C, x5uOpts); err != nil || fetched != 1 || !strings.Contains(strings.Join(res.Checks, "\n"), "x5u: fetched 2 certificates") {
		t.Fatalf("x5u: %+v, %v (fetched %d)", res, err, fetched)
	}
	if _, err := Verify(context.Background(), original, x5uOpts); err != nil || fetched != 1 {
		t.Fatalf("x5u fetched with x5c present: %v (fetched %d)", err, fetched)
	}
	if _, err := Verify(context.Background(), noX5C, f.opts()); !errors.Is(err, ErrHeader) {
		t.Fatalf("no x5c and no FetchX5U: %v", err)
	}
	// The online check got the SCT's own leaf and index.
	if len(prover.got) != 1 || prover.got[0].index != 1 || prover.got[0].log != f.log.Name() {
		t.Fatalf("prover calls = %+v", prover.got)
	}
	// What it got hashes (SHA-256 of 0x00 and it) to the log's leaf hash.
	if h := sha256.Sum256(append([]byte{0}, prover.got[0].leaf...)); string(h[:]) != string(f.leafHashes[1]) {
		t.Errorf("prover got a MerkleTreeLeaf whose hash %x is not the log's %x", h, f.leafHashes[1])
	}
}

type fakeProver struct {
	err error
	got []struct {
		log   string
		index uint64
		leaf  []byte
	}
}

func (p *fakeProver) ProveSCT(ctx context.Context, l stict.CTLog, idx uint64, mtl []byte) (string, error) {
	p.got = append(p.got, struct {
		log   string
		index uint64
		leaf  []byte
	}{l.Origin, idx, mtl})
	if p.err != nil {
		return "", p.err
	}
	return fmt.Sprintf("inclusion: proved entry %d of %s", idx, l.Origin), nil
}

func mustTNAuthList(t testing.TB, l stict.TNAuthList) []byte {
	t.Helper()
	b, err := l.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestVerifyRejects: one row per check a PASSporT can fail, each
// asserting its sentinel and Check's name for it.
func TestVerifyRejects(t *testing.T) {
	f := newFixture(t)
	tn := f.delegate(t, stitest.DelegateOptions{Name: "delegate 12025550100+100"})
	spc := f.delegate(t, stitest.DelegateOptions{Name: "SPC 1234", TNAuthList: stitest.SPCDER})
	value := f.delegate(t, stitest.DelegateOptions{Name: "rcd value", Extra: []pkix.Extension{stitest.RCDConstraint(stitest.ModeValue)}})
	commit := f.delegate(t, stitest.DelegateOptions{Name: "rcd commit", Extra: []pkix.Extension{stitest.RCDConstraint(stitest.ModeCommit)}})
	excl, err := (&stict.Constraints{Enhanced: true, MustExclude: []string{"crn"}}).Extension()
	if err != nil {
		t.Fatal(err)
	}
	exclude := f.delegate(t, stitest.DelegateOptions{Name: "no crn", Extra: []pkix.Extension{excl}})
	untrustedLog, err := f.p.IssueDelegate(stitest.DelegateOptions{Name: "other log"}, f.submit(t, f.other))
	if err != nil {
		t.Fatal(err)
	}
	answer := f.delegate(t, stitest.DelegateOptions{Name: "answering party", TNAuthList: mustTNAuthList(t, stict.TNAuthList{{One: "12155551213"}, {One: "12155559999"}})})
	original, err := Parse(f.sign(t, tn, f.shaken("12025550101"), "shaken"))
	if err != nil {
		t.Fatal(err)
	}
	opts := func(mod func(*Options)) Options {
		o := f.opts()
		if mod != nil {
			mod(&o)
		}
		return o
	}
	shaken := f.sign(t, tn, f.shaken("12025550101"), "shaken")
	iat := fmt.Sprint(f.now.Unix())
	x5c := x5cJSON(f, tn)
	payload := `{"dest":{"tn":["12155551213"]},"iat":` + iat + `,"orig":{"tn":"12025550101"}}`
	withClaims := func(c *stitest.Cert, mod func(*Claims), ppt string) string {
		cl := f.shaken("12025550101")
		if ppt != "shaken" {
			cl.Attest, cl.OrigID = "", ""
		}
		mod(&cl)
		return f.sign(t, c, cl, ppt)
	}
	rspWith := func(mod func(*Claims)) string {
		cl := f.shaken("12025550101")
		mod(&cl)
		return f.sign(t, answer, cl, "rsp")
	}
	withOriginal := opts(func(o *Options) { o.Original = original })
	for _, c := range []struct {
		name  string
		token string
		o     Options
		want  error
		check string
	}{
		{"malformed: not a JWS", "not.a.jws!", opts(nil), ErrMalformed, "parse"},
		{"malformed: compact form", ".." + strings.Split(shaken, ".")[2], opts(nil), ErrMalformed, "parse"},
		{"malformed: quoted iat (RFC 8588bis)", signRaw(t, tn, `{"alg":"ES256","ppt":"shaken","typ":"passport","x5c":`+x5c+`}`, strings.Replace(payload, iat, `"`+iat+`"`, 1)), opts(nil), ErrMalformed, "parse"},
		{"malformed: dest tn not an array", signRaw(t, tn, `{"alg":"ES256","typ":"passport","x5c":`+x5c+`}`, `{"dest":{"tn":"12155551213"},"iat":`+iat+`,"orig":{"tn":"12025550101"}}`), opts(nil), ErrMalformed, "parse"},
		{"alg none", signRaw(t, tn, `{"alg":"none","typ":"passport","x5c":`+x5c+`}`, payload), opts(nil), ErrHeader, "header"},
		{"alg HS256", signRaw(t, tn, `{"alg":"HS256","typ":"passport","x5c":`+x5c+`}`, payload), opts(nil), ErrHeader, "header"},
		{"typ JWT", signRaw(t, tn, `{"alg":"ES256","typ":"JWT","x5c":`+x5c+`}`, payload), opts(nil), ErrHeader, "header"},
		{"crit", signRaw(t, tn, `{"alg":"ES256","crit":["ppt"],"ppt":"shaken","typ":"passport","x5c":`+x5c+`}`, payload), opts(nil), ErrHeader, "header"},
		{"unknown ppt", signRaw(t, tn, `{"alg":"ES256","ppt":"div","typ":"passport","x5c":`+x5c+`}`, payload), opts(nil), ErrHeader, "header"},
		{"ppt shaken without attest", signRaw(t, tn, `{"alg":"ES256","ppt":"shaken","typ":"passport","x5c":`+x5c+`}`, payload), opts(nil), ErrHeader, "header"},
		{"no x5c", signRaw(t, tn, `{"alg":"ES256","typ":"passport","x5u":"https://cert.example.org/a.pem"}`, payload), opts(nil), ErrHeader, "header"},
		{"Identity header ppt differs", shaken + ";info=<https://a.example/c.pem>;ppt=rcd", opts(nil), ErrHeader, "header"},
		{"signature: payload changed", strings.Split(shaken, ".")[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"attest":"A","dest":{"tn":["12155551213"]},"iat":`+iat+`,"orig":{"tn":"12025550102"},"origid":"123e4567-e89b-12d3-a456-426614174000"}`)) + "." + strings.Split(shaken, ".")[2], opts(nil), ErrSignature, "signature"},
		{"signature: another key's x5c", signRaw(t, tn, `{"alg":"ES256","typ":"passport","x5c":`+x5cJSON(f, spc)+`}`, payload), opts(nil), ErrSignature, "signature"},
		{"signature: empty", strings.TrimRight(shaken, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"), opts(nil), ErrSignature, "signature"},
		{"stale iat", shaken, opts(func(o *Options) { o.Now = f.now.Add(61 * time.Second) }), ErrStale, "freshness"},
		{"stale iat, shorter window", shaken, opts(func(o *Options) { o.Now, o.Freshness = f.now.Add(11*time.Second), 10*time.Second }), ErrStale, "freshness"},
		{"future iat", shaken, opts(func(o *Options) { o.Now = f.now.Add(-61 * time.Second) }), ErrStale, "freshness"},
		{"x5c to an untrusted root", withClaims(f.p.Untrusted, func(*Claims) {}, "shaken"), opts(nil), ErrChain, "chain"},
		{"expired certificate", withClaims(f.p.Expired, func(*Claims) {}, "shaken"), opts(nil), ErrChain, "chain"},
		{"TN outside the TNAuthList", withClaims(tn, func(c *Claims) { c.Orig.TN = "12025550200" }, "shaken"), opts(nil), ErrTNNotCovered, "tnauthlist"},
		{"orig is a URI", withClaims(tn, func(c *Claims) { c.Orig = Orig{URI: "sip:alice@example.com"} }, ""), opts(nil), ErrTNNotCovered, "tnauthlist"},
		{"SPC without a number table (not SHAKEN)", withClaims(spc, func(*Claims) {}, ""), opts(nil), ErrTNNotCovered, "tnauthlist"},
		{"SPC table does not cover the number", withClaims(spc, func(*Claims) {}, "shaken"), opts(func(o *Options) {
			o.SPCs = func(string) (stict.TNAuthList, bool) { return stict.TNAuthList{{One: "1"}}, true }
		}), ErrTNNotCovered, "tnauthlist"},
		{"constraint violated: rcd nam changed", withClaims(value, func(c *Claims) {
			c.Other = map[string]json.RawMessage{"rcd": json.RawMessage(`{"nam":"Someone Else"}`)}
		}, "rcd"), opts(nil), ErrConstraint, "constraints"},
		{"constraint violated: mustInclude rcd absent", withClaims(value, func(*Claims) {}, ""), opts(nil), ErrConstraint, "constraints"},
		{"constraint violated: mustExclude crn present", withClaims(exclude, func(c *Claims) { c.Other = map[string]json.RawMessage{"crn": json.RawMessage(`"sales"`)} }, ""), opts(nil), ErrConstraint, "constraints"},
		{"wrong commitment: wrong salt", withClaims(commit, func(c *Claims) { c.Other = map[string]json.RawMessage{"rcd": json.RawMessage(stitest.RCDJSON)} }, "rcd"), opts(func(o *Options) {
			o.Disclosures = map[string]Disclosure{"rcd": {Salt: []byte("another-salt-of-16-bytes")}}
		}), ErrCommitment, "commitment"},
		{"wrong commitment: value changed", withClaims(commit, func(c *Claims) { c.Other = map[string]json.RawMessage{"rcd": json.RawMessage(`{"nam":"X"}`)} }, "rcd"), opts(func(o *Options) {
			o.Disclosures = map[string]Disclosure{"rcd": {Salt: stitest.RCDSalt}}
		}), ErrCommitment, "commitment"},
		{"no salt with RequireCommitments", withClaims(commit, func(c *Claims) { c.Other = map[string]json.RawMessage{"rcd": json.RawMessage(stitest.RCDJSON)} }, "rcd"), opts(func(o *Options) { o.RequireCommitments = true }), ErrCommitment, "commitment"},
		{"no SCT", withClaims(f.p.TN, func(*Claims) {}, "shaken"), opts(nil), ErrSCT, "scts"},
		{"SCT of an untrusted log only", withClaims(untrustedLog, func(*Claims) {}, "shaken"), opts(nil), ErrSCT, "scts"},
		{"two SCTs required, one log", shaken, opts(func(o *Options) { tr := *f.trust; tr.RequiredSCTs = 2; o.Trust = &tr }), ErrSCT, "scts"},
		{"not included online", shaken, opts(func(o *Options) { o.Online = &fakeProver{err: errors.New("entry 1 is another certificate")} }), ErrNotIncluded, "inclusion"},
		{"rsp with a different orig", rspWith(func(c *Claims) { c.Orig.TN = "12025550102" }), withOriginal, ErrRSPMismatch, "rsp"},
		{"rsp with a different dest (retargeted)", rspWith(func(c *Claims) { c.Dest.TN = []string{"12155559999"} }), withOriginal, ErrRSPMismatch, "rsp"},
		{"rsp with a dest the answerer may not sign", rspWith(func(c *Claims) { c.Dest.TN = []string{"12155550000"} }), withOriginal, ErrTNNotCovered, "tnauthlist"},
		{"rsp without the original", rspWith(func(*Claims) {}), opts(nil), ErrHeader, "header"},
	} {
		t.Run(c.name, func(t *testing.T) {
			res, err := Verify(context.Background(), c.token, c.o)
			if !errors.Is(err, c.want) || Check(err) != c.check {
				t.Fatalf("Verify = %+v, %v (check %q); want %v (check %q)", res, err, Check(err), c.want, c.check)
			}
		})
	}
}

// FuzzVerify: any header and claims, signed by a delegate's key (with its
// chain put where the header says "X5C", so that inputs stay small) or
// left unsigned, are accepted only as a PASSporT that verifies, or refused
// with one of Verify's sentinels; none panics.
func FuzzVerify(f *testing.F) {
	fx := newFixture(f)
	c := fx.delegate(f, stitest.DelegateOptions{})
	iat := fmt.Sprint(fx.now.Unix())
	f.Add(`{"alg":"ES256","ppt":"shaken","typ":"passport","x5c":"X5C"}`, `{"attest":"A","dest":{"tn":["12155551213"]},"iat":`+iat+`,"orig":{"tn":"12025550101"},"origid":"123e4567-e89b-12d3-a456-426614174000"}`, true)
	f.Add(`{"alg":"ES256","typ":"passport","x5c":"X5C"}`, `{"dest":{"uri":["sip:a@b"]},"iat":`+iat+`,"orig":{"tn":"18001231234"},"rcd":{"nam":"x"}}`, true)
	f.Add(`{"alg":"none","typ":"passport","x5c":"X5C"}`, `{}`, false)
	o := fx.opts()
	x5c := x5cJSON(fx, c)
	f.Fuzz(func(t *testing.T, header, payload string, sign bool) {
		header = strings.Replace(header, `"X5C"`, x5c, 1)
		var token string
		if sign {
			token = signRaw(t, c, header, payload)
		} else {
			token = base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload)) + "."
		}
		res, err := Verify(context.Background(), token, o)
		if err != nil {
			if Check(err) == "" {
				t.Fatalf("error %v has no check name", err)
			}
			return
		}
		if !sign || res.Leaf == nil || len(res.SCTs) == 0 {
			t.Fatalf("accepted (signed %v) without a leaf or SCTs: %+v", sign, res)
		}
	})
}
