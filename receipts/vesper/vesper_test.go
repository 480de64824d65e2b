package vesper

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/witness/policy"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// now is the fixed clock of these tests.
var now = time.Unix(1763856000, 0)

// world is a vetting log with one agent's entries, built with
// golang.org/x/mod/sumdb/tlog, and the trust a verifier pins for it.
type world struct {
	agentKey *jose.JSONWebKey // private
	agents   *vetting.Agents
	trust    receipts.Trust
	logVKey  string
	signer   *receipts.Signer
	origin   string
	logKey   note.Signer
}

func newWorld(t testing.TB, agentPriv crypto.Signer) *world {
	t.Helper()
	w := &world{origin: "example.test/vetting", agentKey: &jose.JSONWebKey{Key: agentPriv}}
	skey, vkey, _ := note.GenerateKey(rand.Reader, w.origin)
	w.logKey, _ = note.NewSigner(skey)
	w.logVKey = vkey
	w.agents, _ = (&vetting.Agents{}).Add("example-va", jose.JSONWebKey{Key: agentPriv.Public()}, "https://va.example")
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	w.signer, _ = receipts.NewSigner(rk)
	p, err := policy.ForLog(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w.trust = receipts.Trust{Keys: receipts.NewKeySet(w.signer.PublicJWK()), Policy: p}
	return w
}

// logged returns a receipt for a log holding a few other entries and the
// statement of key about digest d (subject sub) at index 2.
func (w *world) logged(t testing.TB, key crypto.Signer, d [32]byte, sub string) string {
	t.Helper()
	pub := jose.JSONWebKey{Key: key.Public()}
	st, err := vetting.NewStatement(&pub, d, sub, uint64(now.Unix()))
	if err != nil {
		t.Fatal(err)
	}
	compact, err := st.Sign(key)
	if err != nil {
		t.Fatal(err)
	}
	_, sig, _ := vetting.ParseStatement(compact)
	leaf := vetting.Leaf{Timestamp: uint64(now.UnixMilli()), Alg: st.Alg, AgentKey: st.AgentKey, Digest: d, IssuedAt: st.IssuedAt, Subject: sub}
	copy(leaf.Signature[:], sig)
	entry, _ := leaf.MarshalBinary()
	entries := [][]byte{[]byte("e0"), []byte("e1"), entry, []byte("e3")}
	var hashes []tlog.Hash
	hr := tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(idx))
		for i, x := range idx {
			out[i] = hashes[x]
		}
		return out, nil
	})
	for i, e := range entries {
		hs, _ := tlog.StoredHashes(int64(i), e, hr)
		hashes = append(hashes, hs...)
	}
	root, _ := tlog.TreeHash(4, hr)
	cp, _ := note.Sign(&note.Note{Text: fmt.Sprintf("%s\n4\n%s\n", w.origin, base64.StdEncoding.EncodeToString(root[:]))}, w.logKey)
	rp, _ := tlog.ProveRecord(4, 2, hr)
	proof := &receipts.Proof{Index: 2, Checkpoint: cp}
	for _, h := range rp {
		proof.Hashes = append(proof.Hashes, append([]byte(nil), h[:]...))
	}
	rc, err := w.signer.Sign(&receipts.Receipt{Origin: w.origin, Index: 2, Entry: entry, Proof: proof, IssuedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func (w *world) verification() Verification {
	return Verification{Trust: w.trust, Issuers: w.agents, Now: func() time.Time { return now }}
}

// draftClaims is the claim set of draft-wendt-stir-vesper §6.4, made valid
// JSON (the draft's telephone numbers are bare +digits and it lacks commas).
const draftClaims = `{
  "telephone_number_rtu": ["+18001231234", "+18881231234"],
  "rcd": [{"nam": "Business_42", "icn": "https://example.com/logo.png"}],
  "business_ids": [{"EIN": "123456789"}],
  "address": {"street_address": "123 Main St", "locality": "Anytown", "region": "Anystate", "country": "US"},
  "contact_given_name": "John",
  "contact_family_name": "Doe",
  "contact_email": "johndoe@example.com",
  "contact_phone_number": "+12025550101"
}`

// draftFrame makes the draft's decisions: telephone_number_rtu always
// visible; rcd and business_ids visible with disclosable contents; all
// other claims disclosable, address only in full; 3 decoys so the top
// level has the draft's 8 digests.
const draftFrame = `{
  "_sd": ["address", "contact_given_name", "contact_family_name", "contact_email", "contact_phone_number"],
  "_decoys": 3,
  "rcd": {"_sd": [0]},
  "business_ids": {"_sd": [0]}
}`

func parseClaims(t testing.TB, s string) map[string]any {
	c, err := decodeJSON([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func parseFrame(t testing.TB, s string) *Frame {
	var f Frame
	if err := json.Unmarshal([]byte(s), &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

func (w *world) issue(t testing.TB, digest [32]byte, holder *jose.JSONWebKey) string {
	t.Helper()
	tok, err := Issue(Issuance{
		Key: w.agentKey, Issuer: "https://va.example", Subject: "Business_42", IssuedAt: now, Lifetime: 24 * time.Hour,
		KYCDataHash: digest, Receipt: w.logged(t, w.agentKey.Key.(crypto.Signer), digest, "Business_42"),
		HolderKey: holder, Claims: parseClaims(t, draftClaims), Frame: parseFrame(t, draftFrame),
	})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func newKey(t testing.TB) *jose.JSONWebKey {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return &jose.JSONWebKey{Key: k}
}

func TestIssueVerifyDraftExample(t *testing.T) {
	w := newWorld(t, newKey(t).Key.(crypto.Signer))
	d := sha256.Sum256([]byte("salt||kyc"))
	tok := w.issue(t, d, nil)

	// The issuer-signed payload has the draft's shape.
	payload, _ := jwtPayload(strings.Split(tok, "~")[0])
	if sd := payload["_sd"].([]any); len(sd) != 8 {
		t.Errorf("top-level _sd has %d digests, the draft's example 8", len(sd))
	}
	for _, clear := range []string{"iss", "sub", "iat", "exp", "kyc_data_hash", "transparency_receipt", "telephone_number_rtu", "_sd_alg"} {
		if _, ok := payload[clear]; !ok {
			t.Errorf("%s is not in the clear", clear)
		}
	}
	if _, ok := payload["contact_email"]; ok {
		t.Error("contact_email is in the clear")
	}

	// With every disclosure, the verifier sees the whole claim set.
	v, err := Verify(tok, w.verification())
	if err != nil {
		t.Fatal(err)
	}
	want := parseClaims(t, draftClaims)
	for k, val := range want {
		if !reflect.DeepEqual(v.Claims[k], val) {
			t.Errorf("%s = %v, want %v", k, v.Claims[k], val)
		}
	}
	if v.Claims["sub"] != "Business_42" || v.Issuer.Name != "example-va" || v.Receipt.Index != 2 {
		t.Fatalf("verified %+v", v)
	}

	// A presentation of two claims shows just those; rcd's element stays hidden.
	pres, err := Present(tok, []string{"contact_given_name", "address"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err = Verify(pres, w.verification())
	if err != nil {
		t.Fatal(err)
	}
	if v.Claims["contact_given_name"] != "John" || v.Claims["address"] == nil || v.Claims["contact_email"] != nil {
		t.Fatalf("presented claims: %s", ClaimsJSON(v.Claims))
	}
	if rcd := v.Claims["rcd"].([]any); len(rcd) != 0 {
		t.Fatalf("undisclosed rcd elements kept: %v", rcd)
	}
	if got, _ := Disclosable(tok); len(got) != 7 {
		t.Fatalf("Disclosable = %v", got)
	}
}

func TestKeyBinding(t *testing.T) {
	w := newWorld(t, newKey(t).Key.(crypto.Signer))
	holder := newKey(t)
	pub := holder.Public()
	tok := w.issue(t, [32]byte{1}, &pub)
	kb := &KeyBinding{Key: holder, Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: now}
	pres, err := Present(tok, []string{"contact_email"}, kb)
	if err != nil {
		t.Fatal(err)
	}
	o := w.verification()
	o.KeyBinding = &KeyBindingPolicy{Audience: "https://verifier.example", Nonce: "n-1"}
	v, err := Verify(pres, o)
	if err != nil {
		t.Fatal(err)
	}
	if !v.KeyBound || v.Claims["contact_email"] != "johndoe@example.com" {
		t.Fatalf("verified %+v", v)
	}

	other := newKey(t)
	parts := strings.Split(pres, "~")
	withoutKB := strings.Join(parts[:len(parts)-1], "~") + "~"
	for _, c := range []struct {
		name string
		pres string
		o    func(*Verification)
		want error
	}{
		{"wrong audience", pres, func(o *Verification) { o.KeyBinding.Audience = "https://other.example" }, ErrKeyBinding},
		{"wrong nonce", pres, func(o *Verification) { o.KeyBinding.Nonce = "n-2" }, ErrKeyBinding},
		{"stale KB-JWT", pres, func(o *Verification) { o.Now = func() time.Time { return now.Add(time.Hour) } }, ErrKeyBinding},
		{"KB-JWT from the future", mustPresent(t, tok, []string{"contact_email"}, &KeyBinding{Key: holder, Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: now.Add(time.Hour)}), nil, ErrKeyBinding},
		{"KB required, none sent", withoutKB, nil, ErrKeyBinding},
		{"a disclosure added after binding (sd_hash)", mustPresent(t, tok, []string{"contact_email", "address"}, nil) + parts[len(parts)-1], nil, ErrKeyBinding},
		{"signed by another key", mustPresent(t, tok, []string{"contact_email"}, &KeyBinding{Key: other, Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: now}), nil, ErrKeyBinding},
		{"KB sent where none is expected", pres, func(o *Verification) { o.KeyBinding = nil }, ErrMalformed},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := w.verification()
			o.KeyBinding = &KeyBindingPolicy{Audience: "https://verifier.example", Nonce: "n-1"}
			if c.o != nil {
				c.o(&o)
			}
			if v, err := Verify(c.pres, o); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %+v, %v; want %v", v, err, c.want)
			}
		})
	}
	// A token without cnf cannot be key-bound.
	noCnf := w.issue(t, [32]byte{1}, nil)
	if _, err := Present(noCnf, []string{"contact_email"}, kb); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(mustPresent(t, noCnf, []string{"contact_email"}, kb), o); !errors.Is(err, ErrKeyBinding) {
		t.Fatalf("KB without cnf: %v", err)
	}
}

func mustPresent(t testing.TB, tok string, paths []string, kb *KeyBinding) string {
	p, err := Present(tok, paths, kb)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// signPayload signs an arbitrary issuer payload with the world's agent key,
// to build tokens no honest issuer makes.
func (w *world) signPayload(t testing.TB, payload map[string]any, typ string) string {
	t.Helper()
	body, _ := marshal(payload)
	kid, _ := vetting.Thumbprint(&jose.JSONWebKey{Key: w.agentKey.Key.(crypto.Signer).Public()})
	s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: w.agentKey.Key},
		(&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", b64.EncodeToString(kid[:])))
	jws, _ := s.Sign(body)
	out, _ := jws.CompactSerialize()
	return out
}

func disclosure(t testing.TB, parts ...any) string {
	b, _ := marshal(parts)
	return b64.EncodeToString(b)
}

// TestVerifyRejects has one row per check of the verifier.
func TestVerifyRejects(t *testing.T) {
	agent := newKey(t)
	w := newWorld(t, agent.Key.(crypto.Signer))
	d := [32]byte{7}
	good := w.issue(t, d, nil)
	receipt := w.logged(t, agent.Key.(crypto.Signer), d, "Business_42")
	base := func() map[string]any {
		return map[string]any{
			"iss": "https://va.example", "sub": "Business_42", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
			"kyc_data_hash": b64.EncodeToString(d[:]), "transparency_receipt": receipt, "_sd_alg": "sha-256",
		}
	}
	with := func(mod func(p map[string]any)) map[string]any { p := base(); mod(p); return p }
	name := disclosure(t, "salt-1", "given_name", "John")
	elem := disclosure(t, "salt-2", "FR")
	forged := func(payload map[string]any, ds ...string) string {
		return w.signPayload(t, payload, Type) + "~" + strings.Join(append(ds, ""), "~")
	}

	otherAgent := newKey(t)
	wOther := newWorld(t, otherAgent.Key.(crypto.Signer))
	wOther.agents = w.agents // the verifier knows only the world's agent

	// tokFor signs what Issue refuses to make: a token whose receipt is
	// for another entry.
	tokFor := func(rc string, digest [32]byte, sub string) string {
		return forged(with(func(p map[string]any) {
			p["transparency_receipt"], p["kyc_data_hash"], p["sub"] = rc, b64.EncodeToString(digest[:]), sub
		}))
	}
	witnessPolicy := func() receipts.Trust {
		_, wv, _ := note.GenerateKey(rand.Reader, "witness.example")
		wv2, _ := fnote.VKeyToCosignatureV1(wv)
		p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w %s\nquorum w\n", w.logVKey, wv2)))
		if err != nil {
			t.Fatal(err)
		}
		return receipts.Trust{Keys: w.trust.Keys, Policy: p}
	}

	for _, c := range []struct {
		name  string
		token string
		o     func(*Verification)
		want  error
	}{
		{"unreferenced disclosure", good[:len(good)-1] + "~" + name + "~", nil, ErrDisclosure},
		{"disclosure sent twice", func() string { p := strings.Split(good, "~"); return strings.Join(append(p[:len(p)-1], p[1], ""), "~") }(), nil, ErrDisclosure},
		{"tampered disclosure", strings.Replace(good, strings.Split(good, "~")[1], disclosure(t, "x", "contact_email", "evil@example.com"), 1), nil, ErrDisclosure},
		{"digest twice in _sd", forged(with(func(p map[string]any) { p["_sd"] = []any{digest(name), digest(name)} }), name), nil, ErrDisclosure},
		{"digest in _sd and in an array", forged(with(func(p map[string]any) {
			p["_sd"] = []any{digest(elem)}
			p["nationalities"] = []any{map[string]any{"...": digest(elem)}}
		}), elem), nil, ErrDisclosure},
		{"claim name _sd", forged(with(func(p map[string]any) { p["_sd"] = []any{digest(disclosure(t, "s", "_sd", 1))} }), disclosure(t, "s", "_sd", 1)), nil, ErrDisclosure},
		{"claim name ...", forged(with(func(p map[string]any) { p["_sd"] = []any{digest(disclosure(t, "s", "...", 1))} }), disclosure(t, "s", "...", 1)), nil, ErrDisclosure},
		{"disclosed claim clashes with a clear one", forged(with(func(p map[string]any) {
			p["given_name"] = "Jane"
			p["_sd"] = []any{digest(name)}
		}), name), nil, ErrDisclosure},
		{"array-element disclosure under _sd", forged(with(func(p map[string]any) { p["_sd"] = []any{digest(elem)} }), elem), nil, ErrDisclosure},
		{"property disclosure in an array", forged(with(func(p map[string]any) { p["a"] = []any{map[string]any{"...": digest(name)}} }), name), nil, ErrDisclosure},
		{"salt not a string", forged(with(func(p map[string]any) { p["_sd"] = []any{digest(disclosure(t, 1, "n", 1))} }), disclosure(t, 1, "n", 1)), nil, ErrDisclosure},
		{"_sd_alg sha-512", forged(with(func(p map[string]any) { p["_sd_alg"] = "sha-512" })), nil, ErrMalformed},
		{"_sd_alg nested", forged(with(func(p map[string]any) { p["address"] = map[string]any{"_sd_alg": "sha-256"} })), nil, ErrMalformed},
		{"... claim outside an array", forged(with(func(p map[string]any) { p["x"] = map[string]any{"...": "abc"} })), nil, ErrMalformed},
		{"array digest object with other keys", forged(with(func(p map[string]any) { p["a"] = []any{map[string]any{"...": digest(elem), "x": 1}} }), elem), nil, ErrMalformed},
		{"_sd not an array", forged(with(func(p map[string]any) { p["_sd"] = "abc" })), nil, ErrMalformed},
		{"wrong typ", w.signPayload(t, base(), "JWT") + "~", nil, ErrMalformed},
		{"no trailing tilde", strings.TrimSuffix(good, "~"), nil, ErrMalformed},
		{"empty disclosure", strings.Replace(good, "~", "~~", 1), nil, ErrMalformed},
		{"alg none", func() string {
			p := strings.Split(good, "~")
			jp := strings.Split(p[0], ".")
			return b64.EncodeToString([]byte(`{"alg":"none","typ":"vesper+sd-jwt"}`)) + "." + jp[1] + ".~"
		}(), nil, ErrMalformed},
		{"issuer not registered", func() string {
			tok, err := Issue(Issuance{Key: otherAgent, Issuer: "https://va.example", Subject: "Business_42", IssuedAt: now, Lifetime: time.Hour,
				KYCDataHash: d, Receipt: w.logged(t, otherAgent.Key.(crypto.Signer), d, "Business_42")})
			if err != nil {
				t.Fatal(err)
			}
			return tok
		}(), nil, ErrIssuer},
		{"signature by another key under the agent's kid", func() string {
			kid, _ := vetting.Thumbprint(&jose.JSONWebKey{Key: agent.Key.(crypto.Signer).Public()})
			s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: otherAgent.Key}, (&jose.SignerOptions{}).WithType(Type).WithHeader("kid", b64.EncodeToString(kid[:])))
			body, _ := marshal(base())
			jws, _ := s.Sign(body)
			out, _ := jws.CompactSerialize()
			return out + "~"
		}(), nil, ErrSignature},
		{"expired", good, func(o *Verification) { o.Now = func() time.Time { return now.Add(25 * time.Hour) } }, ErrExpired},
		{"issued in the future", good, func(o *Verification) { o.Now = func() time.Time { return now.Add(-time.Hour) } }, ErrExpired},
		{"not yet valid (nbf)", forged(with(func(p map[string]any) { p["nbf"] = now.Add(time.Hour).Unix() })), nil, ErrExpired},
		{"missing kyc_data_hash", forged(with(func(p map[string]any) { delete(p, "kyc_data_hash") })), nil, ErrClaims},
		{"missing transparency_receipt", forged(with(func(p map[string]any) { delete(p, "transparency_receipt") })), nil, ErrClaims},
		{"missing exp", forged(with(func(p map[string]any) { delete(p, "exp") })), nil, ErrClaims},
		{"iss other than the agent's", forged(with(func(p map[string]any) { p["iss"] = "https://mallory.example" })), nil, ErrClaims},
		{"receipt for another digest", tokFor(w.logged(t, agent.Key.(crypto.Signer), [32]byte{8}, "Business_42"), d, "Business_42"), nil, ErrNotLogged},
		{"receipt for another agent's entry", tokFor(w.logged(t, otherAgent.Key.(crypto.Signer), d, "Business_42"), d, "Business_42"), nil, ErrNotLogged},
		{"receipt for another subject", tokFor(w.logged(t, agent.Key.(crypto.Signer), d, "Business_43"), d, "Business_42"), nil, ErrNotLogged},
		{"receipt from another log", tokFor(wOther.logged(t, agent.Key.(crypto.Signer), d, "Business_42"), d, "Business_42"), nil, ErrReceipt},
		{"receipt short of the witness policy", good, func(o *Verification) { o.Trust = witnessPolicy() }, ErrReceipt},
		{"receipt not a receipt", forged(with(func(p map[string]any) { p["transparency_receipt"] = "dh-ko8aIKQc9DlGzhaVYopFndjkZ_VCzmyTa6UjlZo3" })), nil, ErrReceipt},
	} {
		t.Run(c.name, func(t *testing.T) {
			o := w.verification()
			if c.o != nil {
				c.o(&o)
			}
			if v, err := Verify(c.token, o); !errors.Is(err, c.want) {
				t.Fatalf("Verify = %+v, %v; want %v", v, err, c.want)
			}
		})
	}
	if _, err := Verify(good, w.verification()); err != nil {
		t.Fatalf("the untouched token: %v", err)
	}
}

func TestIssueRefuses(t *testing.T) {
	w := newWorld(t, newKey(t).Key.(crypto.Signer))
	is := Issuance{Key: w.agentKey, Issuer: "https://va.example", Subject: "s", IssuedAt: now, Lifetime: time.Hour, Receipt: "r"}
	for name, mod := range map[string]func(*Issuance){
		"reserved persona claim": func(i *Issuance) { i.Claims = map[string]any{"kyc_data_hash": "x"} },
		"frame names a missing claim": func(i *Issuance) {
			i.Claims = map[string]any{"a": 1}
			i.Frame = parseFrame(t, `{"_sd": ["b"]}`)
		},
		"frame index out of range": func(i *Issuance) {
			i.Claims = map[string]any{"a": []any{1}}
			i.Frame = parseFrame(t, `{"a": {"_sd": [3]}}`)
		},
		"no receipt": func(i *Issuance) { i.Receipt = "" },
		"receipt for another digest": func(i *Issuance) {
			i.Receipt = w.logged(t, w.agentKey.Key.(crypto.Signer), [32]byte{9}, "s")
			i.KYCDataHash = [32]byte{8}
		},
		"receipt about another subject": func(i *Issuance) {
			i.Receipt = w.logged(t, w.agentKey.Key.(crypto.Signer), [32]byte{9}, "other")
			i.KYCDataHash = [32]byte{9}
		},
		"no lifetime": func(i *Issuance) { i.Lifetime = 0 },
	} {
		i := is
		mod(&i)
		if _, err := Issue(i); err == nil {
			t.Errorf("%s: issued", name)
		}
	}
}

// TestRecursiveDisclosure follows RFC 9901 §4.2.6: nationalities is
// disclosable as a whole and element by element.
func TestRecursiveDisclosure(t *testing.T) {
	agent := newKey(t)
	w := newWorld(t, agent.Key.(crypto.Signer))
	tok, err := Issue(Issuance{Key: agent, Issuer: "https://va.example", Subject: "Business_42", IssuedAt: now, Lifetime: time.Hour,
		KYCDataHash: [32]byte{3}, Receipt: w.logged(t, agent.Key.(crypto.Signer), [32]byte{3}, "Business_42"),
		Claims: map[string]any{"nationalities": []any{"DE", "FR", "UK"}},
		Frame:  parseFrame(t, `{"_sd": ["nationalities"], "nationalities": {"_sd": [0, 1, 2], "_decoys": 1}}`)})
	if err != nil {
		t.Fatal(err)
	}
	pres := mustPresent(t, tok, []string{"nationalities.1"}, nil)
	v, err := Verify(pres, w.verification())
	if err != nil {
		t.Fatal(err)
	}
	if got := v.Claims["nationalities"]; !reflect.DeepEqual(got, []any{"FR"}) {
		t.Fatalf("nationalities = %v, want [FR]", got)
	}
	// An element without its parent disclosure connects to nothing.
	parts := strings.Split(tok, "~")
	var onlyElement string
	for _, d := range parts[1 : len(parts)-1] {
		if arr, _ := decodeDisclosure(d, 2); arr != nil && arr[1] == "FR" {
			onlyElement = parts[0] + "~" + d + "~"
		}
	}
	if _, err := Verify(onlyElement, w.verification()); !errors.Is(err, ErrDisclosure) {
		t.Fatalf("orphan element disclosure: %v", err)
	}
}

func TestFrameRoundTrip(t *testing.T) {
	f := parseFrame(t, draftFrame)
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var again Frame
	if err := json.Unmarshal(b, &again); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*f, again) {
		t.Fatalf("round trip: %s gives %+v, want %+v", b, again, *f)
	}
	for _, bad := range []string{`{"_sd": [-1]}`, `{"_sd": [1.5]}`, `{"_sd": [true]}`, `{"_decoys": 1000}`, `{"a": 1}`, `[]`} {
		var f Frame
		if err := json.Unmarshal([]byte(bad), &f); err == nil {
			t.Errorf("frame %s accepted", bad)
		}
	}
}
