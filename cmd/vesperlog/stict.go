package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	vlog "github.com/vesperlog/vesperlog/log"
	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/log/stict"
	stictserver "github.com/vesperlog/vesperlog/log/stict/server"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage"
	"github.com/vesperlog/vesperlog/storage/keys"
	"github.com/vesperlog/vesperlog/witness/policy"
)

// stictPrefix is where the STI-CT log's API lives.
const stictPrefix = "/stict"

// stictLog is the running STI-CT log.
type stictLog struct {
	keys    *stictKeys
	roots   *stict.Roots
	policy  *policy.Policy
	log     *vlog.Log
	service *stictserver.Service
}

// stictKeys are the STI-CT log's keys: its RFC 6962 key (SCTs and
// checkpoints) and the Ed25519 note key that also signs its checkpoints,
// for C2SP witnesses.
type stictKeys struct {
	signer *stict.Signer
	note   *keys.NoteKey
	mldsa  *keys.NoteKey // nil without -mldsa-checkpoints
}

// extra are the keys that sign each checkpoint after the RFC 6962 one.
func (k *stictKeys) extra() []*keys.NoteKey {
	if k.mldsa == nil {
		return []*keys.NoteKey{k.note}
	}
	return []*keys.NoteKey{k.note, k.mldsa}
}

// vkeys are the log's checkpoint keys, the RFC 6962 one first.
func (k *stictKeys) vkeys() []string { return append([]string{k.signer.VKey()}, vkeys(k.extra())...) }

// loadSTICTKeys loads (or creates) the STI-CT log's keys. The origin is
// -stict-origin, else the existing log's (its checkpoint's first line), else
// <public host>/stict: a log keeps its origin when the public URL changes.
func loadSTICTKeys(ctx context.Context, cfg *config, st storage.State, host string) (*stictKeys, error) {
	var legacy string
	if cfg.storageName() == storage.POSIX {
		var err error
		if legacy, err = checkpointOrigin(filepath.Join(cfg.Data, stictserver.Name, "checkpoint")); err != nil {
			return nil, err
		}
	}
	origin, err := logOrigin(ctx, st, stictserver.Name, cfg.STICTOrigin, legacy)
	if err != nil {
		return nil, err
	}
	if legacy != "" && origin != legacy {
		return nil, fmt.Errorf("-stict-origin %q, but the log in %s is %q", origin, cfg.Data, legacy)
	}
	if origin == "" {
		origin = host + stictPrefix
	}
	k, created, err := keys.LoadOrCreateJWK(cfg.STICTKey, "ES256")
	if err != nil {
		return nil, fmt.Errorf("STI-CT log key: %w", err)
	}
	if created {
		slog.Info("created STI-CT log key", "file", cfg.STICTKey)
	}
	ek, ok := k.Key.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("STI-CT log key %s is not a P-256 private key", cfg.STICTKey)
	}
	s, err := stict.NewSigner(origin, ek)
	if err != nil {
		return nil, fmt.Errorf("STI-CT log key %s: %w", cfg.STICTKey, err)
	}
	if err := state.Bind(ctx, st, stictserver.Name, state.LogBinding{Origin: origin, VKey: s.VKey()}); err != nil {
		return nil, err
	}
	// The public key as CT tools take it (ctclient --pub_key).
	spki, err := x509.MarshalPKIXPublicKey(ek.Public())
	if err != nil {
		return nil, err
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: spki})
	if old, err := os.ReadFile(stictPublicKeyFile(cfg)); err != nil || !bytes.Equal(old, pubPEM) {
		if err := keys.WriteFile(stictPublicKeyFile(cfg), pubPEM, 0o644); err != nil {
			return nil, fmt.Errorf("writing STI-CT public key: %w", err)
		}
	}
	sk := &stictKeys{signer: s}
	if sk.note, err = checkpointKey(ctx, st, "STI-CT note key", cfg.STICTNoteKey, origin, state.KeyBinding(stictserver.Name, "note"), keys.Ed25519NoteKey); err != nil {
		return nil, err
	}
	if cfg.MLDSACheckpoints {
		if sk.mldsa, err = checkpointKey(ctx, st, "STI-CT ML-DSA-44 checkpoint key", mldsaKeyFile(cfg.STICTNoteKey), origin, state.KeyBinding(stictserver.Name, "mldsa"), mldsaKey); err != nil {
			return nil, err
		}
	}
	return sk, nil
}

// stictPublicKeyFile is where the STI-CT log's public key is written, PEM.
func stictPublicKeyFile(cfg *config) string {
	return strings.TrimSuffix(cfg.STICTKey, ".jwk") + ".pub.pem"
}

// checkpointOrigin returns the first line of a checkpoint file, or "" if
// there is none yet.
func checkpointOrigin(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("reading STI-CT checkpoint: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		return "", fmt.Errorf("STI-CT checkpoint %s is empty", path)
	}
	return sc.Text(), nil
}

// openSTICT starts the STI-CT log.
func openSTICT(ctx context.Context, cfg *config, be storage.Backend, k *stictKeys, w witnessing, rec *vlog.WitnessRecorder, rs *receipts.Signer, m *vlog.Metrics, adm *vlog.Admission) (*stictLog, error) {
	pemBytes, err := os.ReadFile(cfg.STICTRoots)
	if err != nil {
		return nil, fmt.Errorf("-stict-roots: %w", err)
	}
	roots, err := stict.ParseRoots(pemBytes)
	if err != nil {
		return nil, fmt.Errorf("-stict-roots %s: %w", cfg.STICTRoots, err)
	}
	svc, err := stictserver.Open(ctx, stictserver.OpenConfig{
		Storage:            be,
		Signer:             k.signer,
		ExtraSigners:       signers(k.extra()),
		Roots:              roots,
		Receipts:           rs,
		CheckpointInterval: cfg.CheckpointInterval,
		Witnesses:          w.group,
		WitnessFailOpen:    cfg.WitnessFailOpen,
		WitnessRecorder:    rec,
		PublishTimeout:     cfg.PublishTimeout,
		Policy:             w.policy,
		Metrics:            m,
		Admission:          adm,
		// log.v3.json: the log is usable since its key was made.
		PublicURL:   strings.TrimSuffix(cfg.PublicURL, "/") + "/stict",
		UsableSince: fileTime(cfg.STICTKey),
	})
	if err != nil {
		return nil, err
	}
	return &stictLog{keys: k, roots: roots, policy: w.policy, log: svc.Log(), service: svc}, nil
}

// fileTime returns when path was last written (a key file is written once,
// when the key is made), or zero if it cannot tell.
func fileTime(path string) time.Time {
	fi, err := os.Stat(path)
	if err != nil {
		return time.Time{}
	}
	return fi.ModTime()
}
