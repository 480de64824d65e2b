package stict

import (
	"crypto/x509"
	"strings"
	"time"
)

// LogMetadata is an STI-CT log's entry in a CT log list v3 (the JSON of
// certificate-transparency-go's loglist3.TiledLog, the form for
// static-ct-api logs), which the log serves at <prefix>/log.v3.json so
// that CT policies and log list distributors can take it from the log.
type LogMetadata struct {
	Description   string `json:"description,omitempty"`
	LogID         []byte `json:"log_id"` // SHA-256 of Key
	Key           []byte `json:"key"`    // DER SubjectPublicKeyInfo
	SubmissionURL string `json:"submission_url"`
	MonitoringURL string `json:"monitoring_url"`
	MMD           int32  `json:"mmd"` // seconds
	// State is exactly one of pending, qualified, usable, readonly,
	// retired, rejected, with the time it began.
	State map[string]struct {
		Timestamp time.Time `json:"timestamp"`
	} `json:"state,omitempty"`
	TemporalInterval *struct {
		StartInclusive time.Time `json:"start_inclusive"`
		EndExclusive   time.Time `json:"end_exclusive"`
	} `json:"temporal_interval,omitempty"`
	Type string `json:"log_type,omitempty"`
}

// NewLogMetadata returns the metadata of the log s signs for, served
// under publicURL (its static-ct-api prefix, e.g.
// https://log.example/stict): usable since since (omitted if zero), an
// MMD of DefaultMMD, and no temporal interval, as the log does not shard
// by NotAfter. Both URLs are publicURL with a trailing slash: the
// monitoring prefix serves the tiles, and the submission prefix the
// RFC 6962 ct/v1/ endpoints.
func NewLogMetadata(s *Signer, publicURL string, since time.Time) LogMetadata {
	id := s.LogID()
	// The key marshalled once already in NewSigner; it cannot fail here.
	spki, _ := x509.MarshalPKIXPublicKey(s.Public())
	u := strings.TrimSuffix(publicURL, "/") + "/"
	m := LogMetadata{
		Description:   "vesperlog STI-CT log " + s.Name(),
		LogID:         id[:],
		Key:           spki,
		SubmissionURL: u,
		MonitoringURL: u,
		MMD:           int32(DefaultMMD / time.Second),
	}
	if !since.IsZero() {
		m.State = map[string]struct {
			Timestamp time.Time `json:"timestamp"`
		}{"usable": {Timestamp: since.UTC().Truncate(time.Second)}}
	}
	return m
}
