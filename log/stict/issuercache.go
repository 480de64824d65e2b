package stict

import (
	"container/list"
	"crypto/sha256"
	"crypto/x509"
	"sync"
	"sync/atomic"
)

// maxVerifiedIssuers bounds a Roots' cache of verified intermediates. An
// STI-CT log sees a few dozen STI-CAs; past this, the least recently used
// is forgotten and verified again when it returns.
const maxVerifiedIssuers = 1024

// issuerKey names a verified intermediate: the SHA-256 of its DER and of
// the DER of the root it was verified to.
type issuerKey struct{ inter, root [sha256.Size]byte }

// verifiedIssuer is an intermediate whose signature by root crypto/x509
// verified, in a full chain that passed every check. Its certificates
// are shared by every submission that names it: nothing changes them.
type verifiedIssuer struct {
	key         issuerKey
	inter, root *x509.Certificate
	// anchor holds inter alone: a leaf verified to it has had every check
	// of a chain through inter except the ones inter→root, made once.
	anchor *x509.CertPool
}

// issuerCache is a bounded LRU of verified intermediates (issue 15: the
// intermediate→root signature, the same for every certificate an STI-CA
// issues, was half the CPU of add-chain).
type issuerCache struct {
	mu  sync.Mutex // guards m and lru
	m   map[issuerKey]*list.Element
	lru *list.List // of *verifiedIssuer, most recently used first
	max int
	// hits counts the chains that took the cache's path, for tests.
	hits atomic.Uint64
}

func newIssuerCache(max int) *issuerCache {
	return &issuerCache{m: map[issuerKey]*list.Element{}, lru: list.New(), max: max}
}

// get returns the verified intermediate of k, or nil.
func (c *issuerCache) get(k issuerKey) *verifiedIssuer {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[k]
	if !ok {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*verifiedIssuer)
}

// add remembers v, forgetting the least recently used past c.max.
func (c *issuerCache) add(v *verifiedIssuer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.m[v.key]; ok {
		c.lru.MoveToFront(e)
		return
	}
	c.m[v.key] = c.lru.PushFront(v)
	for c.lru.Len() > c.max {
		old := c.lru.Back()
		c.lru.Remove(old)
		delete(c.m, old.Value.(*verifiedIssuer).key)
	}
}

func (c *issuerCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lru.Len()
}

// lookup returns the verified intermediate whose DER hashes to h, under
// any of the roots, or nil.
func (r *Roots) lookup(h [sha256.Size]byte) *verifiedIssuer {
	for _, rh := range r.hashes {
		if v := r.verified.get(issuerKey{h, rh}); v != nil {
			return v
		}
	}
	return nil
}

// remember caches the intermediate of a verified path leaf, intermediate,
// root, if the checks crypto/x509 makes of a chain through it are the
// leaf's own and the intermediate's: the root constrains no names (which
// would apply to each leaf), and no certificate in the chain carries
// policy constraints or mappings (whose outcome depends on the whole
// chain, trust anchor aside).
func (r *Roots) remember(path []*x509.Certificate) {
	if len(path) != 3 {
		return
	}
	inter, root := path[1], path[2]
	if nameConstrained(root) || !policyFree(path[0]) || !policyFree(inter) || !policyFree(root) {
		return
	}
	pool := x509.NewCertPool()
	pool.AddCert(inter)
	r.verified.add(&verifiedIssuer{
		key:    issuerKey{sha256.Sum256(inter.Raw), sha256.Sum256(root.Raw)},
		inter:  inter,
		root:   root,
		anchor: pool,
	})
}

// nameConstrained reports whether c carries name constraints.
func nameConstrained(c *x509.Certificate) bool {
	return len(c.PermittedDNSDomains) > 0 || len(c.ExcludedDNSDomains) > 0 ||
		len(c.PermittedIPRanges) > 0 || len(c.ExcludedIPRanges) > 0 ||
		len(c.PermittedEmailAddresses) > 0 || len(c.ExcludedEmailAddresses) > 0 ||
		len(c.PermittedURIDomains) > 0 || len(c.ExcludedURIDomains) > 0 ||
		c.PermittedDNSDomainsCritical
}

// policyFree reports whether c carries no policy constraints or mappings,
// the only inputs that can make RFC 5280 policy validation fail when the
// verifier asks for no particular policy.
func policyFree(c *x509.Certificate) bool {
	return c.RequireExplicitPolicy == 0 && !c.RequireExplicitPolicyZero &&
		c.InhibitPolicyMapping == 0 && !c.InhibitPolicyMappingZero &&
		c.InhibitAnyPolicy == 0 && !c.InhibitAnyPolicyZero &&
		len(c.PolicyMappings) == 0
}
