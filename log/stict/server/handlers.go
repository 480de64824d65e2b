package server

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	ct "github.com/google/certificate-transparency-go"
	cttls "github.com/google/certificate-transparency-go/tls"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/stict"
)

// maxChainBody bounds an add-chain body: MaxChain certificates of up to
// 16 KiB each, base64 and JSON framing included.
const maxChainBody = stict.MaxChain*16<<10*4/3 + 1024

// ReceiptResponse is the answer of the receipt endpoints.
type ReceiptResponse struct {
	Index   uint64 `json:"index"`
	Receipt string `json:"receipt"`
}

// Handle registers the STI-CT API under prefix (for example "/stict"):
// the RFC 6962 endpoints under v1/ (the STI-CT draft's paths) and again
// under ct/v1/ (RFC 6962's, which CT tools such as ctclient append to a
// log's URL), receipts, and static-ct-api's issuer/. The checkpoint and
// tiles are the log's own reads (log.HandleReads). log.v3.json is the
// log's metadata (CT log list v3), as browsers' CT policies ask of
// static-ct-api logs since 2026.
func (s *Service) Handle(mux *http.ServeMux, prefix string) {
	for _, v1 := range []string{prefix + "/v1/", prefix + "/ct/v1/"} {
		s.handleV1(mux, v1)
	}
	mux.HandleFunc("GET "+prefix+"/issuer/{fingerprint}", s.handleIssuer)
	mux.HandleFunc("GET "+prefix+"/log.v3.json", s.handleMetadata(prefix))
}

// handleMetadata serves the log's CT log list v3 entry.
func (s *Service) handleMetadata(prefix string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u := s.cfg.PublicURL
		if u == "" {
			scheme := "http"
			if r.TLS != nil {
				scheme = "https"
			}
			u = scheme + "://" + r.Host + prefix
		}
		b, err := json.Marshal(stict.NewLogMetadata(s.cfg.Signer, u, s.cfg.UsableSince))
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		// It changes only with the configuration; clients may keep it a while.
		w.Header().Set("Cache-Control", "public, max-age=60")
		_, _ = w.Write(append(b, '\n'))
	}
}

func (s *Service) handleV1(mux *http.ServeMux, v1 string) {
	mux.HandleFunc("POST "+v1+"add-chain", s.handleAdd(false))
	mux.HandleFunc("POST "+v1+"add-pre-chain", s.handleAdd(true))
	mux.HandleFunc("GET "+v1+"get-roots", s.handleRoots)
	mux.HandleFunc("GET "+v1+"get-sth", s.handleSTH)
	mux.HandleFunc("GET "+v1+"get-sth-consistency", s.handleConsistency)
	mux.HandleFunc("GET "+v1+"get-proof-by-hash", s.handleProofByHash)
	mux.HandleFunc("GET "+v1+"get-entries", s.handleEntries)
	mux.HandleFunc("GET "+v1+"receipt/{index}", s.handleReceipt)
	mux.HandleFunc("GET "+v1+"receipt-by-hash", s.handleReceiptByHash)
}

func (s *Service) handleAdd(precert bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		// Refused before the chain is read or verified; not logged per
		// request (Admission logs a summary).
		release, err := s.cfg.Admission.Admit(r.Context(), Name, 1)
		if err != nil {
			s.cfg.Metrics.Submission(r.Context(), Name, problem.Class(err), "")
			problem.WriteDetails(w, problem.For(err))
			return
		}
		defer release()
		var req ct.AddChainRequest
		body, err := problem.ReadBody(w, r, "application/json", maxChainBody)
		if err == nil {
			if err = strictJSON(body, &req); err != nil {
				err = fmt.Errorf("%w: body is not {\"chain\": [base64 DER, ...]}: %v", problem.ErrBadRequest, err)
			}
		}
		if err != nil {
			s.cfg.Metrics.Submission(r.Context(), Name, problem.Class(err), "")
			problem.Write(w, r, err)
			return
		}
		added, err := s.Add(r.Context(), req.Chain, precert)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		sig, err := cttls.Marshal(added.SCT.Signature)
		if err != nil {
			problem.Write(w, r, err)
			return
		}
		problem.WriteJSON(w, ct.AddChainResponse{
			SCTVersion: added.SCT.SCTVersion,
			ID:         added.SCT.LogID.KeyID[:],
			Timestamp:  added.SCT.Timestamp,
			Extensions: base64.StdEncoding.EncodeToString(added.SCT.Extensions),
			Signature:  sig,
		})
	}
}

func (s *Service) handleRoots(w http.ResponseWriter, r *http.Request) {
	var out ct.GetRootsResponse
	out.Certificates = []string{}
	for _, der := range s.Roots() {
		out.Certificates = append(out.Certificates, base64.StdEncoding.EncodeToString(der))
	}
	problem.WriteJSON(w, out)
}

func (s *Service) handleSTH(w http.ResponseWriter, r *http.Request) {
	sth, err := s.STH(r.Context())
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, sth)
}

func (s *Service) handleConsistency(w http.ResponseWriter, r *http.Request) {
	first, err := queryUint(r, "first")
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	second, err := queryUint(r, "second")
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	proof, err := s.Consistency(r.Context(), first, second)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, ct.GetSTHConsistencyResponse{Consistency: proof})
}

func (s *Service) handleProofByHash(w http.ResponseWriter, r *http.Request) {
	hash, err := queryHash(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	size, err := queryUint(r, "tree_size")
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	idx, proof, err := s.ProofByHash(r.Context(), hash, size)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, ct.GetProofByHashResponse{LeafIndex: int64(idx), AuditPath: proof})
}

func (s *Service) handleEntries(w http.ResponseWriter, r *http.Request) {
	start, err := queryUint(r, "start")
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	end, err := queryUint(r, "end")
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	entries, err := s.Entries(r.Context(), start, end)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, ct.GetEntriesResponse{Entries: entries})
}

func (s *Service) handleReceipt(w http.ResponseWriter, r *http.Request) {
	idx, err := vlog.ParseIndex(r.PathValue("index"))
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	rc, err := s.Receipt(r.Context(), idx)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, ReceiptResponse{Index: idx, Receipt: rc})
}

func (s *Service) handleReceiptByHash(w http.ResponseWriter, r *http.Request) {
	hash, err := queryHash(r)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	idx, rc, err := s.ReceiptByHash(r.Context(), hash)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	problem.WriteJSON(w, ReceiptResponse{Index: idx, Receipt: rc})
}

func (s *Service) handleIssuer(w http.ResponseWriter, r *http.Request) {
	fp := r.PathValue("fingerprint")
	b, err := hex.DecodeString(fp)
	if err != nil || len(b) != 32 || hex.EncodeToString(b) != fp {
		problem.Write(w, r, fmt.Errorf("%w: an issuer is named by the lowercase hex SHA-256 of its DER", problem.ErrNotFound))
		return
	}
	der, err := s.cfg.Issuers.Get(r.Context(), [32]byte(b))
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/pkix-cert")
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	_, _ = w.Write(der)
}

// queryUint reads a decimal query parameter, in canonical form.
func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != v {
		return 0, fmt.Errorf("%w: parameter %s must be a decimal number", problem.ErrBadRequest, name)
	}
	return n, nil
}

// queryHash reads the base64 leaf hash parameter of RFC 6962 §4.5.
func queryHash(r *http.Request) ([]byte, error) {
	b, err := base64.StdEncoding.DecodeString(r.URL.Query().Get("hash"))
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("%w: parameter hash must be a base64 SHA-256 leaf hash", problem.ErrBadRequest)
	}
	return b, nil
}

// strictJSON decodes one JSON value, refusing unknown fields and trailing
// data.
func strictJSON(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return fmt.Errorf("trailing data after the JSON object")
	}
	return nil
}
