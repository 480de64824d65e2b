package stict

import "time"

// LogMetadata is one log's entry of a CT log list v3 (loglist3.TiledLog's JSON).
type LogMetadata struct {
	Description   string `json:"description,omitempty"`
	LogID         []byte `json:"log_id"`
	Key           []byte `json:"key"`
	SubmissionURL string `json:"submission_url"`
	MonitoringURL string `json:"monitoring_url"`
	MMD           int32  `json:"mmd"`
	State         map[string]struct {
		Timestamp time.Time `json:"timestamp"`
	} `json:"state,omitempty"`
	TemporalInterval *struct {
		StartInclusive time.Time `json:"start_inclusive"`
		EndExclusive   time.Time `json:"end_exclusive"`
	} `json:"temporal_interval,omitempty"`
	Type string `json:"log_type,omitempty"`
}

// NewLogMetadata returns the metadata of the log s signs for.
func NewLogMetadata(s *Signer, publicURL string, since time.Time) LogMetadata {
	return LogMetadata{}
}
