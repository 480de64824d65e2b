package main

import (
	"context"
	"crypto"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/vesperlog/vesperlog/cmd/internal/cli"
	"github.com/vesperlog/vesperlog/log/state"
	"github.com/vesperlog/vesperlog/receipts"
	"github.com/vesperlog/vesperlog/storage/keys"
)

// defaultReceiptKey is where a front end's receipt key is, under -data.
const defaultReceiptKey = "keys/receipt-es256.jwk"

// stagedSuffix names the new receipt key while a rotation is under way.
const stagedSuffix = ".next"

// rotateDescription is keys rotate-receipt's -h.
const rotateDescription = "Gives a front end a new ES256 receipt key: the old key is marked retired (exp) in " +
	"the backend's receipt key history, which keeps it so that its receipts still verify, and the new key signs " +
	"from now on (nbf). Stop the front end first, and start it again after. Run it again if it was interrupted: " +
	"it finishes the rotation."

// rotateReceipt replaces a stopped front end's receipt key. The order makes
// a crash at any point safe, and running the command again finishes what
// it started:
//
//  1. The new key is written to FILE.next (0600, fsynced, as every key).
//     A crash here leaves the key file and the history as they were; the
//     next run reuses FILE.next.
//  2. The history, in one compare-and-swap, retires the old key (exp =
//     now) and adds the new one (nbf = now): the new public key is on
//     record before anything signs with it, and no key is ever removed.
//  3. The new key replaces FILE (atomically, fsynced), and FILE.next is
//     removed.
//
// A crash between 2 and 3 leaves FILE holding a key the history calls
// retired: the server refuses to start with it, so it never signs with a
// retired key, and running rotate-receipt again finishes the rotation with
// FILE.next, keeping the times step 2 recorded.
//
// The command refuses to run while a server uses the key: a server holds
// a shared lock on its key file (every backend), and on posix the data
// directory's lock too; this command takes both, exclusively, for its
// whole run.
func rotateReceiptFlags(fs *flag.FlagSet) cli.Action {
	c := &config{}
	c.storageFlags(fs)
	keyFile := fs.String("receipt-key", "", "the front end's receipt key file (default <data>/"+defaultReceiptKey+")")
	return func(ctx context.Context, args []string, stdout io.Writer) error {
		if len(args) > 0 {
			return cli.Usagef("unexpected arguments %q", args)
		}
		return rotateReceipt(ctx, c, *keyFile, stdout)
	}
}

func rotateReceipt(ctx context.Context, c *config, keyFile string, stdout io.Writer) error {
	path := keyFile
	if path == "" {
		path = filepath.Join(c.Data, defaultReceiptKey)
	}

	lock, err := keys.LockFile(path, true)
	switch {
	case errors.Is(err, keys.ErrLocked):
		return fmt.Errorf("receipt key %s is in use by a running server: stop it, then rotate", path)
	case errors.Is(err, os.ErrNotExist):
		return fmt.Errorf("no receipt key at %s: a front end creates it on its first start (or name it with -receipt-key)", path)
	case err != nil:
		return err
	}
	defer lock.Close()
	be, err := c.openStorage(ctx)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return fmt.Errorf("%w: a server is running on it; stop it, then rotate", err)
	}
	if err != nil {
		return err
	}
	defer be.Close()

	old, err := publicKey(path)
	if err != nil {
		return err
	}
	staged := path + stagedSuffix
	if k, err := keys.LoadJWK(staged); err == nil {
		if sk, err := toReceiptKey(k); err == nil && sk.public.KeyID == old.KeyID {
			// A run that installed the staged key and then stopped before
			// removing it: the rotation is done; rotating again now would
			// retire the key it just installed.
			if err := os.Remove(staged); err != nil {
				return fmt.Errorf("the last rotation is done, but %s could not be removed: %w", staged, err)
			}
			fmt.Fprintf(stdout, "the last rotation of %s was already done (removed %s); run again to rotate once more\n", path, staged)
			return nil
		}
	}
	next, resumed, err := stageKey(staged, old.KeyID)
	if err != nil {
		return err
	}
	set, err := state.RotateReceiptKey(ctx, be.State(), old, next.public, time.Now())
	if errors.Is(err, state.ErrReceiptKeyRetired) {
		return fmt.Errorf("%w (the staged key %s; remove it and run again)", err, staged)
	}
	if err != nil {
		return err
	}
	if err := keys.WriteJWK(path, next.private); err != nil {
		return err
	}
	if err := os.Remove(staged); err != nil {
		// A later run sees that the staged key is the current one, and
		// only removes it.
		return fmt.Errorf("the rotation is done, but %s could not be removed: %w", staged, err)
	}

	if resumed {
		fmt.Fprintf(stdout, "finished an interrupted rotation (%s)\n", staged)
	}
	fmt.Fprintf(stdout, "receipt key %s rotated\n", path)
	for _, k := range []struct{ what, kid string }{{"retired", old.KeyID}, {"signing", next.public.KeyID}} {
		for _, hk := range set.Key(k.kid) {
			fmt.Fprintf(stdout, "  %-8s %s  window %s\n", k.what, hk.KeyID, hk.Window())
		}
	}
	fmt.Fprintln(stdout, "start the front end again; verifiers learn the new key by fetching the trust document again (vesper trust)")
	return nil
}

// receiptKey is a receipt key pair.
type receiptKey struct {
	private *jose.JSONWebKey
	public  jose.JSONWebKey // as the history and the JWKS list it
}

// publicKey reads the receipt key file at path and returns its public key.
func publicKey(path string) (jose.JSONWebKey, error) {
	k, err := keys.LoadJWK(path)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("receipt key: %w", err)
	}
	rk, err := toReceiptKey(k)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("receipt key %s: %w", path, err)
	}
	return rk.public, nil
}

func toReceiptKey(k *jose.JSONWebKey) (*receiptKey, error) {
	priv, ok := k.Key.(crypto.Signer)
	if !ok {
		return nil, errors.New("not a signing key")
	}
	s, err := receipts.NewSigner(priv)
	if err != nil {
		return nil, err
	}
	return &receiptKey{private: k, public: s.PublicJWK()}, nil
}

// stageKey returns the new key at staged, written there first if there is
// none: a rotation's step 1. resumed says an earlier run had staged it. A
// staged key equal to the current one (a run that crashed after step 3,
// before removing it) is replaced by a fresh one.
func stageKey(staged, currentKID string) (next *receiptKey, resumed bool, err error) {
	k, err := keys.LoadJWK(staged)
	switch {
	case err == nil:
		if next, err = toReceiptKey(k); err != nil {
			return nil, false, fmt.Errorf("staged receipt key %s: %w (remove it and run again)", staged, err)
		}
		if next.public.KeyID != currentKID {
			return next, true, nil
		}
	case !errors.Is(err, os.ErrNotExist):
		return nil, false, fmt.Errorf("staged receipt key: %w (remove it and run again)", err)
	}
	k, err = keys.NewJWK("ES256")
	if err != nil {
		return nil, false, err
	}
	if next, err = toReceiptKey(k); err != nil {
		return nil, false, err
	}
	if err := keys.WriteJWK(staged, k); err != nil {
		return nil, false, err
	}
	return next, false, nil
}
