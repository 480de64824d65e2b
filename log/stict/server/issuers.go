package server

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// issuerCacheSize bounds the certificates kept in memory. Only
// certificates that chain to an accepted root are stored, so a log sees
// few; the bound is there all the same.
const issuerCacheSize = 1024

// Issuers stores the certificates of submitted chains, leaf excluded, as
// static-ct-api serves them: one immutable file per certificate, named by
// the hex SHA-256 of its DER, in the log's issuer/ directory.
type Issuers struct {
	dir   string
	cache *lru.Cache[[32]byte, []byte] // safe for concurrent use
}

// OpenIssuers opens (creating) the issuer directory dir.
func OpenIssuers(dir string) (*Issuers, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("issuer directory: %w", err)
	}
	c, err := lru.New[[32]byte, []byte](issuerCacheSize)
	if err != nil {
		return nil, err
	}
	return &Issuers{dir: dir, cache: c}, nil
}

// Put stores a certificate, once.
func (s *Issuers) Put(der []byte) error {
	fp := sha256.Sum256(der)
	if s.cache.Contains(fp) {
		return nil
	}
	path := filepath.Join(s.dir, hex.EncodeToString(fp[:]))
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		// Atomic: a reader sees the whole certificate or none.
		if err := keys.WriteFile(path, der, 0o644); err != nil {
			return fmt.Errorf("storing issuer: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("storing issuer: %w", err)
	}
	s.cache.Add(fp, der)
	return nil
}

// Get returns the certificate with the given fingerprint.
func (s *Issuers) Get(fp [32]byte) ([]byte, error) {
	if der, ok := s.cache.Get(fp); ok {
		return der, nil
	}
	der, err := os.ReadFile(filepath.Join(s.dir, hex.EncodeToString(fp[:])))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: no issuer %x", problem.ErrNotFound, fp)
	}
	if err != nil {
		return nil, fmt.Errorf("reading issuer %x: %w", fp, err)
	}
	if sha256.Sum256(der) != fp {
		return nil, fmt.Errorf("issuer file %x does not hash to its name", fp)
	}
	s.cache.Add(fp, der)
	return der, nil
}

// Chain returns the certificates of a chain of fingerprints.
func (s *Issuers) Chain(fps [][32]byte) ([][]byte, error) {
	out := make([][]byte, len(fps))
	for i, fp := range fps {
		der, err := s.Get(fp)
		if err != nil {
			return nil, err
		}
		out[i] = der
	}
	return out, nil
}
