package graph

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
)

// Outlook item ids are base64 of an Exchange entry id. Ours encode the
// mailbox, the item key and (for occurrences) the occurrence's original
// start, so that both id formats resolve to the same item without a lookup
// table. The prefixes are those of real REST and immutable ids.
const (
	restIDPrefix      = "AAMkA"
	immutableIDPrefix = "AAkALgAAAAAAHYQDEapmEc2byACqAC-EWg0A"
	idMarker          = 0x46 // first payload byte, so a random string rarely parses
)

type itemKey [16]byte

func newItemKey() itemKey {
	var k itemKey
	_, _ = rand.Read(k[:])
	return k
}

func (k itemKey) String() string { return hex.EncodeToString(k[:]) }

// itemRef names an event or one occurrence of a series.
type itemRef struct {
	mailbox uuid.UUID
	key     itemKey
	occ     int64 // original start (Unix seconds) of an occurrence; 0 for the item itself
}

func (r itemRef) id(immutable bool) string {
	buf := make([]byte, 0, 2+16+16+8)
	buf = append(buf, idMarker, 0)
	buf = append(buf, r.mailbox[:]...)
	buf = append(buf, r.key[:]...)
	if r.occ != 0 {
		buf = binary.BigEndian.AppendUint64(buf, uint64(r.occ))
	}
	enc := base64.URLEncoding.EncodeToString(buf)
	if immutable {
		return immutableIDPrefix + enc
	}
	return restIDPrefix + enc
}

func parseItemID(s string) (itemRef, error) {
	var body string
	switch {
	case strings.HasPrefix(s, immutableIDPrefix):
		body = s[len(immutableIDPrefix):]
	case strings.HasPrefix(s, restIDPrefix):
		body = s[len(restIDPrefix):]
	default:
		return itemRef{}, fmt.Errorf("unknown id prefix")
	}
	// Clients sometimes strip padding or use the standard alphabet.
	body = strings.NewReplacer("+", "-", "/", "_").Replace(strings.TrimRight(body, "="))
	raw, err := base64.RawURLEncoding.DecodeString(body)
	if err != nil {
		return itemRef{}, fmt.Errorf("decode id: %w", err)
	}
	if (len(raw) != 34 && len(raw) != 42) || raw[0] != idMarker {
		return itemRef{}, fmt.Errorf("id payload of %d bytes", len(raw))
	}
	var r itemRef
	copy(r.mailbox[:], raw[2:18])
	copy(r.key[:], raw[18:34])
	if len(raw) == 42 {
		r.occ = int64(binary.BigEndian.Uint64(raw[34:]))
		if r.occ == 0 {
			return itemRef{}, fmt.Errorf("occurrence id without a start")
		}
	}
	return r, nil
}

// changeKeyFor is Exchange-like: 16 bytes naming the mailbox's store then a
// 6-byte version. seq is global, so every modification yields a new key.
func changeKeyFor(mailbox uuid.UUID, seq uint64) string {
	var b [22]byte
	copy(b[:16], mailbox[:])
	b[0] ^= 0x11 // not the mailbox id verbatim, as in Exchange
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], seq)
	copy(b[16:], v[2:])
	return base64.StdEncoding.EncodeToString(b[:])
}

func etagFor(changeKey string) string { return `W/"` + changeKey + `"` }

// newICalUID has the shape of Outlook's: a fixed Outlook GUID prefix,
// a timestamp and a random part, upper-case hex.
func newICalUID(now time.Time) string {
	var r [16]byte
	_, _ = rand.Read(r[:])
	var ts [8]byte
	binary.LittleEndian.PutUint64(ts[:], uint64(now.UnixNano()/100))
	return "040000008200E00074C5B7101A82E00800000000" + strings.ToUpper(hex.EncodeToString(ts[:])) +
		"000000000000000010000000" + strings.ToUpper(hex.EncodeToString(r[:]))
}

// occurrenceICalUID differs per occurrence, as Graph documents.
func occurrenceICalUID(master string, occ time.Time) string {
	return master[:len(master)-8] + strings.ToUpper(fmt.Sprintf("%08x", uint32(occ.Unix()/60)))
}

func randomToken(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
