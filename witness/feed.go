package witness

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/transparency-dev/tessera/client"
	"golang.org/x/mod/sumdb/note"
)

// Feeder pushes the checkpoints of a tlog-tiles log to a witness, for logs
// that do not ask witnesses themselves: it fetches and verifies the log's
// checkpoint, builds the consistency proof from the log's tiles, and calls
// the witness's add-checkpoint. The expected call pattern is
//
//	f := &witness.Feeder{Log: logURL, LogKey: v, Witness: witnessURL, WitnessKey: wv}
//	err := f.Run(ctx, time.Minute)
type Feeder struct {
	Log        *url.URL      // the log's tlog-tiles prefix
	LogKey     note.Verifier // its checkpoint key; its name is the origin
	Witness    *url.URL      // the witness's submission prefix
	WitnessKey note.Verifier // its cosignature key (policy.NewWitnessVerifier)
	HTTP       *http.Client  // nil means http.DefaultClient

	// old is the size the witness last cosigned, as far as the feeder
	// knows; owned by the goroutine calling Once or Run.
	old uint64
}

// Once feeds the log's current checkpoint and returns it cosigned by the
// witness (log signature and cosignature verified).
func (f *Feeder) Once(ctx context.Context) ([]byte, error) {
	hc := f.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	fetcher, err := client.NewHTTPFetcher(f.Log, hc)
	if err != nil {
		return nil, err
	}
	cp, raw, _, err := client.FetchCheckpoint(ctx, fetcher.ReadCheckpoint, f.LogKey, f.LogKey.Name())
	if err != nil {
		return nil, fmt.Errorf("log checkpoint: %w", err)
	}
	// Two tries: the first may learn the witness's size from a 409.
	for try := 0; try < 2; try++ {
		if f.old > cp.Size {
			return nil, fmt.Errorf("the witness has cosigned size %d, larger than the log's %d: the log may have rolled back", f.old, cp.Size)
		}
		var proof [][]byte
		if f.old > 0 && f.old < cp.Size {
			pb, err := client.NewProofBuilder(ctx, cp.Size, fetcher.ReadTile)
			if err != nil {
				return nil, err
			}
			if proof, err = pb.ConsistencyProof(ctx, f.old, cp.Size); err != nil {
				return nil, fmt.Errorf("consistency proof %d to %d: %w", f.old, cp.Size, err)
			}
		}
		var body bytes.Buffer
		fmt.Fprintf(&body, "old %d\n", f.old)
		for _, h := range proof {
			body.WriteString(base64.StdEncoding.EncodeToString(h) + "\n")
		}
		body.WriteString("\n")
		body.Write(raw)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.Witness.JoinPath("add-checkpoint").String(), &body)
		if err != nil {
			return nil, err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
		answer, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
		switch resp.StatusCode {
		case http.StatusOK:
			signed := append(append([]byte(nil), raw...), answer...)
			if _, err := note.Open(signed, note.VerifierList(f.LogKey, f.WitnessKey)); err != nil {
				return nil, fmt.Errorf("the witness's answer does not verify: %w", err)
			}
			if !bytes.Contains(answer, []byte("— "+f.WitnessKey.Name()+" ")) {
				return nil, fmt.Errorf("the witness answered without its cosignature")
			}
			f.old = cp.Size
			return signed, nil
		case http.StatusConflict:
			size, err := strconv.ParseUint(strings.TrimSuffix(string(answer), "\n"), 10, 64)
			if err != nil || resp.Header.Get("Content-Type") != "text/x.tlog.size" {
				return nil, fmt.Errorf("witness answered 409 without a text/x.tlog.size body")
			}
			f.old = size
			continue
		default:
			return nil, fmt.Errorf("witness answered %s: %s", resp.Status, bytes.TrimSpace(answer))
		}
	}
	return nil, fmt.Errorf("the witness's size kept changing")
}

// Run feeds every interval until ctx ends, logging failures.
func (f *Feeder) Run(ctx context.Context, interval time.Duration) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := f.Once(ctx); err != nil {
			slog.Error("feeding the witness", "log", f.LogKey.Name(), "witness", f.Witness, "err", err)
		} else {
			slog.Info("checkpoint cosigned", "log", f.LogKey.Name(), "size", f.old)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
