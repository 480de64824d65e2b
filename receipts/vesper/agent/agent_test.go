package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/client"
	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/log/vetting/server"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/receipts/vesper"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// newAgent starts a real vetting log (Tessera POSIX, over HTTP) with one
// registered agent, and the reference agent in front of it.
func newAgent(t *testing.T) (*Service, string, receipts.Trust, *vetting.Agents) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	skey, vkey, _ := note.GenerateKey(rand.Reader, "example.test/vetting")
	signer, _ := note.NewSigner(skey)
	be, err := storage.Open(ctx, storage.Config{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	st, err := be.Log(ctx, "vetting")
	if err != nil {
		t.Fatal(err)
	}
	l, err := vlog.Open(ctx, st.Driver, vlog.Options{Signer: signer, Format: vlog.TlogTiles(server.Identity), Antispam: st.Antispam, CheckpointInterval: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close(context.Background()) })
	ak, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	agents, _ := (&vetting.Agents{}).Add("va", jose.JSONWebKey{Key: ak.Public()}, "https://va.example")
	rk, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	rs, _ := receipts.NewSigner(rk)
	mux := http.NewServeMux()
	server.New(server.Config{Log: l, Agents: func() *vetting.Agents { return agents }, Receipts: rs}).Handle(mux, "/vetting")
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, _ := policy.ForLog(vkey)
	trust := receipts.Trust{Keys: receipts.NewKeySet(rs.PublicJWK()), Policy: p}

	entities := filepath.Join(dir, "entities")
	s, err := New(Config{Key: &jose.JSONWebKey{Key: ak}, Issuer: "https://va.example", Log: client.NewVetting(srv.URL+"/vetting", nil), Trust: trust, Entities: entities})
	if err != nil {
		t.Fatal(err)
	}
	return s, entities, trust, agents
}

func TestRequestToken(t *testing.T) {
	s, entities, trust, agents := newAgent(t)
	bearer, err := Enroll(entities, Entity{EntityID: "Business_42", KYCDataHash: b64.EncodeToString(make([]byte, 32)), Claims: map[string]any{"contact_email": "a@example.com"},
		Frame: &vesper.Frame{SD: []any{"contact_email"}}})
	if err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(filepath.Join(entities, "Business_42.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("entity record mode %v", fi.Mode())
	}
	holder, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	hpub := jose.JSONWebKey{Key: holder.Public()}
	ctx := context.Background()
	res, err := s.RequestToken(ctx, bearer, TokenRequest{EntityID: "Business_42", KeyBinding: true, PublicKeyJWK: &hpub})
	if err != nil {
		t.Fatal(err)
	}
	pres, err := vesper.Present(res.VettingToken, []string{"contact_email"}, &vesper.KeyBinding{Key: &jose.JSONWebKey{Key: holder}, Audience: "v", Nonce: "n", IssuedAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	v, err := vesper.Verify(pres, vesper.Verification{Trust: trust, Issuers: agents, KeyBinding: &vesper.KeyBindingPolicy{Audience: "v", Nonce: "n"}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Claims["contact_email"] != "a@example.com" || res.TransparencyReceipt.LogEntryID != "example.test/vetting/0" {
		t.Fatalf("token %+v, receipt %+v", v.Claims, res.TransparencyReceipt)
	}
	// Again: the same entry, not a new one.
	again, err := s.RequestToken(ctx, bearer, TokenRequest{EntityID: "Business_42"})
	if err != nil || again.TransparencyReceipt.LogEntryID != "example.test/vetting/0" {
		t.Fatalf("second request: %+v, %v", again, err)
	}

	rsaLike := jose.JSONWebKey{Key: []byte("symmetric")}
	for name, c := range map[string]struct {
		bearer string
		req    TokenRequest
		want   error
	}{
		"wrong bearer":             {"nope", TokenRequest{EntityID: "Business_42"}, problem.ErrUnauthorized},
		"unknown entity":           {bearer, TokenRequest{EntityID: "Business_43"}, problem.ErrUnauthorized},
		"path in the entity id":    {bearer, TokenRequest{EntityID: "../entities/Business_42"}, problem.ErrUnauthorized},
		"key binding without key":  {bearer, TokenRequest{EntityID: "Business_42", KeyBinding: true}, problem.ErrBadRequest},
		"key binding, private key": {bearer, TokenRequest{EntityID: "Business_42", KeyBinding: true, PublicKeyJWK: &jose.JSONWebKey{Key: holder}}, problem.ErrBadRequest},
		"key binding, symmetric":   {bearer, TokenRequest{EntityID: "Business_42", KeyBinding: true, PublicKeyJWK: &rsaLike}, problem.ErrBadRequest},
	} {
		if _, err := s.RequestToken(ctx, c.bearer, c.req); !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", name, err, c.want)
		}
	}
	if _, err := Enroll(entities, Entity{EntityID: "../x", KYCDataHash: b64.EncodeToString(make([]byte, 32))}); err == nil {
		t.Error("enrolled an entity id with a path in it")
	}
}
