package stict

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"flag"
	"os"
	"testing"
	"time"

	cttls "github.com/google/certificate-transparency-go/tls"
	"github.com/transparency-dev/tessera/ctonly"
)

var update = flag.Bool("update", false, "rewrite testdata/tile-leaf-v1.json and testdata/sct-list-v1.json")

// golden is testdata/tile-leaf-v1.json: a fixed key and certificate, and
// every byte string the log derives from them. SCT signatures are
// deterministic (RFC 6979), so they are golden too.
type golden struct {
	Comment         string `json:"comment"`
	KeyPEM          string `json:"key_pem"`
	Origin          string `json:"origin"`
	CertificatePEM  string `json:"certificate_pem"`
	ChainFP         string `json:"chain_fingerprint"`
	Timestamp       uint64 `json:"timestamp"`
	Index           uint64 `json:"index"`
	TileLeaf        string `json:"tile_leaf"`
	MerkleTreeLeaf  string `json:"merkle_tree_leaf"`
	LeafHash        string `json:"leaf_hash"`
	SCT             string `json:"sct"`
	VKey            string `json:"vkey"`
	CheckpointBody  string `json:"checkpoint_body"`
	CheckpointMilli uint64 `json:"checkpoint_timestamp"`
	CheckpointSig   string `json:"checkpoint_signature"`
}

func TestGoldenTileLeaf(t *testing.T) {
	raw, err := os.ReadFile("testdata/tile-leaf-v1.json")
	if err != nil {
		t.Fatal(err)
	}
	var g golden
	if err := json.Unmarshal(raw, &g); err != nil {
		t.Fatal(err)
	}
	kb, _ := pem.Decode([]byte(g.KeyPEM))
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSigner(g.Origin, k.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode([]byte(g.CertificatePEM))
	fp, _ := hex.DecodeString(g.ChainFP)
	e := &ctonly.Entry{Timestamp: g.Timestamp, Certificate: cb.Bytes, FingerprintsChain: [][32]byte{[32]byte(fp)}}

	sct, err := s.SCT(e, g.Index)
	if err != nil {
		t.Fatal(err)
	}
	sctBytes, err := cttls.Marshal(*sct)
	if err != nil {
		t.Fatal(err)
	}
	s.now = func() time.Time { return time.UnixMilli(int64(g.CheckpointMilli)) }
	cpSig, err := s.Sign([]byte(g.CheckpointBody))
	if err != nil {
		t.Fatal(err)
	}
	lh := e.MerkleLeafHash(g.Index)
	got := golden{
		Comment:         g.Comment,
		KeyPEM:          g.KeyPEM,
		Origin:          g.Origin,
		CertificatePEM:  g.CertificatePEM,
		ChainFP:         g.ChainFP,
		Timestamp:       g.Timestamp,
		Index:           g.Index,
		TileLeaf:        hex.EncodeToString(e.LeafData(g.Index)),
		MerkleTreeLeaf:  hex.EncodeToString(e.MerkleTreeLeaf(g.Index)),
		LeafHash:        hex.EncodeToString(lh),
		SCT:             hex.EncodeToString(sctBytes),
		VKey:            s.VKey(),
		CheckpointBody:  g.CheckpointBody,
		CheckpointMilli: g.CheckpointMilli,
		CheckpointSig:   hex.EncodeToString(cpSig),
	}
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile("testdata/tile-leaf-v1.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if got != g {
		t.Fatalf("golden vector changed:\n got %+v\nwant %+v", got, g)
	}

	// Our parser reads the golden leaf back to the same hashes.
	tile, _ := hex.DecodeString(g.TileLeaf)
	l, rest, err := ParseTileLeaf(tile)
	if err != nil || len(rest) != 0 {
		t.Fatalf("ParseTileLeaf: %v, %d bytes left", err, len(rest))
	}
	if hex.EncodeToString(l.MerkleTreeLeaf()) != g.MerkleTreeLeaf || hex.EncodeToString(l.LeafHash()) != g.LeafHash || l.LeafIndex != g.Index {
		t.Fatal("parsed leaf differs from the golden one")
	}
}

func TestParseTileLeaf(t *testing.T) {
	cert := []byte("not really a certificate, but opaque here")
	fp := sha256.Sum256([]byte("issuer"))
	for _, e := range []*ctonly.Entry{
		{Timestamp: 1700000000000, Certificate: cert, FingerprintsChain: [][32]byte{fp, fp}},
		{Timestamp: 1700000000001, IsPrecert: true, Certificate: []byte("tbs"), Precertificate: cert, IssuerKeyHash: fp[:], FingerprintsChain: [][32]byte{fp}},
		{Timestamp: 1, Certificate: cert},
	} {
		const idx = 1<<40 - 1
		data := e.LeafData(idx)
		tile := append(bytes.Clone(data), data...)
		leaves, err := SplitTile(tile)
		if err != nil || len(leaves) != 2 {
			t.Fatalf("SplitTile: %d leaves, %v", len(leaves), err)
		}
		l, rest, err := ParseTileLeaf(tile)
		if err != nil || !bytes.Equal(rest, data) {
			t.Fatalf("ParseTileLeaf: %v", err)
		}
		if l.LeafIndex != idx || l.Timestamp != e.Timestamp || l.Precert != e.IsPrecert {
			t.Errorf("parsed %+v", l)
		}
		if !bytes.Equal(l.MerkleTreeLeaf(), e.MerkleTreeLeaf(idx)) || !bytes.Equal(l.LeafHash(), e.MerkleLeafHash(idx)) {
			t.Error("MerkleTreeLeaf differs from Tessera's")
		}
		if !bytes.Equal(l.Entry().LeafData(idx), data) {
			t.Error("Entry does not round-trip")
		}
		for i := range data {
			if _, _, err := ParseTileLeaf(data[:i]); err == nil {
				t.Fatalf("accepted a leaf cut to %d of %d bytes", i, len(data))
			}
		}
	}
}

// FuzzParseTileLeaf: whatever parses is a leaf Tessera would write, byte
// for byte.
func FuzzParseTileLeaf(f *testing.F) {
	fp := sha256.Sum256(nil)
	f.Add((&ctonly.Entry{Timestamp: 5, Certificate: []byte{1}, FingerprintsChain: [][32]byte{fp}}).LeafData(3))
	f.Add((&ctonly.Entry{Timestamp: 5, IsPrecert: true, Certificate: []byte{1}, Precertificate: []byte{2}, IssuerKeyHash: fp[:]}).LeafData(3))
	f.Fuzz(func(t *testing.T, b []byte) {
		l, rest, err := ParseTileLeaf(b)
		if err != nil {
			return
		}
		if got := l.Entry().LeafData(l.LeafIndex); !bytes.Equal(got, b[:len(b)-len(rest)]) {
			t.Fatalf("parsed %x, re-encodes as %x", b[:len(b)-len(rest)], got)
		}
	})
}
