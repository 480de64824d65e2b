package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"

	"github.com/vesperlog/vesperlog/client"
	"github.com/vesperlog/vesperlog/receipts/vesper"
	"github.com/vesperlog/vesperlog/receipts/vesper/agent"
	"github.com/vesperlog/vesperlog/storage/keys"
)

func agentEnrollFlags(fs *flag.FlagSet) cli.Action {
	dir := fs.String("entities", "", "the agent's directory of entity records")
	id := fs.String("id", "", "the entity's id (the tokens' sub)")
	commitFile := fs.String("commitment", "", "the entity's kyc-hash commitment")
	digest := fs.String("kyc-data-hash", "", "the entity's digest, base64url (instead of -commitment)")
	claimsFile := fs.String("claims", "", "persona claims, a JSON object (optional)")
	frameFile := fs.String("frame", "", "which claims are selectively disclosable (optional)")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *dir == "" || *id == "" || (*commitFile == "") == (*digest == "") {
			return usageErr("-entities, -id and one of -commitment or -kyc-data-hash are required")
		}
		subs, err := readSubmissions(*commitFile, *digest, "", "")
		if err != nil {
			return err
		}
		e := agent.Entity{EntityID: *id, KYCDataHash: b64.EncodeToString(subs[0].digest[:])}
		if *claimsFile != "" {
			if e.Claims, err = readJSONObject(*claimsFile); err != nil {
				return err
			}
		}
		if *frameFile != "" {
			b, err := os.ReadFile(*frameFile)
			if err != nil {
				return err
			}
			e.Frame = &vesper.Frame{}
			if err := json.Unmarshal(b, e.Frame); err != nil {
				return fmt.Errorf("%s: %w", *frameFile, err)
			}
		}
		bearer, err := agent.Enroll(*dir, e)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, bearer)
		return nil
	}
}

func agentServeFlags(fs *flag.FlagSet) cli.Action {
	addr := fs.String("addr", "127.0.0.1:8081", "address to listen on")
	server := fs.String("server", "http://127.0.0.1:8080", "the vesperlog server")
	keyFile := fs.String("key", "", "the agent's private JWK")
	iss := fs.String("iss", "", "the iss of the agent's tokens")
	dir := fs.String("entities", "", "the directory of entity records")
	trustFile := fs.String("trust", "", "the log's transparency configuration, pinned with vesper trust")
	lifetime := fs.Duration("lifetime", 24*time.Hour, "token lifetime")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if *keyFile == "" || *iss == "" || *dir == "" || *trustFile == "" {
			return usageErr("-key, -iss, -entities and -trust are required")
		}
		key, err := keys.LoadJWK(*keyFile)
		if err != nil {
			return err
		}
		trust, err := loadTrust(*trustFile, "", "", "")
		if err != nil {
			return err
		}
		svc, err := agent.New(agent.Config{Key: key, Issuer: *iss, Log: client.NewVetting(*server+"/vetting", nil), Trust: trust, Entities: *dir, Lifetime: *lifetime})
		if err != nil {
			return err
		}
		ln, err := net.Listen("tcp", *addr)
		if err != nil {
			return err
		}
		hs := &http.Server{Handler: svc.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
			WriteTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
		fmt.Fprintf(stdout, "vetting agent listening on http://%s\n", ln.Addr())
		errc := make(chan error, 1)
		go func() { errc <- hs.Serve(ln) }()
		select {
		case err := <-errc:
			return err
		case <-ctx.Done():
		}
		slog.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := hs.Shutdown(sctx); err != nil && !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
}
