package main

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/receipts/passport"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// passportSignFlags is vesper passport sign: an authentication service
// (RFC 8224 §5) signing one call's PASSporT with a delegate certificate.
func passportSignFlags(fs *flag.FlagSet) cli.Action {
	keyFile := fs.String("key", "", "the delegate certificate's private key, PEM (PKCS #8 or SEC 1)")
	chainFile := fs.String("chain", "", "the delegate certificate's chain, PEM, leaf first (the x5c header)")
	x5u := fs.String("x5u", "", "also name the chain's HTTPS URL in the x5u header")
	noX5C := fs.Bool("no-x5c", false, "leave x5c out (with -x5u; VESPER verifiers require x5c)")
	orig := fs.String("orig", "", "the calling telephone number (orig.tn), digits only")
	origURI := fs.String("orig-uri", "", "the calling URI (orig.uri), instead of -orig")
	dest := fs.String("dest", "", "the called telephone numbers (dest.tn), comma-separated")
	destURI := fs.String("dest-uri", "", "the called URIs (dest.uri), comma-separated")
	iat := fs.Int64("iat", 0, "the iat claim, Unix seconds (default now)")
	ppt := fs.String("ppt", "", "the PASSporT extension: shaken, rcd or rsp (default shaken with -attest, rcd with -rcd, else none)")
	attest := fs.String("attest", "", "SHAKEN attestation level: A, B or C")
	origid := fs.String("origid", "auto", "SHAKEN origid, a UUID, or auto for a new random one")
	rcdFile := fs.String("rcd", "", "a JSON file whose object is the rcd claim (RFC 9795), such as {\"nam\":\"Alice\"}")
	identity := fs.Bool("identity", false, "print a SIP Identity header value (RFC 8224 §4.1) instead of the bare PASSporT")
	info := fs.String("info", "", "the Identity header's info URL (with -identity; default -x5u)")
	out := fs.String("out", "", "write the result to this file (default standard output)")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) > 0 {
			return usageErr("unexpected arguments %q", args)
		}
		switch {
		case *keyFile == "" || *chainFile == "":
			return usageErr("-key and -chain are required")
		case (*orig == "") == (*origURI == ""):
			return usageErr("give exactly one of -orig and -orig-uri")
		case *dest == "" && *destURI == "":
			return usageErr("give -dest or -dest-uri")
		case *noX5C && *x5u == "":
			return usageErr("-no-x5c needs -x5u, or the verifier has no certificate")
		case *info != "" && !*identity:
			return usageErr("-info goes with -identity")
		case *identity && *info == "" && *x5u == "":
			return usageErr("-identity needs -info (or -x5u): RFC 8224's info parameter is mandatory")
		}
		if *ppt == "" {
			switch {
			case *attest != "":
				*ppt = "shaken"
			case *rcdFile != "":
				*ppt = "rcd"
			}
		}
		switch *ppt {
		case "", "shaken", "rcd", "rsp":
		default:
			return usageErr("-ppt %q: want shaken, rcd or rsp", *ppt)
		}
		c := passport.Claims{IAT: *iat, Orig: passport.Orig{TN: *orig, URI: *origURI}, Other: map[string]json.RawMessage{}}
		if c.IAT == 0 {
			c.IAT = time.Now().Unix()
		}
		c.Dest.TN, c.Dest.URI = commaList(*dest), commaList(*destURI)
		// SHAKEN's claims: required with ppt shaken, allowed in an rsp
		// answering a SHAKEN call.
		switch {
		case *attest == "" && *ppt == "shaken":
			return usageErr("-ppt shaken needs -attest A, B or C")
		case *attest == "":
		case *ppt != "shaken" && *ppt != "rsp":
			return usageErr("-attest is SHAKEN's: give -ppt shaken (or rsp)")
		case *attest != "A" && *attest != "B" && *attest != "C":
			return usageErr("-attest %q: want A, B or C", *attest)
		default:
			c.Attest, c.OrigID = *attest, *origid
			if c.OrigID == "auto" {
				c.OrigID = newUUID()
			}
		}
		if *rcdFile != "" {
			b, err := os.ReadFile(*rcdFile)
			if err != nil {
				return err
			}
			var obj map[string]json.RawMessage
			if err := json.Unmarshal(b, &obj); err != nil {
				return fmt.Errorf("-rcd %s is not a JSON object: %w", *rcdFile, err)
			}
			cb, err := passport.CanonicalJSON(obj)
			if err != nil {
				return fmt.Errorf("-rcd %s: %w", *rcdFile, err)
			}
			c.Other["rcd"] = cb
		}
		key, err := loadPrivateKey(*keyFile)
		if err != nil {
			return err
		}
		chain, err := loadCertChain(*chainFile)
		if err != nil {
			return err
		}
		tok, err := passport.Sign(c, passport.SignOptions{Key: key, Chain: chain, X5U: *x5u, NoX5C: *noX5C, PPT: *ppt})
		if err != nil {
			return fmt.Errorf("signing: %w", err)
		}
		res := tok
		if *identity {
			h := passport.IdentityHeader{Token: tok, Info: *info, Alg: "ES256", PPT: *ppt}
			if h.Info == "" {
				h.Info = *x5u
			}
			res = h.String()
		}
		if *out == "" {
			fmt.Fprintln(stdout, res)
			return nil
		}
		return keys.WriteFile(*out, []byte(res+"\n"), 0o644)
	}
}

// passportVerifyFlags is vesper passport verify: a verification service
// (RFC 8224 §6) checking a PASSporT down to the STI-CT log.
func passportVerifyFlags(fs *flag.FlagSet) cli.Action {
	trustFile := fs.String("trust", "", "a transparency configuration with an sti member, pinned with vesper trust")
	freshness := fs.Duration("freshness", passport.DefaultFreshness, "how far iat may be from now")
	nowFlag := fs.String("now", "", "verify as of this time, RFC 3339 (default now)")
	original := fs.String("original", "", "for an rsp PASSporT: the original call's PASSporT (a file)")
	disclose := fs.String("disclose", "", "JSON file of salts (and values) disclosed for committed claims: {\"rcd\":{\"salt\":\"B64URL\"}}")
	requireCommitments := fs.Bool("require-commitments", false, "fail when a committed claim cannot be checked (no salt disclosed)")
	spcFile := fs.String("spc-numbers", "", "JSON file mapping service provider codes to numbers: {\"1234\":[\"12025550100\",\"12025550100,100\"]}")
	online := fs.Bool("online", false, "also prove each SCT's entry is in its log, in a witnessed checkpoint (for audits: a call path must not fetch proofs)")
	fetchX5U := fs.Bool("fetch-x5u", false, "fetch the chain from x5u when the PASSporT has no x5c (HTTPS only, 64 KiB, 5 s)")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) != 1 {
			return usageErr("give one PASSporT or Identity header file, or - for standard input")
		}
		if *trustFile == "" {
			return usageErr("-trust is required")
		}
		if *freshness <= 0 {
			return usageErr("-freshness must be positive")
		}
		o := passport.Options{Freshness: *freshness, RequireCommitments: *requireCommitments}
		if *nowFlag != "" {
			t, err := time.Parse(time.RFC3339, *nowFlag)
			if err != nil {
				return usageErr("-now %q is not an RFC 3339 time", *nowFlag)
			}
			o.Now = t
		}
		cfg, err := readConfiguration(*trustFile)
		if err != nil {
			return err
		}
		if cfg.STI == nil {
			return fmt.Errorf("-trust %s has no sti member: pin a server that runs its STI-CT log (vesperlog -stict-roots)", *trustFile)
		}
		if o.Trust, err = passport.TrustFromConfiguration(cfg); err != nil {
			return fmt.Errorf("-trust %s: %w", *trustFile, err)
		}
		var req passport.Request
		in, err := readInput(args[0], passport.MaxToken)
		if err != nil {
			return err
		}
		if _, h, err := passport.ParseAny(in); err == nil && h != nil {
			req.Identity = in
		} else {
			req.PASSporT = in
		}
		if *original != "" {
			if req.Original, err = readInput(*original, passport.MaxToken); err != nil {
				return err
			}
		}
		if *disclose != "" {
			b, err := os.ReadFile(*disclose)
			if err != nil {
				return err
			}
			dec := json.NewDecoder(strings.NewReader(string(b)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req.Disclosures); err != nil {
				return fmt.Errorf("-disclose %s: %w", *disclose, err)
			}
		}
		if *spcFile != "" {
			b, err := os.ReadFile(*spcFile)
			if err != nil {
				return err
			}
			if o.SPCs, err = passport.ParseSPCNumbers(b); err != nil {
				return fmt.Errorf("-spc-numbers %s: %w", *spcFile, err)
			}
		}
		if *online {
			req.Online = true
			o.Online = client.NewSCTProver(o.Trust.Receipts, &http.Client{Timeout: 30 * time.Second})
		}
		if *fetchX5U {
			o.FetchX5U = passport.FetchX5U(nil)
		}
		body, err := json.Marshal(req)
		if err != nil {
			return err
		}
		resp, verr := passport.VerifyRequest(ctx, body, o)
		if verr != nil {
			check := passport.Check(verr)
			if *asJSON {
				f := struct {
					Valid  bool     `json:"valid"`
					Check  string   `json:"check"`
					Error  string   `json:"error"`
					Checks []string `json:"checks"`
				}{Check: check, Error: verr.Error(), Checks: []string{}}
				if resp != nil && resp.Checks != nil {
					f.Checks = resp.Checks
				}
				b, _ := json.MarshalIndent(f, "", "  ")
				fmt.Fprintln(stdout, string(b))
			} else if resp != nil {
				printChecks(stdout, resp.Checks)
			}
			if check == "" || check == "request" || check == "parse" {
				return fmt.Errorf("PASSporT not checked: %w", verr)
			}
			return fmt.Errorf("PASSporT does not verify: check %s failed: %w", check, verr)
		}
		if *asJSON {
			b, _ := json.MarshalIndent(resp, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return nil
		}
		fmt.Fprintf(stdout, "PASSporT OK: %s\n", resp.Certificate.Subject)
		printChecks(stdout, resp.Checks)
		return nil
	}
}

func printChecks(w io.Writer, checks []string) {
	for _, c := range checks {
		fmt.Fprintf(w, "  ✓ %s\n", c)
	}
}

// readInput reads a file, or standard input for "-", of at most limit
// bytes, trimmed of surrounding white space.
func readInput(name string, limit int64) (string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return "", err
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%s is over %d bytes", name, limit)
	}
	return strings.TrimSpace(string(b)), nil
}

// loadCertChain reads a PEM chain, leaf first.
func loadCertChain(path string) ([][]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	chain, err := passport.ParsePEMChain(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return chain, nil
}

// loadPrivateKey reads a PEM private key (PKCS #8 or SEC 1).
func loadPrivateKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, fmt.Errorf("%s is not a PEM private key", path)
	}
	var k any
	switch blk.Type {
	case "PRIVATE KEY":
		k, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		k, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("%s is a PEM %s, not a private key", path, blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s, ok := k.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("%s is not a signing key", path)
	}
	return s, nil
}

func commaList(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// newUUID is a random (version 4) UUID, RFC 9562 §5.4.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:])
}
