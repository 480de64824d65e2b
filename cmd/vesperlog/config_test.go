package main

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestConfigFileAndFlags(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "vesperlog.yaml")
	os.WriteFile(f, []byte("addr: 127.0.0.1:9090\ndata: /srv/v\ncheckpoint-interval: 2s\niat-window: 1m\ndb-dsn: u:p@tcp(db:3306)/v\ns3-bucket: b\n"), 0o644)
	c, err := parseConfig([]string{"-config", f, "-checkpoint-interval", "3s"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9090" || c.Data != "/srv/v" || c.IssuedAtWindow != time.Minute {
		t.Fatalf("file settings not applied: %+v", c)
	}
	if sc := c.storage(); sc.DSN != "u:p@tcp(db:3306)/v" || sc.Bucket != "b" || sc.Backend != "posix" {
		t.Fatalf("storage settings from the file: %+v", sc)
	}
	if c.CheckpointInterval != 3*time.Second {
		t.Fatalf("flag did not win over the file: %v", c.CheckpointInterval)
	}
	if c.VettingKey != "/srv/v/keys/vetting-checkpoint.key" || c.agentsWhere() != "/srv/v/agents.json" {
		t.Fatalf("defaults under data: %+v", c)
	}
	for name, args := range map[string][]string{
		"unknown file key":    {"-config", writeTemp(t, "colour: blue\n")},
		"interval too short":  {"-checkpoint-interval", "10ms"},
		"bad address":         {"-addr", "nowhere"},
		"stray argument":      {"serve"},
		"missing config file": {"-config", filepath.Join(dir, "none.yaml")},
		"aws interval":        {"-storage", "aws", "-checkpoint-interval", "500ms"},
	} {
		if _, err := parseConfig(args); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func writeTemp(t *testing.T, s string) string {
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte(s), 0o644)
	return p
}
