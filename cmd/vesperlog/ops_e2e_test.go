package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// TestOperations runs a witnessed vetting log (2 of 3 witnesses, w3 down
// from the start) and checks what an operator sees: /healthz and /readyz
// (503 naming the lost quorum while w2 is down too, 200 again once it is
// back), the metrics after known submissions, one JSON log line per failed
// request and per kind of problem in a batch, and the shipped dashboard and alert
// rules against a real scrape.
func TestOperations(t *testing.T) {
	server, cli := binaries(t)
	wbin := witnessBinary(t)
	dir := t.TempDir()
	run := func(want int, args ...string) string { return runVesper(t, cli, dir, want, args...) }

	first := startServer(t, server, dir)
	vkey := first.vkey
	first.stop(t)
	urls, _, procs := startWitnesses(t, wbin, dir, vkey, "ed25519", "ed25519", "ed25519")
	stopProcess(t, procs[2])
	srv := startServer(t, server, dir, "-witness-policy", "witnesses.policy", "-publish-timeout", "3s", "-log-format", "json")

	if code, body := get(t, srv.url+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("/healthz: %d %q", code, body)
	}
	// The first start published an empty checkpoint without
	// cosignatures, and a witnessed log republishes it within 30 s: not
	// ready until then (or until a new entry's checkpoint is cosigned).
	waitReady(t, srv.url, 503, "the latest checkpoint does not meet the policy")

	// Known submissions: va logs d1, again (a duplicate), then a batch of
	// d1 under another subject (a conflict, inside a 200 batch) and d2.
	newAgent(t, cli, dir)
	waitAgents(t, srv.url, "va")
	d1, d2, d3 := strings.Repeat("A", 42)+"E", strings.Repeat("B", 42)+"E", strings.Repeat("C", 42)+"E"
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", d1, "-sub", "s1")
	waitReady(t, srv.url, 200, "")
	run(0, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", d1, "-sub", "s1")
	os.WriteFile(filepath.Join(dir, "batch.txt"), []byte(d1+" other\n"+d2+" s2\n"), 0o644)
	cmd := exec.Command(cli, "submit", "-server", srv.url, "-key", "va.jwk", "-digests", "batch.txt", "-json")
	cmd.Dir = dir
	if out, _ := cmd.CombinedOutput(); !bytes.Contains(out, []byte("409")) || strings.Count(string(out), `"receipt":"`) != 1 {
		t.Fatalf("batch with a conflicting entry: %s", out)
	}
	// A request refused before its agent is known.
	resp, err := http.Post(srv.url+"/vetting/v1/add", "application/jose", strings.NewReader("not a JWS"))
	if err != nil || resp.StatusCode != 400 {
		t.Fatalf("malformed submission: %v %v", err, resp)
	}
	resp.Body.Close()

	m := scrape(t, srv.url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vesperlog_submissions_total", []string{`agent="va"`, `log="vetting"`, `outcome="accepted"`}, 2},
		{"vesperlog_submissions_total", []string{`agent="va"`, `log="vetting"`, `outcome="duplicate"`}, 1},
		{"vesperlog_submissions_total", []string{`agent="va"`, `log="vetting"`, `outcome="conflict"`}, 1},
		{"vesperlog_submissions_total", []string{`agent=""`, `log="vetting"`, `outcome="bad_request"`}, 1},
		{"vesperlog_receipt_latency_seconds_count", []string{`log="vetting"`}, 3},
		{"vesperlog_http_requests_total", []string{`log="vetting"`, `code="400"`}, 1},
		{"vesperlog_log_published_size", []string{`log="vetting"`}, 2},
		{"vesperlog_log_quorum_met", []string{`log="vetting"`}, 1},
	} {
		if got, ok := metricValue(m, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	for _, w := range []string{"w1", "w2"} {
		if got, _ := metricValue(m, "vesperlog_witness_requests_total", `log="vetting"`, `result="cosigned"`, `witness="`+w+`"`); got < 1 {
			t.Errorf("witness %s: %v cosignatures counted", w, got)
		}
		if got, _ := metricValue(m, "vesperlog_witness_latency_seconds_count", `log="vetting"`, `witness="`+w+`"`); got < 1 {
			t.Errorf("witness %s: %v latencies recorded", w, got)
		}
	}
	if _, ok := metricValue(m, "vesperlog_log_checkpoint_age_seconds", `log="vetting"`); !ok {
		t.Error("no checkpoint age")
	}
	checkMonitoringFiles(t, m)

	// w2 goes down too: no quorum. A submission times out (pushback), and
	// /readyz says why, then recovers when w2 is back.
	w2addr := strings.TrimPrefix(urls[1], "http://")
	stopProcess(t, procs[1])
	run(1, "submit", "-server", srv.url, "-key", "va.jwk", "-digest", d3)
	waitReady(t, srv.url, 503, `vetting log: witness quorum g lost: witness w2 (`+urls[1]+`) did not answer`)
	m = scrape(t, srv.url)
	if got, _ := metricValue(m, "vesperlog_log_quorum_met", `log="vetting"`); got != 0 {
		t.Errorf("quorum_met %v with w2 down", got)
	}
	if got, _ := metricValue(m, "vesperlog_pushback_total", `log="vetting"`); got != 1 {
		t.Errorf("pushback %v, want 1", got)
	}
	if got, _ := metricValue(m, "vesperlog_witness_requests_total", `log="vetting"`, `result="unreachable"`, `witness="w2"`); got < 1 {
		t.Errorf("w2 unreachable counted %v times", got)
	}
	startWitness(t, wbin, dir, "w2", w2addr)
	waitReady(t, srv.url, 200, "")

	srv.stop(t)
	// One JSON line per failed request, and per kind of problem in a batch.
	var malformed, entry, timedOut int
	sc := bufio.NewScanner(bytes.NewReader(srv.stderr.Bytes()))
	for sc.Scan() {
		var l map[string]any
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Errorf("stderr line is not JSON: %q", sc.Text())
			continue
		}
		if l["msg"] != "request failed" {
			continue
		}
		switch {
		case l["path"] == "/vetting/v1/add" && l["status"] == 400.0 && l["agent"] == nil:
			malformed++
		case l["path"] == "/vetting/v1/add-batch" && l["status"] == 409.0 && l["first_entry"] == 0.0 && l["entries"] == 1.0 && l["agent"] == "va" && l["method"] == "POST":
			entry++
		case l["path"] == "/vetting/v1/add" && l["status"] == 503.0 && l["agent"] == "va" && strings.Contains(fmt.Sprint(l["detail"]), "quorum g"):
			timedOut++
		default:
			t.Errorf("unexpected failure line: %s", sc.Text())
		}
	}
	if malformed != 1 || entry != 1 || timedOut != 1 {
		t.Errorf("failure lines: %d malformed, %d batch entry, %d timed out; want 1 each\n%s", malformed, entry, timedOut, srv.stderr)
	}
}

// TestPprof: profiling answers on its own loopback listener only when
// -pprof is given, never on the public one, and a non-loopback -pprof is
// refused.
func TestPprof(t *testing.T) {
	server, _ := binaries(t)
	dir := t.TempDir()
	addr := freeAddr(t)
	srv := startServer(t, server, dir)
	if code, _ := get(t, srv.url+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof on the public listener: %d", code)
	}
	if _, err := http.Get("http://" + addr + "/debug/pprof/"); err == nil {
		t.Error("pprof answers without -pprof")
	}
	srv.stop(t)

	srv = startServer(t, server, dir, "-pprof", addr)
	if code, body := get(t, "http://"+addr+"/debug/pprof/"); code != 200 || !strings.Contains(body, "goroutine") {
		t.Errorf("pprof with -pprof: %d %.200s", code, body)
	}
	if code, _ := get(t, srv.url+"/debug/pprof/"); code != 404 {
		t.Errorf("pprof on the public listener: %d", code)
	}
	srv.stop(t)
	// Start-up noise: Badger and Tessera chatter only at debug.
	if s := srv.stderr.String(); strings.Contains(s, "badger") || strings.Contains(s, "lib=") {
		t.Errorf("library chatter at the default level:\n%s", s)
	}

	out := runVesper(t, server, dir, 2, "-data", "data", "-pprof", "0.0.0.0:6060")
	if !strings.Contains(out, "loopback") {
		t.Errorf("non-loopback -pprof: %s", out)
	}
}

// checkMonitoringFiles parses the shipped dashboard and alert rules, and
// checks that every vesperlog_ or tessera_ metric their expressions name is
// in the scrape m.
func checkMonitoringFiles(t *testing.T, m string) {
	t.Helper()
	names := regexp.MustCompile(`\b(?:vesperlog|tessera)_[a-z0-9_]+`)
	exported := map[string]bool{}
	for _, l := range strings.Split(m, "\n") {
		if n := names.FindString(l); n != "" && !strings.HasPrefix(l, "#") {
			exported[n] = true
		}
	}
	checkExpr := func(where, expr string) {
		if strings.TrimSpace(expr) == "" {
			t.Errorf("%s: empty expression", where)
		}
		for _, n := range names.FindAllString(expr, -1) {
			if !exported[n] {
				t.Errorf("%s: metric %s is not exported at /metrics", where, n)
			}
		}
	}

	b, err := os.ReadFile("monitoring/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil || dash.Title == "" || len(dash.Panels) == 0 {
		t.Fatalf("grafana-dashboard.json: %v (title %q, %d panels)", err, dash.Title, len(dash.Panels))
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			checkExpr("dashboard panel "+p.Title, tg.Expr)
		}
	}

	b, err = os.ReadFile("monitoring/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rules struct {
		Groups []struct {
			Name  string
			Rules []struct {
				Alert       string
				Expr        string
				For         string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rules); err != nil || len(rules.Groups) == 0 {
		t.Fatalf("alerts.yml: %v", err)
	}
	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				t.Errorf("group %s: a rule without an alert name", g.Name)
			}
			if _, err := time.ParseDuration(r.For); r.For != "" && err != nil {
				t.Errorf("alert %s: for %q: %v", r.Alert, r.For, err)
			}
			alerts[r.Alert] = true
			checkExpr("alert "+r.Alert, r.Expr)
		}
	}
	for _, want := range []string{"VesperlogCheckpointStale", "VesperlogWitnessQuorumLost", "VesperlogErrorRate", "VesperlogShedding"} {
		if !alerts[want] {
			t.Errorf("alerts.yml has no %s", want)
		}
	}
}

// waitReady waits until /readyz answers want, with a detail containing
// detail if it is a problem.
func waitReady(t *testing.T, url string, want int, detail string) {
	t.Helper()
	eventually(t, 30*time.Second, fmt.Sprintf("/readyz %d %q", want, detail), func() (bool, string) {
		code, body := get(t, url+"/readyz")
		if code != want {
			return false, fmt.Sprintf("%d %s", code, body)
		}
		if want == 200 {
			return body == "ready\n", body
		}
		var p struct{ Title, Detail string }
		if err := json.Unmarshal([]byte(body), &p); err != nil {
			return false, body
		}
		return p.Title == "Not ready" && strings.Contains(p.Detail, detail), body
	})
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	code, body := get(t, url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d", code)
	}
	return body
}

// metricValue is the value of the sample of name whose labels include
// every one of labels (as `key="value"`).
func metricValue(scrape, name string, labels ...string) (float64, bool) {
	for _, l := range strings.Split(scrape, "\n") {
		rest, ok := strings.CutPrefix(l, name+"{")
		if !ok {
			continue
		}
		set, value, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		all := true
		for _, want := range labels {
			all = all && (strings.HasPrefix(set, want+",") || strings.Contains(set, ","+want+",") || strings.HasSuffix(set, ","+want) || set == want)
		}
		if all {
			v, err := strconv.ParseFloat(value, 64)
			return v, err == nil
		}
	}
	return 0, false
}

// TestSTICTMetrics: STI-CT submissions are counted by outcome (accepted,
// duplicate, and a refused chain under its problem class) and timed to
// their SCT, labelled log="stict".
func TestSTICTMetrics(t *testing.T) {
	bin, _ := binaries(t)
	dir := t.TempDir()
	p := stictPKI(t, dir)
	srv, _ := startSTICT(t, bin, dir)
	v1 := srv.url + "/stict/v1/"
	addChain(t, v1, p.Chain(p.TN), false)
	addChain(t, v1, p.Chain(p.TN), false)
	body, _ := json.Marshal(map[string][][]byte{"chain": p.Chain(p.Untrusted)})
	if resp, b := httpDo(t, "POST", v1+"add-chain", "application/json", body); resp.StatusCode != 400 {
		t.Fatalf("untrusted chain: %d %s", resp.StatusCode, b)
	}
	m := scrape(t, srv.url)
	for _, c := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"vesperlog_submissions_total", []string{`log="stict"`, `outcome="accepted"`}, 1},
		{"vesperlog_submissions_total", []string{`log="stict"`, `outcome="duplicate"`}, 1},
		{"vesperlog_submissions_total", []string{`log="stict"`, `outcome="bad_request"`}, 1},
		{"vesperlog_receipt_latency_seconds_count", []string{`log="stict"`}, 2},
		{"vesperlog_http_requests_total", []string{`log="stict"`, `code="400"`}, 1},
		{"vesperlog_log_published_size", []string{`log="stict"`}, 1},
		{"vesperlog_pushback_total", []string{`log="stict"`}, 0},
	} {
		if got, ok := metricValue(m, c.name, c.labels...); !ok || got != c.want {
			t.Errorf("%s%v = %v (found %v), want %v", c.name, c.labels, got, ok, c.want)
		}
	}
	if _, ok := metricValue(m, "vesperlog_log_quorum_met", `log="stict"`); ok {
		t.Error("quorum_met exported for a log without witnesses")
	}
}
