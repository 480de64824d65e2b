package main

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel"
	otelprom "go.opentelemetry.io/otel/exporters/prometheus"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
)

// metricsHandler bridges Tessera's OpenTelemetry metrics (appends,
// integration, checkpoints, witness requests and failures, antispam) to a
// Prometheus registry and returns its /metrics handler. Instruments made
// before this call (Tessera makes its own at init) follow the global
// provider once it is set.
//
// Tessera's metric names carry no log label (its issue 589); with one log
// per process that is unambiguous. When the STI-CT log joins the process,
// its appender's metrics need a label here.
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
