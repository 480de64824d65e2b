package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/transparency-dev/tessera"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/problem"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

const (
	// readyCache is how long a readiness answer is reused, so that probes
	// cost at most one storage round trip a second.
	readyCache = time.Second
	// readyTimeout bounds the checks of one readiness answer.
	readyTimeout = 3 * time.Second
	// readyDoc is the state document the storage check writes and reads.
	readyDoc = "readyz"
)

// watchedLog is one log whose published checkpoint the watcher follows.
type watchedLog struct {
	name   string
	log    *vlog.Log
	policy *policy.Policy

	// mu guards the fields below, written by the watcher's goroutine and
	// read by readiness checks and metrics.
	mu         sync.Mutex
	cp         []byte    // the published checkpoint last seen (nil: none yet)
	published  uint64    // its size
	integrated uint64    // the integrated tree size seen with it
	changed    time.Time // when cp was first seen (or the watcher started)
	err        error     // the last read's error, if it failed
}

// checkpointWatch follows each log's published checkpoint, so that its age
// (since this process saw it change) is known to /readyz and /metrics.
type checkpointWatch struct {
	logs   []*watchedLog
	every  time.Duration
	cancel context.CancelFunc
	// done closes when the goroutine that startCheckpointWatch starts (and
	// stop stops) has returned.
	done chan struct{}
}

// startCheckpointWatch reads each log's checkpoint every interval (at
// least every 5 s, at most every 250 ms) until stop.
func startCheckpointWatch(interval time.Duration, logs []*watchedLog) *checkpointWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &checkpointWatch{logs: logs, every: min(max(interval, 250*time.Millisecond), 5*time.Second), cancel: cancel, done: make(chan struct{})}
	now := time.Now()
	for _, l := range logs {
		l.changed = now
		l.poll(ctx)
	}
	go w.run(ctx)
	return w
}

func (w *checkpointWatch) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(w.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, l := range w.logs {
			l.poll(ctx)
		}
	}
}

func (w *checkpointWatch) stop() {
	w.cancel()
	<-w.done
}

func (l *watchedLog) poll(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, readyTimeout)
	defer cancel()
	cp, err := l.log.Checkpoint(ctx)
	var size, integrated uint64
	if err == nil {
		size, err = vlog.CheckpointSize(cp)
	}
	if err == nil {
		integrated, err = l.log.Reader().IntegratedSize(ctx)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = err
		return
	}
	l.err = nil
	l.integrated = integrated
	if !bytes.Equal(cp, l.cp) {
		if l.cp != nil {
			l.changed = time.Now()
		}
		l.cp, l.published = cp, size
	}
}

// snapshot returns what the watcher last saw of l.
func (l *watchedLog) snapshot() (cp []byte, published, integrated uint64, age time.Duration, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cp, l.published, l.integrated, time.Since(l.changed), l.err
}

// readiness answers /readyz: the storage round trip, each log's
// checkpoint freshness and witness quorum, reused for readyCache.
type readiness struct {
	state     storage.State
	watch     *checkpointWatch
	witnesses *vlog.WitnessRecorder
	// pendingBound is how long entries may wait unpublished (a checkpoint
	// interval and the publish timeout); idleBound and witnessedIdleBound
	// how long a checkpoint may go unchanged at all: Tessera republishes an
	// idle log's every DefaultCheckpointRepublishInterval, and a witnessed
	// log's every log.WitnessRepublishInterval.
	pendingBound, idleBound, witnessedIdleBound time.Duration
	// quorumWindow is how recent a witness's answer must be to count.
	quorumWindow time.Duration

	// mu guards at, problems and wasReady: one check runs at a time, and
	// the others wait for and reuse its answer.
	mu       sync.Mutex
	at       time.Time
	problems []string
	wasReady bool
}

func newReadiness(cfg *config, st storage.State, w *checkpointWatch, rec *vlog.WitnessRecorder) *readiness {
	pending := cfg.CheckpointInterval + cfg.PublishTimeout
	return &readiness{
		state:        st,
		watch:        w,
		witnesses:    rec,
		pendingBound: pending,
		idleBound:    tessera.DefaultCheckpointRepublishInterval + pending,
		// The witnesses may take up to the publish timeout to answer.
		witnessedIdleBound: max(vlog.WitnessRepublishInterval, cfg.CheckpointInterval) + pending,
		quorumWindow:       2 * pending,
		wasReady:           true,
	}
}

// check returns why the server is not ready (nil: it is).
func (r *readiness) check(ctx context.Context) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.at) < readyCache {
		return r.problems
	}
	// Not the probe's context: a probe that gives up must not turn into a
	// cached "storage: context canceled".
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), readyTimeout)
	defer cancel()
	var problems []string
	if err := r.storageRoundTrip(ctx); err != nil {
		problems = append(problems, "storage: "+err.Error())
	}
	for _, l := range r.watch.logs {
		problems = append(problems, r.checkLog(l)...)
	}
	r.at, r.problems = time.Now(), problems
	// Probes come every few seconds: log changes of state, not each answer.
	if ready := len(problems) == 0; ready != r.wasReady {
		r.wasReady = ready
		if ready {
			slog.Info("ready again")
		} else {
			slog.Warn("not ready", "why", strings.Join(problems, "; "))
		}
	}
	return problems
}

// storageRoundTrip writes a small document to the backend's state store
// and reads it back: the cheapest real proof that storage takes writes and
// answers reads. Front ends on one backend share the document, so what is
// read back may be another's write: only that both succeed counts.
func (r *readiness) storageRoundTrip(ctx context.Context) error {
	v := []byte(strconv.FormatInt(time.Now().UnixNano(), 10))
	if err := r.state.Put(ctx, readyDoc, v); err != nil {
		return fmt.Errorf("writing %s: %w", readyDoc, err)
	}
	if _, err := r.state.Get(ctx, readyDoc); err != nil {
		return fmt.Errorf("reading %s back: %w", readyDoc, err)
	}
	return nil
}

func (r *readiness) checkLog(l *watchedLog) []string {
	cp, published, integrated, age, err := l.snapshot()
	switch {
	case err != nil && cp == nil:
		return []string{fmt.Sprintf("%s log: no checkpoint read: %v", l.name, err)}
	case err != nil:
		return []string{fmt.Sprintf("%s log: reading its checkpoint: %v", l.name, err)}
	}
	var problems []string
	age = age.Round(time.Second)
	idle := r.idleBound
	if witnessed(l.policy) {
		idle = r.witnessedIdleBound
	}
	switch {
	case integrated > published && age > r.pendingBound:
		problems = append(problems, fmt.Sprintf("%s log: checkpoint stale: %d entries integrated but unpublished, and the checkpoint (size %d) unchanged for %s (bound %s)",
			l.name, integrated-published, published, age, r.pendingBound))
	case age > idle:
		problems = append(problems, fmt.Sprintf("%s log: checkpoint stale: unchanged for %s (bound %s)", l.name, age, idle))
	}
	if witnessed(l.policy) {
		if why := r.quorum(l, cp); why != "" {
			problems = append(problems, fmt.Sprintf("%s log: witness quorum %s lost: %s", l.name, l.policy.Quorum(), why))
		}
	}
	return problems
}

// witnessed reports whether p asks for a witness quorum.
func witnessed(p *policy.Policy) bool {
	return p != nil && len(p.Witnesses()) > 0 && !p.QuorumMet(nil)
}

// quorum says why l's witness quorum was not met recently ("" if it was):
// the witnesses' latest answers if they were asked within quorumWindow,
// else the cosignatures on the latest checkpoint.
func (r *readiness) quorum(l *watchedLog, cp []byte) string {
	origin := l.log.Origin()
	names, asked := r.witnesses.Cosigned(origin, l.policy, time.Now().Add(-r.quorumWindow))
	if asked {
		if l.policy.QuorumMet(names) {
			return ""
		}
		if why := r.witnesses.Report(origin, l.policy); why != "" {
			return why
		}
		return fmt.Sprintf("only %s cosigned in the last %s", strings.Join(names, ", "), r.quorumWindow)
	}
	if _, err := l.policy.Verify(cp); err != nil {
		return "the latest checkpoint does not meet the policy: " + err.Error()
	}
	return ""
}

// handleHealthz answers that the process is up and serving.
func handleHealthz(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ok\n"))
}

// handleReadyz answers 200 when storage takes writes and each log's
// checkpoint is fresh and witnessed, else 503 with the reasons.
func (r *readiness) handleReadyz(w http.ResponseWriter, req *http.Request) {
	if problems := r.check(req.Context()); len(problems) > 0 {
		// Not logged per request (see check): probes would flood the log.
		problem.WriteDetails(w, problem.Details{Type: "about:blank", Title: "Not ready",
			Status: http.StatusServiceUnavailable, Detail: strings.Join(problems, "; ")})
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write([]byte("ready\n"))
}
