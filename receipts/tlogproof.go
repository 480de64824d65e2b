package receipts

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// ProofHeader is the first line of a C2SP tlog-proof@v1.
const ProofHeader = "c2sp.org/tlog-proof@v1"

// maxProofHashes bounds the inclusion proof: a tree of 2^63 leaves needs 63.
const maxProofHashes = 63

// ErrMalformedProof is returned, wrapped, for text that is not a tlog-proof@v1.
var ErrMalformedProof = errors.New("malformed tlog-proof")

// Proof is a C2SP tlog-proof@v1: an inclusion proof of one entry in the tree
// that a checkpoint commits to, and that checkpoint, verbatim.
type Proof struct {
	Extra      []byte   // opaque, unauthenticated; nil when absent
	Index      uint64   // the entry's index
	Hashes     [][]byte // RFC 6962 inclusion proof, leaf's sibling first
	Checkpoint []byte   // signed note, with any cosignatures
}

// Marshal returns the text form of p.
func (p *Proof) Marshal() []byte {
	enc := base64.StdEncoding
	b := make([]byte, 0, len(ProofHeader)+32+enc.EncodedLen(len(p.Extra))+len(p.Hashes)*45+len(p.Checkpoint))
	b = append(b, ProofHeader+"\n"...)
	if p.Extra != nil {
		b = append(b, "extra "...)
		b = append(enc.AppendEncode(b, p.Extra), '\n')
	}
	b = append(b, "index "...)
	b = append(strconv.AppendUint(b, p.Index, 10), '\n')
	for _, h := range p.Hashes {
		b = append(enc.AppendEncode(b, h), '\n')
	}
	b = append(b, '\n')
	return append(b, p.Checkpoint...)
}

// ParseProof decodes a tlog-proof@v1. It checks the syntax only: the
// checkpoint is returned verbatim for the caller to verify.
func ParseProof(text []byte) (*Proof, error) {
	head, cp, ok := bytes.Cut(text, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("%w: no empty line before the checkpoint", ErrMalformedProof)
	}
	if len(cp) == 0 {
		return nil, fmt.Errorf("%w: no checkpoint", ErrMalformedProof)
	}
	lines := strings.Split(string(head), "\n")
	if lines[0] != ProofHeader {
		return nil, fmt.Errorf("%w: first line is not %q", ErrMalformedProof, ProofHeader)
	}
	lines = lines[1:]
	var p Proof
	if len(lines) > 0 && strings.HasPrefix(lines[0], "extra ") {
		extra, err := decodeCanonical(base64.StdEncoding, strings.TrimPrefix(lines[0], "extra "))
		if err != nil {
			return nil, fmt.Errorf("%w: extra is not base64: %v", ErrMalformedProof, err)
		}
		p.Extra = extra
		lines = lines[1:]
	}
	if len(lines) == 0 || !strings.HasPrefix(lines[0], "index ") {
		return nil, fmt.Errorf("%w: missing index line", ErrMalformedProof)
	}
	idx, err := parseDecimal(strings.TrimPrefix(lines[0], "index "))
	if err != nil {
		return nil, fmt.Errorf("%w: index: %v", ErrMalformedProof, err)
	}
	p.Index = idx
	lines = lines[1:]
	if len(lines) > maxProofHashes {
		return nil, fmt.Errorf("%w: %d proof hashes, at most %d", ErrMalformedProof, len(lines), maxProofHashes)
	}
	for i, l := range lines {
		h, err := decodeCanonical(base64.StdEncoding, l)
		if err != nil || len(h) != 32 {
			return nil, fmt.Errorf("%w: proof line %d is not a base64 SHA-256 hash", ErrMalformedProof, i+1)
		}
		p.Hashes = append(p.Hashes, h)
	}
	p.Checkpoint = cp
	return &p, nil
}

// parseDecimal accepts ASCII decimal with no sign and no leading zeroes.
func parseDecimal(s string) (uint64, error) {
	if s == "" || (len(s) > 1 && s[0] == '0') || s[0] == '+' {
		return 0, fmt.Errorf("%q is not a decimal without leading zeroes", s)
	}
	return strconv.ParseUint(s, 10, 64)
}

// decodeCanonical decodes s and accepts it only if it is the one encoding
// of its bytes: Go's decoder skips CR and LF, and ignores non-zero
// trailing bits unless Strict.
func decodeCanonical(enc *base64.Encoding, s string) ([]byte, error) {
	b, err := enc.Strict().DecodeString(s)
	if err != nil {
		return nil, err
	}
	if enc.EncodeToString(b) != s {
		return nil, errors.New("not in canonical base64")
	}
	return b, nil
}
