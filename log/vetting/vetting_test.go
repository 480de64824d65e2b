package vetting

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"math/big"
	"os"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

var update = flag.Bool("update", false, "rewrite testdata/leaf-v1.json")

// testKeys are fixed keys, so that the golden vectors can be regenerated.
func testKeys(t testing.TB) (ed25519.PrivateKey, *ecdsa.PrivateKey) {
	t.Helper()
	seed := sha256.Sum256([]byte("vesperlog test agent ed25519"))
	ed := ed25519.NewKeyFromSeed(seed[:])
	d := sha256.Sum256([]byte("vesperlog test agent p256"))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return ed, k
}

type golden struct {
	Name      string          `json:"name"`
	AgentJWK  json.RawMessage `json:"agent_jwk"`
	Statement string          `json:"statement"`
	LeafHex   string          `json:"leaf_hex"`
	Identity  string          `json:"identity_hex"`
	Fields    struct {
		Timestamp uint64 `json:"timestamp_ms"`
		Alg       string `json:"alg"`
		AgentKey  string `json:"agent_key"`
		Digest    string `json:"kyc_data_hash"`
		IssuedAt  uint64 `json:"iat"`
		Subject   string `json:"sub"`
	} `json:"fields"`
}

func makeGolden(t *testing.T) []golden {
	ed, ec := testKeys(t)
	digest := sha256.Sum256([]byte("salt||kyc record"))
	var out []golden
	for _, c := range []struct {
		name    string
		key     crypto.Signer
		subject string
	}{
		{"eddsa-with-subject", ed, "Business_42"},
		{"es256-no-subject", ec, ""},
	} {
		pub := jose.JSONWebKey{Key: c.key.Public()}
		st, err := NewStatement(&pub, digest, c.subject, 1763856000)
		if err != nil {
			t.Fatal(err)
		}
		compact, err := st.Sign(c.key)
		if err != nil {
			t.Fatal(err)
		}
		_, sig, err := ParseStatement(compact)
		if err != nil {
			t.Fatal(err)
		}
		leaf := Leaf{Timestamp: 1763856000123, Alg: st.Alg, AgentKey: st.AgentKey, Digest: st.Digest, IssuedAt: st.IssuedAt, Subject: st.Subject}
		copy(leaf.Signature[:], sig)
		b, err := leaf.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		jwk, _ := json.Marshal(pub)
		g := golden{Name: c.name, AgentJWK: jwk, Statement: compact, LeafHex: hex.EncodeToString(b), Identity: hex.EncodeToString(leaf.Identity())}
		g.Fields.Timestamp, g.Fields.Alg, g.Fields.AgentKey = leaf.Timestamp, leaf.Alg.String(), b64.EncodeToString(leaf.AgentKey[:])
		g.Fields.Digest, g.Fields.IssuedAt, g.Fields.Subject = b64.EncodeToString(leaf.Digest[:]), leaf.IssuedAt, leaf.Subject
		out = append(out, g)
	}
	return out
}

// TestGoldenLeaves checks the leaf and statement formats byte for byte
// against testdata/leaf-v1.json (regenerate with -update, and say why in
// the commit: the vectors are the format).
func TestGoldenLeaves(t *testing.T) {
	if *update {
		b, _ := json.MarshalIndent(makeGolden(t), "", "  ")
		if err := os.WriteFile("testdata/leaf-v1.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("testdata/leaf-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var vectors []golden
	if err := json.Unmarshal(b, &vectors); err != nil {
		t.Fatal(err)
	}
	if len(vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, g := range vectors {
		t.Run(g.Name, func(t *testing.T) {
			raw, _ := hex.DecodeString(g.LeafHex)
			leaf, err := ParseLeaf(raw)
			if err != nil {
				t.Fatal(err)
			}
			f := g.Fields
			if leaf.Timestamp != f.Timestamp || leaf.Alg.String() != f.Alg || b64.EncodeToString(leaf.AgentKey[:]) != f.AgentKey ||
				b64.EncodeToString(leaf.Digest[:]) != f.Digest || leaf.IssuedAt != f.IssuedAt || leaf.Subject != f.Subject {
				t.Fatalf("decoded %+v, want %+v", leaf, f)
			}
			again, err := leaf.MarshalBinary()
			if err != nil || !bytes.Equal(again, raw) {
				t.Fatalf("re-encoding differs: %x, %v", again, err)
			}
			if got := hex.EncodeToString(leaf.Identity()); got != g.Identity {
				t.Errorf("identity %s, want %s", got, g.Identity)
			}
			var key jose.JSONWebKey
			if err := json.Unmarshal(g.AgentJWK, &key); err != nil {
				t.Fatal(err)
			}
			if err := leaf.Verify(&key); err != nil {
				t.Fatalf("golden leaf does not verify: %v", err)
			}
			// The leaf rebuilds exactly the JWS the agent sent.
			st, sig := leaf.Statement()
			if rebuilt := st.SigningInput() + "." + b64.EncodeToString(sig); rebuilt != g.Statement {
				t.Errorf("rebuilt statement\n%s\nwant\n%s", rebuilt, g.Statement)
			}
			parsed, _, err := ParseStatement(g.Statement)
			if err != nil || *parsed != *st {
				t.Errorf("ParseStatement = %+v, %v; want %+v", parsed, err, st)
			}
		})
	}
}

func validLeaf(t testing.TB) []byte {
	ed, _ := testKeys(t)
	pub := jose.JSONWebKey{Key: ed.Public()}
	st, err := NewStatement(&pub, [32]byte{1}, "sub-1", 1763856000)
	if err != nil {
		t.Fatal(err)
	}
	compact, err := st.Sign(ed)
	if err != nil {
		t.Fatal(err)
	}
	_, sig, _ := ParseStatement(compact)
	l := Leaf{Timestamp: 1, Alg: st.Alg, AgentKey: st.AgentKey, Digest: st.Digest, IssuedAt: st.IssuedAt, Subject: st.Subject}
	copy(l.Signature[:], sig)
	b, err := l.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseLeafRejects(t *testing.T) {
	good := validLeaf(t)
	mod := func(f func(b []byte) []byte) []byte { return f(append([]byte(nil), good...)) }
	for _, c := range []struct {
		name string
		leaf []byte
	}{
		{"empty", nil},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte(nil), good...), 0)},
		{"version 0", mod(func(b []byte) []byte { b[0] = 0; return b })},
		{"version 2", mod(func(b []byte) []byte { b[0] = 2; return b })},
		{"unknown signature algorithm", mod(func(b []byte) []byte { b[9] = 3; return b })},
		{"unknown digest algorithm", mod(func(b []byte) []byte { b[42] = 2; return b })},
		{"iat zero", mod(func(b []byte) []byte { copy(b[75:83], make([]byte, 8)); return b })},
		{"iat beyond 2^53", mod(func(b []byte) []byte { b[75] = 0x01; return b })},
		{"subject length past end", mod(func(b []byte) []byte { b[83] = 200; return b })},
		{"subject with a quote", mod(func(b []byte) []byte { b[84] = '"'; return b })},
		{"subject with a control byte", mod(func(b []byte) []byte { b[84] = '\n'; return b })},
	} {
		t.Run(c.name, func(t *testing.T) {
			if l, err := ParseLeaf(c.leaf); !errors.Is(err, ErrMalformedLeaf) {
				t.Fatalf("ParseLeaf = %+v, %v; want ErrMalformedLeaf", l, err)
			}
		})
	}
}

func TestLeafVerifyRejectsTampering(t *testing.T) {
	good := validLeaf(t)
	ed, ec := testKeys(t)
	key := jose.JSONWebKey{Key: ed.Public()}
	l, err := ParseLeaf(good)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Verify(&key); err != nil {
		t.Fatalf("untouched leaf: %v", err)
	}
	// The log timestamp is the log's, not the agent's: it is not signed.
	for name, f := range map[string]func(l *Leaf){
		"digest":    func(l *Leaf) { l.Digest[0] ^= 1 },
		"subject":   func(l *Leaf) { l.Subject = "sub-2" },
		"iat":       func(l *Leaf) { l.IssuedAt++ },
		"signature": func(l *Leaf) { l.Signature[5] ^= 1 },
	} {
		t.Run(name, func(t *testing.T) {
			c := *l
			f(&c)
			if err := c.Verify(&key); !errors.Is(err, ErrBadSignature) {
				t.Fatalf("tampered %s: Verify = %v, want ErrBadSignature", name, err)
			}
		})
	}
	t.Run("another agent's key", func(t *testing.T) {
		if err := l.Verify(&jose.JSONWebKey{Key: ec.Public()}); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("Verify with another key = %v, want ErrBadSignature", err)
		}
	})
}

func TestParseStatementRejects(t *testing.T) {
	ed, _ := testKeys(t)
	pub := jose.JSONWebKey{Key: ed.Public()}
	st, err := NewStatement(&pub, [32]byte{7}, "", 1763856000)
	if err != nil {
		t.Fatal(err)
	}
	good, err := st.Sign(ed)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, ".")
	kid := b64.EncodeToString(st.AgentKey[:])
	hash := b64.EncodeToString(st.Digest[:])
	enc := func(s string) string { return b64.EncodeToString([]byte(s)) }
	hdr := func(h string) string { return enc(h) + "." + parts[1] + "." + parts[2] }
	pl := func(p string) string { return parts[0] + "." + enc(p) + "." + parts[2] }
	for _, c := range []struct{ name, jws string }{
		{"two parts", parts[0] + "." + parts[1]},
		{"padded base64", parts[0] + "=." + parts[1] + "." + parts[2]},
		{"alg none", hdr(`{"alg":"none","kid":"` + kid + `","typ":"vesper-kyc-digest+jwt"}`)},
		{"alg HS256", hdr(`{"alg":"HS256","kid":"` + kid + `","typ":"vesper-kyc-digest+jwt"}`)},
		{"wrong typ", hdr(`{"alg":"EdDSA","kid":"` + kid + `","typ":"JWT"}`)},
		{"header with spaces", hdr(`{"alg": "EdDSA","kid":"` + kid + `","typ":"vesper-kyc-digest+jwt"}`)},
		{"header out of order", hdr(`{"kid":"` + kid + `","alg":"EdDSA","typ":"vesper-kyc-digest+jwt"}`)},
		{"extra header", hdr(`{"alg":"EdDSA","crit":["x"],"kid":"` + kid + `","typ":"vesper-kyc-digest+jwt"}`)},
		{"short kid", hdr(`{"alg":"EdDSA","kid":"AAAA","typ":"vesper-kyc-digest+jwt"}`)},
		{"missing hash", pl(`{"hash_alg":"sha-256","iat":1763856000}`)},
		{"sha-512", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-512","iat":1763856000}`)},
		{"short hash", pl(`{"kyc_data_hash":"AAAA","hash_alg":"sha-256","iat":1763856000}`)},
		{"missing iat", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-256"}`)},
		{"fractional iat", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-256","iat":1763856000.5}`)},
		{"negative iat", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-256","iat":-1}`)},
		{"empty sub", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-256","sub":"","iat":1763856000}`)},
		{"escaped sub", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-256","sub":"a\u0041","iat":1763856000}`)},
		{"unknown member", pl(`{"kyc_data_hash":"` + hash + `","hash_alg":"sha-256","iat":1763856000,"name":"Jane Doe"}`)},
		{"payload out of order", pl(`{"hash_alg":"sha-256","kyc_data_hash":"` + hash + `","iat":1763856000}`)},
		{"short signature", parts[0] + "." + parts[1] + "." + enc("short")},
		{"oversized", good + strings.Repeat("A", MaxStatementSize)},
		{"CR in the signature (Go's base64 skips it)", parts[0] + "." + parts[1] + "." + parts[2][:10] + "\r" + parts[2][10:]},
		{"space after the JWS", good + " "},
	} {
		t.Run(c.name, func(t *testing.T) {
			if s, _, err := ParseStatement(c.jws); !errors.Is(err, ErrMalformedStatement) {
				t.Fatalf("ParseStatement = %+v, %v; want ErrMalformedStatement", s, err)
			}
		})
	}
	if _, _, err := ParseStatement(good); err != nil {
		t.Fatalf("good statement refused: %v", err)
	}
}

func TestStatementSignedByOtherKey(t *testing.T) {
	ed, _ := testKeys(t)
	other := ed25519.NewKeyFromSeed(make([]byte, 32))
	pub := jose.JSONWebKey{Key: ed.Public()}
	st, _ := NewStatement(&pub, [32]byte{9}, "", 1763856000)
	// Forge: a statement naming ed's kid, signed by another key.
	signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: other},
		(&jose.SignerOptions{}).WithType(StatementType).WithHeader("kid", b64.EncodeToString(st.AgentKey[:])))
	jws, _ := signer.Sign(st.payload())
	forged, _ := jws.CompactSerialize()
	parsed, sig, err := ParseStatement(forged)
	if err != nil {
		t.Fatalf("forged statement is well-formed, want it parsed: %v", err)
	}
	if err := parsed.Verify(&pub, sig); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("Verify = %v, want ErrBadSignature", err)
	}
}

func TestAgents(t *testing.T) {
	ed, ec := testKeys(t)
	edPub, _ := json.Marshal(jose.JSONWebKey{Key: ed.Public()})
	ecPub, _ := json.Marshal(jose.JSONWebKey{Key: ec.Public()})
	ecPriv, _ := json.Marshal(jose.JSONWebKey{Key: ec})
	rsaLike := `{"kty":"RSA","n":"` + b64.EncodeToString(big.NewInt(0).Lsh(big.NewInt(1), 2047).Bytes()) + `","e":"AQAB"}`
	file := func(entries ...string) []byte {
		return []byte(`{"agents":[` + strings.Join(entries, ",") + `]}`)
	}
	entry := func(name string, jwk []byte) string { return `{"name":"` + name + `","jwk":` + string(jwk) + `}` }

	a, err := ParseAgents(file(entry("va-1", edPub), entry("va-2", ecPub)))
	if err != nil {
		t.Fatal(err)
	}
	tp, _ := Thumbprint(&jose.JSONWebKey{Key: ec.Public()})
	if ag, err := a.Lookup(tp); err != nil || ag.Name != "va-2" {
		t.Fatalf("Lookup = %v, %v", ag, err)
	}
	if _, err := a.Lookup([32]byte{}); !errors.Is(err, ErrUnknownAgent) {
		t.Fatalf("Lookup of unknown key = %v", err)
	}
	round, _ := a.MarshalJSON()
	if b, err := ParseAgents(round); err != nil || b.Len() != 2 {
		t.Fatalf("round trip: %v", err)
	}
	for name, f := range map[string][]byte{
		"private key":     file(entry("va", ecPriv)),
		"duplicate name":  file(entry("va", edPub), entry("va", ecPub)),
		"duplicate key":   file(entry("va-1", edPub), entry("va-2", edPub)),
		"no name":         file(entry("", edPub)),
		"RSA key":         file(entry("va", []byte(rsaLike))),
		"unknown members": []byte(`{"agents":[],"admins":[]}`),
		"not JSON":        []byte(`agents: []`),
		"member twice":    []byte(`{"agents":[],"agents":[]}`),
		"revocation undone by a second member": file(`{"name":"va","jwk":` + string(edPub) +
			`,"revoked":{"at":"2026-11-30T04:00:00Z","reason":"lost"},"revoked":null}`),
		"default rate of 0/s":        []byte(`{"default_rate":{"per_second":0,"burst":10},"agents":[]}`),
		"default rate, no burst":     []byte(`{"default_rate":{"per_second":1},"agents":[]}`),
		"negative rate":              file(`{"name":"va","jwk":` + string(edPub) + `,"rate":{"per_second":-1,"burst":1}}`),
		"burst too large":            file(`{"name":"va","jwk":` + string(edPub) + `,"rate":{"per_second":1,"burst":1000001}}`),
		"rate, unknown member":       file(`{"name":"va","jwk":` + string(edPub) + `,"rate":{"per_second":1,"burst":1,"per_minute":3}}`),
		"revoked without a time":     file(`{"name":"va","jwk":` + string(edPub) + `,"revoked":{"reason":"lost"}}`),
		"revoked, time not RFC 3339": file(`{"name":"va","jwk":` + string(edPub) + `,"revoked":{"at":"2026-11-30 04:00:00","reason":"lost"}}`),
		"revoked without a reason":   file(`{"name":"va","jwk":` + string(edPub) + `,"revoked":{"at":"2026-11-30T04:00:00Z","reason":""}}`),
		"revocation reason too long": file(`{"name":"va","jwk":` + string(edPub) + `,"revoked":{"at":"2026-11-30T04:00:00Z","reason":"` +
			strings.Repeat("x", MaxRevocationReason+1) + `"}}`),
		"revocation reason with a control character": file(`{"name":"va","jwk":` + string(edPub) +
			`,"revoked":{"at":"2026-11-30T04:00:00Z","reason":"lost\u001b[2J"}}`),
		"revoked, unknown member": file(`{"name":"va","jwk":` + string(edPub) + `,"revoked":{"at":"2026-11-30T04:00:00Z","reason":"lost","by":"me"}}`),
	} {
		if _, err := ParseAgents(f); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func FuzzParseLeaf(f *testing.F) {
	f.Add(validLeaf(f))
	b, _ := os.ReadFile("testdata/leaf-v1.json")
	var vectors []golden
	_ = json.Unmarshal(b, &vectors)
	for _, g := range vectors {
		raw, _ := hex.DecodeString(g.LeafHex)
		f.Add(raw)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := ParseLeaf(b)
		if err != nil {
			return
		}
		// A leaf that parses has exactly one encoding: its own.
		again, err := l.MarshalBinary()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("parsed leaf re-encodes to %x (%v), not %x", again, err, b)
		}
	})
}

func FuzzParseStatement(f *testing.F) {
	b, _ := os.ReadFile("testdata/leaf-v1.json")
	var vectors []golden
	_ = json.Unmarshal(b, &vectors)
	for _, g := range vectors {
		f.Add(g.Statement)
	}
	f.Add("a.b.c")
	f.Fuzz(func(t *testing.T, s string) {
		st, sig, err := ParseStatement(s)
		if err != nil {
			return
		}
		// Only canonical statements parse, so the signed bytes are rebuilt exactly.
		if rebuilt := st.SigningInput() + "." + b64.EncodeToString(sig); rebuilt != s {
			t.Fatalf("parsed %q but it rebuilds as %q", s, rebuilt)
		}
	})
}

// FuzzParseCanonical: ParseStatement's fast path accepts exactly what the
// strict decoder accepts, as the same statement.
func FuzzParseCanonical(f *testing.F) {
	b, _ := os.ReadFile("testdata/leaf-v1.json")
	var vectors []golden
	_ = json.Unmarshal(b, &vectors)
	for _, g := range vectors {
		parts := strings.Split(g.Statement, ".")
		hdr, _ := b64.DecodeString(parts[0])
		payload, _ := b64.DecodeString(parts[1])
		f.Add(hdr, payload)
	}
	f.Add([]byte(`{"alg":"ES256","kid":"x","typ":"t"}`), []byte(`{"kyc_data_hash":"x","hash_alg":"sha-256","sub":"","iat":01}`))
	f.Fuzz(func(t *testing.T, hdr, payload []byte) {
		fast, ok := parseCanonical(hdr, payload)
		strict, err := parseStrict(hdr, payload)
		if ok != (err == nil) {
			t.Fatalf("fast path ok %v, strict %v", ok, err)
		}
		if ok && *fast != *strict {
			t.Fatalf("fast path %+v, strict %+v", fast, strict)
		}
	})
}

// TestVerifyAgreesWithGoJose holds the log's own JWS check to go-jose's
// answers, for signatures that verify, every single-byte change of them,
// and ES256's malleated twin (r, n−s), which both accept: dedup is by agent
// and digest, never by signature bytes.
func TestVerifyAgreesWithGoJose(t *testing.T) {
	ed, ec := testKeys(t)
	for _, k := range []crypto.Signer{ec, ed} {
		pub := jose.JSONWebKey{Key: k.Public()}
		agents, err := (&Agents{}).Add("agent", pub, "")
		if err != nil {
			t.Fatal(err)
		}
		agent, err := agents.Lookup(mustThumbprint(t, &pub))
		if err != nil {
			t.Fatal(err)
		}
		st, err := NewStatement(&pub, [32]byte{7}, "Business_42", 1763856000)
		if err != nil {
			t.Fatal(err)
		}
		compact, err := st.Sign(k)
		if err != nil {
			t.Fatal(err)
		}
		_, sig, err := ParseStatement(compact)
		if err != nil {
			t.Fatal(err)
		}
		sigs := [][]byte{sig}
		for i := range sig {
			bad := bytes.Clone(sig)
			bad[i] ^= 0x01
			sigs = append(sigs, bad)
		}
		if _, ok := k.(*ecdsa.PrivateKey); ok {
			s := new(big.Int).SetBytes(sig[32:])
			twin := bytes.Clone(sig)
			new(big.Int).Sub(elliptic.P256().Params().N, s).FillBytes(twin[32:])
			sigs = append(sigs, twin)
		}
		accepted := 0
		for i, sg := range sigs {
			jws, err := jose.ParseSignedCompact(st.SigningInput()+"."+b64.EncodeToString(sg), []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
			if err != nil {
				t.Fatal(err)
			}
			_, joseErr := jws.Verify(k.Public())
			ours := st.Verify(&pub, sg)
			byAgent := agent.VerifyStatement(st, sg)
			if (joseErr == nil) != (ours == nil) || (ours == nil) != (byAgent == nil) {
				t.Fatalf("%s signature %d: go-jose %v, Verify %v, VerifyStatement %v", st.Alg, i, joseErr, ours, byAgent)
			}
			if ours != nil && !errors.Is(ours, ErrBadSignature) {
				t.Fatalf("%s signature %d: Verify = %v, want ErrBadSignature", st.Alg, i, ours)
			}
			if ours == nil {
				accepted++
			}
		}
		if want := map[Algorithm]int{ES256: 2, EdDSA: 1}[st.Alg]; accepted != want {
			t.Fatalf("%s: %d signatures accepted, want %d (the signature and its twin for ES256)", st.Alg, accepted, want)
		}
		// Another agent's registry entry does not verify the statement.
		other, err := (&Agents{}).Add("other", jose.JSONWebKey{Key: map[bool]crypto.PublicKey{true: ed.Public(), false: ec.Public()}[st.Alg == ES256]}, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := other.List()[0].VerifyStatement(st, sig); !errors.Is(err, ErrBadSignature) {
			t.Fatalf("%s: VerifyStatement by another agent = %v, want ErrBadSignature", st.Alg, err)
		}
	}
}
