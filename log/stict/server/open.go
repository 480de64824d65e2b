package server

import (
	"context"
	"errors"
	"time"

	"github.com/transparency-dev/tessera"
	"golang.org/x/mod/sumdb/note"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// OpenConfig is what Open needs: where the log is stored, its keys and
// roots, and how it publishes.
type OpenConfig struct {
	Storage storage.Backend
	Signer  *stict.Signer
	// ExtraSigners also sign each checkpoint (log.Options'): the
	// Ed25519 note key that C2SP witnesses, which do not take RFC 6962
	// keys, verify, and an ML-DSA-44 key if the log has one.
	ExtraSigners []note.Signer
	Roots        *stict.Roots
	Receipts     *receipts.Signer
	// CheckpointInterval, Witnesses, WitnessFailOpen and WitnessRecorder
	// are log.Options'.
	CheckpointInterval time.Duration
	Witnesses          *tessera.WitnessGroup
	WitnessFailOpen    bool
	WitnessRecorder    *vlog.WitnessRecorder
	// PublishTimeout and Policy are Config's.
	PublishTimeout time.Duration
	Policy         *policy.Policy
	// Metrics and Admission are Config's.
	Metrics   *vlog.Metrics
	Admission *vlog.Admission
	// PublicURL and UsableSince are Config's (log.v3.json).
	PublicURL   string
	UsableSince time.Time
}

// Name is the STI-CT log's name in its storage backend.
const Name = "stict"

// Open starts the STI-CT log stored in c.Storage as Name: its tiles and
// issuer/ objects, its dedup store, and its leaf-hash index. Close its Log
// to stop it.
func Open(ctx context.Context, c OpenConfig) (*Service, error) {
	if c.Storage == nil || c.Signer == nil || c.Roots == nil || c.Receipts == nil {
		return nil, errors.New("stict server: Storage, Signer, Roots and Receipts are required")
	}
	st, err := c.Storage.Log(ctx, Name)
	if err != nil {
		return nil, err
	}
	leafHashes, err := c.Storage.Index(ctx, Name, "leafhash")
	if err != nil {
		return nil, err
	}
	l, err := vlog.Open(ctx, st.Driver, vlog.Options{
		Signer:             c.Signer,
		ExtraSigners:       c.ExtraSigners,
		Format:             vlog.StaticCT(stict.SplitTile),
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
		Signer:         c.Signer,
		Roots:          c.Roots,
		Issuers:        NewIssuers(c.Storage.Objects(Name)),
		LeafHashes:     l.NewIndex(leafHashes, LeafHash),
		Receipts:       c.Receipts,
		PublishTimeout: c.PublishTimeout,
		Policy:         c.Policy,
		Metrics:        c.Metrics,
		Admission:      c.Admission,
		PublicURL:      c.PublicURL,
		UsableSince:    c.UsableSince,
	}), nil
}

// Log returns the service's log, for its tile reads and Close.
func (s *Service) Log() *vlog.Log { return s.cfg.Log }
