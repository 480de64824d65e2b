// Package agent is a reference vetting agent (VA) for vesper
// (draft-wendt-stir-vesper §7.1): it serves POST /api/request-vetting-token
// over a directory of vetted entity records, authenticating each entity by
// its own bearer token. For a request it logs the entity's KYC digest (or
// reuses the entry the log already has), checks the log's receipt against
// the trust it pins, and issues a vesper token carrying that receipt.
//
// An entity record is one JSON file, <entities>/<entity_id>.json:
//
//	{"entity_id": "Business_42",
//	 "bearer_token_sha256": "<base64url SHA-256 of the entity's bearer token>",
//	 "kyc_data_hash": "<the salted commitment logged, base64url>",
//	 "claims": {...persona claims...},
//	 "frame": {...which claims are selectively disclosable...}}
//
// Only a hash of the bearer token is stored; Enroll makes a record and
// returns the token once.
package agent

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/receipts/vesper"
	"github.com/vesperlog/vesperlog/storage/keys"
)

var b64 = base64.RawURLEncoding

// Entity is a vetted entity's record.
type Entity struct {
	EntityID          string         `json:"entity_id"`
	BearerTokenSHA256 string         `json:"bearer_token_sha256"`
	KYCDataHash       string         `json:"kyc_data_hash"`
	Claims            map[string]any `json:"claims,omitempty"`
	Frame             *vesper.Frame  `json:"frame,omitempty"`
}

// entityID keeps ids to names that are safe as file names.
var entityID = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`)

// Enroll writes the record of a vetted entity into dir and returns the
// bearer token the entity authenticates with. It is shown once: only its
// hash is stored.
func Enroll(dir string, e Entity) (string, error) {
	if !entityID.MatchString(e.EntityID) {
		return "", fmt.Errorf("entity id %q: use 1 to 128 letters, digits, '_', '.' or '-'", e.EntityID)
	}
	if raw, err := b64.Strict().DecodeString(e.KYCDataHash); err != nil || len(raw) != 32 {
		return "", fmt.Errorf("kyc_data_hash is not a base64url SHA-256 digest")
	}
	tok := make([]byte, 32)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	bearer := b64.EncodeToString(tok)
	h := sha256.Sum256([]byte(bearer))
	e.BearerTokenSHA256 = b64.EncodeToString(h[:])
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return "", err
	}
	if err := keys.WriteFile(filepath.Join(dir, e.EntityID+".json"), append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return bearer, nil
}

// Config configures a Service.
type Config struct {
	Key      *jose.JSONWebKey // the agent's private key: statements and tokens
	Issuer   string           // iss of its tokens
	Log      *client.Vetting  // the vetting log
	Trust    receipts.Trust   // what the agent trusts the log's receipts by
	Entities string           // directory of entity records
	Lifetime time.Duration    // token lifetime; 0 means 24 hours
	Now      func() time.Time
}

// Service is the reference agent. It is safe for concurrent use.
type Service struct {
	cfg        Config
	thumbprint [32]byte
}

// New returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Key == nil || cfg.Log == nil || cfg.Trust.Policy == nil || cfg.Issuer == "" || cfg.Entities == "" {
		return nil, errors.New("agent: Key, Log, Trust, Issuer and Entities are required")
	}
	if cfg.Lifetime == 0 {
		cfg.Lifetime = 24 * time.Hour
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	signer, ok := cfg.Key.Key.(crypto.Signer)
	if !ok {
		return nil, errors.New("agent: the key must be a private key")
	}
	tp, err := vetting.Thumbprint(&jose.JSONWebKey{Key: signer.Public()})
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, thumbprint: tp}, nil
}

// TokenRequest is the body of POST /api/request-vetting-token.
type TokenRequest struct {
	EntityID     string           `json:"entity_id"`
	KeyBinding   bool             `json:"key_binding"`
	PublicKeyJWK *jose.JSONWebKey `json:"public_key_jwk,omitempty"`
}

// TokenResponse answers it.
type TokenResponse struct {
	Status              string              `json:"status"`
	VettingToken        string              `json:"vetting_token"`
	TransparencyReceipt vesper.DraftReceipt `json:"transparency_receipt"`
}

// errAuth is the one answer to every authentication failure, so that it
// reveals nothing about which entities exist.
var errAuth = fmt.Errorf("%w: unknown entity or wrong bearer token", problem.ErrUnauthorized)

// RequestToken authenticates the entity, makes sure its digest is logged,
// and issues its token.
func (s *Service) RequestToken(ctx context.Context, bearer string, req TokenRequest) (*TokenResponse, error) {
	if !entityID.MatchString(req.EntityID) {
		return nil, errAuth
	}
	b, err := os.ReadFile(filepath.Join(s.cfg.Entities, req.EntityID+".json"))
	if err != nil {
		return nil, errAuth
	}
	var e Entity
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("entity record %s: %w", req.EntityID, err)
	}
	h := sha256.Sum256([]byte(bearer))
	if e.EntityID != req.EntityID || subtle.ConstantTimeCompare([]byte(b64.EncodeToString(h[:])), []byte(e.BearerTokenSHA256)) != 1 {
		return nil, errAuth
	}
	var holder *jose.JSONWebKey
	if req.KeyBinding {
		if req.PublicKeyJWK == nil || !req.PublicKeyJWK.IsPublic() || !req.PublicKeyJWK.Valid() {
			return nil, fmt.Errorf("%w: key_binding needs public_key_jwk, a public key", problem.ErrBadRequest)
		}
		holder = req.PublicKeyJWK
	}
	var digest [32]byte
	if raw, err := b64.Strict().DecodeString(e.KYCDataHash); err != nil || len(raw) != 32 {
		return nil, fmt.Errorf("entity record %s: kyc_data_hash is not a digest", req.EntityID)
	} else {
		copy(digest[:], raw)
	}

	receipt, err := s.receipt(ctx, digest, e.EntityID)
	if err != nil {
		return nil, err
	}
	rv, err := receipts.Verify(receipt, s.cfg.Trust)
	if err != nil {
		return nil, fmt.Errorf("%w: the log's receipt does not verify: %v", problem.ErrUpstream, err)
	}
	leaf, err := vetting.ParseLeaf(rv.Entry)
	if err != nil || leaf.Digest != digest || leaf.AgentKey != s.thumbprint {
		return nil, fmt.Errorf("%w: the log's receipt is for another entry", problem.ErrUpstream)
	}
	tok, err := vesper.Issue(vesper.Issuance{
		Key: s.cfg.Key, Issuer: s.cfg.Issuer, Subject: e.EntityID, IssuedAt: s.cfg.Now(), Lifetime: s.cfg.Lifetime,
		KYCDataHash: digest, Receipt: receipt, HolderKey: holder, Claims: e.Claims, Frame: e.Frame,
	})
	if err != nil {
		if errors.Is(err, vesper.ErrClaims) && holder != nil {
			return nil, fmt.Errorf("%w: %v", problem.ErrBadRequest, err)
		}
		return nil, fmt.Errorf("issuing the token of %s: %w", e.EntityID, err)
	}
	return &TokenResponse{Status: "success", VettingToken: tok, TransparencyReceipt: vesper.NewDraftReceipt(receipt, rv, leaf)}, nil
}

// receipt returns a receipt for the agent's entry of digest, logging a
// statement first if the log has none.
func (s *Service) receipt(ctx context.Context, digest [32]byte, subject string) (string, error) {
	idx, err := s.cfg.Log.Lookup(ctx, s.thumbprint, digest)
	var ae *client.APIError
	switch {
	case err == nil:
		rc, err := s.cfg.Log.Receipt(ctx, idx)
		if err != nil {
			return "", fmt.Errorf("%w: fetching the receipt of entry %d: %v", problem.ErrUpstream, idx, err)
		}
		return rc, nil
	case errors.As(err, &ae) && ae.Status == http.StatusNotFound:
	default:
		return "", fmt.Errorf("%w: looking up the digest: %v", problem.ErrUpstream, err)
	}
	pub := jose.JSONWebKey{Key: s.cfg.Key.Key.(crypto.Signer).Public()}
	st, err := vetting.NewStatement(&pub, digest, subject, uint64(s.cfg.Now().Unix()))
	if err != nil {
		return "", err
	}
	compact, err := st.Sign(s.cfg.Key.Key.(crypto.Signer))
	if err != nil {
		return "", err
	}
	res, err := s.cfg.Log.Add(ctx, compact)
	if err != nil {
		return "", fmt.Errorf("%w: logging the digest: %v", problem.ErrUpstream, err)
	}
	return res.Receipt, nil
}

// maxRequest bounds a token request body.
const maxRequest = 16 << 10

// Handler serves POST /api/request-vetting-token.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/request-vetting-token", func(w http.ResponseWriter, r *http.Request) {
		bearer, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || bearer == "" {
			writeError(w, r, errAuth)
			return
		}
		body, err := problem.ReadBody(w, r, "application/json", maxRequest)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		var req TokenRequest
		if err := json.Unmarshal(body, &req); err != nil {
			problem.Write(w, r, fmt.Errorf("%w: %v", problem.ErrBadRequest, err))
			return
		}
		res, err := s.RequestToken(r.Context(), strings.TrimSpace(bearer), req)
		if err != nil {
			writeError(w, r, err)
			return
		}
		problem.WriteJSON(w, res)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, fmt.Errorf("%w: no %s %s here", problem.ErrNotFound, r.Method, r.URL.Path))
	})
	return mux
}

// writeError answers with err's problem, challenging for a bearer token
// when authentication failed.
func writeError(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, problem.ErrUnauthorized) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="vesper-agent"`)
	}
	problem.Write(w, r, err)
}
