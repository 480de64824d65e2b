package passport

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

var update = flag.Bool("update", false, "rewrite the golden vectors in testdata/")

// golden is testdata/passports.json: PASSporTs made once by Sign with
// delegate certificates whose SCTs an STI-CT log signer issued, and
// what verifies them at Now.
type golden struct {
	Now     int64    `json:"now"`
	Roots   []string `json:"roots"` // standard base64 DER
	Log     struct{ Origin, VKey string }
	SHAKEN  string `json:"shaken"`
	RSP     string `json:"rsp"`
	Payload struct {
		SHAKEN string `json:"shaken"` // the SHAKEN payload, as Sign writes it (RFC 8225 §9)
		RSP    string `json:"rsp"`
	} `json:"payload"`
}

func writeGolden(t *testing.T) {
	f := newFixture(t)
	caller := f.delegate(t, stitest.DelegateOptions{Name: "golden caller 12025550100+100"})
	answer := f.delegate(t, stitest.DelegateOptions{Name: "golden answerer", TNAuthList: mustTNAuthList(t, stict.TNAuthList{{One: "12155551213"}})})
	var g golden
	g.Now = f.now.Unix()
	g.Roots = []string{base64.StdEncoding.EncodeToString(f.p.Root.DER)}
	g.Log.Origin, g.Log.VKey = f.log.Name(), f.log.VKey()
	cl := f.shaken("12025550101")
	g.SHAKEN = f.sign(t, caller, cl, "shaken")
	cl.IAT += 2
	g.RSP = f.sign(t, answer, cl, "rsp")
	for _, p := range []struct {
		tok string
		out *string
	}{{g.SHAKEN, &g.Payload.SHAKEN}, {g.RSP, &g.Payload.RSP}} {
		b, _ := base64.RawURLEncoding.DecodeString(strings.Split(p.tok, ".")[1])
		*p.out = string(b)
	}
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile("testdata/passports.json", append(b, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGolden: the stored SHAKEN and rsp PASSporTs still verify, and Sign
// still writes their header and payload byte for byte.
func TestGolden(t *testing.T) {
	if *update {
		writeGolden(t)
	}
	b, err := os.ReadFile("testdata/passports.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	der, _ := base64.StdEncoding.DecodeString(g.Roots[0])
	roots, err := stict.ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	if err != nil {
		t.Fatal(err)
	}
	l, err := stict.CTLogFromVKey(g.Log.Origin, g.Log.VKey, "")
	if err != nil {
		t.Fatal(err)
	}
	o := Options{Now: time.Unix(g.Now, 0), Trust: &Trust{Roots: roots, Logs: []stict.CTLog{l}}}
	res, err := Verify(context.Background(), g.SHAKEN, o)
	if err != nil {
		t.Fatalf("golden SHAKEN: %v", err)
	}
	if o.Original, err = Parse(g.SHAKEN); err != nil {
		t.Fatal(err)
	}
	if _, err := Verify(context.Background(), g.RSP, o); err != nil {
		t.Fatalf("golden rsp: %v", err)
	}
	// Sign, with another key (the signature differs, not the rest),
	// writes the same header and payload.
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, c := range []struct {
		tok, payload, ppt string
	}{{g.SHAKEN, g.Payload.SHAKEN, "shaken"}, {g.RSP, g.Payload.RSP, "rsp"}} {
		p, err := Parse(c.tok)
		if err != nil {
			t.Fatal(err)
		}
		if string(p.Payload()) != c.payload {
			t.Errorf("payload %s, golden %s", p.Payload(), c.payload)
		}
		again, err := Sign(p.Claims, SignOptions{Key: k, Chain: p.Header.X5C, PPT: c.ppt})
		if err != nil {
			t.Fatal(err)
		}
		if a, b := again[:strings.LastIndexByte(again, '.')], c.tok[:strings.LastIndexByte(c.tok, '.')]; a != b {
			t.Errorf("Sign(%s claims) writes\n%s\ngolden\n%s", c.ppt, a, b)
		}
	}
	_ = res
}

// privacyGolden is testdata/privacy-modes.json: the permitted values of
// the privacy-mode profile (privacy.go) for fixed inputs.
type privacyGolden struct {
	Value       json.RawMessage `json:"value"`
	Salt        string          `json:"salt"` // base64url
	Transparent string          `json:"transparent"`
	Hash        string          `json:"hash"`
	Commit      string          `json:"commit"`
	// CommitWithSaltHash is a commitment with the optional salt hash,
	// which verifiers accept.
	CommitWithSaltHash string `json:"commit_with_salt_hash"`
	// DER is the EnhancedJWTClaimConstraints extension value (hex) that
	// requires rcd and permits it in each mode.
	DER struct {
		Transparent string `json:"transparent"`
		Hash        string `json:"hash"`
		Commit      string `json:"commit"`
	} `json:"der"`
}

// TestPrivacyGolden: the profile's values for stitest's rcd and salt are
// the stored ones, and equal stitest.RCDPermitted's, which stitest
// computes on its own.
func TestPrivacyGolden(t *testing.T) {
	v := json.RawMessage(`{ "nam": "Vesper Test Caller" }`) // canonicalized first
	var g privacyGolden
	var err error
	g.Value, g.Salt = json.RawMessage(stitest.RCDJSON), base64.RawURLEncoding.EncodeToString(stitest.RCDSalt)
	if g.Transparent, err = ValueConstraint(v); err != nil {
		t.Fatal(err)
	}
	if g.Hash, err = HashConstraint(v); err != nil {
		t.Fatal(err)
	}
	if g.Commit, err = CommitConstraint(v, stitest.RCDSalt); err != nil {
		t.Fatal(err)
	}
	sh := sha256.Sum256(stitest.RCDSalt)
	g.CommitWithSaltHash = g.Commit + ":" + base64.RawURLEncoding.EncodeToString(sh[:])
	for _, d := range []struct {
		p   string
		m   stitest.Mode
		out *string
	}{{g.Transparent, stitest.ModeValue, &g.DER.Transparent}, {g.Hash, stitest.ModeHash, &g.DER.Hash}, {g.Commit, stitest.ModeCommit, &g.DER.Commit}} {
		der, err := (&stict.Constraints{Enhanced: true, MustInclude: []string{"rcd"}, PermittedValues: []stict.ClaimValues{{Claim: "rcd", Values: []string{d.p}}}}).Marshal()
		if err != nil {
			t.Fatal(err)
		}
		// stitest encodes the same extension by hand.
		if ext := stitest.RCDConstraint(d.m); !ext.Id.Equal(stict.OIDEnhancedJWTClaimConstraints) || hex.EncodeToString(ext.Value) != hex.EncodeToString(der) {
			t.Errorf("mode %d: stitest's DER %x, ours %x", d.m, ext.Value, der)
		}
		*d.out = hex.EncodeToString(der)
	}
	got, _ := json.MarshalIndent(g, "", "  ")
	got = append(got, '\n')
	if *update {
		if err := os.WriteFile("testdata/privacy-modes.json", got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/privacy-modes.json")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("privacy-mode values\n%s\ngolden\n%s", got, want)
	}
	for m, p := range map[stitest.Mode]string{stitest.ModeValue: g.Transparent, stitest.ModeHash: g.Hash, stitest.ModeCommit: g.Commit} {
		if stitest.RCDPermitted(m) != p {
			t.Errorf("mode %d: stitest %q, ours %q", m, stitest.RCDPermitted(m), p)
		}
	}
	// A string claim's transparent value is the string, not its JSON.
	if s, err := ValueConstraint(json.RawMessage(`"sales"`)); err != nil || s != "sales" {
		t.Errorf("ValueConstraint(string) = %q, %v", s, err)
	}
	if _, err := CommitConstraint(v, []byte("short")); err == nil {
		t.Error("CommitConstraint took a 5-byte salt")
	}
	// Matching: the salt hash is checked when present; a prefix without
	// a 43-character digest is a transparent value.
	vb := []byte(stitest.RCDJSON)
	d := &Disclosure{Salt: stitest.RCDSalt}
	for _, c := range []struct {
		values []string
		d      *Disclosure
		want   matchOutcome
	}{
		{[]string{g.Transparent}, nil, matchValue},
		{[]string{g.Hash}, nil, matchHash},
		{[]string{g.Commit}, d, matchCommit},
		{[]string{g.CommitWithSaltHash}, d, matchCommit},
		{[]string{g.Commit + ":" + strings.Repeat("A", 43)}, d, matchCommitWrong},
		{[]string{g.Commit}, nil, matchCommitNoSalt},
		{[]string{g.Commit}, &Disclosure{Salt: []byte("0123456789abcdef")}, matchCommitWrong},
		{[]string{"sha-256:short"}, nil, matchNone},
		{[]string{"other", g.Hash}, nil, matchHash},
	} {
		if got, _ := matchPermitted(vb, c.values, c.d); got != c.want {
			t.Errorf("matchPermitted(%q) = %d, want %d", c.values, got, c.want)
		}
	}
}
