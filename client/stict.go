package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	ct "github.com/google/certificate-transparency-go"
	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/vesperlog/vesperlog/log/stict"
)

// issuerCacheSize bounds the issuer certificates a chain check keeps (at
// most maxIssuer bytes each), and the refused fingerprints it remembers.
const issuerCacheSize = 1024

// issuerResult is a fetched issuer, or why the log is at fault for it.
type issuerResult struct {
	der []byte
	err error // wraps ErrBadEntry
}

// ChainChecker returns an AuditOptions.Check for a static-ct-api log (the
// STI-CT log). For every entry it fetches the issuers the leaf names by
// fingerprint (checking each hashes to its name), and re-runs the log's
// own chain validation (stict.ValidateChain) at the entry's timestamp:
// the chain must verify to roots, and the leaf must carry a well-formed
// TNAuthList, as the log had to check when it accepted the submission. A
// precertificate must also yield the TBSCertificate and issuer key hash
// the tree commits to, since static-ct-api's data tiles carry the
// precertificate and the chain beside the hashed leaf, not in it.
//
// An entry that fails is the log's fault, and its error wraps
// ErrBadEntry; any other error (the network, ctx) is not. The intended
// call pattern is
//
//	roots, err := client.FetchRoots(ctx, nil, logURL) // or stict.ParseRoots(pinned)
//	err = l.Audit(ctx, cp, client.AuditOptions{Check: client.ChainChecker(ctx, f, roots), BadEntry: report})
func ChainChecker(ctx context.Context, f IssuerFetcher, roots *stict.Roots) func(index uint64, entry []byte) error {
	// lru.New fails only for a size below 1.
	cache, _ := lru.New[[32]byte, issuerResult](issuerCacheSize)
	issuer := func(fp [32]byte) ([]byte, error) {
		if r, ok := cache.Get(fp); ok {
			return r.der, r.err
		}
		der, err := f.ReadIssuer(ctx, fp)
		switch {
		case errors.Is(err, os.ErrNotExist):
			err = badEntry{fmt.Errorf("the log does not serve issuer %x, which the entry names: %w", fp, err)}
		case err != nil:
			return nil, fmt.Errorf("issuer %x: %w", fp, err)
		case sha256.Sum256(der) != fp:
			der, err = nil, badEntry{fmt.Errorf("issuer %x as served does not hash to its name", fp)}
		}
		cache.Add(fp, issuerResult{der, err})
		return der, err
	}
	return func(index uint64, entry []byte) error {
		leaf, _, err := stict.ParseTileLeaf(entry)
		if err != nil {
			return badEntry{err}
		}
		chain := [][]byte{leaf.LeafCertificate()}
		for _, fp := range leaf.Chain {
			der, err := issuer(fp)
			if err != nil {
				return err
			}
			chain = append(chain, der)
		}
		v, err := stict.ValidateChain(chain, roots, time.UnixMilli(int64(leaf.Timestamp)), leaf.Precert)
		if err != nil {
			return badEntry{fmt.Errorf("the log accepted a chain it should have refused: %w", err)}
		}
		if !leaf.Precert {
			return nil
		}
		want, err := stict.NewEntry(v, leaf.Timestamp)
		if err != nil {
			return badEntry{fmt.Errorf("the log accepted a precertificate it should have refused: %w", err)}
		}
		if !bytes.Equal(want.Certificate, leaf.Certificate) || !bytes.Equal(want.IssuerKeyHash, leaf.IssuerKeyHash[:]) {
			return badEntry{errors.New("the logged TBSCertificate or issuer key hash is not the one of the precertificate and chain served with it")}
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
