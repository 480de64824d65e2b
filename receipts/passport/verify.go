package passport

import (
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/receipts"
)

// InclusionProver proves an SCT's entry is in its log (client.SCTProver
// implements it); nil in Options means offline.
type InclusionProver interface {
	ProveSCT(ctx context.Context, log stict.CTLog, leafIndex uint64, merkleTreeLeaf []byte) (check string, err error)
}

// Options of Verify.
type Options struct {
	Now                time.Time     // zero: time.Now()
	Freshness          time.Duration // zero: DefaultFreshness
	Trust              *Trust        // roots, CT logs, required SCTs (from TrustFromConfiguration)
	Original           *PASSporT     // required iff ppt "rsp"
	Disclosures        map[string]Disclosure
	SPCs               stict.SPCResolver
	RequireCommitments bool
	Online             InclusionProver
	FetchX5U           func(ctx context.Context, url string) ([][]byte, error) // nil: x5c required
}

// Result is a verified PASSporT.
type Result struct {
	PASSporT   *PASSporT
	Leaf       *x509.Certificate
	TNAuthList stict.TNAuthList
	SCTs       []stict.VerifiedSCT
	Checks     []string // one line per passed check, as receipts.Verified
}

// Verify checks token against o.
func Verify(ctx context.Context, token string, o Options) (*Result, error) {
	return nil, errors.ErrUnsupported
}

// Trust is what Verify trusts.
type Trust struct {
	Roots        *stict.Roots
	Logs         []stict.CTLog
	RequiredSCTs int
	Receipts     receipts.Trust
}

// TrustFromConfiguration builds a Trust from a pinned configuration whose
// sti member is set.
func TrustFromConfiguration(c *receipts.Configuration) (*Trust, error) {
	return nil, errors.ErrUnsupported
}
