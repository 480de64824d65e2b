package vesper

import (
	"crypto"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/receipts/internal/jsinterop"
)

// node runs interop.mjs (see jsinterop.Run).
func node(t *testing.T, want bool, args ...string) map[string]any {
	t.Helper()
	return jsinterop.Run(t, "@sd-jwt/core", want, args...)
}

func writeJSON(t *testing.T, dir, name string, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(p)
	return abs
}

func writeText(t *testing.T, dir, name, s string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(p)
	return abs
}

// TestInteropOurTokensVerifyElsewhere: tokens, presentations and receipts
// made here verify with @sd-jwt/core and jose; tampered ones do not.
func TestInteropOurTokensVerifyElsewhere(t *testing.T) {
	dir := t.TempDir()
	agent := newKey(t)
	w := newWorld(t, agent.Key.(crypto.Signer))
	holder := newKey(t)
	hpub := holder.Public()
	// Node checks exp against its own clock: issue at the real time.
	tok, err := Issue(Issuance{
		Key: w.agentKey, Issuer: "https://va.example", Subject: "Business_42", IssuedAt: time.Now(), Lifetime: time.Hour,
		KYCDataHash: [32]byte{5}, Receipt: w.logged(t, agent.Key.(crypto.Signer), [32]byte{5}, "Business_42"),
		HolderKey: &hpub, Claims: parseClaims(t, draftClaims), Frame: parseFrame(t, draftFrame),
	})
	if err != nil {
		t.Fatal(err)
	}
	issuerJWK := writeJSON(t, dir, "issuer.json", jose.JSONWebKey{Key: agent.Key.(crypto.Signer).Public()})

	res := node(t, true, "verify-sdjwt", "--issuer-jwk", issuerJWK, "--token", writeText(t, dir, "tok", tok), "--typ", Type)
	claims := res["claims"].(map[string]any)
	if claims["contact_email"] != "johndoe@example.com" || claims["sub"] != "Business_42" {
		t.Fatalf("@sd-jwt/core sees %v", claims)
	}
	// A presentation with key binding.
	pres := mustPresent(t, tok, []string{"contact_given_name"}, &KeyBinding{Key: holder, Audience: "https://verifier.example", Nonce: "n-42", IssuedAt: time.Now()})
	res = node(t, true, "verify-sdjwt", "--issuer-jwk", issuerJWK, "--token", writeText(t, dir, "pres", pres), "--typ", Type, "--aud", "https://verifier.example", "--nonce", "n-42")
	if c := res["claims"].(map[string]any); c["contact_given_name"] != "John" || c["contact_email"] != nil {
		t.Fatalf("@sd-jwt/core sees %v", c)
	}
	// The receipt inside, with jose, against a JWKS as a log publishes it
	// after rotations: a retired key and the current one, with their
	// validity windows as nbf and exp members.
	receipt := w.logged(t, agent.Key.(crypto.Signer), [32]byte{5}, "Business_42")
	retired, err := receipts.NewSigner(newKey(t).Key.(crypto.Signer))
	if err != nil {
		t.Fatal(err)
	}
	rotated := &receipts.KeySet{Keys: []receipts.Key{
		{JSONWebKey: retired.PublicJWK(), NotBefore: now.AddDate(-1, 0, 0), Expires: now.Add(-time.Hour)},
		{JSONWebKey: w.trust.Keys.Keys[0].JSONWebKey, NotBefore: now.Add(-time.Hour)},
	}}
	jwksFile := writeJSON(t, dir, "jwks.json", rotated)
	if b, _ := os.ReadFile(jwksFile); strings.Count(string(b), `"nbf":`) != 2 || strings.Count(string(b), `"exp":`) != 1 {
		t.Fatalf("the JWKS lacks its windows: %s", b)
	}
	if _, err := receipts.Verify(receipt, receipts.Trust{Keys: rotated, Policy: w.trust.Policy}); err != nil {
		t.Fatalf("receipts.Verify under the rotated JWKS: %v", err)
	}
	res = node(t, true, "verify-jws", "--jwks", jwksFile, "--jws", writeText(t, dir, "receipt", receipt), "--typ", "tlog-receipt+jwt")
	if p := res["payload"].(map[string]any); p["origin"] != w.origin {
		t.Fatalf("jose sees %v", p)
	}

	// What we refuse, they refuse too.
	node(t, false, "verify-sdjwt", "--issuer-jwk", issuerJWK, "--token", writeText(t, dir, "extra", tok+disclosure(t, "salt", "x", 1)+"~"), "--typ", Type)
	node(t, false, "verify-sdjwt", "--issuer-jwk", issuerJWK, "--token", writeText(t, dir, "pres2", pres), "--typ", Type, "--aud", "https://verifier.example", "--nonce", "n-43")
	node(t, false, "verify-jws", "--jwks", jwksFile, "--jws", writeText(t, dir, "bad", strings.Replace(receipt, ".", ".A", 1)), "--typ", "tlog-receipt+jwt")
}

// TestInteropTheirTokensVerifyHere: a vesper token issued by @sd-jwt/core,
// with a real receipt, verifies with Verify, with and without key binding.
func TestInteropTheirTokensVerifyHere(t *testing.T) {
	dir := t.TempDir()
	agent := newKey(t)
	w := newWorld(t, agent.Key.(crypto.Signer))
	d := [32]byte{6}
	claims := parseClaims(t, draftClaims)
	claims["iss"] = "https://va.example"
	claims["sub"] = "Business_42"
	claims["iat"] = time.Now().Unix()
	claims["exp"] = time.Now().Add(time.Hour).Unix()
	claims["kyc_data_hash"] = b64.EncodeToString(d[:])
	claims["transparency_receipt"] = w.logged(t, agent.Key.(crypto.Signer), d, "Business_42")
	frame := map[string]any{
		"_sd":          []any{"address", "contact_given_name", "contact_email"},
		"rcd":          map[string]any{"_sd": []any{0}},
		"_sd_decoy":    2,
		"business_ids": map[string]any{"_sd": []any{0}},
	}
	args := []string{"issue-sdjwt", "--issuer-jwk", writeJSON(t, dir, "issuer.json", agent), "--claims", writeJSON(t, dir, "claims.json", claims),
		"--frame", writeJSON(t, dir, "frame.json", frame), "--typ", Type}
	res := node(t, true, args...)
	o := Verification{Trust: w.trust, Issuers: w.agents}
	v, err := Verify(res["token"].(string), o)
	if err != nil {
		t.Fatalf("a token from @sd-jwt/core: %v", err)
	}
	if v.Claims["contact_email"] != "johndoe@example.com" || len(v.Disclosed) != 5 {
		t.Fatalf("verified %v, disclosed %v", v.Claims, v.Disclosed)
	}

	holder := newKey(t)
	res = node(t, true, append(args, "--holder-jwk", writeJSON(t, dir, "holder.json", holder), "--aud", "https://verifier.example", "--nonce", "n-7")...)
	o.KeyBinding = &KeyBindingPolicy{Audience: "https://verifier.example", Nonce: "n-7"}
	if v, err := Verify(res["token"].(string), o); err != nil || !v.KeyBound {
		t.Fatalf("a KB presentation from @sd-jwt/core: %+v, %v", v, err)
	}
	o.KeyBinding.Nonce = "n-8"
	if _, err := Verify(res["token"].(string), o); err == nil {
		t.Fatal("a KB presentation with another nonce verified")
	}
}
