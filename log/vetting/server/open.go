package server

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/idempotency"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// Name is the vetting log's name in its storage backend.
const Name = "vetting"

// OpenConfig is what Open needs: where the log is stored, its keys and
// agents, and how it publishes. It mirrors the STI-CT log's.
type OpenConfig struct {
	Storage storage.Backend
	Signer  note.Signer // the checkpoint key; its name is the origin
	// ExtraSigners also sign each checkpoint (log.Options'), such as an
	// ML-DSA-44 key.
	ExtraSigners []note.Signer
	Agents       func() *vetting.Agents
	Receipts     *receipts.Signer
	// CheckpointInterval, Witnesses, WitnessFailOpen and WitnessRecorder
	// are log.Options'.
	CheckpointInterval time.Duration
	Witnesses          *tessera.WitnessGroup
	WitnessFailOpen    bool
	WitnessRecorder    *vlog.WitnessRecorder
	// IssuedAtWindow, PublishTimeout and Policy are Config's.
	IssuedAtWindow time.Duration
	PublishTimeout time.Duration
	Policy         *policy.Policy
	// Metrics and Admission are Config's.
	Metrics   *vlog.Metrics
	Admission *vlog.Admission
}

// Open starts the vetting log stored in c.Storage as Name: its tiles, its
// dedup store keyed by (agent, digest), and its Idempotency-Key records
// in c.Storage's State, swept hourly until ctx ends or Close. Close the
// Service, then its Log, to stop it.
func Open(ctx context.Context, c OpenConfig) (*Service, error) {
	if c.Storage == nil || c.Signer == nil || c.Agents == nil || c.Receipts == nil {
		return nil, errors.New("vetting server: Storage, Signer, Agents and Receipts are required")
	}
	st, err := c.Storage.Log(ctx, Name)
	if err != nil {
		return nil, err
	}
	l, err := vlog.Open(ctx, st.Driver, vlog.Options{
		Signer:             c.Signer,
		ExtraSigners:       c.ExtraSigners,
		Format:             vlog.TlogTiles(Identity),
		Antispam:           st.Antispam,
		Claims:             st.Claims,
		CheckpointInterval: c.CheckpointInterval,
		Witnesses:          c.Witnesses,
		WitnessFailOpen:    c.WitnessFailOpen,
		WitnessRecorder:    c.WitnessRecorder,
	})
	if err != nil {
		return nil, err
	}
	// A submission runs for at most about PublishTimeout: its key is held
	// that long, and a minute more, before a retry may take it over.
	stale := max(idempotency.DefaultStale, cmp.Or(c.PublishTimeout, DefaultPublishTimeout)+time.Minute)
	idem := idempotency.New(idempotency.Config{State: c.Storage.State(), Stale: stale})
	s := New(Config{
		Log:            l,
		Agents:         c.Agents,
		Receipts:       c.Receipts,
		IssuedAtWindow: c.IssuedAtWindow,
		PublishTimeout: c.PublishTimeout,
		Policy:         c.Policy,
		Metrics:        c.Metrics,
		Admission:      c.Admission,
		Idempotency:    idem,
	})
	s.stopSweep = idem.SweepEvery(ctx, idempotency.DefaultSweepEvery)
	return s, nil
}

// Log returns the service's log, for its tile reads and Close.
func (s *Service) Log() *vlog.Log { return s.cfg.Log }

// Close stops what Open started beside the log (the sweep of expired
// idempotency records); close the Log itself after.
func (s *Service) Close() {
	if s.stopSweep != nil {
		s.stopSweep()
	}
}
