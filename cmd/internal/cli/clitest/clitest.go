// Package clitest checks a cli.Program's help and usage errors, for the
// tests of the three binaries.
package clitest

import (
	"bytes"
	"context"
	"flag"
	"strings"
	"testing"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
)

// CheckHelp runs every command and verb of p with -h, -help and --help,
// and checks that each exits 0 and prints, on standard output only, its
// synopsis and every flag its FlagSet defines with that flag's help; then
// that a flag it does not define exits 2 with one line on standard error.
// It also checks "BINARY -h" and "BINARY help".
func CheckHelp(t *testing.T, p *cli.Program) {
	t.Helper()
	ctx := context.Background()
	for _, args := range [][]string{{"-h"}, {"help"}} {
		var out, errb bytes.Buffer
		if code := p.Run(ctx, args, &out, &errb); code != 0 || errb.Len() != 0 {
			t.Errorf("%s %s: exit %d, stderr %q", p.Name, args[0], code, errb.String())
		}
		for _, c := range p.Commands {
			if !strings.Contains(out.String(), c.Name+" ") {
				t.Errorf("%s %s does not list %q", p.Name, args[0], c.Name)
			}
		}
	}
	for _, c := range p.All() {
		name := strings.TrimSpace(p.Name + " " + c.Name)
		if c.Synopsis == "" || c.Summary == "" || c.Description == "" {
			t.Errorf("%s: synopsis, summary or description missing", name)
		}
		fs, _ := p.FlagSet(c)
		for _, h := range []string{"-h", "-help", "--help"} {
			var out, errb bytes.Buffer
			code := p.Run(ctx, append(c.Args(), h), &out, &errb)
			if code != 0 || errb.Len() != 0 {
				t.Errorf("%s %s: exit %d, stderr %q", name, h, code, errb.String())
			}
			if !strings.Contains(out.String(), "usage: "+name+" "+c.Synopsis+"\n") {
				t.Errorf("%s %s: no synopsis in %q", name, h, out.String())
			}
			fs.VisitAll(func(f *flag.Flag) {
				listed := false
				for _, end := range []string{" ", "\t", "\n"} {
					listed = listed || strings.Contains(out.String(), "  -"+f.Name+end)
				}
				if !listed {
					t.Errorf("%s %s: flag -%s not listed", name, h, f.Name)
				}
				if first, _, _ := strings.Cut(f.Usage, "\n"); !strings.Contains(out.String(), first) {
					t.Errorf("%s %s: help of -%s not printed", name, h, f.Name)
				}
			})
		}
		var out, errb bytes.Buffer
		code := p.Run(ctx, append(c.Args(), "-no-such-flag"), &out, &errb)
		if code != 2 || strings.Count(errb.String(), "\n") != 1 || !strings.Contains(errb.String(), "("+name+" -h for help)") {
			t.Errorf("%s -no-such-flag: exit %d, stderr %q; want 2 and one line", name, code, errb.String())
		}
	}
}
