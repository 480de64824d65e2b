package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/receipts/vesper"
	"github.com/vesperlog/vesperlog/storage/keys"
)

func tokenIssueFlags(fs *flag.FlagSet) cli.Action {
	keyFile := fs.String("key", "", "the agent's private JWK (the key it logs statements with)")
	iss := fs.String("iss", "", "the issuer (iss), e.g. the agent's URL")
	sub := fs.String("sub", "", "the vetted entity's id (sub)")
	commitFile := fs.String("commitment", "", "the kyc-hash commitment whose digest was logged")
	digest := fs.String("kyc-data-hash", "", "the logged digest, base64url (instead of -commitment)")
	receiptFile := fs.String("receipt", "", "the digest's receipt (from vesper submit -out)")
	claimsFile := fs.String("claims", "", "persona claims, a JSON object (optional)")
	frameFile := fs.String("frame", "", "which claims are selectively disclosable, a JSON frame (optional)")
	holderFile := fs.String("holder-key", "", "the holder's public JWK, for key binding (optional)")
	lifetime := fs.Duration("lifetime", 24*time.Hour, "how long the token is valid")
	out := fs.String("out", "", "write the token here instead of standard output")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *keyFile == "" || *iss == "" || *sub == "" || *receiptFile == "" || (*commitFile == "") == (*digest == "") {
			return usageErr("-key, -iss, -sub, -receipt and one of -commitment or -kyc-data-hash are required")
		}
		key, err := keys.LoadJWK(*keyFile)
		if err != nil {
			return err
		}
		subs, err := readSubmissions(*commitFile, *digest, "", "")
		if err != nil {
			return err
		}
		rc, err := os.ReadFile(*receiptFile)
		if err != nil {
			return err
		}
		is := vesper.Issuance{Key: key, Issuer: *iss, Subject: *sub, IssuedAt: time.Now(), Lifetime: *lifetime,
			KYCDataHash: subs[0].digest, Receipt: strings.TrimSpace(string(rc))}
		if *claimsFile != "" {
			if is.Claims, err = readJSONObject(*claimsFile); err != nil {
				return err
			}
		}
		if *frameFile != "" {
			b, err := os.ReadFile(*frameFile)
			if err != nil {
				return err
			}
			is.Frame = &vesper.Frame{}
			if err := json.Unmarshal(b, is.Frame); err != nil {
				return fmt.Errorf("%s: %w", *frameFile, err)
			}
		}
		if *holderFile != "" {
			if is.HolderKey, err = readPublicJWK(*holderFile); err != nil {
				return err
			}
		}
		tok, err := vesper.Issue(is)
		if err != nil {
			return err
		}
		return writeOut(stdout, *out, tok)
	}
}

func tokenPresentFlags(fs *flag.FlagSet) cli.Action {
	tokenFile := fs.String("token", "", "the token as issued")
	disclose := fs.String("disclose", "", "comma-separated claim paths to disclose (e.g. contact_email,address,rcd.0; * for all)")
	list := fs.Bool("list", false, "list the claims the token can disclose, and stop")
	holderFile := fs.String("holder-key", "", "the holder's private JWK: add a KB-JWT")
	aud := fs.String("aud", "", "the verifier (KB-JWT aud)")
	nonce := fs.String("nonce", "", "the verifier's nonce (KB-JWT nonce)")
	out := fs.String("out", "", "write the presentation here instead of standard output")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *tokenFile == "" {
			return usageErr("-token is required")
		}
		tb, err := os.ReadFile(*tokenFile)
		if err != nil {
			return err
		}
		tok := strings.TrimSpace(string(tb))
		if *list {
			paths, err := vesper.Disclosable(tok)
			if err != nil {
				return err
			}
			fmt.Fprintln(stdout, strings.Join(paths, "\n"))
			return nil
		}
		var paths []string
		if *disclose != "" {
			paths = strings.Split(*disclose, ",")
		}
		var kb *vesper.KeyBinding
		if *holderFile != "" {
			if *aud == "" || *nonce == "" {
				return usageErr("a KB-JWT needs -aud and -nonce")
			}
			hk, err := keys.LoadJWK(*holderFile)
			if err != nil {
				return err
			}
			kb = &vesper.KeyBinding{Key: hk, Audience: *aud, Nonce: *nonce, IssuedAt: time.Now()}
		}
		pres, err := vesper.Present(tok, paths, kb)
		if err != nil {
			return err
		}
		return writeOut(stdout, *out, pres)
	}
}

// tokenOutput is token verify's JSON output.
type tokenOutput struct {
	Valid     bool           `json:"valid"`
	Issuer    string         `json:"issuer_agent"`
	Claims    map[string]any `json:"claims"`
	Disclosed []string       `json:"disclosed"`
	KeyBound  bool           `json:"key_bound"`
	LogOrigin string         `json:"log_origin"`
	LogIndex  uint64         `json:"log_index"`
	Checks    []string       `json:"checks"`
	// IssuerRevoked is the issuer's revocation, which came after the
	// token and its entry.
	IssuerRevoked *vetting.Revocation `json:"issuer_revoked,omitempty"`
}

func tokenVerifyFlags(fs *flag.FlagSet) cli.Action {
	trustFile := fs.String("trust", "", "the transparency configuration pinned with vesper trust")
	issuersFile := fs.String("issuers", "", "the vetting agents whose tokens are accepted (GET /vetting/v1/agents)")
	aud := fs.String("aud", "", "require key binding to this audience")
	nonce := fs.String("nonce", "", "require key binding with this nonce")
	asJSON := fs.Bool("json", false, "print the result as JSON")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if fs.NArg() != 1 || *trustFile == "" || *issuersFile == "" {
			return usageErr("give -trust, -issuers and one token file (or -)")
		}
		if (*aud == "") != (*nonce == "") {
			return usageErr("key binding needs both -aud and -nonce")
		}
		trust, err := loadTrust(*trustFile, "", "", "")
		if err != nil {
			return err
		}
		ib, err := os.ReadFile(*issuersFile)
		if err != nil {
			return err
		}
		issuers, err := vetting.ParseAgents(ib)
		if err != nil {
			return err
		}
		tok, err := readArg(fs.Arg(0))
		if err != nil {
			return err
		}
		o := vesper.Verification{Trust: trust, Issuers: issuers}
		if *aud != "" {
			o.KeyBinding = &vesper.KeyBindingPolicy{Audience: *aud, Nonce: *nonce}
		}
		v, err := vesper.Verify(tok, o)
		if err != nil {
			return fmt.Errorf("token does not verify: %w", err)
		}
		res := tokenOutput{Valid: true, Issuer: v.Issuer.Name, Claims: v.Claims, Disclosed: v.Disclosed, KeyBound: v.KeyBound,
			LogOrigin: v.Receipt.Origin, LogIndex: v.Receipt.Index, Checks: v.Checks, IssuerRevoked: v.Issuer.Revoked}
		if *asJSON {
			b, _ := json.MarshalIndent(res, "", "  ")
			fmt.Fprintln(stdout, string(b))
			return nil
		}
		fmt.Fprintf(stdout, "token OK: issued by agent %q about %v, logged as entry %d of %s\n", v.Issuer.Name, v.Claims["sub"], v.Receipt.Index, v.Receipt.Origin)
		for _, c := range v.Checks {
			fmt.Fprintf(stdout, "  ✓ %s\n", c)
		}
		fmt.Fprintln(stdout, "claims:")
		fmt.Fprintln(stdout, vesper.ClaimsJSON(v.Claims))
		return nil
	}
}

func readJSONObject(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil || m == nil {
		return nil, fmt.Errorf("%s is not a JSON object", path)
	}
	return m, nil
}

func readPublicJWK(path string) (*jose.JSONWebKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var k jose.JSONWebKey
	if err := json.Unmarshal(b, &k); err != nil {
		return nil, fmt.Errorf("%s is not a JWK: %w", path, err)
	}
	if !k.IsPublic() {
		return nil, fmt.Errorf("%s is a private key; give the public one (%s)", path, publicPath(path))
	}
	return &k, nil
}

// readArg reads a file, or standard input for "-", bounded.
func readArg(name string) (string, error) {
	var r io.Reader = os.Stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return "", err
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, 1<<20))
	return strings.TrimSpace(string(b)), err
}

func writeOut(stdout io.Writer, path, s string) error {
	if path == "" {
		_, err := fmt.Fprintln(stdout, s)
		return err
	}
	return keys.WriteFile(path, []byte(s+"\n"), 0o644)
}
