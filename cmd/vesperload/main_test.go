package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/cmd/internal/cli/clitest"
)

// TestHelp: -h prints the synopsis and every flag, exit 0; an unknown flag
// is one line, exit 2.
func TestHelp(t *testing.T) { clitest.CheckHelp(t, program) }

// TestRefusals: a run that cannot or must not start is one line, exit 2,
// before anything is sent.
func TestRefusals(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-raw", "-target", "http://192.0.2.1:2025", "-rate", "10", "-duration", "1s"}, "not a loopback address (give -allow-remote"},
		{[]string{"-raw", "-target", "http://localhost.example:2025", "-rate", "10", "-duration", "1s"}, "not a loopback address"},
		{[]string{"-raw", "-key", "va.jwk", "-rate", "10", "-duration", "1s"}, "one of -key (a vetting log), -raw and -ct"},
		{[]string{"-rate", "10", "-duration", "1s"}, "one of -key (a vetting log), -raw and -ct"},
		{[]string{"-raw", "-ct", "-pki", "pki", "-rate", "10", "-duration", "1s"}, "one of -key (a vetting log), -raw and -ct"},
		{[]string{"-ct", "-rate", "10", "-duration", "1s"}, "-ct takes -pki DIR"},
		{[]string{"-raw", "-pki", "pki", "-rate", "10", "-duration", "1s"}, "-pki only goes with -ct"},
		{[]string{"-ct", "-pki", "pki", "-rate", "10", "-duration", "1s", "-batch", "2"}, "one entry per request"},
		{[]string{"-raw", "-rate", "10", "-duration", "61m"}, "over 1h0m0s"},
		{[]string{"-raw", "-concurrency", "10", "-count", "20000000"}, "over 10000000"},
		{[]string{"-raw", "-rate", "10"}, "a duration or a count"},
		{[]string{"-key", "va.jwk", "-rate", "10", "-duration", "1s", "-batch", "5000"}, "1 to 1000"},
	} {
		var out, errb bytes.Buffer
		code := program.Run(context.Background(), c.args, &out, &errb)
		if code != 2 || !strings.Contains(errb.String(), c.want) || strings.Count(errb.String(), "\n") != 1 || out.Len() != 0 {
			t.Errorf("vesperload %q: exit %d, stdout %q, stderr %q; want 2 and %q", c.args, code, out.String(), errb.String(), c.want)
		}
	}
}
