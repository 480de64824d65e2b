package main

import (
	"context"
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	"go.opentelemetry.io/otel/metric"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"

	vlog "github.com/vesperlog/vesperlog/log"
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
