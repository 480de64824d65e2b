package log

import (
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// Outcomes of a submission that is not refused; a refused one is counted
// under its problem.Class.
const (
	OutcomeAccepted  = "accepted"
	OutcomeDuplicate = "duplicate"
)

// latencyBuckets (seconds) span a receipt's wait: a batch age and a
// checkpoint interval at best, a witness timeout or publish timeout at worst.
var latencyBuckets = []float64{0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 120}

// Metrics are the submission and witness instruments the logs' servers
// and the WitnessRecorder report to. Every label value comes from the
// configuration (log and witness names, registered agents) or a fixed set
// (outcomes), never from a request. A nil *Metrics records nothing.
//
// Call pattern: m, err := log.NewMetrics(otel.Meter(...)); pass m to the
// servers' Config.Metrics and to WitnessRecorder.Observe.
type Metrics struct {
	submissions    metric.Int64Counter
	receiptLatency metric.Float64Histogram
	shed           metric.Int64Counter
	cosignatures   metric.Int64Counter
	cosignLatency  metric.Float64Histogram
}

// NewMetrics makes the instruments on m.
func NewMetrics(m metric.Meter) (*Metrics, error) {
	var x Metrics
	var err error
	if x.submissions, err = m.Int64Counter("vesperlog.submissions",
		metric.WithDescription("Statements (vetting) and chains (STI-CT) submitted, by log, outcome (accepted, duplicate, or the problem class that refused it) and agent"),
		metric.WithUnit("{submission}")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if x.receiptLatency, err = m.Float64Histogram("vesperlog.receipt.latency",
		metric.WithDescription("Time from a submission's arrival to its receipt (or SCT), by log"),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if x.shed, err = m.Int64Counter("vesperlog.admission.shed",
		metric.WithDescription("Submission and verification requests refused with 503 before they were checked, because the server had its bound of entries in flight (-max-inflight), by log"),
		metric.WithUnit("{request}")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if x.cosignatures, err = m.Int64Counter("vesperlog.witness.requests",
		metric.WithDescription("add-checkpoint requests to each witness, by log, witness and result (cosigned, refused, unreachable)"),
		metric.WithUnit("{request}")); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	if x.cosignLatency, err = m.Float64Histogram("vesperlog.witness.latency",
		metric.WithDescription("Time a witness took to answer add-checkpoint, by log and witness"),
		metric.WithUnit("s"), metric.WithExplicitBucketBoundaries(latencyBuckets...)); err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	return &x, nil
}

// Submission counts one submission to log with its outcome; agent is the
// registered agent's name, or "" when unknown (STI-CT, or a request refused
// before its signer was known).
func (m *Metrics) Submission(ctx context.Context, log, outcome, agent string) {
	if m == nil {
		return
	}
	m.submissions.Add(ctx, 1, metric.WithAttributes(
		attribute.String("log", log), attribute.String("outcome", outcome), attribute.String("agent", agent)))
}

// ReceiptLatency records the time from a submission's arrival to its receipt.
func (m *Metrics) ReceiptLatency(ctx context.Context, log string, d time.Duration) {
	if m == nil {
		return
	}
	m.receiptLatency.Record(ctx, d.Seconds(), metric.WithAttributes(attribute.String("log", log)))
}

// Serving starts the per-log counters that a rate is taken of at zero, so
// that the rate is defined before the first event: call it once with the
// names of the logs served.
func (m *Metrics) Serving(logs ...string) {
	if m == nil {
		return
	}
	for _, l := range logs {
		m.shed.Add(context.Background(), 0, metric.WithAttributes(attribute.String("log", l)))
	}
}

// Shed counts one submission request to log refused by an Admission.
func (m *Metrics) Shed(ctx context.Context, log string) {
	if m == nil {
		return
	}
	m.shed.Add(ctx, 1, metric.WithAttributes(attribute.String("log", log)))
}

func (m *Metrics) witnessAnswer(log, witness, result string, d time.Duration) {
	if m == nil {
		return
	}
	attrs := []attribute.KeyValue{attribute.String("log", log), attribute.String("witness", witness)}
	m.cosignatures.Add(context.Background(), 1, metric.WithAttributes(append(attrs, attribute.String("result", result))...))
	if result != witnessUnreachable {
		m.cosignLatency.Record(context.Background(), d.Seconds(), metric.WithAttributes(attrs...))
	}
}

// Results of a witness request, for Metrics.
const (
	witnessCosigned    = "cosigned"
	witnessRefused     = "refused"
	witnessUnreachable = "unreachable"
	witnessInvalid     = "invalid"  // a 200 whose cosignature does not verify
	witnessConflict    = "conflict" // a 409: the log retries with the witness's size
)
