package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite README.md's configuration reference from the flag definitions")

const (
	referenceStart = "<!-- The table is generated from vesperlog's flag definitions: go test ./cmd/vesperlog -run TestConfigReference -update -->\n"
	referenceEnd   = "<!-- end of the generated table -->\n"
)

// TestConfigReference: README.md's configuration table is what
// config.flags defines, the one source of vesperlog -h too. With -update
// it rewrites the table.
func TestConfigReference(t *testing.T) {
	const readme = "../../README.md"
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(referenceStart))
	j := bytes.Index(b, []byte(referenceEnd))
	if i < 0 || j < i {
		t.Fatalf("README.md has no generated configuration table (markers %q and %q)", referenceStart, referenceEnd)
	}
	want := configReference()
	got := string(b[i+len(referenceStart) : j])
	if got == want {
		return
	}
	if *update {
		out := append(append(append([]byte{}, b[:i+len(referenceStart)]...), want...), b[j:]...)
		if err := os.WriteFile(readme, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("README.md's configuration table differs from the flags; run go test ./cmd/vesperlog -run TestConfigReference -update\nwant:\n%s", want)
}

// defaultNote is a flag's default written in its help, for the flags
// whose default depends on other settings.
var defaultNote = regexp.MustCompile(` ?\(default ([^()]*(?:\([^()]*\)[^()]*)*)\)`)

// placeholders are words like <data>/keys/x.key, which Markdown would
// read as HTML tags unless they are code.
var placeholders = regexp.MustCompile(`[^\s(),;]*<[^>]*>[^\s(),;]*`)

// configReference is the Markdown table of vesperlog's flags: flag,
// default, description.
func configReference() string {
	fs := flag.NewFlagSet("vesperlog", flag.ContinueOnError)
	(&config{}).flags(fs)
	var b strings.Builder
	b.WriteString("| flag | default | description |\n| --- | --- | --- |\n")
	fs.VisitAll(func(f *flag.Flag) {
		usage := f.Usage
		def := "none"
		switch {
		case f.DefValue != "":
			def = "`" + f.DefValue + "`"
		case defaultNote.MatchString(usage):
			def = placeholders.ReplaceAllString(defaultNote.FindStringSubmatch(usage)[1], "`$0`")
		}
		usage = placeholders.ReplaceAllString(defaultNote.ReplaceAllString(usage, ""), "`$0`")
		fmt.Fprintf(&b, "| `-%s` | %s | %s |\n", f.Name, cell(def), cell(usage))
	})
	return b.String()
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
