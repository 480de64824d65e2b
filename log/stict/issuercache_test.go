package stict

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/vesperlog/vesperlog/log/stict/stitest"
)

// testCA issues the certificates of the cache's tests.
type testCA struct {
	cert *x509.Certificate
	der  []byte
	key  crypto.Signer
}

// issue makes a certificate named name, valid from notBefore to notAfter,
// signed by parent (self-signed if nil), a CA if ca, otherwise an STI leaf
// with a TNAuthList. mod, if set, changes the template last.
func issue(t *testing.T, name string, parent *testCA, ca bool, notBefore, notAfter time.Time, mod func(*x509.Certificate)) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if ca {
		tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
		tmpl.KeyUsage = x509.KeyUsageCertSign
	} else {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: OIDTNAuthList, Value: stitest.TNAuthListDER}}
	}
	if mod != nil {
		mod(tmpl)
	}
	p, signer := tmpl, crypto.Signer(key)
	if parent != nil {
		p, signer = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p, key.Public(), signer)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &testCA{cert: c, der: der, key: key}
}

func rootsOf(t *testing.T, cs ...*testCA) *Roots {
	t.Helper()
	var b []byte
	for _, c := range cs {
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.der})...)
	}
	r, err := ParseRoots(b)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// validate checks chain with roots (warm, whose cache the test fills) and
// with fresh roots of the same certificates (cold), and fails unless both
// give the same answer, want (nil or an error class of ValidateChain).
// It returns whether the warm check took the cache's path.
func validate(t *testing.T, warm *Roots, chain [][]byte, now time.Time, want error) bool {
	t.Helper()
	var pems []byte
	for _, c := range warm.certs {
		pems = append(pems, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	cold, err := ParseRoots(pems)
	if err != nil {
		t.Fatal(err)
	}
	hits := warm.verified.hits.Load()
	for name, r := range map[string]*Roots{"cached": warm, "uncached": cold} {
		v, err := ValidateChain(chain, r, now, false)
		switch {
		case want == nil && err != nil:
			t.Fatalf("%s: ValidateChain: %v", name, err)
		case want != nil && !errors.Is(err, want):
			t.Fatalf("%s: ValidateChain = %v, want %v", name, err, want)
		case want == nil:
			if len(v.Chain) < 2 || !bytes.Equal(v.Chain[0].Raw, chain[0]) || !bytes.Equal(v.Chain[1].Raw, chain[1]) {
				t.Fatalf("%s: verified path does not start with the submitted leaf and issuer", name)
			}
			if !bytes.Equal(v.Chain[len(v.Chain)-1].Raw, r.certs[0].Raw) && (len(r.certs) < 2 || !bytes.Equal(v.Chain[len(v.Chain)-1].Raw, r.certs[1].Raw)) {
				t.Fatalf("%s: verified path does not end at a root", name)
			}
		}
	}
	return warm.verified.hits.Load() > hits
}

// TestIssuerCache: a chain through a cached intermediate is answered as
// crypto/x509 answers the whole chain, but checks one signature.
func TestIssuerCache(t *testing.T) {
	now := time.Now()
	root := issue(t, "root", nil, true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour), nil)
	inter := issue(t, "STI-CA", root, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour), nil)
	leaf := func(name string, issuer *testCA) *testCA {
		return issue(t, name, issuer, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), nil)
	}
	roots := rootsOf(t, root)

	if validate(t, roots, [][]byte{leaf("first", inter).der, inter.der}, now, nil) {
		t.Fatal("the first chain through an intermediate took the cache's path")
	}
	if n := roots.verified.len(); n != 1 {
		t.Fatalf("%d intermediates cached, want 1", n)
	}
	t.Run("next chain", func(t *testing.T) {
		if !validate(t, roots, [][]byte{leaf("second", inter).der, inter.der}, now, nil) {
			t.Fatal("a second chain through a verified intermediate did not take the cache's path")
		}
		if !validate(t, roots, [][]byte{leaf("third", inter).der, inter.der, root.der}, now, nil) {
			t.Fatal("a chain with the root included did not take the cache's path")
		}
	})
	t.Run("concurrent", func(t *testing.T) {
		// Submissions share the cached certificates and pool: under
		// -race, this shows they only read them.
		var wg sync.WaitGroup
		for i := range 8 {
			c := [][]byte{leaf(fmt.Sprint("concurrent ", i), inter).der, inter.der}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 4 {
					if _, err := ValidateChain(c, roots, now, false); err != nil {
						t.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	t.Run("bad intermediate signature", func(t *testing.T) {
		// The same intermediate (subject, key) with its signature by the
		// root broken: the leaf's signature by it verifies, the chain
		// must not.
		bad := bytes.Clone(inter.der)
		bad[len(bad)-1] ^= 1
		validate(t, roots, [][]byte{leaf("bad signature", inter).der, bad}, now, ErrUntrusted)
	})
	t.Run("intermediate forged under a root of the same name", func(t *testing.T) {
		fakeRoot := issue(t, "root", nil, true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour), nil)
		forged := issue(t, "STI-CA", fakeRoot, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour), nil)
		validate(t, roots, [][]byte{leaf("forged", forged).der, forged.der}, now, ErrUntrusted)
		validate(t, roots, [][]byte{leaf("forged, cached intermediate named", forged).der, inter.der}, now, ErrUntrusted)
	})
	t.Run("leaf not signed by the cached intermediate", func(t *testing.T) {
		other := issue(t, "STI-CA", root, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour), nil)
		validate(t, roots, [][]byte{leaf("other issuer", other).der, inter.der}, now, ErrUntrusted)
	})
	t.Run("expired leaf", func(t *testing.T) {
		old := issue(t, "old", inter, false, now.Add(-48*time.Hour), now.Add(-24*time.Hour), nil)
		validate(t, roots, [][]byte{old.der, inter.der}, now, ErrExpired)
	})
	if n := roots.verified.len(); n != 1 {
		t.Fatalf("%d intermediates cached, want 1 (only those of accepted chains)", n)
	}
}

// TestIssuerCacheExpiry: an intermediate or root that has expired since it
// was cached is refused.
func TestIssuerCacheExpiry(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name                  string
		rootUntil, interUntil time.Duration
	}{
		{"intermediate", 10 * 365 * 24 * time.Hour, 2 * time.Hour},
		{"root", 2 * time.Hour, time.Hour},
	} {
		t.Run(c.name, func(t *testing.T) {
			root := issue(t, "root", nil, true, now.Add(-time.Hour), now.Add(c.rootUntil), nil)
			inter := issue(t, "STI-CA", root, true, now.Add(-time.Hour), now.Add(c.interUntil), nil)
			roots := rootsOf(t, root)
			l := issue(t, "leaf", inter, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), nil)
			validate(t, roots, [][]byte{l.der, inter.der}, now, nil)
			if !validate(t, roots, [][]byte{l.der, inter.der}, now.Add(time.Minute), nil) {
				t.Fatal("not cached")
			}
			if validate(t, roots, [][]byte{l.der, inter.der}, now.Add(3*time.Hour), ErrExpired) {
				t.Fatal("an expired chain took the cache's path")
			}
		})
	}
}

// TestIssuerCacheBounded: the cache keeps at most its bound of
// intermediates, the most recently used, and one it forgot is verified in
// full again.
func TestIssuerCacheBounded(t *testing.T) {
	now := time.Now()
	root := issue(t, "root", nil, true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour), nil)
	roots := rootsOf(t, root)
	roots.verified.max = 3
	var chains [][][]byte
	for i := range 5 {
		inter := issue(t, fmt.Sprintf("STI-CA %d", i), root, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour), nil)
		l := issue(t, "leaf", inter, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), nil)
		chains = append(chains, [][]byte{l.der, inter.der})
		validate(t, roots, chains[i], now, nil)
		if n, want := roots.verified.len(), min(i+1, 3); n != want {
			t.Fatalf("after %d intermediates, %d cached, want %d", i+1, n, want)
		}
	}
	// Checked newest first, so that one verified again evicts none of
	// those still to check.
	want := []bool{false, false, true, true, true}
	for i := 4; i >= 0; i-- {
		if got := validate(t, roots, chains[i], now, nil); got != want[i] {
			t.Errorf("intermediate %d: took the cache's path %v, want %v", i, got, want[i])
		}
	}
}

// TestIssuerCacheNotFor: chains whose outcome depends on more than the leaf
// and its issuer are never cached: longer chains, a root with name
// constraints, policy constraints.
func TestIssuerCacheNotFor(t *testing.T) {
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		t.Fatal(err)
	}
	roots := rootsOf(t, &testCA{cert: p.Root.Cert, der: p.Root.DER})
	for range 2 {
		if _, err := ValidateChain(p.Chain(p.DelegatedPrecert), roots, now, true); err != nil {
			t.Fatal(err)
		}
	}
	if n := roots.verified.len(); n != 0 {
		t.Fatalf("a chain of two intermediates cached %d", n)
	}

	constrained := issue(t, "root", nil, true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour), func(c *x509.Certificate) {
		c.PermittedDNSDomains = []string{"example.com"}
	})
	inter := issue(t, "STI-CA", constrained, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour), nil)
	croots := rootsOf(t, constrained)
	ok := issue(t, "leaf", inter, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), func(c *x509.Certificate) { c.DNSNames = []string{"sti.example.com"} })
	outside := issue(t, "leaf", inter, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), func(c *x509.Certificate) { c.DNSNames = []string{"example.net"} })
	validate(t, croots, [][]byte{ok.der, inter.der}, now, nil)
	validate(t, croots, [][]byte{outside.der, inter.der}, now, ErrUntrusted)
	if n := croots.verified.len(); n != 0 {
		t.Fatalf("an intermediate under a name-constrained root: %d cached", n)
	}

	// An intermediate that requires an explicit policy: a leaf with its
	// policy is accepted, one without is not, however often the first
	// comes.
	policy, err := x509.ParseOID("1.3.6.1.4.1.99999.1")
	if err != nil {
		t.Fatal(err)
	}
	proot := issue(t, "root", nil, true, now.Add(-time.Hour), now.Add(10*365*24*time.Hour), nil)
	pinter := issue(t, "STI-CA", proot, true, now.Add(-time.Hour), now.Add(5*365*24*time.Hour), func(c *x509.Certificate) {
		// policyConstraints { requireExplicitPolicy [0] 0 }, which
		// crypto/x509 parses but does not write.
		c.ExtraExtensions = []pkix.Extension{{Id: []int{2, 5, 29, 36}, Critical: true, Value: []byte{0x30, 0x03, 0x80, 0x01, 0x00}}}
		c.Policies = []x509.OID{policy}
	})
	if !pinter.cert.RequireExplicitPolicyZero {
		t.Fatal("the test intermediate has no policy constraint")
	}
	proots := rootsOf(t, proot)
	withPolicy := issue(t, "leaf", pinter, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), func(c *x509.Certificate) { c.Policies = []x509.OID{policy} })
	without := issue(t, "leaf", pinter, false, now.Add(-time.Hour), now.Add(365*24*time.Hour), nil)
	for range 2 {
		validate(t, proots, [][]byte{withPolicy.der, pinter.der}, now, nil)
	}
	validate(t, proots, [][]byte{without.der, pinter.der}, now, ErrUntrusted)
	if n := proots.verified.len(); n != 0 {
		t.Fatalf("an intermediate with policy constraints: %d cached", n)
	}
}

// BenchmarkValidateChain is one add-chain's validation of a new leaf under
// the test PKI's intermediate: "cached" with the intermediate verified
// once (one ECDSA check a chain), "uncached" with the cache off (two).
// cpu-µs/op is the process's CPU time, which other load on the machine
// changes less than ns/op.
func BenchmarkValidateChain(b *testing.B) {
	now := time.Now()
	p, err := stitest.Generate(now)
	if err != nil {
		b.Fatal(err)
	}
	chains := make([][][]byte, 256)
	for i := range chains {
		c, err := p.NewTN(fmt.Sprintf("bench %d", i))
		if err != nil {
			b.Fatal(err)
		}
		chains[i] = p.Chain(c)
	}
	for _, cached := range []bool{true, false} {
		b.Run(map[bool]string{true: "cached", false: "uncached"}[cached], func(b *testing.B) {
			roots, err := ParseRoots(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Root.DER}))
			if err != nil {
				b.Fatal(err)
			}
			if cached {
				// The intermediate verified once, before the timing, so
				// that even one iteration (CI's -benchtime 1x) measures
				// the cached path.
				if _, err := ValidateChain(chains[0], roots, now, false); err != nil {
					b.Fatal(err)
				}
			} else {
				roots.verified = newIssuerCache(0)
			}
			start := cpuTime(b)
			for i := 0; b.Loop(); i++ {
				if _, err := ValidateChain(chains[i%len(chains)], roots, now, false); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-start)/float64(time.Microsecond)/float64(b.N), "cpu-µs/op")
			if hit := roots.verified.hits.Load() > 0; hit != cached {
				b.Fatalf("took the cache's path: %v", hit)
			}
		})
	}
}

func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
