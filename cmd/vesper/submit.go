package main

import (
	"bufio"
	"context"
	"crypto"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/log/vetting"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// submission is one digest to log, with its optional subject.
type submission struct {
	digest  [32]byte
	subject string
}

func submitFlags(fs *flag.FlagSet) cli.Action {
	server := fs.String("server", "http://127.0.0.1:8080", "the vesperlog server")
	keyFile := fs.String("key", "", "the agent's private JWK")
	commitFile := fs.String("commitment", "", "a commitment written by kyc-hash -out")
	digest := fs.String("digest", "", "a SHA-256 digest, base64url without padding")
	digestsFile := fs.String("digests", "", "a file of digests, one per line, each optionally followed by a space and a subject")
	sub := fs.String("sub", "", "the subject (entity id) the digest is about; optional")
	out := fs.String("out", "", "write the receipt here (single digest only)")
	asJSON := fs.Bool("json", false, "print one JSON object per digest")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *keyFile == "" {
			return usageErr("-key is required")
		}
		n := 0
		for _, s := range []string{*commitFile, *digest, *digestsFile} {
			if s != "" {
				n++
			}
		}
		if n != 1 {
			return usageErr("give exactly one of -commitment, -digest, -digests")
		}
		subs, err := readSubmissions(*commitFile, *digest, *digestsFile, *sub)
		if err != nil {
			return err
		}
		if *out != "" && len(subs) != 1 {
			return usageErr("-out needs a single digest")
		}
		key, err := keys.LoadJWK(*keyFile)
		if err != nil {
			return err
		}
		pub := key.Public()
		statements := make([]string, len(subs))
		now := uint64(time.Now().Unix())
		for i, s := range subs {
			st, err := vetting.NewStatement(&pub, s.digest, s.subject, now)
			if err != nil {
				return err
			}
			if statements[i], err = st.Sign(key.Key.(crypto.Signer)); err != nil {
				return err
			}
		}

		c := client.NewVetting(strings.TrimSuffix(*server, "/")+"/vetting", nil)
		var answers []vetting.AddResponse
		if len(statements) == 1 {
			a, err := c.Add(ctx, statements[0])
			if err != nil {
				return err
			}
			answers = append(answers, *a)
		} else {
			for start := 0; start < len(statements); start += 1000 {
				end := min(start+1000, len(statements))
				b, err := c.AddBatch(ctx, statements[start:end])
				if err != nil {
					return err
				}
				answers = append(answers, b.Entries...)
			}
		}

		failed := 0
		for i, a := range answers {
			d := b64.EncodeToString(subs[i].digest[:])
			switch {
			case *asJSON:
				line, _ := json.Marshal(struct {
					Digest string `json:"kyc_data_hash"`
					vetting.AddResponse
				}{d, a})
				fmt.Fprintln(stdout, string(line))
			case a.Problem != nil:
				fmt.Fprintf(stdout, "%s: refused: %s: %s\n", d, a.Problem.Title, a.Problem.Detail)
			case a.Duplicate:
				fmt.Fprintf(stdout, "%s: already logged at index %d\n", d, a.Index)
			default:
				fmt.Fprintf(stdout, "%s: logged at index %d\n", d, a.Index)
			}
			if a.Problem != nil {
				failed++
			}
		}
		if *out != "" {
			if err := keys.WriteFile(*out, []byte(answers[0].Receipt+"\n"), 0o644); err != nil {
				return err
			}
			if !*asJSON {
				fmt.Fprintf(stdout, "receipt written to %s\n", *out)
			}
		}
		if failed > 0 {
			return fmt.Errorf("%d of %d digests were not logged", failed, len(answers))
		}
		return nil
	}
}

func readSubmissions(commitFile, digest, digestsFile, sub string) ([]submission, error) {
	one := func(d string) ([]submission, error) {
		s := submission{subject: sub}
		if err := decodeDigest(d, &s.digest); err != nil {
			return nil, err
		}
		return []submission{s}, nil
	}
	switch {
	case digest != "":
		return one(digest)
	case commitFile != "":
		b, err := os.ReadFile(commitFile)
		if err != nil {
			return nil, err
		}
		var c commitment
		if err := json.Unmarshal(b, &c); err != nil || c.KYCDataHash == "" {
			return nil, fmt.Errorf("%s is not a kyc-hash commitment", commitFile)
		}
		return one(c.KYCDataHash)
	}
	if sub != "" {
		return nil, usageErr("-sub goes with a single digest; put subjects in the -digests file")
	}
	f, err := os.Open(digestsFile)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var subs []submission
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		d, subject, _ := strings.Cut(text, " ")
		s := submission{subject: strings.TrimSpace(subject)}
		if err := decodeDigest(d, &s.digest); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", digestsFile, line, err)
		}
		subs = append(subs, s)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(subs) == 0 {
		return nil, errors.New(digestsFile + " has no digests")
	}
	return subs, nil
}

func decodeDigest(s string, out *[32]byte) error {
	b, err := b64.Strict().DecodeString(s)
	if err != nil || len(b) != 32 {
		return fmt.Errorf("digest %q is not 32 bytes of base64url without padding", s)
	}
	copy(out[:], b)
	return nil
}
