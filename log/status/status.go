package status

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Bounds of the page's reads.
const (
	// LatestEntries is how many of each log's latest entries the page shows.
	LatestEntries = 10
	// TNScanEntries is how many of the STI-CT log's latest entries a
	// telephone-number search reads (8 entry bundles).
	TNScanEntries = 2048
	// MaxTNResults stops a telephone-number search.
	MaxTNResults = 50
)

// Reader reads a log's published state; *log.Log is one.
type Reader interface {
	// Checkpoint returns the latest signed checkpoint, or an error
	// wrapping problem.ErrNotFound if none is published yet.
	Checkpoint(ctx context.Context) ([]byte, error)
	// ReadBundle returns the entries of bundle n of the tree of that size.
	ReadBundle(ctx context.Context, n, size uint64) ([][]byte, error)
}

// Log is one log the page shows.
type Log struct {
	Reader Reader
	Origin string
	Prefix string   // where its API is served, such as "/vetting"
	VKeys  []string // its checkpoint keys
	Policy *policy.Policy
}

// Config is what the page shows and searches.
type Config struct {
	Vetting Log
	// Agents returns the registered agents (names for the entries, and
	// whom a digest search asks about).
	Agents func() *vetting.Agents
	// LookupDigest returns the index of the published entry in which
	// agent logged digest, or an error wrapping problem.ErrNotFound
	// (the vetting service's Lookup).
	LookupDigest func(ctx context.Context, agent, digest [32]byte) (uint64, error)

	STICT *Log // nil when the STI-CT log does not run
	// LookupLeafHash returns the index of the STI-CT entry with a Merkle
	// leaf hash, or an error wrapping problem.ErrNotFound (the STI-CT
	// service's IndexOf).
	LookupLeafHash func(ctx context.Context, leafHash []byte) (uint64, error)

	// Witnesses, if set, gives each witness's last answer.
	Witnesses *vlog.WitnessRecorder
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

//go:embed page.html
var pageHTML string

var pageTemplate = template.Must(template.New("page").Parse(pageHTML))

// Page is the status page, an http.Handler for GET /.
type Page struct {
	cfg  Config
	seen firstSeen // safe for concurrent use
}

// New returns the page of the logs in c.
func New(c Config) *Page {
	if c.Now == nil {
		c.Now = time.Now
	}
	return &Page{cfg: c}
}

// pageData is what the template renders.
type pageData struct {
	Generated string
	Kind, Q   string
	Kinds     []kindOption
	Error     string // why the search was refused or failed
	Search    *searchView
	Logs      []logView
}

type kindOption struct {
	Value, Label string
	Selected     bool
}

// ServeHTTP renders the page, with the results of the query in the URL
// (kind, q) if any. A query the page cannot search for answers 400 with
// the reason on the page.
func (p *Page) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	now := p.cfg.Now()
	q := r.URL.Query()
	d := pageData{Generated: now.UTC().Format(time.RFC3339), Kind: q.Get("kind"), Q: q.Get("q")}
	if d.Kind == "" {
		d.Kind = kindDigest
	}
	for _, k := range [][2]string{
		{kindDigest, "vetting digest (any agent)"},
		{kindVettingIndex, "vetting entry index"},
	} {
		d.Kinds = append(d.Kinds, kindOption{k[0], k[1], k[0] == d.Kind})
	}
	if p.cfg.STICT != nil {
		for _, k := range [][2]string{
			{kindTN, "telephone number or SPC (STI-CT)"},
			{kindLeafHash, "STI-CT leaf hash"},
			{kindSTICTIndex, "STI-CT entry index"},
		} {
			d.Kinds = append(d.Kinds, kindOption{k[0], k[1], k[0] == d.Kind})
		}
	}
	status := http.StatusOK
	if q.Has("q") || q.Has("kind") {
		res, err := p.search(r.Context(), q.Get("kind"), q.Get("q"))
		var b *badInput
		switch {
		case errors.As(err, &b):
			status, d.Error = http.StatusBadRequest, b.msg
		case err != nil:
			status = problem.For(err).Status
			d.Error = "The search failed: " + problem.For(err).Title + ". The server's log has the details."
			slog.Error("status page search", "kind", q.Get("kind"), "q", q.Get("q"), "err", err)
		}
		d.Search = res
	}
	d.Logs = append(d.Logs, p.logView(r.Context(), &p.cfg.Vetting, "vetting", "Vetting log", now))
	if p.cfg.STICT != nil {
		d.Logs = append(d.Logs, p.logView(r.Context(), p.cfg.STICT, "stict", "STI-CT log", now))
	}
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, d); err != nil {
		slog.Error("rendering the status page", "err", err)
		http.Error(w, "rendering the status page failed", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// logView is one log's section of the page.
type logView struct {
	ID, Title, Origin string
	VKeys             []string
	Err               string // why the log could not be read
	Published         bool
	Size              uint64
	Root              string
	Age, AgeNote      string
	Quorum            string
	Witnesses         []witnessView
	Vetting           bool
	Entries           []entryView
}

type witnessView struct {
	Name, URL string
	State     string // "cosigned", "refused", "no answer", "not asked yet"
	OK        bool
	Detail    string // the answer, and when
	Cosigned  string // when it cosigned the current checkpoint, if it did
}

func (p *Page) logView(ctx context.Context, l *Log, id, title string, now time.Time) logView {
	v := logView{ID: id, Title: title, Origin: l.Origin, VKeys: l.VKeys, Vetting: id == "vetting", Quorum: "none"}
	var witnessKeys []string
	var answers []vlog.WitnessAnswer
	if l.Policy != nil {
		v.Quorum = l.Policy.Quorum()
		for _, w := range l.Policy.Witnesses() {
			witnessKeys = append(witnessKeys, w.VKey)
			answers = append(answers, vlog.WitnessAnswer{Witness: w})
		}
		if p.cfg.Witnesses != nil {
			answers = p.cfg.Witnesses.Answers(l.Origin, l.Policy)
		}
	}
	cp, err := l.Reader.Checkpoint(ctx)
	var cv *checkpointView
	if err == nil {
		cv, err = parseCheckpoint(cp, l.VKeys, witnessKeys)
	}
	switch {
	case errors.Is(err, problem.ErrNotFound):
		v.Err = "No checkpoint is published yet."
	case err != nil:
		slog.Error("status page: reading checkpoint", "log", l.Origin, "err", err)
		v.Err = "The log's checkpoint could not be read; the server's log has the details."
	default:
		v.Published, v.Size, v.Root = true, cv.size, base64.StdEncoding.EncodeToString(cv.root)
		if !cv.signed.IsZero() {
			v.Age = age(now.Sub(cv.signed))
			v.AgeNote = "signed " + cv.signed.UTC().Format(time.RFC3339)
		} else {
			seen := p.seen.at(l.Origin, cv.size, cv.root, now)
			v.Age = "at least " + age(now.Sub(seen))
			v.AgeNote = "its signatures carry no time: unchanged since this server first read it at " + seen.UTC().Format(time.RFC3339)
		}
	}
	for _, a := range answers {
		wv := witnessView{Name: a.Witness.Name, URL: a.Witness.URL, OK: a.OK()}
		ago := ""
		if a.Asked {
			ago = fmt.Sprintf("%s ago (%s)", age(now.Sub(a.At)), a.At.UTC().Format(time.RFC3339))
		}
		switch {
		case !a.Asked:
			wv.State, wv.Detail = "not asked yet", "no answer recorded since this server started"
		case a.OK():
			wv.State, wv.Detail = "cosigned", ago
		case a.Status == 0:
			wv.State, wv.Detail = "no answer", ago+": "+a.Detail
		case a.Invalid:
			wv.State, wv.Detail = "bad cosignature", ago+": "+a.Detail
		default:
			wv.State, wv.Detail = "refused", fmt.Sprintf("%s: %d %s: %s", ago, a.Status, http.StatusText(a.Status), a.Detail)
		}
		if cv != nil {
			if _, k, ok := keyOf(a.Witness.VKey); ok {
				if at, ok := cv.cosigned[k.name]; ok {
					wv.Cosigned = at.UTC().Format(time.RFC3339)
				}
			}
		}
		v.Witnesses = append(v.Witnesses, wv)
	}
	if v.Published {
		err := latest(ctx, l.Reader, v.Size, LatestEntries, func(i uint64, b []byte) bool {
			v.Entries = append(v.Entries, p.decode(l, i, b))
			return true
		})
		if err != nil {
			slog.Error("status page: reading the latest entries", "log", l.Origin, "err", err)
			v.Err = "The latest entries could not be read; the server's log has the details."
		}
	}
	return v
}

// decode decodes an entry of l, one of the page's two logs.
func (p *Page) decode(l *Log, i uint64, b []byte) entryView {
	if l == &p.cfg.Vetting {
		var agents *vetting.Agents
		if p.cfg.Agents != nil {
			agents = p.cfg.Agents()
		}
		return vettingEntry(l.Prefix, agents, i, b)
	}
	return stictEntry(l.Prefix, i, b)
}
