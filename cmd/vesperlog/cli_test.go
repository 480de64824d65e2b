package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/cmd/internal/cli/clitest"
)

// TestHelp: the server and every command print their synopsis and all
// their flags on -h, exit 0; an unknown flag is one line, exit 2.
func TestHelp(t *testing.T) { clitest.CheckHelp(t, program) }

// TestRefusedStartWritesNothing: settings the server cannot run with are
// refused (exit 2, one line) before anything is written: no data
// directory, no keys, no agents.json (issue 12, item 7).
func TestRefusedStartWritesNothing(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	notPolicy := filepath.Join(dir, "agents.json")
	os.WriteFile(notPolicy, []byte(`{"agents": []}`), 0o644)
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-storage", "s3"}, `-storage "s3": want posix, aws or gcp`},
		{[]string{"-storage", "aws", "-s3-bucket", "b"}, "-storage aws needs -db-dsn and -s3-bucket"},
		{[]string{"-storage", "gcp", "-spanner", "projects/p/instances/i/databases/d"}, "-storage gcp needs -spanner and -gcs-bucket"},
		{[]string{"-public-url", "127.0.0.1:18383"}, "-public-url"},
		{[]string{"-addr", "nowhere"}, "-addr"},
		{[]string{"-witness-policy", filepath.Join(dir, "none.policy")}, "no such file"},
		{[]string{"-witness-policy", notPolicy}, "is not a C2SP tlog-policy file"},
		{[]string{"-stict-roots", notPolicy}, "is not a PEM file of STI root certificates"},
	} {
		var out, errb bytes.Buffer
		args := append([]string{"-data", data, "-addr", "127.0.0.1:0"}, c.args...)
		code := program.Run(context.Background(), args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 {
			t.Errorf("vesperlog %q: exit %d, stderr %q; want 2 and %q", c.args, code, errb.String(), c.want)
		}
		if _, err := os.Stat(data); !os.IsNotExist(err) {
			t.Fatalf("vesperlog %q wrote %s before refusing: %v", c.args, data, err)
		}
	}
}
