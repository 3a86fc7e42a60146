package handlers

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"

	"github.com/fiberchat/fiberchat/apierr"
)

// encEnvelope is the shape of an encrypted Send's enc (API.md §15). The
// server checks the shape only: it cannot read the content, and keeps
// enc as the client sent it.
type encEnvelope struct {
	V     *int      `json:"v"`
	From  *string   `json:"from"`
	Nonce *string   `json:"nonce"`
	CT    *string   `json:"ct"`
	Keys  []encSlot `json:"keys"`
}

type encSlot struct {
	UID      *int64  `json:"uid"`
	DeviceID *string `json:"device_id"`
	Wrapped  *string `json:"wrapped"`
}

// encNonceLen is AES-GCM's nonce length; encMaxSlack is what enc may
// take beyond 3× the longest message: its field names, device ids and
// wrapped keys.
const (
	encNonceLen = 12
	encMaxSlack = 8 << 10
)

// errEnc is every failure of an enc: API.md names the field, no more; a
// client that builds enc with the SDK cannot get it wrong.
func errEnc(why string) error { return apierr.Invalid("invalid enc: %s", why) }

// checkEnc validates raw as an enc of at most maxChars characters of
// message and returns it compacted, the form it is stored and returned
// in (its whitespace is the only thing that may differ from what was
// sent).
func checkEnc(raw json.RawMessage, maxChars int) ([]byte, error) {
	if len(raw) > 3*maxChars+encMaxSlack {
		return nil, errEnc("too long")
	}
	var e encEnvelope
	if len(raw) == 0 || raw[0] != '{' || json.Unmarshal(raw, &e) != nil {
		return nil, errEnc("must be an object")
	}
	switch {
	case e.V == nil || *e.V != 1:
		return nil, errEnc("v must be 1")
	case e.From == nil || *e.From == "" || len(*e.From) > 64:
		return nil, errEnc("from must be a device_id")
	case !isBase64(e.Nonce, encNonceLen):
		return nil, errEnc("nonce must be the base64 of 12 bytes")
	case !isBase64(e.CT, -1):
		return nil, errEnc("ct must be base64")
	case len(e.Keys) == 0:
		return nil, errEnc("keys must list the wrapped keys")
	}
	for _, k := range e.Keys {
		if k.UID == nil || k.DeviceID == nil || *k.DeviceID == "" || !isBase64(k.Wrapped, -1) {
			return nil, errEnc("each of keys needs uid, device_id and base64 wrapped")
		}
	}
	var out bytes.Buffer
	if err := json.Compact(&out, raw); err != nil {
		return nil, errEnc("must be an object")
	}
	return out.Bytes(), nil
}

// isBase64 says whether s is standard base64, of n bytes when n >= 0.
func isBase64(s *string, n int) bool {
	if s == nil || *s == "" {
		return false
	}
	b, err := decodeBase64(base64.StdEncoding, *s)
	return err == nil && (n < 0 || len(b) == n)
}

// errLineBreak is a base64 value with a line break in it.
var errLineBreak = errors.New("base64 with a line break")

// decodeBase64 decodes s with enc, strictly: Go's decoders skip \r and
// \n, and a value that is stored and handed back as sent must have one
// spelling (a key, say, which clients compare to warn of a change), and
// no more length than its bytes need.
func decodeBase64(enc *base64.Encoding, s string) ([]byte, error) {
	if strings.ContainsAny(s, "\r\n") {
		return nil, errLineBreak
	}
	return enc.Strict().DecodeString(s)
}
