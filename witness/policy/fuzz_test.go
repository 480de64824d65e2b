package policy

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// -write-corpus regenerates testdata/fuzz from the seeds below. The keys
// are derived from fixed seeds, so the files stay valid; only the
// cosignature timestamps change.
var writeCorpus = flag.Bool("write-corpus", false, "write the fuzz seed corpus to testdata/fuzz")

// parseSeeds are the table rows of TestParse with keys filled in.
func parseSeeds(t testing.TB) map[string][]byte {
	k := keys(t)
	seeds := make(map[string][]byte)
	for _, c := range parseCases {
		seeds[c.name] = []byte(k.expand(c.in))
	}
	seeds["bare vkey"] = []byte(k.l1.vkey) // for ForLog
	return seeds
}

type verifySeed struct{ policy, checkpoint []byte }

func verifySeeds(t testing.TB) map[string]verifySeed {
	k := keys(t)
	cp := body("example.com/log1", 5)
	l1 := k.l1.signer
	pol := func(s string) []byte { return []byte(k.expand(s)) }
	twoOfThree := pol("log {L1}\n" + x123 + "group G 2 X1 X2 X3\nquorum G\n")
	mixed := pol("log {L1}\nwitness X1 {X1}\nwitness M1 {M1}\nwitness X2 {X2}\ngroup G 2 X1 M1 X2\nquorum G\n")
	m1 := k.m["M1"].signer
	return map[string]verifySeed{
		"none":               {pol("log {L1}\nquorum none\n"), sign(t, cp, l1)},
		"2of3 met":           {twoOfThree, sign(t, cp, l1, k.w["X1"].signer, k.w["X3"].signer)},
		"2of3 unmet":         {twoOfThree, sign(t, cp, l1, k.w["X2"].signer, k.w["Z"].signer)},
		"2of3 extension":     {twoOfThree, sign(t, body("example.com/log1", 9, "ext"), k.w["X2"].signer, l1, k.w["X1"].signer)},
		"xy met":             {pol(xyExample), sign(t, cp, l1, k.w["X1"].signer, k.w["X2"].signer, k.w["Y3"].signer)},
		"xy unmet":           {pol(xyExample), sign(t, cp, l1, k.w["X1"].signer, k.w["Y1"].signer)},
		"unknown log":        {twoOfThree, sign(t, body("example.com/log2", 5), k.l2.signer, k.w["X1"].signer)},
		"no log signature":   {twoOfThree, sign(t, cp, k.w["X1"].signer, k.w["X2"].signer)},
		"tampered":           {twoOfThree, tamper(t, sign(t, cp, l1, k.w["X1"].signer, k.w["X2"].signer), "\n5\n", "\n6\n")},
		"tampered cosig":     {twoOfThree, flipSig(t, sign(t, cp, l1, k.w["X1"].signer, k.w["X2"].signer), "witness.example/X1")},
		"malformed size":     {twoOfThree, sign(t, "example.com/log1\n05\n"+hashLine+"\n", l1)},
		"two logs":           {pol("log {L1}\nlog {L2}\nquorum none\n"), sign(t, body("example.com/log2", 3), k.l2.signer, l1)},
		"no signature lines": {twoOfThree, []byte(cp + "\n")},
		"ML-DSA mixed met":   {mixed, sign(t, cp, l1, m1, k.w["X2"].signer)},
		"ML-DSA mixed unmet": {mixed, sign(t, cp, l1, m1)},
		"ML-DSA tampered":    {mixed, flipSig(t, sign(t, cp, l1, k.w["X1"].signer, m1), "witness.example/M1")},
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range parseSeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		// Any vkey ForLog accepts gives a policy that Parse accepts back.
		if p, err := ForLog(string(b)); err == nil {
			if q, err := Parse([]byte(p.String())); err != nil || !samePolicy(p, q) {
				t.Fatalf("ForLog(%q).String() does not round-trip: %v", b, err)
			}
		} else if !errors.Is(err, ErrMalformedPolicy) {
			t.Fatalf("ForLog error %v does not wrap ErrMalformedPolicy", err)
		}

		p, err := Parse(b)
		if err != nil {
			if p != nil || !errors.Is(err, ErrMalformedPolicy) {
				t.Fatalf("Parse = %v, %v", p, err)
			}
			if len(b) <= MaxPolicySize && !strings.Contains(err.Error(), ": line ") {
				t.Fatalf("error without a line number: %v", err)
			}
			return
		}
		// Accepted input obeys the spec's coarse rules ...
		if len(b) > MaxPolicySize || b[len(b)-1] != '\n' {
			t.Fatalf("accepted %d bytes ending %q", len(b), b[len(b)-1])
		}
		for _, c := range b {
			if c < 0x20 && c != '\t' && c != '\n' || c == 0x7f {
				t.Fatalf("accepted octet 0x%02x", c)
			}
		}
		// ... and round-trips through String.
		s := p.String()
		q, err := Parse([]byte(s))
		if err != nil {
			t.Fatalf("Parse(String()) = %v\n%s", err, s)
		}
		if q.String() != s || !samePolicy(p, q) {
			t.Fatalf("round trip changed the policy:\n%s\n%s", s, q.String())
		}
		if q := p.Quorum(); q != "none" {
			if _, ok := p.byName[q]; !ok {
				t.Fatalf("quorum %q is not defined", q)
			}
		}
		for _, l := range p.Logs() {
			if got, ok := p.Log(l.Origin); !ok || got.VKey != l.VKey {
				t.Fatalf("Log(%q) = %v, %v", l.Origin, got, ok)
			}
		}
		for _, g := range p.groups {
			if g.k < 1 || g.k > len(g.members) {
				t.Fatalf("group %q has k=%d, n=%d", g.name, g.k, len(g.members))
			}
		}
		// No cosignatures satisfy the quorum only if it is none or a
		// group is vacuous, which the rules above exclude; all satisfy it.
		if sat := p.evaluate(make([]bool, len(p.witnesses))); p.satisfied(p.quorum, make([]bool, len(p.witnesses)), sat) != (p.Quorum() == "none") {
			t.Fatalf("quorum %q with no cosignatures: wrong result", p.Quorum())
		}
		all := make([]bool, len(p.witnesses))
		for i := range all {
			all[i] = true
		}
		if !p.satisfied(p.quorum, all, p.evaluate(all)) {
			t.Fatalf("quorum %q not met with every witness", p.Quorum())
		}
	})
}

func FuzzVerify(f *testing.F) {
	for _, s := range verifySeeds(f) {
		f.Add(s.policy, s.checkpoint)
	}
	f.Fuzz(func(t *testing.T, policy, checkpoint []byte) {
		p, err := Parse(policy)
		if err != nil {
			return
		}
		c, err := p.Verify(checkpoint)
		if err != nil {
			n := 0
			for _, s := range sentinels {
				if errors.Is(err, s) {
					n++
				}
			}
			if n != 1 || c != nil {
				t.Fatalf("Verify = %v, %v (wraps %d sentinels)", c, err, n)
			}
			return
		}
		l, ok := p.Log(c.Origin)
		if !ok {
			t.Fatalf("accepted origin %q not in the policy", c.Origin)
		}
		checkCheckpoint(t, c)
		if !strings.HasPrefix(string(checkpoint), c.Note.Text+"\n") {
			t.Fatalf("note text %q is not the start of the input", c.Note.Text)
		}
		logSigned := false
		for _, s := range c.Note.Sigs {
			if s.Name == l.Verifier.Name() && s.Hash == l.Verifier.KeyHash() {
				logSigned = true
			}
		}
		if !logSigned {
			t.Fatal("accepted without the log's signature in Note.Sigs")
		}
		cosigned := make([]bool, len(p.witnesses))
		for _, name := range c.Cosigners {
			r := p.byName[name]
			if r.kind != refWitness || cosigned[r.i] {
				t.Fatalf("cosigner %q is not a witness, or listed twice", name)
			}
			cosigned[r.i] = true
		}
		if !p.satisfied(p.quorum, cosigned, p.evaluate(cosigned)) {
			t.Fatalf("accepted with cosigners %q not meeting quorum %q", c.Cosigners, p.Quorum())
		}
	})
}

// TestWriteCorpus writes the seeds as go-fuzz corpus files when run with
// -write-corpus; otherwise it checks that the checked-in corpus exists.
func TestWriteCorpus(t *testing.T) {
	files := make(map[string]string)
	add := func(path, content string) {
		if _, dup := files[path]; dup {
			t.Fatalf("two seeds map to %s", path)
		}
		files[path] = content
	}
	for name, s := range parseSeeds(t) {
		add(filepath.Join("FuzzParse", fileName(name)), fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", s))
	}
	for name, s := range verifySeeds(t) {
		add(filepath.Join("FuzzVerify", fileName(name)), fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n[]byte(%q)\n", s.policy, s.checkpoint))
	}
	for name, content := range files {
		path := filepath.Join("testdata", "fuzz", name)
		if !*writeCorpus {
			if _, err := os.Stat(path); err != nil {
				t.Errorf("seed corpus file missing (run go test -run TestWriteCorpus -write-corpus): %v", err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func fileName(name string) string {
	return "seed-" + strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '_'
	}, name)
}
