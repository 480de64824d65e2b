package client

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"net/http"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/vesperlog/vesperlog/log/stict"
)

// issuerCacheSize bounds the issuer certificates a chain check keeps.
const issuerCacheSize = 1024

// ChainChecker returns an AuditOptions.Check for a static-ct-api log (the
// STI-CT log): every entry's chain, its issuers fetched by fingerprint
// (and checked to hash to it), must verify to roots at the entry's
// timestamp, with a well-formed TNAuthList, as the log had to check when
// it accepted the submission. An entry that fails shows the log logged a
// chain it should have refused.
func ChainChecker(ctx context.Context, f IssuerFetcher, roots *stict.Roots) func(index uint64, entry []byte) error {
	cache, err := lru.New[[32]byte, []byte](issuerCacheSize)
	if err != nil {
		panic(err) // only for a non-positive size
	}
	issuer := func(fp [32]byte) ([]byte, error) {
		if der, ok := cache.Get(fp); ok {
			return der, nil
		}
		der, err := f.ReadIssuer(ctx, fp)
		if err != nil {
			return nil, fmt.Errorf("issuer %x: %w", fp, err)
		}
		if sha256.Sum256(der) != fp {
			return nil, fmt.Errorf("issuer %x as served does not hash to its name", fp)
		}
		cache.Add(fp, der)
		return der, nil
	}
	return func(index uint64, entry []byte) error {
		leaf, _, err := stict.ParseTileLeaf(entry)
		if err != nil {
			return err
		}
		chain := [][]byte{leaf.LeafCertificate()}
		for _, fp := range leaf.Chain {
			der, err := issuer(fp)
			if err != nil {
				return err
			}
			chain = append(chain, der)
		}
		if _, err := stict.ValidateChain(chain, roots, time.UnixMilli(int64(leaf.Timestamp)), leaf.Precert); err != nil {
			return fmt.Errorf("the log accepted a chain it should have refused: %w", err)
		}
		return nil
	}
}

// FetchRoots reads the roots an RFC 6962 log accepts (get-roots), from
// the log's URL. They are the log's word, not signed: pin them instead
// where the STI trust anchors are known.
func FetchRoots(ctx context.Context, hc *http.Client, logURL string) (*stict.Roots, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	var r ct.GetRootsResponse
	if err := do(ctx, hc, http.MethodGet, strings.TrimSuffix(logURL, "/")+"/v1/get-roots", "", nil, &r); err != nil {
		return nil, fmt.Errorf("get-roots: %w", err)
	}
	var b []byte
	for _, c := range r.Certificates {
		der, err := base64.StdEncoding.DecodeString(c)
		if err != nil {
			return nil, fmt.Errorf("get-roots: %w", err)
		}
		b = append(b, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	roots, err := stict.ParseRoots(b)
	if err != nil {
		return nil, fmt.Errorf("get-roots: %w", err)
	}
	return roots, nil
}
