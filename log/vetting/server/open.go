package server

import (
	"context"
	"errors"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
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
	// Metrics is Config's.
	Metrics *vlog.Metrics
}

// Open starts the vetting log stored in c.Storage as Name: its tiles, and
// its dedup store keyed by (agent, digest). Close its Log to stop it.
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
	return New(Config{
		Log:            l,
		Agents:         c.Agents,
		Receipts:       c.Receipts,
		IssuedAtWindow: c.IssuedAtWindow,
		PublishTimeout: c.PublishTimeout,
		Policy:         c.Policy,
		Metrics:        c.Metrics,
	}), nil
}

// Log returns the service's log, for its tile reads and Close.
func (s *Service) Log() *vlog.Log { return s.cfg.Log }
