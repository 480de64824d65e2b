package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// startAgent starts `vesper agent serve` and returns its URL.
func startAgent(t *testing.T, cli, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(cli, append([]string{"agent", "serve", "-addr", "127.0.0.1:0"}, args...)...)
	cmd.Dir = dir
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("agent stderr:\n%s", stderr.String())
		}
	})
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			select {
			case line <- sc.Text():
			default:
			}
		}
	}()
	select {
	case l := <-line:
		m := regexp.MustCompile(`listening on (\S+)`).FindStringSubmatch(l)
		if m == nil {
			t.Fatalf("agent said %q", l)
		}
		return m[1]
	case <-time.After(20 * time.Second):
		t.Fatalf("agent did not start: %s", stderr.String())
	}
	return ""
}

func postJSON(t *testing.T, url, bearer string, body any) (int, []byte) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

// TestTokensEndToEnd: a VA registered with the log enrolls an entity; the
// entity asks the reference agent for a token with key binding; it presents
// two claims to a verifier, who checks the token offline; the log's
// verify-vetted-info API checks the token and both receipt shapes.
func TestTokensEndToEnd(t *testing.T) {
	server, cli := binaries(t)
	dir := t.TempDir()
	srv := startServer(t, server, dir)
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	run(0, "keygen", "agent", "-out", "va.jwk")
	run(0, "agents", "add", "-agents", "data/agents.json", "-name", "va", "-key", "va.pub.jwk", "-iss", "https://va.example")
	run(0, "trust", "-server", srv.url, "-out", "trust.json")
	fetch(t, srv.url+"/vetting/v1/agents", filepath.Join(dir, "issuers.json"))

	os.WriteFile(filepath.Join(dir, "kyc.json"), []byte(`{"legal_name":"Business 42 LLC","ein":"123456789"}`), 0o644)
	run(0, "kyc-hash", "-in", "kyc.json", "-out", "commitment.json")
	os.WriteFile(filepath.Join(dir, "claims.json"), []byte(draftClaimsJSON), 0o644)
	os.WriteFile(filepath.Join(dir, "frame.json"), []byte(draftFrameJSON), 0o644)
	bearer := strings.TrimSpace(run(0, "agent", "enroll", "-entities", "entities", "-id", "Business_42", "-commitment", "commitment.json", "-claims", "claims.json", "-frame", "frame.json"))
	agentURL := startAgent(t, cli, dir, "-server", srv.url, "-key", "va.jwk", "-iss", "https://va.example", "-entities", "entities", "-trust", "trust.json")

	run(0, "keygen", "holder", "-out", "holder.jwk")
	holderPub, _ := os.ReadFile(filepath.Join(dir, "holder.pub.jwk"))
	req := map[string]any{"entity_id": "Business_42", "key_binding": true, "public_key_jwk": json.RawMessage(holderPub)}
	if code, body := postJSON(t, agentURL+"/api/request-vetting-token", "wrong", req); code != 401 {
		t.Fatalf("wrong bearer: %d %s", code, body)
	}
	if code, body := postJSON(t, agentURL+"/api/request-vetting-token", bearer, map[string]any{"entity_id": "Nobody"}); code != 401 {
		t.Fatalf("unknown entity: %d %s", code, body)
	}
	code, body := postJSON(t, agentURL+"/api/request-vetting-token", bearer, req)
	if code != 200 {
		t.Fatalf("request-vetting-token: %d %s", code, body)
	}
	var res struct {
		Status              string          `json:"status"`
		VettingToken        string          `json:"vetting_token"`
		TransparencyReceipt json.RawMessage `json:"transparency_receipt"`
	}
	json.Unmarshal(body, &res)
	os.WriteFile(filepath.Join(dir, "token.sdjwt"), []byte(res.VettingToken), 0o644)

	// A second request reuses the logged entry.
	_, body2 := postJSON(t, agentURL+"/api/request-vetting-token", bearer, req)
	var res2 struct {
		TransparencyReceipt struct {
			LogEntryID string `json:"log_entry_id"`
		} `json:"transparency_receipt"`
	}
	json.Unmarshal(body2, &res2)
	if res2.TransparencyReceipt.LogEntryID != "e2e.test/vetting/0" {
		t.Fatalf("second token's entry: %s", body2)
	}

	// The holder presents two claims, bound to the verifier's nonce.
	list := run(0, "token", "present", "-token", "token.sdjwt", "-list")
	if !strings.Contains(list, "contact_email") || !strings.Contains(list, "rcd.0") {
		t.Fatalf("disclosable: %s", list)
	}
	run(0, "token", "present", "-token", "token.sdjwt", "-disclose", "contact_given_name,address", "-holder-key", "holder.jwk", "-aud", "https://verifier.example", "-nonce", "n-123", "-out", "presentation.txt")
	out := run(0, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "-aud", "https://verifier.example", "-nonce", "n-123", "-json", "presentation.txt")
	var v struct {
		Valid    bool           `json:"valid"`
		KeyBound bool           `json:"key_bound"`
		Claims   map[string]any `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if !v.Valid || !v.KeyBound || v.Claims["contact_given_name"] != "John" || v.Claims["contact_email"] != nil || v.Claims["address"] == nil {
		t.Fatalf("verified: %s", out)
	}
	run(1, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "-aud", "https://verifier.example", "-nonce", "n-999", "presentation.txt")
	run(1, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "presentation.txt") // KB not expected

	// The VA can also issue with the command line from a receipt.
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", "Business_42", "-out", "receipt.jwt")
	run(0, "token", "issue", "-key", "va.jwk", "-iss", "https://va.example", "-sub", "Business_42", "-commitment", "commitment.json", "-receipt", "receipt.jwt", "-claims", "claims.json", "-frame", "frame.json", "-out", "token2.sdjwt")
	run(0, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "token2.sdjwt")
	run(1, "token", "issue", "-key", "va.jwk", "-iss", "https://va.example", "-sub", "Business_43", "-commitment", "commitment.json", "-receipt", "receipt.jwt", "-out", "token3.sdjwt")
	run(1, "token", "verify", "-trust", "trust.json", "-issuers", "issuers.json", "token3.sdjwt") // the entry is about Business_42

	// The log's verify-vetted-info API.
	rc, _ := os.ReadFile(filepath.Join(dir, "receipt.jwt"))
	plain, _ := os.ReadFile(filepath.Join(dir, "token2.sdjwt"))
	for _, c := range []struct {
		name string
		body any
		code int
	}{
		{"whole token", map[string]any{"vetting_token": strings.TrimSpace(string(plain))}, 200},
		{"receipt JWS", map[string]any{"transparency_receipt": strings.TrimSpace(string(rc))}, 200},
		{"draft receipt object", map[string]any{"transparency_receipt": res.TransparencyReceipt}, 200},
		{"token and its receipt", map[string]any{"vetting_token": strings.TrimSpace(string(plain)), "transparency_receipt": strings.TrimSpace(string(rc))}, 200},
		{"draft object with another hash", map[string]any{"transparency_receipt": json.RawMessage(bytes.Replace(res.TransparencyReceipt, []byte(`"hash":"`), []byte(`"hash":"A`), 1))}, 422},
		{"tampered receipt", map[string]any{"transparency_receipt": strings.Replace(strings.TrimSpace(string(rc)), ".", ".A", 1)}, 422},
		{"token with key binding (not expected here)", map[string]any{"vetting_token": readFile(t, dir, "presentation.txt")}, 422},
		{"nothing", map[string]any{}, 400},
		{"unknown member", map[string]any{"receipt": "x"}, 400},
	} {
		code, body := postJSON(t, srv.url+"/api/verify-vetted-info", "", c.body)
		if code != c.code {
			t.Errorf("%s: %d %s, want %d", c.name, code, body, c.code)
		}
		if code == 200 && !strings.Contains(string(body), `"status":"success"`) {
			t.Errorf("%s: %s", c.name, body)
		}
	}

	// This server runs no STI-CT log, so it has no STI trust to verify
	// PASSporTs with: a 404 problem that says so.
	resp, body := httpDo(t, "POST", srv.url+"/api/verify-passport", "application/json", []byte(`{"passport":"x"}`))
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" || !strings.Contains(string(body), "runs no STI-CT log") {
		t.Errorf("verify-passport without an STI-CT log: %d %s %s; want a 404 problem", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
}

func readFile(t *testing.T, dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// The draft's example claim set and the issuer's decisions (see
// receipts/vesper's tests).
const draftClaimsJSON = `{
  "telephone_number_rtu": ["+18001231234", "+18881231234"],
  "rcd": [{"nam": "Business_42", "icn": "https://example.com/logo.png"}],
  "business_ids": [{"EIN": "123456789"}],
  "address": {"street_address": "123 Main St", "locality": "Anytown", "region": "Anystate", "country": "US"},
  "contact_given_name": "John",
  "contact_family_name": "Doe",
  "contact_email": "johndoe@example.com",
  "contact_phone_number": "+12025550101"
}`

const draftFrameJSON = `{
  "_sd": ["address", "contact_given_name", "contact_family_name", "contact_email", "contact_phone_number"],
  "_decoys": 3,
  "rcd": {"_sd": [0]},
  "business_ids": {"_sd": [0]}
}`
