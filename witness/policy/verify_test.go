package policy

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"
)

func mustParse(t testing.TB, k *testKeys, s string) *Policy {
	t.Helper()
	p, err := Parse([]byte(k.expand(s)))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestVerify(t *testing.T) {
	k := keys(t)
	// A log key from note.GenerateKey with real randomness, as a log has.
	skey, vkey, err := note.GenerateKey(rand.Reader, "example.com/fresh")
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	w := func(n string) note.Signer { return k.w[n].signer }
	l1 := k.l1.signer
	cp := body("example.com/log1", 5)

	none := mustParse(t, k, "log {L1}\nlog "+vkey+"\nquorum none\n")
	twoOfThree := mustParse(t, k, "log {L1}\n"+x123+"group G 2 X1 X2 X3\nquorum G\n")
	single := mustParse(t, k, "log {L1}\nwitness X1 {X1}\nquorum X1\n")
	xy := mustParse(t, k, xyExample)

	for _, c := range []struct {
		name      string
		p         *Policy
		msg       []byte
		err       error
		errText   string   // for errors
		cosigners []string // for successes
	}{
		{name: "quorum none, log only", p: none, msg: sign(t, cp, l1)},
		{name: "quorum none, fresh log key", p: none, msg: sign(t, body("example.com/fresh", 0), fresh)},
		{name: "quorum none, cosignatures ignored", p: none, msg: sign(t, cp, l1, w("X1"))},
		{name: "2 of 3, two valid", p: twoOfThree, msg: sign(t, cp, l1, w("X1"), w("X3")), cosigners: []string{"X1", "X3"}},
		{name: "2 of 3, three valid", p: twoOfThree, msg: sign(t, cp, w("X3"), w("X2"), l1, w("X1")), cosigners: []string{"X1", "X2", "X3"}},
		{name: "2 of 3, one valid", p: twoOfThree, msg: sign(t, cp, l1, w("X2")),
			err: ErrQuorum, errText: `verified cosigners ["X2"]; quorum "G": group "G" needs 2 of ["X1" "X2" "X3"], has 1 (not met)`},
		{name: "2 of 3, none", p: twoOfThree, msg: sign(t, cp, l1), err: ErrQuorum, errText: "verified cosigners []"},
		{name: "2 of 3, one valid and one unknown", p: twoOfThree, msg: sign(t, cp, l1, w("X2"), w("Z")), err: ErrQuorum, errText: `["X2"]`},
		{name: "2 of 3, unknown cosigner ignored", p: twoOfThree, msg: sign(t, cp, w("Z"), l1, w("X1"), w("X2")), cosigners: []string{"X1", "X2"}},
		{name: "single witness", p: single, msg: sign(t, cp, l1, w("X1")), cosigners: []string{"X1"}},
		{name: "single witness missing", p: single, msg: sign(t, cp, l1, w("X2")),
			err: ErrQuorum, errText: `quorum needs a cosignature from witness "X1"`},
		{name: "extension lines", p: single, msg: sign(t, body("example.com/log1", 5, "ext one", "\xe2\x84\xaa"), l1, w("X1")), cosigners: []string{"X1"}},
		{name: "empty tree", p: single, msg: sign(t, body("example.com/log1", 0), l1, w("X1")), cosigners: []string{"X1"}},

		// The spec's X-and-Y example: 2 of X1-X3 and any of Y1-Y3.
		{name: "X-and-Y met", p: xy, msg: sign(t, cp, l1, w("X1"), w("X3"), w("Y2")), cosigners: []string{"X1", "X3", "Y2"}},
		{name: "X-and-Y all", p: xy, msg: sign(t, cp, l1, w("X1"), w("X2"), w("X3"), w("Y1"), w("Y2"), w("Y3")),
			cosigners: []string{"X1", "X2", "X3", "Y1", "Y2", "Y3"}},
		{name: "X-and-Y one X", p: xy, msg: sign(t, cp, l1, w("X1"), w("Y1"), w("Y2"), w("Y3")), err: ErrQuorum,
			errText: `group "X-and-Y" needs 2 of ["X-witnesses" "Y-witnesses"], has 1 (not met); group "Y-witnesses" needs 1 of ["Y1" "Y2" "Y3"], has 3 (met); group "X-witnesses" needs 2 of ["X1" "X2" "X3"], has 1 (not met)`},
		{name: "X-and-Y no Y", p: xy, msg: sign(t, cp, l1, w("X1"), w("X2"), w("X3")), err: ErrQuorum, errText: `group "Y-witnesses" needs 1 of ["Y1" "Y2" "Y3"], has 0 (not met)`},

		// Which log.
		{name: "wrong origin", p: twoOfThree, msg: sign(t, body("example.com/log2", 5), k.l2.signer, w("X1"), w("X2")),
			err: ErrUnknownLog, errText: `origin "example.com/log2"`},
		{name: "origin of log1 signed by log2", p: mustParse(t, k, "log {L1}\nlog {L2}\nquorum none\n"), msg: sign(t, cp, k.l2.signer),
			err: ErrLogSignature, errText: "no signature by log key example.com/log1+"},
		{name: "no log signature", p: twoOfThree, msg: sign(t, cp, w("X1"), w("X2")), err: ErrLogSignature},
		{name: "empty policy has no logs", p: mustParse(t, k, "quorum none\n"), msg: sign(t, cp, l1), err: ErrUnknownLog},

		// Tampering.
		{name: "tampered size", p: twoOfThree, msg: tamper(t, sign(t, cp, l1, w("X1"), w("X2")), "\n5\n", "\n6\n"),
			err: ErrLogSignature, errText: "does not verify"},
		{name: "tampered size, cosignatures first", p: twoOfThree, msg: tamper(t, sign(t, cp, w("X1"), w("X2"), l1), "\n5\n", "\n6\n"),
			err: ErrLogSignature, errText: "does not verify"},
		{name: "tampered extension", p: none, msg: tamper(t, sign(t, body("example.com/log1", 5, "ext"), l1), "ext", "exu"), err: ErrLogSignature},
		{name: "added extension", p: none, msg: tamper(t, sign(t, cp, l1), "=\n\n", "=\next\n\n"), err: ErrLogSignature},
		{name: "tampered cosignature", p: twoOfThree, msg: flipSig(t, sign(t, cp, l1, w("X1"), w("X2"), w("X3")), "witness.example/X2"),
			err: ErrCosignature, errText: `witness "X2"`},
		{name: "tampered log signature", p: twoOfThree, msg: flipSig(t, sign(t, cp, l1, w("X1"), w("X2")), "example.com/log1"), err: ErrLogSignature},
		{name: "cosignature timestamp over 2^63-1", p: single, msg: cosignAt(t, k.w["X1"], sign(t, cp, l1), 1<<63),
			err: ErrCosignature, errText: `witness "X1"`},
		{name: "cosignature timestamp 2^63-1", p: single, msg: cosignAt(t, k.w["X1"], sign(t, cp, l1), 1<<63-1), cosigners: []string{"X1"}},

		// Malformed checkpoints, each signed by the log so only the body is at fault.
		{name: "size leading zero", p: none, msg: sign(t, "example.com/log1\n05\n"+hashLine+"\n", l1), err: ErrMalformedCheckpoint, errText: "leading zeroes"},
		{name: "size sign", p: none, msg: sign(t, "example.com/log1\n+5\n"+hashLine+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "size empty", p: none, msg: sign(t, "example.com/log1\n\n"+hashLine+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "size overflow", p: none, msg: sign(t, "example.com/log1\n18446744073709551616\n"+hashLine+"\n", l1), err: ErrMalformedCheckpoint, errText: "64 bits"},
		{name: "size max", p: none, msg: sign(t, "example.com/log1\n18446744073709551615\n"+hashLine+"\n", l1)},
		{name: "hash 31 bytes", p: none, msg: sign(t, "example.com/log1\n5\n"+base64.StdEncoding.EncodeToString(make([]byte, 31))+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "hash 33 bytes", p: none, msg: sign(t, "example.com/log1\n5\n"+base64.StdEncoding.EncodeToString(make([]byte, 33))+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "hash unpadded", p: none, msg: sign(t, "example.com/log1\n5\n"+strings.TrimRight(hashLine, "=")+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "hash non-canonical", p: none, msg: sign(t, "example.com/log1\n5\n"+hashLine[:42]+"9=\n", l1), err: ErrMalformedCheckpoint},
		{name: "hash URL base64", p: none, msg: sign(t, "example.com/log1\n5\n"+strings.NewReplacer("+", "-", "/", "_").Replace(hashLine)+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "two lines", p: none, msg: sign(t, "example.com/log1\n5\n", l1), err: ErrMalformedCheckpoint, errText: "at least 3"},
		{name: "empty origin", p: none, msg: sign(t, "\n5\n"+hashLine+"\n", l1), err: ErrMalformedCheckpoint},
		{name: "empty extension line", p: none, msg: []byte("example.com/log1\n5\n" + hashLine + "\n\next\n\n— example.com/log1 AAAAAAAA\n"), err: ErrMalformedCheckpoint},
		{name: "no signatures", p: none, msg: []byte(cp + "\n"), err: ErrMalformedCheckpoint},
		{name: "no blank line", p: none, msg: []byte(cp), err: ErrMalformedCheckpoint},
		{name: "carriage return", p: none, msg: tamper(t, sign(t, cp, l1), "log1\n", "log1\r\n"), err: ErrMalformedCheckpoint},
		{name: "invalid UTF-8", p: none, msg: append(sign(t, cp, l1), 0xff), err: ErrMalformedCheckpoint},
		{name: "bad signature line", p: none, msg: append(sign(t, cp, l1), "— \n"...), err: ErrMalformedCheckpoint},
		{name: "signature without newline", p: none, msg: sign(t, cp, l1)[:len(sign(t, cp, l1))-1], err: ErrMalformedCheckpoint},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.p.Verify(c.msg)
			if c.err != nil {
				t.Log(err)
				if !errors.Is(err, c.err) {
					t.Fatalf("Verify error = %v, want %v", err, c.err)
				}
				for _, other := range sentinels {
					if other != c.err && errors.Is(err, other) {
						t.Errorf("error %v also wraps %v", err, other)
					}
				}
				if !strings.Contains(err.Error(), c.errText) {
					t.Errorf("error %q does not say %q", err, c.errText)
				}
				if got != nil {
					t.Errorf("Verify returned a checkpoint with an error")
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if !reflect.DeepEqual(got.Cosigners, c.cosigners) {
				t.Errorf("Cosigners = %q, want %q", got.Cosigners, c.cosigners)
			}
			if got.Note == nil || !strings.HasPrefix(string(c.msg), got.Note.Text) {
				t.Errorf("Note = %+v", got.Note)
			}
			checkCheckpoint(t, got)
		})
	}
}

var sentinels = []error{ErrMalformedPolicy, ErrMalformedCheckpoint, ErrUnknownLog, ErrLogSignature, ErrCosignature, ErrQuorum}

// hashLine is a valid hash line using '/' and ending "8=", whose last
// character has two zero padding bits ("9=" would be the same bytes,
// spelled non-canonically).
var hashLine = base64.StdEncoding.EncodeToString([]byte(strings.Repeat("\xff", 32)))

// checkCheckpoint checks that the parsed fields are those of the note text.
func checkCheckpoint(t testing.TB, c *Checkpoint) {
	t.Helper()
	want := fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Hash[:]))
	if !strings.HasPrefix(c.Note.Text, want) {
		t.Errorf("checkpoint fields %q do not match note text %q", want, c.Note.Text)
	}
}

func TestVerifyFields(t *testing.T) {
	k := keys(t)
	p := mustParse(t, k, "log {L1}\n"+x123+"group G 2 X1 X2 X3\nquorum G\n")
	msg := sign(t, body("example.com/log1", 1234567), k.w["Z"].signer, k.l1.signer, k.w["X3"].signer, k.w["X1"].signer)
	c, err := p.Verify(msg)
	if err != nil {
		t.Fatal(err)
	}
	want := body("example.com/log1", 1234567)
	h, _ := base64.StdEncoding.DecodeString(strings.Split(want, "\n")[2])
	if c.Origin != "example.com/log1" || c.Size != 1234567 || string(c.Hash[:]) != string(h) || c.Note.Text != want {
		t.Errorf("Checkpoint = %+v", c)
	}
	if len(c.Note.Sigs) != 3 || len(c.Note.UnverifiedSigs) != 1 || c.Note.UnverifiedSigs[0].Name != "witness.example/Z" {
		t.Errorf("Note.Sigs = %+v, UnverifiedSigs = %+v", c.Note.Sigs, c.Note.UnverifiedSigs)
	}
}

// tamper replaces the first old in msg with new.
func tamper(t testing.TB, msg []byte, old, new string) []byte {
	t.Helper()
	if !strings.Contains(string(msg), old) {
		t.Fatalf("%q not in %q", old, msg)
	}
	return []byte(strings.Replace(string(msg), old, new, 1))
}

// flipSig flips one bit of the signature (not the key ID) by keyName.
func flipSig(t testing.TB, msg []byte, keyName string) []byte {
	t.Helper()
	lines := strings.Split(string(msg), "\n")
	for i, l := range lines {
		b64, ok := strings.CutPrefix(l, "— "+keyName+" ")
		if !ok {
			continue
		}
		sig, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		sig[len(sig)-1] ^= 1
		lines[i] = "— " + keyName + " " + base64.StdEncoding.EncodeToString(sig)
		return []byte(strings.Join(lines, "\n"))
	}
	t.Fatalf("no signature by %s", keyName)
	return nil
}

// cosignAt appends a cosignature/v1 by w with timestamp ts, made by hand
// because a Signer always uses the current time.
func cosignAt(t testing.TB, w witnessKey, msg []byte, ts uint64) []byte {
	t.Helper()
	n, err := note.Open(msg, note.VerifierList())
	var u *note.UnverifiedNoteError
	if !errors.As(err, &u) {
		t.Fatalf("note.Open: %v", err)
	}
	n = u.Note
	signed := fmt.Sprintf("cosignature/v1\ntime %d\n%s", ts, n.Text)
	sig := binary.BigEndian.AppendUint32(nil, w.hash)
	sig = binary.BigEndian.AppendUint64(sig, ts)
	sig = append(sig, ed25519.Sign(w.priv, []byte(signed))...)
	return append(msg, "— "+w.keyName+" "+base64.StdEncoding.EncodeToString(sig)+"\n"...)
}
