package main

import (
	"crypto/ecdsa"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	cttls "github.com/google/certificate-transparency-go/tls"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts/passport"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// TestPassportEndToEnd is issue 14's flow with the real binaries and one
// witnessed server: a TEST CA (vesper ca delegate) logs delegate
// precertificates in the STI-CT log (add-pre-chain) and embeds the SCTs;
// an authentication service signs PASSporTs with them (vesper passport
// sign: SHAKEN with x5c, rcd with each privacy mode, rsp); a verification
// service checks them offline, and online down to a checkpoint the witness
// cosigned (vesper passport verify, and POST /api/verify-passport). Then
// the issue's rejection table, one row per failed check, each through the
// command line (exit 1 naming the check) and the API (422 whose problem
// names it).
func TestPassportEndToEnd(t *testing.T) {
	bin, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	const origin = "e2e.test/stict"

	srv, _ := startWitnessedSTICT(t, bin, wbin, dir, origin)
	logURL := srv.url + "/stict"

	// The trust document pins the STI roots and this STI-CT log, and
	// links the log's metadata.
	conf, lc := stictConfiguration(t, srv.url)
	if conf.STI == nil || len(conf.STI.Roots) != 1 || conf.STI.RequiredSCTs != 1 || len(conf.STI.CTLogs) != 1 || conf.STI.CTLogs[0] != origin {
		t.Fatalf("trust document's sti: %+v", conf.STI)
	}
	if root, _ := base64.StdEncoding.DecodeString(conf.STI.Roots[0]); string(root) != string(p.Root.DER) {
		t.Fatal("trust document's sti root is not the -stict-roots certificate")
	}
	if lc.Metadata != logURL+"/log.v3.json" {
		t.Fatalf("stict log's metadata URL %q", lc.Metadata)
	}
	httpGet200(t, lc.Metadata)
	runVesper(t, cli, dir, 0, "trust", "-server", srv.url, "-out", "trust.json")

	// The CA: delegate certificates, each logged and with its SCT.
	for _, d := range []struct {
		out  string
		args []string
	}{
		{"shaken", nil},
		{"value", []string{"-rcd", "rcd.json", "-mode", "value"}},
		{"hash", []string{"-rcd", "rcd.json", "-mode", "hash"}},
		{"commit", []string{"-rcd", "rcd.json", "-mode", "commit"}},
		{"answer", []string{"-range", "12155551200,100"}},
	} {
		if d.args != nil && d.args[0] == "-rcd" {
			os.WriteFile(filepath.Join(dir, "rcd.json"), []byte(`{ "nam": "Vesper Test Caller" }`), 0o644)
		}
		got := runVesper(t, cli, dir, 0, append([]string{"ca", "delegate", "-pki", "pki", "-log", logURL, "-out", d.out}, d.args...)...)
		if !strings.Contains(got, "SCT from log") || !strings.Contains(got, "leaf_index") {
			t.Fatalf("ca delegate %s: %s", d.out, got)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "commit", "disclose.json")); err != nil {
		t.Fatalf("ca delegate -mode commit wrote no disclosure: %v", err)
	}

	now := time.Now().Unix()
	sign := func(name, delegate string, args ...string) string {
		t.Helper()
		runVesper(t, cli, dir, 0, append([]string{"passport", "sign", "-key", filepath.Join(delegate, "delegate.key"),
			"-chain", filepath.Join(delegate, "delegate.pem"), "-out", name}, args...)...)
		return name
	}
	shaken := []string{"-orig", "12025550101", "-dest", "12155551213", "-attest", "A"}
	rcd := func(nam string) []string {
		f := "rcd-" + strings.ReplaceAll(nam, " ", "-") + ".json"
		os.WriteFile(filepath.Join(dir, f), []byte(`{"nam":"`+nam+`"}`), 0o644)
		return []string{"-orig", "12025550101", "-dest", "12155551213", "-rcd", f}
	}

	// Accepted: offline, and online to the witnessed checkpoint.
	sign("shaken.jwt", "shaken", shaken...)
	got := runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "shaken.jwt")
	for _, want := range []string{"PASSporT OK", "header: alg ES256, typ passport, ppt shaken", "tnauthlist: orig 12025550101", "scts: "} {
		if !strings.Contains(got, want) {
			t.Errorf("passport verify output lacks %q:\n%s", want, got)
		}
	}
	got = runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "-online", "shaken.jwt")
	if !strings.Contains(got, "inclusion: entry 0 of "+origin) || !strings.Contains(got, "w1") {
		t.Errorf("passport verify -online does not prove entry 0 in a checkpoint w1 cosigned:\n%s", got)
	}
	var resp passport.Response
	if err := json.Unmarshal([]byte(runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "-json", "shaken.jwt")), &resp); err != nil || !resp.Valid || len(resp.SCTs) != 1 || resp.SCTs[0].Log != origin {
		t.Errorf("passport verify -json: %+v %v", resp, err)
	}
	// The Identity header form, verified as such.
	runVesper(t, cli, dir, 0, "passport", "sign", "-key", "shaken/delegate.key", "-chain", "shaken/delegate.pem", "-identity", "-info", "https://cert.example.org/passport.cer", "-out", "identity.txt", shaken[0], shaken[1], shaken[2], shaken[3], shaken[4], shaken[5])
	runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "identity.txt")
	// rcd, in each privacy mode (commit with the holder's salt).
	sign("rcd-value.jwt", "value", rcd("Vesper Test Caller")...)
	sign("rcd-hash.jwt", "hash", rcd("Vesper Test Caller")...)
	sign("rcd-commit.jwt", "commit", rcd("Vesper Test Caller")...)
	for _, c := range [][]string{{"rcd-value.jwt"}, {"rcd-hash.jwt"}, {"-disclose", "commit/disclose.json", "rcd-commit.jwt"}} {
		got := runVesper(t, cli, dir, 0, append([]string{"passport", "verify", "-trust", "trust.json"}, c...)...)
		if !strings.Contains(got, "rcd") {
			t.Errorf("passport verify %v does not report the rcd constraint:\n%s", c, got)
		}
	}
	// Without the salt, a committed claim is unauthenticated, not refused,
	// unless the verifier requires commitments.
	runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "rcd-commit.jwt")
	runVesper(t, cli, dir, 1, "passport", "verify", "-trust", "trust.json", "-require-commitments", "rcd-commit.jwt")
	// rsp: the answering party's PASSporT, checked against the original.
	sign("rsp.jwt", "answer", "-ppt", "rsp", "-orig", "12025550101", "-dest", "12155551213")
	runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "-original", "shaken.jwt", "rsp.jwt")

	// The API accepts the same, online too.
	for _, req := range []map[string]any{
		{"passport": read(t, dir, "shaken.jwt")},
		{"passport": read(t, dir, "shaken.jwt"), "online": true},
		{"identity": read(t, dir, "identity.txt")},
		{"passport": read(t, dir, "rcd-commit.jwt"), "disclosures": json.RawMessage(read(t, dir, "commit/disclose.json"))},
		{"passport": read(t, dir, "rsp.jwt"), "original": read(t, dir, "shaken.jwt")},
	} {
		code, b := verifyAPI(t, srv.url, req)
		var r passport.Response
		if err := json.Unmarshal(b, &r); code != 200 || err != nil || !r.Valid {
			t.Errorf("POST /api/verify-passport %v: %d %s", req, code, b)
		}
		if req["online"] == true && !strings.Contains(string(b), "inclusion: entry 0 of "+origin) {
			t.Errorf("online API answer proves no inclusion: %s", b)
		}
	}

	// Certificates the CLI cannot make: SCTs of another log, a forged SCT,
	// and an SCT with this log's own key for an entry it never logged.
	roots, err := stict.ParseRoots(pemFile(t, filepath.Join(dir, "pki", "root.pem")))
	if err != nil {
		t.Fatal(err)
	}
	otherKey, err := ecdsa.GenerateKey(p.Root.Cert.PublicKey.(*ecdsa.PublicKey).Curve, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := stict.NewSigner("other.example/stict", otherKey)
	if err != nil {
		t.Fatal(err)
	}
	ownKey, err := keys.LoadJWK(filepath.Join(dir, "data", "keys", "stict-p256.jwk"))
	if err != nil {
		t.Fatal(err)
	}
	own, err := stict.NewSigner(origin, ownKey.Key.(*ecdsa.PrivateKey))
	if err != nil {
		t.Fatal(err)
	}
	forge := func(chain [][]byte) ([]byte, error) {
		b, err := stitest.AddPreChain(nil, logURL)(chain)
		if err == nil {
			b[len(b)-1] ^= 1 // the last byte of the DER signature's s
		}
		return b, err
	}
	for name, submit := range map[string]func([][]byte) ([]byte, error){
		"untrusted-log": signedBy(other, roots, 0),
		"forged":        forge,
		"not-logged":    signedBy(own, roots, 0), // entry 0 is the shaken delegate's
	} {
		c, err := p.IssueDelegate(stitest.DelegateOptions{Name: name}, submit)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		writeDelegate(t, filepath.Join(dir, name), c, p.Chain(c)...)
	}
	writeDelegate(t, filepath.Join(dir, "no-sct"), p.TN, p.Chain(p.TN)...)
	writeDelegate(t, filepath.Join(dir, "untrusted-root"), p.Untrusted, p.Chain(p.Untrusted)...)
	// The log's key signed that SCT: offline it counts.
	sign("not-logged.jwt", "not-logged", shaken...)
	runVesper(t, cli, dir, 0, "passport", "verify", "-trust", "trust.json", "not-logged.jwt")

	// Hand-made headers with another alg, over a valid payload.
	chain, err := os.ReadFile(filepath.Join(dir, "shaken", "delegate.pem"))
	if err != nil {
		t.Fatal(err)
	}
	var x5c []string
	for _, d := range pemDERs(chain) {
		x5c = append(x5c, base64.StdEncoding.EncodeToString(d))
	}
	x5cJSON, _ := json.Marshal(x5c)
	payload := fmt.Sprintf(`{"attest":"A","dest":{"tn":["12155551213"]},"iat":%d,"orig":{"tn":"12025550101"},"origid":"123e4567-e89b-12d3-a456-426614174000"}`, now)
	writeRaw(t, filepath.Join(dir, "alg-none.jwt"), `{"alg":"none","ppt":"shaken","typ":"passport","x5c":`+string(x5cJSON)+`}`, payload)
	writeRaw(t, filepath.Join(dir, "alg-hs256.jwt"), `{"alg":"HS256","ppt":"shaken","typ":"passport","x5c":`+string(x5cJSON)+`}`, payload)

	wrongSalt := make([]byte, 32)
	rand.Read(wrongSalt)
	os.WriteFile(filepath.Join(dir, "wrong-salt.json"), []byte(`{"rcd":{"salt":"`+base64.RawURLEncoding.EncodeToString(wrongSalt)+`"}}`), 0o644)

	// The issue's rejection table.
	for _, c := range []struct {
		name, token string
		args        []string // more verify flags
		api         map[string]any
		check       string
	}{
		{"TN outside TNAuthList", sign("outside.jwt", "shaken", "-orig", "12025559999", "-dest", "12155551213", "-attest", "A"), nil, nil, "tnauthlist"},
		{"no SCT", sign("no-sct.jwt", "no-sct", shaken...), nil, nil, "scts"},
		{"SCT from an untrusted log", sign("untrusted-log.jwt", "untrusted-log", shaken...), nil, nil, "scts"},
		{"forged SCT", sign("forged.jwt", "forged", shaken...), nil, nil, "scts"},
		{"certificate not in the log, online", "not-logged.jwt", []string{"-online"}, map[string]any{"online": true}, "inclusion"},
		{"constraint violated", sign("rcd-other.jwt", "value", rcd("Someone Else")...), nil, nil, "constraints"},
		{"wrong commitment", "rcd-commit.jwt", []string{"-disclose", "wrong-salt.json"}, map[string]any{"disclosures": json.RawMessage(read(t, dir, "wrong-salt.json"))}, "commitment"},
		{"stale iat", sign("stale.jwt", "shaken", append([]string{"-iat", strconv.FormatInt(now-600, 10)}, shaken...)...), nil, nil, "freshness"},
		{"x5c to an untrusted root", sign("untrusted-root.jwt", "untrusted-root", shaken...), nil, nil, "chain"},
		{"alg none", "alg-none.jwt", nil, nil, "header"},
		{"alg HS256", "alg-hs256.jwt", nil, nil, "header"},
		{"rsp orig differs", sign("rsp-orig.jwt", "answer", "-ppt", "rsp", "-orig", "12025550102", "-dest", "12155551213"),
			[]string{"-original", "shaken.jwt"}, map[string]any{"original": read(t, dir, "shaken.jwt")}, "rsp"},
		{"rsp dest differs", sign("rsp-dest.jwt", "answer", "-ppt", "rsp", "-orig", "12025550101", "-dest", "12155551299"),
			[]string{"-original", "shaken.jwt"}, map[string]any{"original": read(t, dir, "shaken.jwt")}, "rsp"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := runVesper(t, cli, dir, 1, append(append([]string{"passport", "verify", "-trust", "trust.json"}, c.args...), c.token)...)
			if !strings.Contains(got, "check "+c.check+" failed") {
				t.Errorf("vesper passport verify: %s; want check %s", got, c.check)
			}
			req := map[string]any{"passport": read(t, dir, c.token)}
			for k, v := range c.api {
				req[k] = v
			}
			code, b := verifyAPI(t, srv.url, req)
			var d problem.Details
			if err := json.Unmarshal(b, &d); code != 422 || err != nil || d.Check != c.check {
				t.Errorf("POST /api/verify-passport: %d %s; want 422 with check %s", code, b, c.check)
			}
		})
	}

	// -json on a failure: the failed check, and the checks that passed.
	var failed struct {
		Valid  bool     `json:"valid"`
		Check  string   `json:"check"`
		Error  string   `json:"error"`
		Checks []string `json:"checks"`
	}
	got = runVesper(t, cli, dir, 1, "passport", "verify", "-trust", "trust.json", "-json", "outside.jwt")
	if err := json.NewDecoder(strings.NewReader(got)).Decode(&failed); err != nil || failed.Valid || failed.Check != "tnauthlist" ||
		!slices.ContainsFunc(failed.Checks, func(c string) bool { return strings.HasPrefix(c, "chain: ") }) {
		t.Errorf("passport verify -json of a failure: %+v %v\n%s", failed, err, got)
	}

	// The server never fetches x5u (a request must not make it reach
	// any URL); nor does the command line without -fetch-x5u.
	var fetched atomic.Int32
	x5u := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		w.Write(chain)
	}))
	defer x5u.Close()
	sign("x5u.jwt", "shaken", append([]string{"-no-x5c", "-x5u", x5u.URL + "/chain.pem"}, shaken...)...)
	if code, b := verifyAPI(t, srv.url, map[string]any{"passport": read(t, dir, "x5u.jwt")}); code != 422 || !strings.Contains(string(b), `"check":"header"`) {
		t.Errorf("x5u-only PASSporT over the API: %d %s", code, b)
	}
	runVesper(t, cli, dir, 1, "passport", "verify", "-trust", "trust.json", "x5u.jwt")
	if n := fetched.Load(); n != 0 {
		t.Errorf("x5u fetched %d times", n)
	}

	// Malformed requests are 400.
	for _, body := range []string{`{`, `{"passport":"a.b"}`, `{"passport":"x","identity":"y"}`, `{"passport":"` + read(t, dir, "shaken.jwt") + `","bogus":1}`} {
		resp, b := httpDo(t, "POST", srv.url+"/api/verify-passport", "application/json", []byte(body))
		if resp.StatusCode != 400 {
			t.Errorf("POST %s: %d %s, want 400", body, resp.StatusCode, b)
		}
	}
	if resp, b := httpDo(t, "POST", srv.url+"/api/verify-passport", "application/json", []byte(`{"passport":"`+strings.Repeat("a", passport.MaxRequest)+`"}`)); resp.StatusCode != 413 {
		t.Errorf("an oversized request: %d %s, want 413", resp.StatusCode, b)
	}
	srv.stop(t)
}

// verifyAPI posts req to POST /api/verify-passport.
func verifyAPI(t *testing.T, base string, req map[string]any) (int, []byte) {
	t.Helper()
	body, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	resp, b := httpDo(t, "POST", base+"/api/verify-passport", "application/json", body)
	return resp.StatusCode, b
}

// signedBy is a submit function for stitest.IssueDelegate that signs the
// precertificate's SCT in process with s, as entry index of its log,
// without logging it.
func signedBy(s *stict.Signer, roots *stict.Roots, index uint64) func([][]byte) ([]byte, error) {
	return func(chain [][]byte) ([]byte, error) {
		v, err := stict.ValidateChain(chain, roots, time.Now(), true)
		if err != nil {
			return nil, err
		}
		e, err := stict.NewEntry(v, uint64(time.Now().UnixMilli()))
		if err != nil {
			return nil, err
		}
		sct, err := s.SCT(e, index)
		if err != nil {
			return nil, err
		}
		return cttls.Marshal(*sct)
	}
}

// writeDelegate writes a certificate as vesper ca delegate does.
func writeDelegate(t *testing.T, dir string, c *stitest.Cert, chain ...[]byte) {
	t.Helper()
	os.MkdirAll(dir, 0o755)
	writePEMChain(t, filepath.Join(dir, "delegate.pem"), chain...)
	k, err := x509.MarshalPKCS8PrivateKey(c.Key)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "delegate.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// writeRaw writes a JWS of header and payload as given; alg HS256 is
// signed with HMAC under a made-up key, alg none not at all.
func writeRaw(t *testing.T, path, header, payload string) {
	t.Helper()
	in := base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString([]byte(payload))
	var sig []byte
	if strings.Contains(header, `"HS256"`) {
		m := hmac.New(sha256.New, []byte("a shared secret"))
		m.Write([]byte(in))
		sig = m.Sum(nil)
	}
	if err := os.WriteFile(path, []byte(in+"."+base64.RawURLEncoding.EncodeToString(sig)), 0o644); err != nil {
		t.Fatal(err)
	}
}

func read(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func pemFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pemDERs(b []byte) [][]byte {
	var ders [][]byte
	for {
		var blk *pem.Block
		if blk, b = pem.Decode(b); blk == nil {
			return ders
		}
		ders = append(ders, blk.Bytes)
	}
}
