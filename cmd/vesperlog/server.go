package main

import (
	"context"
	"crypto"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"
	"go.opentelemetry.io/otel"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/client"
	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/log/stict"
	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/log/vetting/server"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/receipts/passport"
	"github.com/vesperlog/vesperlog/receipts/vesper"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// vettingPrefix is where the vetting log's API lives.
const vettingPrefix = "/vetting"

type app struct {
	cfg      *config
	metrics  http.Handler
	backend  storage.Backend // closed by close, after the logs
	vetting  *vlog.Log
	vkeys    []string // the vetting log's verifier keys, its Ed25519 one first
	policy   *policy.Policy
	service  *server.Service
	receipts *receipts.Signer
	keys     *state.ReceiptKeys
	agents   *state.Agents
	stict    *stictLog // nil unless -stict-roots is set
	// watch follows the logs' checkpoints (its goroutine runs from newApp
	// to close); ready and httpm serve /readyz and count answers.
	watch *checkpointWatch
	ready *readiness
	httpm *httpMetrics
	// witnesses records each witness's last answer, for the status page.
	witnesses *vlog.WitnessRecorder
	// keyLock is a shared lock on the receipt key file, held from newApp
	// to close, so that vesperlog keys rotate-receipt refuses to replace
	// the key of a running server.
	keyLock *os.File
	// proofClient fetches the STI-CT log's checkpoints, entries and
	// proofs through the public URL, for POST /api/verify-passport's
	// "online" check.
	proofClient *http.Client
	// adm bounds the work in flight, the logs' submissions and the
	// verification API's requests alike (nil admits everything).
	adm *vlog.Admission
	// passport is the PASSporT trust passportOptions built last.
	passport passportTrust
	// closeOnce makes close safe to call again: a second signal closes
	// the logs while the first stop may still be waiting to.
	closeOnce sync.Once
	closeErr  error
}

func newApp(ctx context.Context, cfg *config) (_ *app, err error) {
	// First, so that the log's instruments report to it.
	metrics, err := metricsHandler()
	if err != nil {
		return nil, err
	}
	lm, err := vlog.NewMetrics(otel.Meter("github.com/vesperlog/vesperlog"))
	if err != nil {
		return nil, err
	}
	// One bound for both logs: they share the CPU it protects.
	adm := vlog.NewAdmission(cfg.maxInFlight(), lm)
	pub, err := url.Parse(cfg.PublicURL)
	if err != nil || pub.Host == "" {
		return nil, fmt.Errorf("-public-url %q is not an absolute URL", cfg.PublicURL)
	}
	// Tessera asks witnesses through it; a submission that times out
	// reports from it which witness refused and why.
	witnesses := vlog.NewWitnessRecorder(nil)
	sc := cfg.storage()
	sc.WitnessClient = witnesses.Client()
	be, err := storage.Open(ctx, sc)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, be.Close())
		}
	}()
	st := be.State()
	origin, err := logOrigin(ctx, st, server.Name, cfg.VettingOrigin, "")
	if err != nil {
		return nil, err
	}
	if origin == "" {
		if _, err := os.Stat(cfg.VettingKey); err != nil {
			origin = pub.Host + vettingPrefix
		}
	}
	ck, err := checkpointKey(ctx, st, "vetting checkpoint key", cfg.VettingKey, origin, server.Name, keys.Ed25519NoteKey)
	if err != nil {
		return nil, err
	}
	vettingKeys := []*keys.NoteKey{ck}
	if cfg.MLDSACheckpoints {
		mk, err := checkpointKey(ctx, st, "vetting ML-DSA-44 checkpoint key", mldsaKeyFile(cfg.VettingKey), ck.Signer.Name(), state.KeyBinding(server.Name, "mldsa"), mldsaKey)
		if err != nil {
			return nil, err
		}
		vettingKeys = append(vettingKeys, mk)
	}
	rs, history, keyLock, err := receiptSigner(ctx, cfg.ReceiptKey, st)
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			keyLock.Close()
		}
	}()
	every := state.ReloadEvery
	if be.Name() == storage.POSIX {
		every = 0
	}
	agents, err := state.OpenAgents(ctx, st, every)
	if err != nil {
		return nil, err
	}

	var sk *stictKeys
	var stictVKeys []string
	if cfg.STICTRoots != "" {
		if sk, err = loadSTICTKeys(ctx, cfg, st, pub.Host); err != nil {
			return nil, err
		}
		stictVKeys = sk.vkeys()
	}
	vw, sw, err := witnessPolicies(cfg, vkeys(vettingKeys), stictVKeys)
	if err != nil {
		return nil, err
	}

	svc, err := server.Open(ctx, server.OpenConfig{
		Storage:            be,
		Signer:             ck.Signer,
		ExtraSigners:       signers(vettingKeys[1:]),
		Agents:             func() *vetting.Agents { return agents.Get(context.Background()) },
		Receipts:           rs,
		CheckpointInterval: cfg.CheckpointInterval,
		Witnesses:          vw.group,
		WitnessFailOpen:    cfg.WitnessFailOpen,
		WitnessRecorder:    witnesses,
		IssuedAtWindow:     cfg.IssuedAtWindow,
		PublishTimeout:     cfg.PublishTimeout,
		Policy:             vw.policy,
		Metrics:            lm,
		Admission:          adm,
	})
	if err != nil {
		return nil, err
	}
	l := svc.Log()
	var sl *stictLog
	defer func() {
		// The logs run on the backend, which the deferred Close above
		// closes on an error: stop them first.
		if err != nil {
			svc.Close()
			err = errors.Join(err, l.Close(ctx))
			if sl != nil {
				err = errors.Join(err, sl.log.Close(ctx))
			}
		}
	}()
	logs := map[string]*vlog.Log{"vetting": l}
	watched := []*watchedLog{{name: "vetting", log: l, policy: vw.policy}}
	prefixes := map[string]string{vettingPrefix: "vetting"}
	witnesses.Observe(lm, l.Origin(), "vetting", vw.policy)
	if sk != nil {
		if sl, err = openSTICT(ctx, cfg, be, sk, sw, witnesses, rs, lm, adm); err != nil {
			return nil, err
		}
		logs["stict"] = sl.log
		watched = append(watched, &watchedLog{name: "stict", log: sl.log, policy: sl.policy})
		prefixes[stictPrefix] = "stict"
		witnesses.Observe(lm, sl.log.Origin(), "stict", sl.policy)
	}
	if err := registerLogGauges(logs); err != nil {
		return nil, err
	}
	httpm, err := newHTTPMetrics(prefixes)
	if err != nil {
		return nil, err
	}
	for _, name := range prefixes {
		lm.Serving(name)
	}
	// Last: nothing fails after the watcher starts, so close stops it.
	watch := startCheckpointWatch(cfg.CheckpointInterval, watched)
	ready := newReadiness(cfg, st, watch, witnesses)
	if err := registerHealthGauges(ready); err != nil {
		watch.stop()
		return nil, err
	}
	return &app{
		cfg:       cfg,
		backend:   be,
		stict:     sl,
		metrics:   metrics,
		policy:    vw.policy,
		vetting:   l,
		vkeys:     vkeys(vettingKeys),
		receipts:  rs,
		keys:      history,
		agents:    agents,
		service:   svc,
		keyLock:   keyLock,
		watch:     watch,
		ready:     ready,
		httpm:     httpm,
		witnesses: witnesses,
		adm:       adm,
		// The online check asks this server itself: bounded, so that a
		// request never waits on it for long.
		proofClient: &http.Client{Timeout: 10 * time.Second},
	}, nil
}

// receiptSigner loads (or creates) this front end's receipt key, locks
// its file (shared) for as long as the server runs, and adds the key to the
// backend's receipt key history. A key the history has retired is
// refused, and the signer checks the history before each receipt, so that
// the front end never signs with a retired key.
func receiptSigner(ctx context.Context, path string, st storage.State) (_ *receipts.Signer, _ *state.ReceiptKeys, lock *os.File, err error) {
	if _, created, err := keys.LoadOrCreateJWK(path, "ES256"); err != nil {
		return nil, nil, nil, fmt.Errorf("receipt key: %w", err)
	} else if created {
		slog.Info("created receipt key", "file", path)
	}
	lock, err = keys.LockFile(path, false)
	if errors.Is(err, keys.ErrLocked) {
		return nil, nil, nil, fmt.Errorf("receipt key %s is being rotated (vesperlog keys rotate-receipt holds it); start the server once that is done", path)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("receipt key: %w", err)
	}
	defer func() {
		if err != nil {
			lock.Close()
		}
	}()
	// Read again under the lock: this is the key no rotation can replace.
	rk, err := keys.LoadJWK(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("receipt key: %w", err)
	}
	priv, ok := rk.Key.(crypto.Signer)
	if !ok {
		return nil, nil, nil, fmt.Errorf("receipt key %s cannot sign", path)
	}
	pub, err := receipts.NewSigner(priv)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("receipt key %s: %w", path, err)
	}
	history, err := state.OpenReceiptKeys(ctx, st, pub.PublicJWK())
	if errors.Is(err, state.ErrReceiptKeyRetired) {
		return nil, nil, nil, fmt.Errorf("receipt key %s: %w; give this front end a new key with vesperlog keys rotate-receipt and the same storage flags and -receipt-key (it also finishes a rotation that was interrupted)", path, err)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	rs, err := receipts.NewSigner(priv, receipts.WithKeyCheck(history.CheckSigning))
	if err != nil {
		return nil, nil, nil, fmt.Errorf("receipt key %s: %w", path, err)
	}
	return rs, history, lock, nil
}

// logOrigin is a log's origin: the flag's, else the one bound in the
// backend, else legacy's (a posix log from before bindings), else "". A
// flag that contradicts the backend is an error.
func logOrigin(ctx context.Context, st storage.State, log, flag, legacy string) (string, error) {
	b, err := state.ReadBinding(ctx, st, log)
	if err != nil {
		return "", err
	}
	switch {
	case b != nil && flag != "" && flag != b.Origin:
		return "", fmt.Errorf("-%s-origin %q, but the backend's %s log is %q", log, flag, log, b.Origin)
	case flag != "":
		return flag, nil
	case b != nil:
		return b.Origin, nil
	}
	return legacy, nil
}

// witnessing is how a log's checkpoints are witnessed: the policy they
// meet, which the trust document publishes, and the witnesses Tessera
// asks (nil when the policy has none).
type witnessing struct {
	policy *policy.Policy
	group  *tessera.WitnessGroup
}

// witnessPolicies returns the vetting and STI-CT logs' witnessing, from
// their checkpoint keys (stict is nil when that log does not run). The logs
// share one policy unless -stict-witness-policy names another file; then
// each log asks only its own witnesses, and one that refuses a log does not
// hold up the other.
func witnessPolicies(cfg *config, vetting, stict []string) (v, s witnessing, err error) {
	if stict == nil || cfg.STICTWitnessPolicy == cfg.WitnessPolicy {
		w, err := witnessPolicy(cfg.WitnessPolicy, append(vetting, stict...)...)
		return w, w, err
	}
	if v, err = witnessPolicy(cfg.WitnessPolicy, vetting...); err != nil {
		return v, s, err
	}
	s, err = witnessPolicy(cfg.STICTWitnessPolicy, stict...)
	return v, s, err
}

// witnessPolicy returns the witnessing of the logs with the given
// checkpoint keys: the operator's C2SP tlog-policy at path with the keys
// added where it does not list them, or the keys alone with quorum none.
// Tessera reads the same syntax (and needs each witness's URL, its
// tlog-witness submission prefix).
func witnessPolicy(path string, vkeys ...string) (witnessing, error) {
	var b []byte
	if path != "" {
		var err error
		if b, err = os.ReadFile(path); err != nil {
			return witnessing{}, fmt.Errorf("witness policy: %w", err)
		}
		p, err := policy.Parse(b)
		if err != nil {
			return witnessing{}, fmt.Errorf("witness policy %s: %w", path, err)
		}
		for i := len(vkeys) - 1; i >= 0; i-- { // prepending keeps their order
			if !p.HasLogKey(vkeys[i]) {
				b = append([]byte("log "+vkeys[i]+"\n"), b...)
			}
		}
	} else {
		for _, vkey := range vkeys {
			b = append(b, "log "+vkey+"\n"...)
		}
		b = append(b, "quorum none\n"...)
	}
	p, err := policy.Parse(b)
	if err != nil {
		// Most likely the file lists a log with a key it does not have.
		return witnessing{}, fmt.Errorf("witness policy %s with the logs' keys added (does it list a log with another key?): %w", path, err)
	}
	if path == "" {
		return witnessing{policy: p}, nil
	}
	for _, w := range p.Witnesses() {
		if w.URL == "" {
			return witnessing{}, fmt.Errorf("witness policy %s: witness %s has no URL to ask it at", path, w.Name)
		}
	}
	g, err := tessera.NewWitnessGroupFromPolicy([]byte(p.String()))
	if err != nil {
		return witnessing{}, fmt.Errorf("witness policy %s: %w", path, err)
	}
	return witnessing{policy: p, group: &g}, nil
}

// checkpointKey loads (or creates) a key that signs a log's checkpoints,
// named by origin, and binds it in the backend as binding, so that every
// front end of the log signs with the same one. what names it in messages.
func checkpointKey(ctx context.Context, st storage.State, what, path, origin, binding string, kind keys.NoteKeyKind) (*keys.NoteKey, error) {
	k, created, err := keys.LoadOrCreateKey(path, origin, kind)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	if created {
		slog.Info("created "+what, "file", path)
	}
	if err := state.Bind(ctx, st, binding, state.LogBinding{Origin: k.Signer.Name(), VKey: k.VKey}); err != nil {
		return nil, err
	}
	return k, nil
}

// mldsaKey is the ML-DSA-44 key kind that -mldsa-checkpoints signs with:
// a tlog-cosignature key named by the log's origin, as a witness's is.
var mldsaKey = keys.NoteKeyKind{
	Generate: func(name string) (string, error) {
		skey, _, err := witness.GenerateKey(name, witness.MLDSA44)
		return skey, err
	},
	Parse: func(skey string) (note.Signer, string, error) {
		k, err := witness.ParseKey(skey)
		if err != nil {
			return nil, "", err
		}
		if k.Alg != witness.MLDSA44 {
			return nil, "", fmt.Errorf("an %s key, not ML-DSA-44", k.Alg)
		}
		return k.Signer, k.VKey, nil
	},
}

// mldsaKeyFile is where a log's ML-DSA-44 key is, beside its Ed25519 key.
func mldsaKeyFile(ed25519Key string) string {
	return strings.TrimSuffix(ed25519Key, ".key") + "-mldsa.key"
}

func vkeys(ks []*keys.NoteKey) []string {
	var v []string
	for _, k := range ks {
		v = append(v, k.VKey)
	}
	return v
}

func signers(ks []*keys.NoteKey) []note.Signer {
	var s []note.Signer
	for _, k := range ks {
		s = append(s, k.Signer)
	}
	return s
}

// canonicalPaths answers a request whose path is not in canonical form
// ("//x", "/a/../b", "/a/./b") with a 400 problem naming the canonical
// path: net/http's ServeMux would redirect it with a plain-text body, and
// no client of these APIs needs that.
func canonicalPaths(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if c := cleanPath(p); c != p {
			problem.Write(w, r, fmt.Errorf("%w: path %q is not in canonical form; use %q", problem.ErrBadRequest, p, c))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// cleanPath is net/http's canonical form of a path: path.Clean, rooted,
// with a trailing slash kept.
func cleanPath(p string) string {
	if p == "" {
		return "/"
	}
	if p[0] == '/' && path.Clean(p) == p {
		return p // the common case, without allocating
	}
	c := path.Clean("/" + p)
	if strings.HasSuffix(p, "/") && c != "/" {
		c += "/"
	}
	return c
}

func (s *app) handler() http.Handler {
	mux := http.NewServeMux()
	s.vetting.HandleReads(mux, vettingPrefix)
	s.service.Handle(mux, vettingPrefix)
	if s.stict != nil {
		s.stict.log.HandleReads(mux, stictPrefix)
		s.stict.service.Handle(mux, stictPrefix)
	}
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, r *http.Request) {
		problem.WriteJSON(w, s.jwks())
	})
	mux.HandleFunc("GET /.well-known/transparency-configuration", func(w http.ResponseWriter, r *http.Request) {
		problem.WriteJSON(w, s.transparencyConfiguration())
	})
	mux.HandleFunc("POST /api/verify-vetted-info", s.handleVerifyVettedInfo)
	mux.HandleFunc("POST /api/verify-passport", s.handleVerifyPassport)
	mux.Handle("GET /metrics", s.metrics)
	mux.Handle("GET /{$}", s.statusPage())
	mux.HandleFunc("GET /healthz", handleHealthz)
	mux.HandleFunc("GET /readyz", s.ready.handleReadyz)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		problem.Write(w, r, fmt.Errorf("%w: no %s %s here", problem.ErrNotFound, r.Method, r.URL.Path))
	})
	return s.httpm.wrap(canonicalPaths(mux))
}

// handleVerifyVettedInfo is draft-wendt-stir-vesper §7.2: it verifies a
// receipt, a vesper token, or both, against this log's own trust and its
// registered agents.
func (s *app) handleVerifyVettedInfo(w http.ResponseWriter, r *http.Request) {
	release, ok := s.admitVerify(w, r, server.Name)
	if !ok {
		return
	}
	defer release()
	body, err := problem.ReadBody(w, r, "application/json", vesper.MaxVettedInfoRequest)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	res, err := vesper.VerifyVettedInfo(body, s.verification())
	switch {
	case errors.Is(err, vesper.ErrRequest):
		problem.Write(w, r, fmt.Errorf("%w: %w", problem.ErrBadRequest, err))
	case err != nil:
		problem.Write(w, r, fmt.Errorf("%w: %w", problem.ErrUnverifiable, err))
	default:
		problem.WriteJSON(w, res)
	}
}

// handleVerifyPassport is a PASSporT verification service (RFC 8224 §6)
// over HTTP: it verifies a PASSporT or Identity header value against the
// STI trust of this server's trust document (its roots, its own STI-CT
// log). A malformed request is 400; a PASSporT that fails a check is 422
// whose problem names the check.
func (s *app) handleVerifyPassport(w http.ResponseWriter, r *http.Request) {
	if s.stict == nil {
		problem.Write(w, r, fmt.Errorf("%w: this server runs no STI-CT log (-stict-roots), so it has no STI trust to verify PASSporTs with", problem.ErrNotFound))
		return
	}
	release, ok := s.admitVerify(w, r, stictserver.Name)
	if !ok {
		return
	}
	defer release()
	body, err := problem.ReadBody(w, r, "application/json", passport.MaxRequest)
	if err != nil {
		problem.Write(w, r, err)
		return
	}
	o, err := s.passportOptions()
	if err != nil {
		problem.Write(w, r, fmt.Errorf("the server's STI trust: %w", err))
		return
	}
	res, err := passport.VerifyRequest(r.Context(), body, o)
	switch {
	case errors.Is(err, passport.ErrRequest), errors.Is(err, passport.ErrMalformed):
		problem.Write(w, r, problem.WithCheck(fmt.Errorf("%w: %w", problem.ErrBadRequest, err), passport.Check(err)))
	case err != nil:
		problem.Write(w, r, problem.WithCheck(fmt.Errorf("%w: %w", problem.ErrUnverifiable, err), passport.Check(err)))
	default:
		problem.WriteJSON(w, res)
	}
}

// passportOptions is what this server trusts when it verifies a PASSporT:
// the sti member of its trust document. It never dereferences x5u (the
// request would make the server fetch any URL: SSRF), and it proves
// inclusion online ("online": true) only in the logs its trust document
// lists, which is its own STI-CT log, through its public URL, checking the
// checkpoint's witness quorum as any client would.
func (s *app) passportOptions() (passport.Options, error) {
	p := &s.passport
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.built.IsZero() && time.Since(p.built) < state.ReloadEvery {
		return p.options, nil
	}
	c := s.transparencyConfiguration()
	t, err := passport.TrustFromConfiguration(&c)
	if err != nil {
		return passport.Options{}, err
	}
	p.options = passport.Options{Trust: t, Online: client.NewSCTProver(t.Receipts, s.proofClient)}
	p.built = time.Now()
	return p.options, nil
}

// passportTrust keeps the options passportOptions built, for
// state.ReloadEvery: they change only with the receipt key history, which
// is read no more often, and building them parses the STI roots and the
// witness policy again.
type passportTrust struct {
	mu      sync.Mutex
	built   time.Time
	options passport.Options
}

// admitVerify admits a verification API request against log's logs, or
// answers 503 with Retry-After. A shed request is not logged: the
// Admission sums them up, and a log line each would cost CPU when there
// is none to spare.
func (s *app) admitVerify(w http.ResponseWriter, r *http.Request, log string) (func(), bool) {
	release, err := s.adm.Admit(r.Context(), log, verifyCost)
	if err != nil {
		problem.WriteDetails(w, problem.For(err))
		return nil, false
	}
	return release, true
}

// verifyCost is what a verification API request counts in admission
// control, as log.Admission.Admit's n: a token or PASSporT check costs
// a few signature checks, about what two submitted entries do.
const verifyCost = 2

// verification is what this server trusts when it verifies on a
// client's behalf: its own logs and receipt keys, and its agents.
func (s *app) verification() vesper.Verification {
	keys := s.jwks()
	return vesper.Verification{Trust: receipts.Trust{Keys: &keys, Policy: s.policy}, Issuers: s.agents.Get(context.Background())}
}

// jwks is the receipt key history: every front end's receipt key, so
// that a receipt from any of them verifies. If the backend cannot be read,
// this front end's own key still is.
func (s *app) jwks() receipts.KeySet {
	set, err := s.keys.JWKS(context.Background())
	if err != nil {
		slog.Error("serving only this front end's receipt key", "err", err)
		return *receipts.NewKeySet(s.receipts.PublicJWK())
	}
	return set
}

func (s *app) transparencyConfiguration() receipts.Configuration {
	base := s.cfg.PublicURL + vettingPrefix
	c := receipts.Configuration{
		Logs: []receipts.LogConfiguration{{
			Name:   "vetting",
			Origin: s.vetting.Origin(),
			VKey:   s.vkeys[0],
			URL:    base,
			Endpoints: map[string]string{
				"add":       base + "/v1/add",
				"add_batch": base + "/v1/add-batch",
				"receipt":   base + "/v1/receipt/{index}",
				"lookup":    base + "/v1/lookup/{agent}/{digest}",
				"agents":    base + "/v1/agents",
			},
		}},
		ReceiptKeys:   s.jwks(),
		WitnessPolicy: s.policy.String(),
	}
	if len(s.vkeys) > 1 {
		c.Logs[0].MLDSAVKey = s.vkeys[1]
	}
	if s.stict != nil {
		base := s.cfg.PublicURL + stictPrefix
		lc := receipts.LogConfiguration{
			Name:     "stict",
			Origin:   s.stict.log.Origin(),
			VKey:     s.stict.keys.signer.VKey(),
			NoteVKey: s.stict.keys.note.VKey,
			URL:      base,
			Endpoints: map[string]string{
				"add_chain":       base + "/v1/add-chain",
				"add_pre_chain":   base + "/v1/add-pre-chain",
				"get_roots":       base + "/v1/get-roots",
				"get_sth":         base + "/v1/get-sth",
				"receipt":         base + "/v1/receipt/{index}",
				"receipt_by_hash": base + "/v1/receipt-by-hash?hash={hash}",
			},
		}
		if s.stict.keys.mldsa != nil {
			lc.MLDSAVKey = s.stict.keys.mldsa.VKey
		}
		if s.stict.policy != s.policy {
			lc.WitnessPolicy = s.stict.policy.String()
		}
		lc.Metadata = base + "/log.v3.json"
		c.Logs = append(c.Logs, lc)
		// What a PASSporT verification service pins: this log's STI
		// roots, and this log as the one STI-CT log whose SCTs count.
		sti := &receipts.STIConfiguration{CTLogs: []string{lc.Origin}, RequiredSCTs: s.cfg.RequiredSCTs}
		for _, r := range s.stict.roots.Certs() {
			sti.Roots = append(sti.Roots, base64.StdEncoding.EncodeToString(r.Raw))
		}
		c.STI = sti
	}
	return c
}

// announce prints what a user needs to reach and trust the logs.
func (s *app) announce(w io.Writer, listenURL string) {
	fmt.Fprintf(w, "vesperlog listening on %s\n", listenURL)
	fmt.Fprintf(w, "vetting log origin: %s\n", s.vetting.Origin())
	fmt.Fprintf(w, "vetting log vkey:   %s\n", s.vkeys[0])
	if len(s.vkeys) > 1 {
		fmt.Fprintf(w, "vetting ML-DSA key: %s\n", s.vkeys[1])
	}
	fmt.Fprintf(w, "receipt keys:       %s/.well-known/jwks.json\n", s.cfg.PublicURL)
	fmt.Fprintf(w, "trust document:     %s/.well-known/transparency-configuration\n", s.cfg.PublicURL)
	fmt.Fprintf(w, "storage:            %s\n", s.cfg.storageName())
	fmt.Fprintf(w, "agents:             %s (%d registered)\n", s.cfg.agentsWhere(), s.agents.Get(context.Background()).Len())
	if s.stict != nil {
		fmt.Fprintf(w, "STI-CT log origin:  %s\n", s.stict.log.Origin())
		fmt.Fprintf(w, "STI-CT log vkey:    %s\n", s.stict.keys.signer.VKey())
		fmt.Fprintf(w, "STI-CT note vkey:   %s\n", s.stict.keys.note.VKey)
		if s.stict.keys.mldsa != nil {
			fmt.Fprintf(w, "STI-CT ML-DSA key:  %s\n", s.stict.keys.mldsa.VKey)
		}
		fmt.Fprintf(w, "STI-CT log ID:      %s\n", base64.StdEncoding.EncodeToString(logID(s.stict.keys.signer)))
		fmt.Fprintf(w, "STI-CT public key:  %s\n", stictPublicKeyFile(s.cfg))
		fmt.Fprintf(w, "STI-CT roots:       %s (%d accepted)\n", s.cfg.STICTRoots, len(s.stict.roots.Certs()))
	} else {
		fmt.Fprintf(w, "STI-CT log:         off (set -stict-roots to run it)\n")
	}
	if n := len(s.policy.Witnesses()); n > 0 {
		fmt.Fprintf(w, "witnesses:          %d, quorum %s\n", n, s.policy.Quorum())
	}
	if s.stict != nil && s.stict.policy != s.policy {
		fmt.Fprintf(w, "STI-CT witnesses:   %d, quorum %s\n", len(s.stict.policy.Witnesses()), s.stict.policy.Quorum())
	}
}

// pending says what a stop waits for: each log's entries accepted but not
// yet published, and how its witnesses last answered; "" if nothing.
func (s *app) pending(ctx context.Context) (string, error) {
	names, logs := []string{"vetting"}, []*vlog.Log{s.vetting}
	if s.stict != nil {
		names, logs = append(names, "STI-CT"), append(logs, s.stict.log)
	}
	var parts []string
	for i, l := range logs {
		n, err := l.Pending(ctx)
		if err != nil {
			return "", fmt.Errorf("reading what the %s log has not published: %w", names[i], err)
		}
		if n == 0 {
			continue
		}
		p := fmt.Sprintf("%d entries of the %s log", n, names[i])
		if r := l.WitnessReport(); r != "" {
			p += " (" + r + ")"
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, "; "), nil
}

// waitPublished waits until every entry the logs accepted is in a
// published checkpoint, or ctx ends. A backend that does not answer is
// waited for too: nothing is known to be published.
func (s *app) waitPublished(ctx context.Context) error {
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		p, err := s.pending(pctx)
		cancel()
		if p == "" && err == nil && ctx.Err() == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (s *app) close(ctx context.Context) error {
	s.closeOnce.Do(func() {
		s.watch.stop()
		s.service.Close()
		err := s.vetting.Close(ctx)
		if s.stict != nil {
			err = errors.Join(err, s.stict.log.Close(ctx))
		}
		s.closeErr = errors.Join(err, s.backend.Close(), s.keyLock.Close())
	})
	return s.closeErr
}

func logID(s *stict.Signer) []byte {
	id := s.LogID()
	return id[:]
}
