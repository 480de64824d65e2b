package policy

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"strings"
	"testing"

	fnote "github.com/transparency-dev/formats/note"
)

// TestRFC6962LogKey: an STI-CT log's static-ct-api key (0x05) is a log
// key, with its own key ID rule (the ID covers SHA-256 of the key).
func TestRFC6962LogKey(t *testing.T) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := fnote.RFC6962VerifierString("log.example/stict", k.Public())
	if err != nil {
		t.Fatal(err)
	}
	p, err := Parse([]byte("log " + vkey + "\nquorum none\n"))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if l, ok := p.Log("log.example/stict"); !ok || l.VKey != vkey {
		t.Fatalf("log not found: %+v", l)
	}
	name, rest, _ := strings.Cut(vkey, "+")
	id, key, _ := strings.Cut(rest, "+")
	wrongID := name + "+" + strings.Repeat("0", 8) + "+" + key
	if id == strings.Repeat("0", 8) {
		t.Skip("key ID happens to be zero")
	}
	if _, err := Parse([]byte("log " + wrongID + "\nquorum none\n")); err == nil || !strings.Contains(err.Error(), "does not match") {
		t.Fatalf("wrong key ID: %v", err)
	}
	v, err := NewLogVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	for _, sig := range [][]byte{nil, make([]byte, 8), make([]byte, 12), make([]byte, 13)} {
		if v.Verify([]byte("log.example/stict\n1\nAAAA\n"), sig) {
			t.Errorf("verified %x", sig)
		}
	}
}
