package main

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
)

// metricsHandler bridges Tessera's OpenTelemetry metrics (appends,
// integration, checkpoints, witness requests and failures, antispam) to a
// Prometheus registry and returns its /metrics handler. Instruments made
// before this call (Tessera makes its own at init) follow the global
// provider once it is set.
//
// Tessera's metric names carry no log label (its issue 589): with the
// STI-CT log running too, its gauges mix both logs. registerLogGauges adds
// labelled ones for what matters most to an operator.
func metricsHandler() (http.Handler, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	exp, err := otelprom.New(otelprom.WithRegisterer(reg))
	if err != nil {
		return nil, fmt.Errorf("metrics exporter: %w", err)
	}
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(exp)))
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{}), nil
}

// registerLogGauges adds per-log gauges that Tessera's unlabelled ones
// cannot give once two logs share the process: each log's integrated and
// published tree sizes, labelled log="<name>".
func registerLogGauges(logs map[string]*vlog.Log) error {
	m := otel.Meter("github.com/vesperlog/vesperlog")
	integrated, err := m.Int64ObservableGauge("vesperlog.log.integrated_size",
		metric.WithDescription("Size of the log's integrated tree (not necessarily published)"), metric.WithUnit("{entry}"))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	published, err := m.Int64ObservableGauge("vesperlog.log.published_size",
		metric.WithDescription("Size of the log's latest published checkpoint"), metric.WithUnit("{entry}"))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for name, l := range logs {
			attrs := metric.WithAttributes(attribute.String("log", name))
			if n, err := l.Reader().IntegratedSize(ctx); err == nil {
				o.ObserveInt64(integrated, int64(n), attrs)
			}
			if cp, err := l.Checkpoint(ctx); err == nil {
				if n, err := vlog.CheckpointSize(cp); err == nil {
					o.ObserveInt64(published, int64(n), attrs)
				}
			}
		}
		return nil
	}, integrated, published)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// registerHealthGauges adds each log's checkpoint age (seconds since this
// process saw its published checkpoint change, or started) and, for a log
// with a witness quorum, whether the quorum was met recently (as /readyz
// judges it).
func registerHealthGauges(r *readiness) error {
	m := otel.Meter("github.com/vesperlog/vesperlog")
	age, err := m.Float64ObservableGauge("vesperlog.log.checkpoint_age",
		metric.WithDescription("Seconds since this process saw the log's published checkpoint change (or started)"), metric.WithUnit("s"))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	quorum, err := m.Int64ObservableGauge("vesperlog.log.quorum_met",
		metric.WithDescription("1 if the log's witness quorum cosigned recently, else 0 (logs with a witness quorum only)"))
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	_, err = m.RegisterCallback(func(ctx context.Context, o metric.Observer) error {
		for _, l := range r.watch.logs {
			cp, _, _, a, _ := l.snapshot()
			if cp == nil {
				continue
			}
			attrs := metric.WithAttributes(attribute.String("log", l.name))
			o.ObserveFloat64(age, a.Seconds(), attrs)
			if witnessed(l.policy) {
				met := int64(0)
				if r.quorum(l, cp) == "" {
					met = 1
				}
				o.ObserveInt64(quorum, met, attrs)
			}
		}
		return nil
	}, age, quorum)
	if err != nil {
		return fmt.Errorf("metrics: %w", err)
	}
	return nil
}

// httpMetrics counts the answers of the logs' APIs, for error rates, and
// the pushback among them: answers carrying Retry-After (503 overload, or
// a 200 batch with overloaded entries).
type httpMetrics struct {
	requests metric.Int64Counter
	pushback metric.Int64Counter
	// prefixes maps each log's path prefix to its name: the log label
	// comes from this fixed set, never from the request path itself.
	prefixes map[string]string
	// The attribute sets of the answers, built once each: building and
	// hashing one per request was 2% of a submission's CPU. Both are
	// bounded: logs come from prefixes, codes are three digits.
	answers  sync.Map // answerKey → metric.AddOption
	pushedBy map[string]metric.AddOption
}

type answerKey struct {
	log  string
	code int
}

// answerAttrs returns the attributes of an answer of log with code.
func (h *httpMetrics) answerAttrs(log string, code int) metric.AddOption {
	k := answerKey{log, code}
	if o, ok := h.answers.Load(k); ok {
		return o.(metric.AddOption)
	}
	o, _ := h.answers.LoadOrStore(k, metric.WithAttributeSet(attribute.NewSet(attribute.String("log", log), attribute.String("code", strconv.Itoa(code)))))
	return o.(metric.AddOption)
}

func newHTTPMetrics(prefixes map[string]string) (*httpMetrics, error) {
	m := otel.Meter("github.com/vesperlog/vesperlog")
	requests, err := m.Int64Counter("vesperlog.http.requests",
		metric.WithDescription("HTTP answers, by log (or \"other\") and status code"), metric.WithUnit("{request}"))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	pushback, err := m.Int64Counter("vesperlog.pushback",
		metric.WithDescription("Answers that asked the client to retry later (Retry-After): the log pushed back"), metric.WithUnit("{request}"))
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	pushedBy := map[string]metric.AddOption{}
	for _, name := range prefixes {
		pushedBy[name] = metric.WithAttributeSet(attribute.NewSet(attribute.String("log", name)))
		// From zero, so that a rate is defined before the first pushback.
		pushback.Add(context.Background(), 0, pushedBy[name])
	}
	return &httpMetrics{requests: requests, pushback: pushback, prefixes: prefixes, pushedBy: pushedBy}, nil
}

// wrap counts each answer of next, and gives each request the slot in
// which the submission code notes its agent for the failure log line.
func (h *httpMetrics) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(sw, r.WithContext(problem.WithAgentSlot(r.Context())))
		log := "other"
		for prefix, name := range h.prefixes {
			if strings.HasPrefix(r.URL.Path, prefix+"/") {
				log = name
			}
		}
		h.requests.Add(r.Context(), 1, h.answerAttrs(log, sw.status))
		if log != "other" && sw.Header().Get("Retry-After") != "" {
			h.pushback.Add(r.Context(), 1, h.pushedBy[log])
		}
	})
}

// statusWriter remembers the status a handler wrote.
type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the real writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
