package vesper

import (
	"crypto"
	"testing"
)

// BenchmarkTokenVerify is a verifier's offline check of one vesper token
// issued over the draft's claim set (ES256 agent, ES256 receipt key, the
// log's Ed25519 checkpoint signature): "all-disclosed" is the issued token
// with every disclosure, "presented-kb" a holder's presentation of two
// claims with a KB-JWT, checked against audience and nonce.
func BenchmarkTokenVerify(b *testing.B) {
	w := newWorld(b, newKey(b).Key.(crypto.Signer))
	holder := newKey(b)
	pub := holder.Public()
	tok := w.issue(b, [32]byte{1}, &pub)
	pres := mustPresent(b, tok, []string{"contact_email", "address"},
		&KeyBinding{Key: holder, Audience: "https://verifier.example", Nonce: "n-1", IssuedAt: now})
	kbv := w.verification()
	kbv.KeyBinding = &KeyBindingPolicy{Audience: "https://verifier.example", Nonce: "n-1"}
	for _, c := range []struct {
		name     string
		token    string
		o        Verification
		disclose int
		keyBound bool
	}{
		{"all-disclosed", tok, w.verification(), 7, false},
		{"presented-kb", pres, kbv, 2, true},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				v, err := Verify(c.token, c.o)
				if err != nil {
					b.Fatal(err)
				}
				if v.KeyBound != c.keyBound || len(v.Disclosed) < c.disclose || v.Claims["sub"] != "Business_42" || v.Receipt.Index != 2 {
					b.Fatalf("verified: key bound %v, disclosed %q, sub %v", v.KeyBound, v.Disclosed, v.Claims["sub"])
				}
			}
		})
	}
}
