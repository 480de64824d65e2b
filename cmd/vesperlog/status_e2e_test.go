package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

// The status page at / of the real binary: plain HTTP, then a real
// headless Chromium that searches it as a person would.

// hostileSubject is logged as a vetting subject and as a certificate's
// CN: the page must show it as text, never run it.
const hostileSubject = `<script>alert(1)</script>`

// statusLogs is a running vesperlog with both logs and an entry in each:
// a digest with a hostile subject, logged by agent example-va, and the
// test PKI's TN certificate (12025550100+100, 18001231234) followed by a
// TN certificate whose CN is hostile.
type statusLogs struct {
	srv      *running
	digest   string // kyc_data_hash of vetting entry 0
	leafHash string // hex, of STI-CT entry 0
}

func startStatusLogs(t *testing.T) *statusLogs {
	t.Helper()
	bin, cli := binaries(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	srv, _ := startSTICT(t, bin, dir)

	runVesper(t, cli, dir, 0, "keygen", "agent", "-out", "va.jwk")
	runVesper(t, cli, dir, 0, "agents", "add", "-agents", "data/agents.json", "-name", "example-va", "-key", "va.pub.jwk")
	waitAgents(t, srv.url, "example-va")
	os.WriteFile(filepath.Join(dir, "kyc.json"), []byte(`{"legal_name":"Business 42 LLC"}`), 0o644)
	digest := strings.TrimSpace(runVesper(t, cli, dir, 0, "kyc-hash", "-in", "kyc.json", "-out", "commitment.json"))
	if out := runVesper(t, cli, dir, 0, "submit", "-server", srv.url, "-key", "va.jwk", "-commitment", "commitment.json", "-sub", hostileSubject); !strings.Contains(out, "logged at index 0") {
		t.Fatalf("submit: %s", out)
	}

	sct := addChain(t, srv.url+"/stict/v1/", p.Chain(p.TN), false)
	hostile, err := p.NewTN(hostileSubject)
	if err != nil {
		t.Fatal(err)
	}
	addChain(t, srv.url+"/stict/v1/", p.Chain(hostile), false)
	return &statusLogs{srv: srv, digest: digest, leafHash: hex.EncodeToString(leafHash(t, x509Leaf(p.TN.DER, sct)))}
}

func (s *statusLogs) get(t *testing.T, query url.Values) (int, string) {
	t.Helper()
	u := s.srv.url + "/"
	if query != nil {
		u += "?" + query.Encode()
	}
	resp, body := httpDo(t, "GET", u, "", nil)
	if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("GET %s: Content-Type %q", u, ct)
	}
	return resp.StatusCode, string(body)
}

// TestStatusPageHTTP reads the page and searches it over plain HTTP: each
// kind of search finds its entry and links to it and to a receipt that
// the server then serves; bad input is a 400 page; hostile subjects are
// escaped; other paths are still the API's 404 problem.
func TestStatusPageHTTP(t *testing.T) {
	s := startStatusLogs(t)
	code, body := s.get(t, nil)
	if code != 200 {
		t.Fatalf("GET /: %d", code)
	}
	for _, want := range []string{"e2e.test/vetting", "/stict", "example-va", "12025550100–12025550199 (100 numbers)", "&lt;script&gt;alert(1)&lt;/script&gt;"} {
		if !strings.Contains(body, want) {
			t.Errorf("GET / lacks %q", want)
		}
	}
	if strings.Contains(body, "<script") {
		t.Errorf("GET / has a hostile subject unescaped")
	}

	for _, tc := range []struct {
		kind, q string
		code    int
		want    []string
	}{
		{"digest", s.digest, 200, []string{"1 entry for digest " + s.digest, `href="/vetting/v1/receipt/0"`}},
		{"vetting-index", "0", 200, []string{"Entry 0 of the vetting log.", s.digest}},
		{"tn", "12025550142", 200, []string{"2 certificates whose TNAuthList covers 12025550142", `href="/stict/v1/receipt/0"`, `href="/stict/v1/receipt/1"`}},
		{"stict-index", "1", 200, []string{"Entry 1 of the STI-CT log.", `CN=\&lt;script\&gt;alert(1)\&lt;/script\&gt;`}},
		{"digest", "AAAA", 400, []string{"is not a vetting digest"}},
		{"tn", "555-CALL-NOW", 400, []string{"is not a telephone number"}},
		{"stict-index", "x", 400, []string{"is not an entry index"}},
	} {
		code, body := s.get(t, url.Values{"kind": {tc.kind}, "q": {tc.q}})
		if code != tc.code {
			t.Errorf("search %s %q: %d, want %d", tc.kind, tc.q, code, tc.code)
		}
		for _, w := range tc.want {
			if !strings.Contains(body, w) {
				t.Errorf("search %s %q: page lacks %q", tc.kind, tc.q, w)
			}
		}
	}
	// The leaf-hash index lags the log by a few seconds.
	eventually(t, 20*time.Second, "leaf-hash search", func() (bool, string) {
		code, body := s.get(t, url.Values{"kind": {"leaf-hash"}, "q": {s.leafHash}})
		return code == 200 && strings.Contains(body, "is entry 0 of the STI-CT log"), fmt.Sprint(code)
	})
	// The links the results give work.
	for _, path := range []string{"/vetting/v1/receipt/0", "/stict/v1/receipt/0"} {
		httpGet200(t, s.srv.url+path)
	}
	if resp, body := httpDo(t, "GET", s.srv.url+"/no/such/page", "", nil); resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/problem+json" {
		t.Errorf("GET /no/such/page: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	if resp, _ := httpDo(t, "POST", s.srv.url+"/", "text/plain", nil); resp.StatusCode == 200 {
		t.Errorf("POST /: 200")
	}
}

// chromium returns the path of the Chromium to drive: skipped when it is
// missing, except under CI=true, where .ci/run has installed it.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a browser")
	}
	p, err := exec.LookPath("chromium")
	if err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium is not installed (CI=true: .ci/run installs it)")
	}
	t.Skip("chromium is not installed; apt-get install chromium (.ci/run does) to run the browser test")
	return ""
}

// artifacts is where the browser test keeps its screenshots:
// $VESPER_ARTIFACTS, else a temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("VESPER_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestStatusPageBrowser loads the page in headless Chromium, reaches the
// search with the keyboard, searches by digest and by telephone number,
// follows a result's link, checks that hostile subjects show as text and
// run nothing, and saves screenshots.
func TestStatusPageBrowser(t *testing.T) {
	chrome := chromium(t)
	s := startStatusLogs(t)
	out := artifacts(t)

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.NoSandbox, // as root in a container
		chromedp.WindowSize(1280, 900),
		// Nothing but the server under test: no name resolves except
		// 127.0.0.1, and no background fetches.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-domain-reliability", true),
	)
	// The timeout bounds the whole browser, which it stops.
	tctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	actx, cancel := chromedp.NewExecAllocator(tctx, opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer cancel()

	// A script run by a hostile subject would open a dialog.
	var dialogs atomic.Int32
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range events {
			if err != nil {
				return
			}
			dialogs.Add(1)
			t.Logf("dialog: %q", ev.Message)
			_, _ = chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	}()
	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(out, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot: %s", p)
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return v
	}
	eval := func(js string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("%s: %v", js, err)
		}
		return v
	}

	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.srv.url+"/"),
		chromedp.WaitVisible(chromedp.ID("q")),
		// Keyboard only: the first Tab reaches the skip link.
		chromedp.KeyEvent(kb.Tab),
	); err != nil {
		t.Fatalf("loading the page: %v", err)
	}
	if title, lang, focused := eval("document.title"), eval("document.documentElement.lang"), eval("document.activeElement.textContent"); title != "vesperlog status" || lang != "en" || focused != "Skip to search" {
		t.Fatalf("page: title %q, lang %q, first Tab on %q", title, lang, focused)
	}
	// Every form control has a label.
	if unlabelled := eval(`[...document.querySelectorAll("input, select")].filter(e => !e.labels || e.labels.length === 0).map(e => e.id || e.name).join(",")`); unlabelled != "" {
		t.Errorf("form controls without a label: %s", unlabelled)
	}

	// Search by digest, the default kind: type it and press Enter.
	if err := chromedp.Do(ctx,
		chromedp.Focus(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), s.digest+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("results-summary")),
	); err != nil {
		t.Fatalf("searching by digest: %v", err)
	}
	shot("status-digest.png")
	if summary, table := text("#results-summary"), text("#results table"); !strings.Contains(summary, "1 entry for digest "+s.digest) || !strings.Contains(table, "example-va") || !strings.Contains(table, hostileSubject) {
		t.Errorf("digest search: summary %q, table %q", summary, table)
	}
	if loc := eval("location.href"); !strings.Contains(loc, "kind=digest") || !strings.Contains(loc, "q="+s.digest) {
		t.Errorf("digest search URL %q is not shareable", loc)
	}

	// Search by telephone number, written as people write it.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("kind"), "tn"),
		chromedp.Clear(chromedp.ID("q")),
		chromedp.SendKeys(chromedp.ID("q"), "+1 (202) 555-0142"+kb.Enter),
		chromedp.WaitVisible(chromedp.ID("results-note")),
	); err != nil {
		t.Fatalf("searching by telephone number: %v", err)
	}
	shot("status-tn.png")
	if summary, table := text("#results-summary"), text("#results table"); !strings.Contains(summary, "2 certificates whose TNAuthList covers 12025550142") ||
		!strings.Contains(table, "12025550100–12025550199 (100 numbers)") || !strings.Contains(table, "CN=STI TN certificate") || !strings.Contains(table, `CN=\<script\>alert(1)\</script\>`) {
		t.Errorf("telephone-number search: summary %q, table %q", summary, table)
	}

	// Follow the oldest result's entry link.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#results a[href="/?kind=stict-index&q=0"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#results a[href="/stict/v1/receipt/0"]`)),
	); err != nil {
		t.Fatalf("following the entry link: %v", err)
	}
	if summary := text("#results-summary"); summary != "Entry 0 of the STI-CT log." {
		t.Errorf("entry link: %q", summary)
	}

	// Bad input: the reason, on the page.
	if err := chromedp.Do(ctx,
		chromedp.Navigate(s.srv.url+"/?kind=digest&q=not-a-digest"),
		chromedp.WaitVisible(chromedp.ID("search-error")),
	); err != nil {
		t.Fatalf("bad input: %v", err)
	}
	shot("status-bad-input.png")
	if alert := text("#search-error"); !strings.Contains(alert, `"not-a-digest" is not a vetting digest`) {
		t.Errorf("bad input: %q", alert)
	}
	if n := dialogs.Load(); n != 0 {
		t.Errorf("the page ran a script: %d dialogs", n)
	}
}

// TestStatusPageWitnesses: with a 2-of-3 witness policy and w3 down, the
// page shows w1 and w2 cosigning the current checkpoint, and w3 not
// answering, with the reason. Tessera asks the witnesses when the tree
// grows, so the test logs an entry.
func TestStatusPageWitnesses(t *testing.T) {
	bin, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	first := startServer(t, bin, dir)
	first.stop(t)
	urls, _, procs := startWitnesses(t, wbin, dir, first.vkey, "ed25519", "ed25519", "ed25519")
	stopProcess(t, procs[2])
	srv := startServer(t, bin, dir, "-witness-policy", "witnesses.policy")
	s := &statusLogs{srv: srv}
	newAgent(t, cli, dir)
	waitAgents(t, srv.url, "va")
	runVesper(t, cli, dir, 0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", strings.Repeat("A", 42)+"E")

	eventually(t, 20*time.Second, "the page's witness rows", func() (bool, string) {
		code, body := s.get(t, nil)
		rows := body[strings.Index(body, "<caption>"):]
		for _, want := range []string{
			"w1<br><code>" + urls[0] + "</code></th><td class=\"ok\">cosigned</td>",
			"w2<br><code>" + urls[1] + "</code></th><td class=\"ok\">cosigned</td>",
			"w3<br><code>" + urls[2] + "</code></th><td class=\"bad\">no answer</td>",
			"connection refused",
			"yes, at ",
			"Witness quorum</dt><dd>g</dd>",
		} {
			if code != 200 || !strings.Contains(body, want) {
				return false, fmt.Sprintf("%d, lacks %q in %.2000s", code, want, rows)
			}
		}
		// w3 has not cosigned the current checkpoint; w1 and w2 have.
		return strings.Count(rows, "yes, at ") == 2, rows
	})
}
