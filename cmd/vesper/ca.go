package main

import (
	"context"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/vesperlog/vesperlog/log/stict"
	"github.com/vesperlog/vesperlog/log/stict/stitest"
	"github.com/vesperlog/vesperlog/receipts/passport"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// multiFlag is a flag that may be given more than once.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// Files of vesper ca delegate's -out directory.
const (
	delegateCertFile     = "delegate.pem"
	delegateKeyFile      = "delegate.key"
	delegateDiscloseFile = "disclose.json"
)

// caDelegateFlags is vesper ca delegate: a TEST certification authority
// that issues a delegate certificate from a stitest PKI directory, logging
// its precertificate in STI-CT logs and embedding their SCTs. Its keys are
// test keys written in the clear; no real CA works this way.
func caDelegateFlags(fs *flag.FlagSet) cli.Action {
	pkiDir := fs.String("pki", "", "a test PKI directory (testdata/sti-pki, written by stitest): its intermediate CA signs")
	var logs multiFlag
	fs.Var(&logs, "log", "an STI-CT log's URL prefix, such as http://127.0.0.1:8080/stict; repeat for more logs (one SCT each)")
	tn := fs.String("tn", "", "the one telephone number the certificate authorizes")
	tnRange := fs.String("range", "", "the numbers it authorizes, START,COUNT (default the test PKI's 12025550100,100 and 18001231234)")
	rcdFile := fs.String("rcd", "", "a JSON file of the rcd claim (RFC 9795) the certificate permits and requires")
	mode := fs.String("mode", "value", "how the certificate holds -rcd: value (in the clear), hash (SHA-256) or commit (salted; the salt goes to disclose.json)")
	out := fs.String("out", "", "directory for delegate.pem (leaf, intermediate), delegate.key and, with -mode commit, disclose.json")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) > 0 {
			return usageErr("unexpected arguments %q", args)
		}
		switch {
		case *pkiDir == "" || *out == "":
			return usageErr("-pki and -out are required")
		case len(logs) == 0:
			return usageErr("give at least one -log, the STI-CT log that embeds its SCT")
		case *tn != "" && *tnRange != "":
			return usageErr("give -tn or -range, not both")
		}
		var m stitest.Mode
		switch *mode {
		case "value":
			m = stitest.ModeValue
		case "hash":
			m = stitest.ModeHash
		case "commit":
			m = stitest.ModeCommit
		default:
			return usageErr("-mode %q: want value, hash or commit", *mode)
		}
		if _, err := os.Stat(filepath.Join(*out, delegateKeyFile)); err == nil {
			return fmt.Errorf("%s already holds a delegate key: give another -out", *out)
		} else if !errors.Is(err, iofs.ErrNotExist) {
			return err
		}
		o := stitest.DelegateOptions{Name: "STI delegate certificate (vesper ca delegate, TEST)"}
		if *tn != "" || *tnRange != "" {
			item := *tn
			if *tnRange != "" {
				item = *tnRange
				if !strings.Contains(item, ",") {
					return usageErr("-range %q: want START,COUNT", item)
				}
			}
			l, err := stict.TNAuthListOf([]string{item})
			if err != nil {
				return usageErr("-tn/-range: %v", err)
			}
			if o.TNAuthList, err = l.Marshal(); err != nil {
				return err
			}
		}
		var disclose []byte
		if *rcdFile != "" {
			ext, d, err := rcdConstraint(*rcdFile, m)
			if err != nil {
				return err
			}
			o.Extra, disclose = []pkix.Extension{ext}, d
		} else if *mode != "value" {
			return usageErr("-mode goes with -rcd")
		}
		p, err := stitest.LoadPKI(*pkiDir)
		if err != nil {
			return fmt.Errorf("-pki %s is not a test PKI directory: %w", *pkiDir, err)
		}
		hc := &http.Client{Timeout: 30 * time.Second}
		var submit []func([][]byte) ([]byte, error)
		for _, u := range logs {
			submit = append(submit, stitest.AddPreChain(hc, u))
		}
		c, err := p.IssueDelegate(o, submit...)
		if err != nil {
			return fmt.Errorf("issuing the delegate certificate: %w", err)
		}
		var chainPEM []byte
		for _, der := range p.Chain(c) {
			chainPEM = append(chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
		}
		k, err := x509.MarshalPKCS8PrivateKey(c.Key)
		if err != nil {
			return err
		}
		if err := keys.WriteFile(filepath.Join(*out, delegateKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), 0o600); err != nil {
			return err
		}
		if err := keys.WriteFile(filepath.Join(*out, delegateCertFile), chainPEM, 0o644); err != nil {
			return err
		}
		if disclose != nil {
			if err := keys.WriteFile(filepath.Join(*out, delegateDiscloseFile), disclose, 0o600); err != nil {
				return err
			}
		}
		return describeDelegate(stdout, c.Cert, *out, disclose != nil)
	}
}

// rcdConstraint is the EnhancedJWTClaimConstraints extension that requires
// the rcd claim of file and permits its value in mode m (the vesperlog
// profile of draft-wendt-stir-vesper-06 §5), and, for ModeCommit, the
// disclosure file holding the new salt.
func rcdConstraint(file string, m stitest.Mode) (pkix.Extension, []byte, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return pkix.Extension{}, nil, err
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil {
		return pkix.Extension{}, nil, fmt.Errorf("-rcd %s is not a JSON object: %w", file, err)
	}
	v, err := passport.CanonicalJSON(obj)
	if err != nil {
		return pkix.Extension{}, nil, fmt.Errorf("-rcd %s: %w", file, err)
	}
	var permitted string
	var disclose []byte
	switch m {
	case stitest.ModeHash:
		permitted, err = passport.HashConstraint(v)
	case stitest.ModeCommit:
		salt := make([]byte, 32)
		if _, err := rand.Read(salt); err != nil {
			return pkix.Extension{}, nil, err
		}
		permitted, err = passport.CommitConstraint(v, salt)
		d := map[string]map[string]string{"rcd": {"salt": base64.RawURLEncoding.EncodeToString(salt)}}
		disclose, _ = json.MarshalIndent(d, "", "  ")
		disclose = append(disclose, '\n')
	default:
		permitted, err = passport.ValueConstraint(v)
	}
	if err != nil {
		return pkix.Extension{}, nil, fmt.Errorf("-rcd %s: %w", file, err)
	}
	c := &stict.Constraints{Enhanced: true, MustInclude: []string{"rcd"},
		PermittedValues: []stict.ClaimValues{{Claim: "rcd", Values: []string{permitted}}}}
	ext, err := c.Extension()
	return ext, disclose, err
}

// describeDelegate prints what was issued and where it went.
func describeDelegate(w io.Writer, c *x509.Certificate, dir string, disclose bool) error {
	fmt.Fprintf(w, "TEST delegate certificate %s, valid until %s\n", c.Subject.CommonName, c.NotAfter.UTC().Format(time.RFC3339))
	for _, e := range c.Extensions {
		if e.Id.Equal(stict.OIDTNAuthList) {
			if l, err := stict.ParseTNAuthList(e.Value); err == nil {
				fmt.Fprintf(w, "  TNAuthList %s\n", l)
			}
		}
	}
	if cons, err := stict.CertificateConstraints(c); err == nil && cons != nil {
		fmt.Fprintf(w, "  constraints %s\n", cons)
	}
	scts, err := stict.EmbeddedSCTs(c)
	if err != nil {
		return fmt.Errorf("the issued certificate's SCTs: %w", err)
	}
	for _, s := range scts {
		idx := "no leaf_index"
		if s.HasLeafIndex {
			idx = fmt.Sprintf("leaf_index %d", s.LeafIndex)
		}
		fmt.Fprintf(w, "  SCT from log %s at %s, %s\n", base64.StdEncoding.EncodeToString(s.LogID[:]), s.Time().Format(time.RFC3339Nano), idx)
	}
	fmt.Fprintf(w, "wrote %s and %s", filepath.Join(dir, delegateCertFile), filepath.Join(dir, delegateKeyFile))
	if disclose {
		fmt.Fprintf(w, ", and the rcd salt in %s (disclose it only to verifiers)", filepath.Join(dir, delegateDiscloseFile))
	}
	fmt.Fprintln(w)
	return nil
}
