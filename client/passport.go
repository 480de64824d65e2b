package client

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/receipts"
)

// SCTProver proves online that an SCT's entry is in its STI-CT log: it
// reads the log's static-ct-api tiles, holds its checkpoint to the pinned
// witness policy, and checks the entry the SCT's leaf_index names. It is
// receipts/passport's InclusionProver. Per the STI-CT draft a
// verification service does not do this on the call path: it is for
// audits and for checking a certificate once.
type SCTProver struct {
	trust receipts.Trust
	hc    *http.Client
	// now is the clock for the MMD; tests replace it.
	now func() time.Time
}

// NewSCTProver returns an SCTProver that checks logs' checkpoints
// against t (its PolicyFor each log's origin). hc nil means
// http.DefaultClient.
func NewSCTProver(t receipts.Trust, hc *http.Client) *SCTProver {
	if hc == nil {
		hc = http.DefaultClient
	}
	return &SCTProver{trust: t, hc: hc, now: time.Now}
}

// ProveSCT proves that entry leafIndex of log is mtl, the MerkleTreeLeaf
// an SCT signed (stict.VerifiedSCT.Leaf): the log's checkpoint verifies
// under the pinned policy (log signature and witness quorum), the entry
// is in its tree, the log's data tile holds exactly mtl there, and an
// inclusion proof from the log's tiles leads from SHA-256(0x00 ‖ mtl) to
// the checkpoint's root. It returns the check line.
func (p *SCTProver) ProveSCT(ctx context.Context, log stict.CTLog, leafIndex uint64, mtl []byte) (string, error) {
	pol := p.trust.PolicyFor(log.Origin)
	if pol == nil {
		return "", fmt.Errorf("inclusion: no witness policy pins log %s", log.Origin)
	}
	f, err := NewHTTPFetcher(log.URL, HTTPOptions{Client: p.hc, StaticCT: true})
	if err != nil {
		return "", fmt.Errorf("inclusion: log %s: %w", log.Origin, err)
	}
	l := &Log{Origin: log.Origin, Policy: pol, Fetch: f, StaticCT: true}
	cp, _, err := l.Checkpoint(ctx)
	if err != nil {
		return "", fmt.Errorf("inclusion: %w", err)
	}
	if leafIndex >= cp.Size {
		return "", fmt.Errorf("inclusion: entry %d is not in the tree of %s of size %d; %s", leafIndex, log.Origin, cp.Size, p.mmd(log, mtl))
	}
	var entry *Entry
	for e, err := range l.Entries(ctx, cp, leafIndex, 1) {
		if err != nil {
			return "", fmt.Errorf("inclusion: entry %d of %s: %w", leafIndex, log.Origin, err)
		}
		entry = &e
		break
	}
	if entry == nil || entry.Index != leafIndex {
		return "", fmt.Errorf("inclusion: %s did not serve entry %d", log.Origin, leafIndex)
	}
	leaf, rest, err := stict.ParseTileLeaf(entry.Data)
	if err != nil || len(rest) != 0 || leaf.LeafIndex != leafIndex {
		return "", fmt.Errorf("inclusion: entry %d of %s is malformed (%v)", leafIndex, log.Origin, err)
	}
	if !bytes.Equal(leaf.MerkleTreeLeaf(), mtl) {
		return "", fmt.Errorf("inclusion: entry %d of %s is another certificate than the SCT's", leafIndex, log.Origin)
	}
	if err := l.VerifyInclusion(ctx, cp, leafIndex, rfc6962.DefaultHasher.HashLeaf(mtl)); err != nil {
		return "", fmt.Errorf("inclusion: %w", err)
	}
	cosigned := "no witness cosignatures (the policy needs none)"
	if len(cp.Cosigners) > 0 {
		cosigned = "cosigned by " + strings.Join(cp.Cosigners, ", ")
	}
	return fmt.Sprintf("inclusion: entry %d of %s in checkpoint size %d, %s", leafIndex, log.Origin, cp.Size, cosigned), nil
}

// mmd says whether the log's maximum merge delay has passed since the
// SCT's timestamp (bytes 2 to 10 of its MerkleTreeLeaf): if it has, the
// log broke its promise; if not, the entry may yet appear.
func (p *SCTProver) mmd(log stict.CTLog, mtl []byte) string {
	if len(mtl) < 10 {
		return "the SCT's leaf is malformed"
	}
	mmd := log.MMD
	if mmd == 0 {
		mmd = stict.DefaultMMD
	}
	ts := time.UnixMilli(int64(binary.BigEndian.Uint64(mtl[2:10])))
	if p.now().After(ts.Add(mmd)) {
		return fmt.Sprintf("the log's MMD (%s) has passed since the SCT's timestamp %s: the log did not keep its promise", mmd, ts.UTC().Format(time.RFC3339))
	}
	return fmt.Sprintf("the log's MMD (%s) since the SCT's timestamp %s has not passed yet", mmd, ts.UTC().Format(time.RFC3339))
}
