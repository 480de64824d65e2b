package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var out bytes.Buffer
	key := filepath.Join(dir, "w.key")
	if err := run(ctx, []string{"keygen", "-name", "witness.test/w", "-out", key}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "cosignature/v1 vkey: witness.test/w+") {
		t.Fatalf("keygen said %q", out.String())
	}
	if fi, _ := os.Stat(key); fi.Mode().Perm() != 0o600 {
		t.Fatalf("key mode %v", fi.Mode())
	}
	if err := run(ctx, []string{"keygen", "-name", "witness.test/w", "-out", key}, &out); err == nil {
		t.Fatal("keygen overwrote a key")
	}

	cfg := filepath.Join(dir, "logs.policy")
	_, vkey, _ := note.GenerateKey(rand.Reader, "example.test/log")
	_, vkey2, _ := note.GenerateKey(rand.Reader, "example.test/other")
	for _, v := range []string{vkey, vkey2} {
		if err := run(ctx, []string{"add-log", "-config", cfg, v}, &out); err != nil {
			t.Fatal(err)
		}
	}
	if err := run(ctx, []string{"add-log", "-config", cfg, vkey}, &out); err == nil {
		t.Fatal("the same log added twice")
	}
	if err := run(ctx, []string{"add-log", "-config", cfg, "not-a-key"}, &out); err == nil {
		t.Fatal("a malformed vkey added")
	}
	out.Reset()
	if err := run(ctx, []string{"list-logs", "-config", cfg}, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "example.test/log\t"+vkey) || !strings.Contains(out.String(), "example.test/other\t") {
		t.Fatalf("list-logs: %q", out.String())
	}
	// A logs file is logs only: a policy with witnesses is refused.
	os.WriteFile(cfg, []byte("log "+vkey+"\nwitness w "+"witness.test/w+00000000+BAAA\nquorum w\n"), 0o644)
	if err := run(ctx, []string{"list-logs", "-config", cfg}, &out); err == nil {
		t.Fatal("a policy with witnesses accepted as a logs file")
	}
	for _, args := range [][]string{nil, {"frobnicate"}, {"serve"}, {"feed"}, {"keygen"}} {
		if err := run(ctx, args, &out); !errors.Is(err, errUsage) {
			t.Errorf("%q: %v, want a usage error", args, err)
		}
	}
}
