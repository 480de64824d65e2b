package vetting

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"time"
)

// LeafVersion is the only leaf encoding this package writes and reads.
const LeafVersion = 1

// Algorithm identifies the agent's signature algorithm in a leaf.
type Algorithm byte

const (
	ES256 Algorithm = 1
	EdDSA Algorithm = 2
)

// String returns the JOSE name of a.
func (a Algorithm) String() string {
	switch a {
	case ES256:
		return "ES256"
	case EdDSA:
		return "EdDSA"
	}
	return fmt.Sprintf("Algorithm(%d)", byte(a))
}

func algorithmFromJOSE(name string) (Algorithm, bool) {
	switch name {
	case "ES256":
		return ES256, true
	case "EdDSA":
		return EdDSA, true
	}
	return 0, false
}

const (
	digestSHA256 = 1
	// HashAlg is the only digest algorithm of a v1 statement (the hash_alg member).
	HashAlg = "sha-256"
	// MaxSubject is the longest subject a statement may carry, in bytes.
	MaxSubject = 255

	sigSize       = 64
	leafFixedSize = 1 + 8 + 1 + 32 + 1 + 32 + 8 + 1 + sigSize
	// MaxLeafSize is the size of the largest valid leaf.
	MaxLeafSize = leafFixedSize + MaxSubject
)

// Leaf is one entry of the vetting log: an agent's signed statement about one
// digest, and the time the log accepted it.
type Leaf struct {
	Timestamp uint64    // log time, ms since the Unix epoch
	Alg       Algorithm // the agent's signature algorithm
	AgentKey  [32]byte  // RFC 7638 SHA-256 thumbprint of the agent's key
	Digest    [32]byte  // kyc_data_hash, SHA-256
	IssuedAt  uint64    // the statement's iat, seconds
	Subject   string    // the statement's sub, "" if none
	Signature [sigSize]byte
}

// ErrMalformedLeaf is returned, wrapped, for any leaf that is not a valid v1 encoding.
var ErrMalformedLeaf = errors.New("malformed vetting leaf")

// MarshalBinary returns the v1 encoding of l. It fails only if a field
// cannot be encoded (an unknown algorithm or a bad subject).
func (l *Leaf) MarshalBinary() ([]byte, error) {
	if l.Alg != ES256 && l.Alg != EdDSA {
		return nil, fmt.Errorf("%w: unknown algorithm %d", ErrMalformedLeaf, l.Alg)
	}
	if err := checkSubject(l.Subject); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedLeaf, err)
	}
	b := make([]byte, 0, leafFixedSize+len(l.Subject))
	b = append(b, LeafVersion)
	b = binary.BigEndian.AppendUint64(b, l.Timestamp)
	b = append(b, byte(l.Alg))
	b = append(b, l.AgentKey[:]...)
	b = append(b, digestSHA256)
	b = append(b, l.Digest[:]...)
	b = binary.BigEndian.AppendUint64(b, l.IssuedAt)
	b = append(b, byte(len(l.Subject)))
	b = append(b, l.Subject...)
	b = append(b, l.Signature[:]...)
	return b, nil
}

// ParseLeaf decodes a v1 leaf. It accepts exactly the encodings MarshalBinary
// produces; it does not verify the signature (see Leaf.Verify).
func ParseLeaf(b []byte) (*Leaf, error) {
	if len(b) < leafFixedSize {
		return nil, fmt.Errorf("%w: %d bytes, want at least %d", ErrMalformedLeaf, len(b), leafFixedSize)
	}
	if b[0] != LeafVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformedLeaf, b[0], LeafVersion)
	}
	var l Leaf
	l.Timestamp = binary.BigEndian.Uint64(b[1:9])
	l.Alg = Algorithm(b[9])
	if l.Alg != ES256 && l.Alg != EdDSA {
		return nil, fmt.Errorf("%w: unknown signature algorithm %d", ErrMalformedLeaf, b[9])
	}
	copy(l.AgentKey[:], b[10:42])
	if b[42] != digestSHA256 {
		return nil, fmt.Errorf("%w: unknown digest algorithm %d", ErrMalformedLeaf, b[42])
	}
	copy(l.Digest[:], b[43:75])
	l.IssuedAt = binary.BigEndian.Uint64(b[75:83])
	n := int(b[83])
	if len(b) != leafFixedSize+n {
		return nil, fmt.Errorf("%w: %d bytes, want %d for a %d-byte subject", ErrMalformedLeaf, len(b), leafFixedSize+n, n)
	}
	l.Subject = string(b[84 : 84+n])
	if err := checkSubject(l.Subject); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedLeaf, err)
	}
	if err := checkIssuedAt(l.IssuedAt); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedLeaf, err)
	}
	copy(l.Signature[:], b[84+n:])
	return &l, nil
}

// Identity is the deduplication key of a digest logged by an agent: the same
// agent logging the same digest again gets the existing entry back.
func Identity(agentKey, digest [32]byte) []byte {
	h := sha256.New()
	h.Write([]byte("vesperlog/v1/vetting-identity\x00"))
	h.Write(agentKey[:])
	h.Write(digest[:])
	return h.Sum(nil)
}

// Identity returns the deduplication key of l (see the function Identity).
func (l *Leaf) Identity() []byte { return Identity(l.AgentKey, l.Digest) }

// LoggedAt is the log's time in the leaf: when the log accepted the
// statement. It is what a revocation is compared with (Agent.ValidAt).
func (l *Leaf) LoggedAt() time.Time { return time.UnixMilli(int64(l.Timestamp)) }
