package vesper

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
)

// The draft's API bodies (draft-wendt-stir-vesper §7).

// DraftReceipt is the draft's transparency_receipt object, mapped onto a
// vesperlog receipt:
//
//	log_entry_id       "<log origin>/<index>"
//	receipt.hash       the logged kyc_data_hash (base64url)
//	receipt.timestamp  the log's time for the entry (RFC 3339, UTC, ms)
//	receipt.signature  the receipt itself (a tlog-receipt+jwt JWS)
//
// Only the signature is evidence; the other fields must agree with it.
type DraftReceipt struct {
	LogEntryID string `json:"log_entry_id"`
	Receipt    struct {
		Hash      string `json:"hash"`
		Timestamp string `json:"timestamp"`
		Signature string `json:"signature"`
	} `json:"receipt"`
}

// NewDraftReceipt describes a verified vetting-log receipt in the draft's shape.
func NewDraftReceipt(receipt string, v *receipts.Verified, leaf *vetting.Leaf) DraftReceipt {
	var d DraftReceipt
	d.LogEntryID = v.Origin + "/" + strconv.FormatUint(v.Index, 10)
	d.Receipt.Hash = b64.EncodeToString(leaf.Digest[:])
	d.Receipt.Timestamp = time.UnixMilli(int64(leaf.Timestamp)).UTC().Format("2006-01-02T15:04:05.000Z")
	d.Receipt.Signature = receipt
	return d
}

// VettedInfoRequest is the body of POST /api/verify-vetted-info: a receipt
// (a JWS string, or the draft's object), a whole vesper token, or both.
type VettedInfoRequest struct {
	TransparencyReceipt json.RawMessage `json:"transparency_receipt,omitempty"`
	VettingToken        string          `json:"vetting_token,omitempty"`
}

// VettedInfoResponse is the success answer of POST /api/verify-vetted-info.
type VettedInfoResponse struct {
	Status      string   `json:"status"`
	Message     string   `json:"message"`
	LogEntryID  string   `json:"log_entry_id"`
	KYCDataHash string   `json:"kyc_data_hash"`
	Checks      []string `json:"checks"`
}

// ErrRequest marks a verify-vetted-info request that is malformed, as
// opposed to one that is well-formed and does not verify.
var ErrRequest = errors.New("malformed verify-vetted-info request")

// MaxVettedInfoRequest bounds the request body.
const MaxVettedInfoRequest = 2 * maxTokenSize

// VerifyVettedInfo answers POST /api/verify-vetted-info: it verifies the
// token (if sent) with Verify, and the receipt (if sent) with
// receipts.Verify, checking the draft object's fields against the
// receipt's entry. When both are sent, they must be about the same entry.
func VerifyVettedInfo(body []byte, o Verification) (*VettedInfoResponse, error) {
	var req VettedInfoRequest
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrRequest, err)
	}
	if len(req.TransparencyReceipt) == 0 && req.VettingToken == "" {
		return nil, fmt.Errorf("%w: send transparency_receipt, vetting_token, or both", ErrRequest)
	}
	res := &VettedInfoResponse{Status: "success", Message: "Vetted information verified successfully."}
	if req.VettingToken != "" {
		v, err := Verify(req.VettingToken, o)
		if err != nil {
			return nil, fmt.Errorf("vetting_token: %w", err)
		}
		res.LogEntryID = fmt.Sprintf("%s/%d", v.Receipt.Origin, v.Receipt.Index)
		res.KYCDataHash = v.KYCDataHash
		res.Checks = append(res.Checks, v.Checks...)
	}
	if len(req.TransparencyReceipt) == 0 {
		return res, nil
	}
	var jws string
	var draft *DraftReceipt
	if err := json.Unmarshal(req.TransparencyReceipt, &jws); err != nil {
		draft = &DraftReceipt{}
		dd := json.NewDecoder(bytes.NewReader(req.TransparencyReceipt))
		dd.DisallowUnknownFields()
		if err := dd.Decode(draft); err != nil {
			return nil, fmt.Errorf("%w: transparency_receipt is neither a receipt JWS nor {log_entry_id, receipt: {hash, timestamp, signature}}: %v", ErrRequest, err)
		}
		jws = draft.Receipt.Signature
	}
	rv, err := receipts.Verify(jws, o.Trust)
	if err != nil {
		return nil, fmt.Errorf("transparency_receipt: %w", err)
	}
	leaf, err := vetting.ParseLeaf(rv.Entry)
	if err != nil {
		return nil, fmt.Errorf("transparency_receipt: %w: %v", ErrNotLogged, err)
	}
	var revocation string
	if o.Issuers != nil {
		// A receipt alone is checked against the registry's revocations
		// too, when its agent is registered.
		if agent, err := o.Issuers.Lookup(leaf.AgentKey); err == nil {
			if revocation, err = RevocationCheck(agent, leaf, rv.Index); err != nil {
				return nil, fmt.Errorf("transparency_receipt: %w", err)
			}
		}
	}
	want := NewDraftReceipt(jws, rv, leaf)
	if draft != nil {
		for _, f := range []struct{ name, got, want string }{
			{"log_entry_id", draft.LogEntryID, want.LogEntryID},
			{"receipt.hash", draft.Receipt.Hash, want.Receipt.Hash},
			{"receipt.timestamp", draft.Receipt.Timestamp, want.Receipt.Timestamp},
		} {
			if f.got != f.want {
				return nil, fmt.Errorf("transparency_receipt: %w: %s is %q, the signed receipt says %q", ErrNotLogged, f.name, f.got, f.want)
			}
		}
	}
	if res.LogEntryID != "" && res.LogEntryID != want.LogEntryID {
		return nil, fmt.Errorf("%w: the receipt is for entry %s, the token's for %s", ErrNotLogged, want.LogEntryID, res.LogEntryID)
	}
	res.LogEntryID, res.KYCDataHash = want.LogEntryID, want.Receipt.Hash
	res.Checks = append(res.Checks, rv.Checks...)
	if revocation != "" {
		res.Checks = append(res.Checks, revocation)
	}
	if draft != nil {
		res.Checks = append(res.Checks, "draft fields: log_entry_id, receipt.hash and receipt.timestamp agree with the signed receipt")
	}
	res.Checks = dedupe(res.Checks)
	return res, nil
}

func dedupe(s []string) []string {
	seen := map[string]bool{}
	out := s[:0]
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}
