package log

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	fnote "github.com/transparency-dev/formats/note"
	"golang.org/x/mod/sumdb/note"

	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/witness/policy"
)

func cosignerVKey(t *testing.T, name string) string {
	t.Helper()
	_, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	v, err := fnote.VKeyToCosignatureV1(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestWitnessRecorder: the recorder passes requests and answers through
// untouched, and reports per log which witness refused (with its status
// and reason) or did not answer.
func TestWitnessRecorder(t *testing.T) {
	var gotBody string
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		gotBody = string(b)
		fmt.Fprint(w, "— w1 c2ln\n")
	}))
	defer ok.Close()
	refuses := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "unknown log\nsecond line", http.StatusNotFound)
	}))
	defer refuses.Close()
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()

	_, logVKey, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w1 %s %s\nwitness w2 %s %s\nwitness w3 %s %s\nwitness w4 %s http://127.0.0.1:1\ngroup g 2 w1 w2 w3 w4\nquorum g\n",
		logVKey, cosignerVKey(t, "w1"), ok.URL, cosignerVKey(t, "w2"), refuses.URL, cosignerVKey(t, "w3"), downURL, cosignerVKey(t, "w4"))))
	if err != nil {
		t.Fatal(err)
	}
	r := NewWitnessRecorder(nil)
	c := r.Client()
	const body = "old 0\n\nexample.test/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— example.test/log c2ln\n"
	for _, u := range []string{ok.URL, refuses.URL, downURL} {
		resp, err := c.Post(u+"/add-checkpoint", "text/plain", strings.NewReader(body))
		if u == downURL {
			if err == nil {
				t.Fatal("a closed server answered")
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch u {
		case ok.URL:
			if string(b) != "— w1 c2ln\n" || gotBody != body {
				t.Errorf("passed through: answer %q, request %q", b, gotBody)
			}
		case refuses.URL:
			if string(b) != "unknown log\nsecond line\n" {
				t.Errorf("refusal passed through as %q", b)
			}
		}
	}

	rep := r.Report("example.test/log", p)
	for _, want := range []string{
		`witness w2 (` + refuses.URL + `) refused 0s ago: 404 Not Found: "unknown log"`,
		"witness w3 (" + downURL + ") did not answer 0s ago: ",
		"witness w4 (http://127.0.0.1:1) has not answered yet",
	} {
		if !strings.Contains(rep, want) {
			t.Errorf("report %q lacks %q", rep, want)
		}
	}
	if strings.Contains(rep, "w1") {
		t.Errorf("report names the witness that cosigned: %q", rep)
	}
	if other := r.Report("example.test/other", p); !strings.Contains(other, "witness w1 (") || !strings.Contains(other, "has not answered yet") {
		t.Errorf("another log's report mixes in this log's answers: %q", other)
	}

	l := &Log{origin: "example.test/log", witnesses: r}
	err = l.NotPublished(p, 30*time.Second, "receipt")
	var retry *problem.Retry
	if !errors.Is(err, problem.ErrUnwitnessed) || !errors.As(err, &retry) || retry.After != WitnessRepublishInterval ||
		!strings.Contains(err.Error(), "cosigned by quorum g within 30s: witness w2") ||
		!strings.HasSuffix(err.Error(), "gets its receipt") {
		t.Errorf("NotPublished = %v", err)
	}
	if r := r.Report("example.test/log", nil); !strings.Contains(r, "witness "+refuses.URL+" refused") || strings.Contains(r, ok.URL) {
		t.Errorf("Report by URL = %q", r)
	}
	none, err := policy.ForLog(logVKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.NotPublished(none, time.Second, "SCT"); strings.Contains(err.Error(), "witness") || !errors.Is(err, problem.ErrOverloaded) {
		t.Errorf("NotPublished without witnesses blames them: %v", err)
	}
}

func TestAnswerDetail(t *testing.T) {
	for in, want := range map[string]string{
		`{"type":"about:blank","title":"Not Found","status":404,"detail":"unknown log: example.test/stict"}`: "unknown log: example.test/stict",
		`{"title":"Forbidden","status":403}`: "Forbidden",
		"no signature verifies\nmore":        "no signature verifies",
		"{not json\n":                        "{not json",
		"bad \xff utf-8":                     "bad ? utf-8",
	} {
		if got := answerDetail([]byte(in)); got != want {
			t.Errorf("answerDetail(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestWitnessRecorderCanceled: a request Tessera cancels (the quorum was
// met without this witness) is not an answer: the witness keeps its last
// one, and is not reported as unreachable.
func TestWitnessRecorderCanceled(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	_, logVKey, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", logVKey, cosignerVKey(t, "w1"), slow.URL)))
	if err != nil {
		t.Fatal(err)
	}
	r := NewWitnessRecorder(nil)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "POST", slow.URL+"/add-checkpoint", strings.NewReader("old 0\n\nexample.test/log\n1\nAAAA\n"))
	time.AfterFunc(50*time.Millisecond, cancel)
	if _, err := r.Client().Do(req); err == nil {
		t.Fatal("a canceled request succeeded")
	}
	if rep := r.Report("example.test/log", p); !strings.Contains(rep, "has not answered yet") {
		t.Errorf("report after a canceled request: %q", rep)
	}
}

// TestWitnessRecorderVerifies: a 200 counts as a cosignature only if it
// verifies under the witness's key in the policy, as Tessera checks.
func TestWitnessRecorderVerifies(t *testing.T) {
	logSkey, logVKey, err := note.GenerateKey(rand.Reader, "example.test/log")
	if err != nil {
		t.Fatal(err)
	}
	logSigner, _ := note.NewSigner(logSkey)
	wSkey, wVKey, err := note.GenerateKey(rand.Reader, "w1")
	if err != nil {
		t.Fatal(err)
	}
	cosigner, err := fnote.NewSignerForCosignatureV1(wSkey)
	if err != nil {
		t.Fatal(err)
	}
	wCosigVKey, err := fnote.VKeyToCosignatureV1(wVKey)
	if err != nil {
		t.Fatal(err)
	}
	good := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		_, cp, _ := strings.Cut(string(b), "\n\n")
		text, _, _ := strings.Cut(cp, "\n\n")
		signed, err := note.Sign(&note.Note{Text: text + "\n"}, cosigner)
		if err != nil {
			t.Error(err)
		}
		fmt.Fprint(w, strings.TrimPrefix(string(signed), text+"\n\n"))
	}))
	defer good.Close()
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "— w1 c2ln\n")
	}))
	defer bad.Close()
	signedCP, err := note.Sign(&note.Note{Text: "example.test/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"}, logSigner)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, url string
		ok        bool
	}{{"good", good.URL, true}, {"bad", bad.URL, false}} {
		t.Run(c.name, func(t *testing.T) {
			p, err := policy.Parse([]byte(fmt.Sprintf("log %s\nwitness w1 %s %s\nquorum w1\n", logVKey, wCosigVKey, c.url)))
			if err != nil {
				t.Fatal(err)
			}
			r := NewWitnessRecorder(nil)
			r.Observe(nil, "example.test/log", "log", p)
			resp, err := r.Client().Post(c.url+"/add-checkpoint", "text/plain", strings.NewReader("old 0\n\n"+string(signedCP)))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			a := r.Answers("example.test/log", p)[0]
			if a.OK() != c.ok {
				t.Fatalf("answer %+v: OK %v, want %v", a, a.OK(), c.ok)
			}
			if rep := r.Report("example.test/log", p); !c.ok && !strings.Contains(rep, "not with a cosignature that verifies") {
				t.Errorf("report: %q", rep)
			}
		})
	}
}
