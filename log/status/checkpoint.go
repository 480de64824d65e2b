package status

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	fmtlog "github.com/transparency-dev/formats/log"
)

// Key types of a vkey's first key byte whose signatures carry a timestamp
// after the 4-byte key ID: RFC6962NoteSignature (milliseconds) and
// cosignature/v1 or ML-DSA-44 cosignatures (seconds).
const (
	keyRFC6962     = 0x05
	keyCosignature = 0x04
	keyMLDSA       = 0x06
)

// noteKey is what a signature line's key ID tells the page: whose it is
// and how to read its timestamp.
type noteKey struct {
	name string
	typ  byte
}

// keyOf reads a vkey's name, key ID and type ("name+hash+base64(type||key)").
func keyOf(vkey string) (id uint32, k noteKey, ok bool) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 || len(parts[1]) != 8 {
		return 0, noteKey{}, false
	}
	h, err := hex.DecodeString(parts[1])
	if err != nil {
		return 0, noteKey{}, false
	}
	kb, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(kb) < 2 {
		return 0, noteKey{}, false
	}
	return binary.BigEndian.Uint32(h), noteKey{name: parts[0], typ: kb[0]}, true
}

// checkpointView is a signed checkpoint as the page shows it.
type checkpointView struct {
	size uint64
	root []byte
	// signed is the newest timestamp in the log's own signatures or the
	// cosignatures; zero when none carries one (an Ed25519-only log).
	signed time.Time
	// cosigned holds, by witness name, the time of that witness's
	// cosignature on this checkpoint.
	cosigned map[string]time.Time
}

// parseCheckpoint reads a signed checkpoint's size, root and signature
// timestamps. logKeys and witnessKeys are vkeys; signatures by other keys
// are ignored. It does not verify signatures: the checkpoint is the log's
// own, read from its storage, and the page only reports on it.
func parseCheckpoint(signed []byte, logKeys, witnessKeys []string) (*checkpointView, error) {
	body, sigs, ok := bytes.Cut(signed, []byte("\n\n"))
	if !ok {
		return nil, fmt.Errorf("checkpoint has no signature block")
	}
	var c fmtlog.Checkpoint
	if _, err := c.Unmarshal(append(body, '\n')); err != nil {
		return nil, fmt.Errorf("parsing checkpoint: %w", err)
	}
	keys := map[uint32]noteKey{}
	witness := map[uint32]bool{}
	for i, vk := range append(append([]string(nil), logKeys...), witnessKeys...) {
		if id, k, ok := keyOf(vk); ok {
			keys[id] = k
			witness[id] = i >= len(logKeys)
		}
	}
	v := &checkpointView{size: c.Size, root: c.Hash, cosigned: map[string]time.Time{}}
	for _, line := range strings.Split(string(sigs), "\n") {
		rest, ok := strings.CutPrefix(line, "— ")
		if !ok {
			continue
		}
		_, b64, ok := strings.Cut(rest, " ")
		sig, err := base64.StdEncoding.DecodeString(b64)
		if !ok || err != nil || len(sig) < 12 {
			continue
		}
		id := binary.BigEndian.Uint32(sig)
		k, ok := keys[id]
		if !ok {
			continue
		}
		ts := binary.BigEndian.Uint64(sig[4:12])
		var at time.Time
		switch k.typ {
		case keyRFC6962:
			at = time.UnixMilli(int64(ts))
		case keyCosignature, keyMLDSA:
			at = time.Unix(int64(ts), 0)
		default:
			continue
		}
		if witness[id] {
			v.cosigned[k.name] = at
		}
		if at.After(v.signed) {
			v.signed = at
		}
	}
	return v, nil
}

// firstSeen remembers when this process first read each log's current
// checkpoint, for the age of a checkpoint whose signatures carry no time
// (a vetting log signed with Ed25519 alone and no witnesses).
type firstSeen struct {
	mu   sync.Mutex           // guards seen
	seen map[string]seenState // by origin
}

type seenState struct {
	tree string // size and root
	at   time.Time
}

// at returns when the tree (size, root) of origin was first seen, now if
// it is new.
func (f *firstSeen) at(origin string, size uint64, root []byte, now time.Time) time.Time {
	tree := strconv.FormatUint(size, 10) + "/" + hex.EncodeToString(root)
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.seen == nil {
		f.seen = map[string]seenState{}
	}
	s, ok := f.seen[origin]
	if !ok || s.tree != tree {
		s = seenState{tree: tree, at: now}
		f.seen[origin] = s
	}
	return s.at
}

// age formats a duration for people: "3s", "2m5s", "4h10m".
func age(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return d.Round(time.Second).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	default:
		return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
	}
}
