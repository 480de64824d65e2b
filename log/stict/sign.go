package stict

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"
	fmtlog "github.com/transparency-dev/formats/log"
	fnote "github.com/transparency-dev/formats/note"
	"github.com/transparency-dev/tessera/ctonly"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/witness/policy"
)

// Signer holds the log's P-256 key. It signs SCTs (RFC 6962 §3.2) and
// checkpoints as static-ct-api's RFC6962NoteSignature, whose signature is
// an RFC 6962 TreeHeadSignature, so one key serves both the tiles and the
// RFC 6962 get-sth.
//
// Signatures are deterministic (RFC 6979): the same entry gets a
// byte-identical SCT however often it is submitted.
type Signer struct {
	origin   string
	key      *ecdsa.PrivateKey
	verifier note.Verifier // of vkey, for STH
	logID    [32]byte
	keyHash  uint32
	vkey     string
	// now is the checkpoint clock; tests replace it.
	now func() time.Time
}

// NewSigner returns the signer of the log named origin (its checkpoint
// origin, "<host>/stict").
func NewSigner(origin string, key *ecdsa.PrivateKey) (*Signer, error) {
	if key.Curve != elliptic.P256() {
		return nil, errors.New("an STI-CT log key must be ECDSA P-256")
	}
	spki, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return nil, fmt.Errorf("log public key: %w", err)
	}
	vkey, err := fnote.RFC6962VerifierString(origin, key.Public())
	if err != nil {
		return nil, fmt.Errorf("log %q: %w", origin, err)
	}
	v, err := NewVerifier(vkey)
	if err != nil {
		return nil, err
	}
	// The key hash is the vkey's, which witness/policy has checked against
	// static-ct-api's rule: SHA-256(name || 0x0A || 0x05 || log ID).
	return &Signer{origin: origin, key: key, verifier: v, keyHash: v.KeyHash(), logID: sha256.Sum256(spki), vkey: vkey, now: time.Now}, nil
}

// LogID is the SHA-256 of the log's public key (RFC 6962 §3.2).
func (s *Signer) LogID() [32]byte { return s.logID }

// Public returns the log's public key.
func (s *Signer) Public() crypto.PublicKey { return s.key.Public() }

// VKey is the log's note verifier key (type 0x05), for policies and
// witnesses.
func (s *Signer) VKey() string { return s.vkey }

// Name, KeyHash and Sign make Signer a note.Signer of checkpoints.
func (s *Signer) Name() string    { return s.origin }
func (s *Signer) KeyHash() uint32 { return s.keyHash }

// Sign signs a checkpoint body: the signature is the timestamp (8 bytes,
// milliseconds) followed by a TLS DigitallySigned TreeHeadSignature over
// that timestamp, the tree size and the root hash.
func (s *Signer) Sign(msg []byte) ([]byte, error) {
	var cp fmtlog.Checkpoint
	rest, err := cp.Unmarshal(msg)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint: %w", err)
	}
	// An RFC 6962 signature covers only origin, size and root: refuse to
	// sign extension lines it would not cover.
	if len(rest) != 0 || cp.Origin != s.origin || len(cp.Hash) != sha256.Size {
		return nil, errors.New("signing checkpoint: not a plain checkpoint of this log")
	}
	sth := ct.SignedTreeHead{
		Version:   ct.V1,
		TreeSize:  cp.Size,
		Timestamp: uint64(s.now().UnixMilli()),
	}
	copy(sth.SHA256RootHash[:], cp.Hash)
	input, err := ct.SerializeSTHSignatureInput(sth)
	if err != nil {
		return nil, fmt.Errorf("signing checkpoint: %w", err)
	}
	ds, err := s.digitallySigned(input)
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint64(nil, sth.Timestamp), ds...), nil
}

// digitallySigned signs input and returns the TLS-encoded DigitallySigned.
func (s *Signer) digitallySigned(input []byte) ([]byte, error) {
	ds, err := s.sign(input)
	if err != nil {
		return nil, err
	}
	b, err := cttls.Marshal(ds)
	if err != nil {
		return nil, fmt.Errorf("encoding signature: %w", err)
	}
	return b, nil
}

// sign signs input as a DigitallySigned.
func (s *Signer) sign(input []byte) (cttls.DigitallySigned, error) {
	h := sha256.Sum256(input)
	// A nil random source makes ECDSA deterministic (RFC 6979).
	sig, err := s.key.Sign(nil, h[:], crypto.SHA256)
	if err != nil {
		return cttls.DigitallySigned{}, fmt.Errorf("signing: %w", err)
	}
	return cttls.DigitallySigned{
		Algorithm: cttls.SignatureAndHashAlgorithm{Hash: cttls.SHA256, Signature: cttls.ECDSA},
		Signature: sig,
	}, nil
}

// SCT signs the SCT of the entry at index of the log: its timestamp is the
// entry's, and it carries the static-ct-api leaf_index extension.
//
// What an SCT signs (RFC 6962 §3.2: sct_version v1, signature_type
// certificate_timestamp, then the timestamp, entry type, signed entry and
// extensions) is byte for byte the entry's MerkleTreeLeaf (version v1,
// leaf_type timestamped_entry, then the same TimestampedEntry), as v1 and
// both types are 0: the leaf is signed as it is, not decoded and encoded
// again (issue 15).
func (s *Signer) SCT(e *ctonly.Entry, index uint64) (*ct.SignedCertificateTimestamp, error) {
	leaf := e.MerkleTreeLeaf(index)
	ext, err := leafExtensions(leaf)
	if err != nil {
		return nil, fmt.Errorf("entry %d: not a MerkleTreeLeaf: %w", index, err)
	}
	ds, err := s.sign(leaf)
	if err != nil {
		return nil, err
	}
	return &ct.SignedCertificateTimestamp{
		SCTVersion: ct.V1,
		LogID:      ct.LogID{KeyID: s.logID},
		Timestamp:  e.Timestamp,
		Extensions: ext,
		Signature:  ct.DigitallySigned(ds),
	}, nil
}

// leafExtensions checks that leaf is a v1 timestamped_entry
// MerkleTreeLeaf of a certificate or precertificate and returns its
// extensions.
func leafExtensions(leaf []byte) (ct.CTExtensions, error) {
	s := cryptobyte.String(leaf)
	var version, leafType uint8
	var timestamp uint64
	var entryType uint16
	var signed, ext cryptobyte.String
	if !s.ReadUint8(&version) || !s.ReadUint8(&leafType) || !s.ReadUint64(&timestamp) || !s.ReadUint16(&entryType) {
		return nil, errors.New("truncated")
	}
	if version != uint8(ct.V1) || leafType != uint8(ct.TimestampedEntryLeafType) {
		return nil, fmt.Errorf("version %d, leaf type %d", version, leafType)
	}
	switch ct.LogEntryType(entryType) {
	case ct.X509LogEntryType:
	case ct.PrecertLogEntryType:
		if !s.Skip(sha256.Size) {
			return nil, errors.New("truncated")
		}
	default:
		return nil, fmt.Errorf("entry type %d", entryType)
	}
	if !s.ReadUint24LengthPrefixed(&signed) || !s.ReadUint16LengthPrefixed(&ext) || !s.Empty() {
		return nil, errors.New("malformed")
	}
	return ct.CTExtensions(ext), nil
}

// NewVerifier returns the checkpoint verifier of the log's vkey.
func NewVerifier(vkey string) (note.Verifier, error) {
	v, err := policy.NewLogVerifier(vkey)
	if err != nil {
		return nil, fmt.Errorf("STI-CT log vkey: %w", err)
	}
	return v, nil
}

// STH returns the RFC 6962 get-sth answer for a checkpoint the log signed.
func (s *Signer) STH(checkpoint []byte) (*ct.GetSTHResponse, error) {
	v := s.verifier
	n, err := note.Open(checkpoint, note.VerifierList(v))
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	var cp fmtlog.Checkpoint
	if _, err := cp.Unmarshal([]byte(n.Text)); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	for _, sig := range n.Sigs {
		if sig.Hash != v.KeyHash() || sig.Name != v.Name() {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(sig.Base64)
		if err != nil || len(raw) < 4+8 {
			return nil, errors.New("checkpoint: malformed log signature")
		}
		raw = raw[4:]
		return &ct.GetSTHResponse{
			TreeSize:          cp.Size,
			Timestamp:         binary.BigEndian.Uint64(raw),
			SHA256RootHash:    bytes.Clone(cp.Hash),
			TreeHeadSignature: bytes.Clone(raw[8:]),
		}, nil
	}
	return nil, errors.New("checkpoint: no signature of the log")
}
