package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/storage/keys"
)

var b64 = base64.RawURLEncoding

func keygenFlags(fs *flag.FlagSet, kind string) cli.Action {
	out := fs.String("out", "", "private key file to write (the public key goes beside it, as NAME.pub.jwk)")
	alg := fs.String("alg", "ES256", "ES256 or EdDSA")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *out == "" {
			return usageErr("-out is required")
		}
		if _, err := os.Stat(*out); err == nil {
			return fmt.Errorf("%s exists; refusing to overwrite a key", *out)
		}
		k, err := keys.NewJWK(*alg)
		if err != nil {
			return err
		}
		if err := keys.WriteJWK(*out, k); err != nil {
			return err
		}
		pub := k.Public()
		pb, err := json.MarshalIndent(pub, "", "  ")
		if err != nil {
			return err
		}
		pubPath := publicPath(*out)
		if err := keys.WriteFile(pubPath, append(pb, '\n'), 0o644); err != nil {
			return err
		}
		to := "the log operator"
		if kind == "holder" {
			to = "the vetting agent, for key binding"
		}
		fmt.Fprintf(stdout, "private key: %s (keep it secret)\npublic key:  %s (give it to %s)\nthumbprint:  %s\n", *out, pubPath, to, k.KeyID)
		return nil
	}
}

func publicPath(private string) string {
	return strings.TrimSuffix(private, ".jwk") + ".pub.jwk"
}

func agentsAddFlags(fs *flag.FlagSet) cli.Action {
	file := fs.String("agents", "", "the log's agent registry file (a posix log's <data>/agents.json)")
	name := fs.String("name", "", "the agent's name")
	keyFile := fs.String("key", "", "the agent's public JWK")
	issuer := fs.String("iss", "", "the iss the agent's vesper tokens carry (optional; checked by verifiers when set)")
	create := fs.Bool("create", false, "create FILE (and its directory) if it does not exist")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *file == "" || *name == "" || *keyFile == "" {
			return usageErr("-agents, -name and -key are required")
		}
		kb, err := os.ReadFile(*keyFile)
		if err != nil {
			return err
		}
		var key jose.JSONWebKey
		if err := json.Unmarshal(kb, &key); err != nil {
			return fmt.Errorf("%s is not a JWK: %w", *keyFile, err)
		}
		if !key.IsPublic() {
			return fmt.Errorf("%s is a private key; give the public one (%s)", *keyFile, publicPath(*keyFile))
		}
		reg := &vetting.Agents{}
		if b, err := os.ReadFile(*file); err == nil {
			if reg, err = vetting.ParseAgents(b); err != nil {
				return err
			}
		} else if !os.IsNotExist(err) {
			return err
		} else if !*create {
			return fmt.Errorf("no agent registry at %s (a posix log's is <data>/agents.json, which vesperlog creates on its first start); give -create to start a new registry file", *file)
		}
		reg, err = reg.Add(*name, key, *issuer)
		if err != nil {
			return err
		}
		b, err := reg.MarshalJSON()
		if err != nil {
			return err
		}
		if err := keys.WriteFile(*file, b, 0o644); err != nil {
			return err
		}
		tp, err := vetting.Thumbprint(&key)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "registered agent %q (key %s) in %s\n", *name, b64.EncodeToString(tp[:]), *file)
		return nil
	}
}

// commitment is the record kyc-hash keeps for the agent: the salt is the
// secret that makes the logged digest reveal nothing, so it stays with the
// agent and is never sent to the log.
type commitment struct {
	KYCDataHash  string `json:"kyc_data_hash"`
	HashAlg      string `json:"hash_alg"`
	Salt         string `json:"salt"`
	Construction string `json:"construction"`
	Source       string `json:"source"`
}

const construction = "SHA-256(salt || file bytes); salt is 32 random bytes"

func kycHashFlags(fs *flag.FlagSet) cli.Action {
	in := fs.String("in", "", "the KYC/KYB record (JSON) to commit to")
	out := fs.String("out", "", "where to keep the salt and digest (mode 0600)")
	saltIn := fs.String("salt", "", "recompute a commitment with this salt (base64url) instead of a new one")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *in == "" {
			return usageErr("-in is required")
		}
		if (*out == "") == (*saltIn == "") {
			return usageErr("give -out (new commitment) or -salt (recompute one)")
		}
		data, err := os.ReadFile(*in)
		if err != nil {
			return err
		}
		if !json.Valid(data) {
			return fmt.Errorf("%s is not JSON", *in)
		}
		salt := make([]byte, 32)
		if *saltIn != "" {
			if salt, err = b64.Strict().DecodeString(*saltIn); err != nil || len(salt) != 32 {
				return fmt.Errorf("-salt must be 32 bytes, base64url without padding")
			}
		} else if _, err := rand.Read(salt); err != nil {
			return err
		}
		h := sha256.New()
		h.Write(salt)
		h.Write(data)
		digest := b64.EncodeToString(h.Sum(nil))
		if *out != "" {
			rec, err := json.MarshalIndent(commitment{KYCDataHash: digest, HashAlg: vetting.HashAlg, Salt: b64.EncodeToString(salt), Construction: construction, Source: *in}, "", "  ")
			if err != nil {
				return err
			}
			if err := keys.WriteFile(*out, append(rec, '\n'), 0o600); err != nil {
				return err
			}
		}
		fmt.Fprintln(stdout, digest)
		return nil
	}
}
