package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/storage"
)

// issuerCacheSize bounds the certificates kept in memory. Only
// certificates that chain to an accepted root are stored, so a log sees
// few; the bound is there all the same.
const issuerCacheSize = 1024

// Issuers stores the certificates of submitted chains, leaf excluded, as
// static-ct-api serves them: one immutable object per certificate at
// issuer/<hex SHA-256 of its DER>, beside the log's tiles in its backend,
// so that every front end (and the bucket itself) serves them.
type Issuers struct {
	objects storage.Objects
	cache   *lru.Cache[[32]byte, []byte] // safe for concurrent use
}

// NewIssuers stores issuers in a log's objects.
func NewIssuers(objects storage.Objects) *Issuers {
	c, err := lru.New[[32]byte, []byte](issuerCacheSize)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	return &Issuers{objects: objects, cache: c}
}

func issuerPath(fp [32]byte) string { return "issuer/" + hex.EncodeToString(fp[:]) }

// Put stores a certificate, once.
func (s *Issuers) Put(ctx context.Context, der []byte) error {
	fp := sha256.Sum256(der)
	if s.cache.Contains(fp) {
		return nil
	}
	if err := s.objects.Put(ctx, issuerPath(fp), der, "application/pkix-cert"); err != nil {
		return fmt.Errorf("storing issuer: %w", err)
	}
	s.cache.Add(fp, der)
	return nil
}

// Get returns the certificate with the given fingerprint, checked
// against it: the backend is not trusted to return the right bytes.
func (s *Issuers) Get(ctx context.Context, fp [32]byte) ([]byte, error) {
	if der, ok := s.cache.Get(fp); ok {
		return der, nil
	}
	der, err := s.objects.Get(ctx, issuerPath(fp))
	if errors.Is(err, storage.ErrNotExist) {
		return nil, fmt.Errorf("%w: no issuer %x", problem.ErrNotFound, fp)
	}
	if err != nil {
		return nil, fmt.Errorf("reading issuer %x: %w", fp, err)
	}
	if sha256.Sum256(der) != fp {
		return nil, fmt.Errorf("stored issuer %x does not hash to its name", fp)
	}
	s.cache.Add(fp, der)
	return der, nil
}

// Chain returns the certificates of a chain of fingerprints.
func (s *Issuers) Chain(ctx context.Context, fps [][32]byte) ([][]byte, error) {
	out := make([][]byte, len(fps))
	for i, fp := range fps {
		der, err := s.Get(ctx, fp)
		if err != nil {
			return nil, err
		}
		out[i] = der
	}
	return out, nil
}
