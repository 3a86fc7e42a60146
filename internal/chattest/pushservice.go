package chattest

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// PushService is a Web Push service in the test process: it checks every
// push's VAPID JWT (RFC 8292: ES256 by the key the module serves, aud
// its own origin, exp within a day, sub as expected) and decrypts its
// payload (RFC 8291) with the subscription's private key, as a browser
// would. Its URL is https, with a certificate Client trusts.
type PushService struct {
	*httptest.Server
	// Key is the VAPID public key pushes must be signed with, and Sub
	// the sub claim they must carry; set them before any push comes.
	Key string
	Sub string

	mu     sync.Mutex
	subs   map[string]*PushSub
	status map[string]int
	// fails counts the pushes an endpoint still answers with failStatus.
	fails      map[string]int
	failStatus map[string]int
	// Pushes receives every push that passed the checks.
	Pushes chan Push
	// Errors receives what failed a push's checks.
	Errors chan error
}

// PushSub is a subscription of the test push service, with the private
// key a browser keeps.
type PushSub struct {
	Endpoint string
	P256dh   string // base64url, unpadded, as browsers send it
	Auth     string
	priv     *ecdh.PrivateKey
	auth     []byte
}

// JSON is the subscription as PushSubscription.toJSON gives it.
func (s *PushSub) JSON() map[string]any {
	return map[string]any{"endpoint": s.Endpoint, "expirationTime": nil,
		"keys": map[string]any{"p256dh": s.P256dh, "auth": s.Auth}}
}

// Push is one push received and decrypted.
type Push struct {
	Endpoint string
	Payload  []byte
	At       time.Time
}

// NewPushService starts a push service until the test ends.
func NewPushService(t testing.TB) *PushService {
	t.Helper()
	ps := &PushService{subs: map[string]*PushSub{}, status: map[string]int{}, fails: map[string]int{}, failStatus: map[string]int{},
		Pushes: make(chan Push, 100), Errors: make(chan error, 100)}
	ps.Server = httptest.NewTLSServer(http.HandlerFunc(ps.serve))
	t.Cleanup(ps.Close)
	return ps
}

// Subscribe makes a new subscription, as a browser's pushManager does.
func (ps *PushService) Subscribe(t testing.TB) *PushSub {
	t.Helper()
	priv, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	_, _ = rand.Read(auth)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := &PushSub{Endpoint: fmt.Sprintf("%s/push/%d", ps.URL, len(ps.subs)+1), priv: priv, auth: auth,
		P256dh: base64.RawURLEncoding.EncodeToString(priv.PublicKey().Bytes()),
		Auth:   base64.RawURLEncoding.EncodeToString(auth)}
	ps.subs[s.Endpoint] = s
	return s
}

// Answer makes the service answer status to pushes for s (201 unless
// told).
func (ps *PushService) Answer(s *PushSub, status int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.status[s.Endpoint] = status
}

// FailNext makes the service answer status to the next n pushes for s,
// as a push service in trouble does, before answering as Answer says.
func (ps *PushService) FailNext(s *PushSub, n, status int) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.fails[s.Endpoint], ps.failStatus[s.Endpoint] = n, status
}

func (ps *PushService) serve(w http.ResponseWriter, r *http.Request) {
	endpoint := ps.URL + r.URL.Path
	ps.mu.Lock()
	sub, status := ps.subs[endpoint], ps.status[endpoint]
	if ps.fails[endpoint] > 0 {
		ps.fails[endpoint]--
		status = ps.failStatus[endpoint]
	}
	ps.mu.Unlock()
	if sub == nil {
		http.NotFound(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	payload, err := ps.check(r, sub, body)
	if err != nil {
		ps.Errors <- err
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	if status == 0 {
		status = http.StatusCreated
	}
	if status < 300 {
		ps.Pushes <- Push{Endpoint: endpoint, Payload: payload, At: time.Now()}
	}
	w.WriteHeader(status)
}

// check verifies r's VAPID header and returns its decrypted payload.
func (ps *PushService) check(r *http.Request, sub *PushSub, body []byte) ([]byte, error) {
	if r.Method != http.MethodPost || r.Header.Get("Content-Encoding") != "aes128gcm" || r.Header.Get("TTL") == "" {
		return nil, fmt.Errorf("push: %s with Content-Encoding %q, TTL %q", r.Method, r.Header.Get("Content-Encoding"), r.Header.Get("TTL"))
	}
	if err := ps.checkVAPID(r.Header.Get("Authorization")); err != nil {
		return nil, err
	}
	return sub.decrypt(body)
}

// checkVAPID verifies "vapid t=<JWT>, k=<key>" (RFC 8292).
func (ps *PushService) checkVAPID(header string) error {
	rest, ok := strings.CutPrefix(header, "vapid ")
	if !ok {
		return fmt.Errorf("push: Authorization %q is not vapid", header)
	}
	var token, key string
	for part := range strings.SplitSeq(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			token = v
		case "k":
			key = v
		}
	}
	if key != ps.Key {
		return fmt.Errorf("push: k=%q, want the served key %q", key, ps.Key)
	}
	claims, err := verifyES256(token, key)
	if err != nil {
		return err
	}
	now := time.Now().Unix()
	switch {
	case claims.Aud != ps.URL:
		return fmt.Errorf("push: aud %q, want %q", claims.Aud, ps.URL)
	case claims.Exp <= now || claims.Exp > now+24*60*60:
		return fmt.Errorf("push: exp %d is not within a day of %d", claims.Exp, now)
	case claims.Sub != ps.Sub:
		return fmt.Errorf("push: sub %q, want %q", claims.Sub, ps.Sub)
	}
	return nil
}

type vapidClaims struct {
	Aud string `json:"aud"`
	Exp int64  `json:"exp"`
	Sub string `json:"sub"`
}

// verifyES256 checks token's ES256 signature by the P-256 point key
// (base64url) and returns its claims.
func verifyES256(token, key string) (vapidClaims, error) {
	var c vapidClaims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errors.New("push: JWT is not three parts")
	}
	hdr, err1 := base64.RawURLEncoding.DecodeString(parts[0])
	claims, err2 := base64.RawURLEncoding.DecodeString(parts[1])
	sig, err3 := base64.RawURLEncoding.DecodeString(parts[2])
	point, err4 := base64.RawURLEncoding.DecodeString(key)
	if err := errors.Join(err1, err2, err3, err4); err != nil || len(sig) != 64 {
		return c, fmt.Errorf("push: JWT or key not base64url: %v", err)
	}
	var h struct{ Alg string }
	if json.Unmarshal(hdr, &h) != nil || h.Alg != "ES256" {
		return c, fmt.Errorf("push: JWT header %s, want ES256", hdr)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return c, fmt.Errorf("push: k is not a P-256 point: %v", err)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if !ecdsa.Verify(pub, digest[:], new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:])) {
		return c, errors.New("push: JWT signature does not verify with k")
	}
	if err := json.Unmarshal(claims, &c); err != nil {
		return c, fmt.Errorf("push: JWT claims %s: %v", claims, err)
	}
	return c, nil
}

// decrypt opens an aes128gcm body (RFC 8188) encrypted to s (RFC 8291).
func (s *PushSub) decrypt(body []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("push: body shorter than its header")
	}
	salt, rs, idlen := body[:16], binary.BigEndian.Uint32(body[16:20]), int(body[20])
	if idlen != 65 || len(body) < 21+idlen+17 || rs < 18 {
		return nil, fmt.Errorf("push: header with keyid of %d bytes, rs %d", idlen, rs)
	}
	asPub, ct := body[21:21+idlen], body[21+idlen:]
	if len(ct) > int(rs) {
		return nil, errors.New("push: more than one record")
	}
	as, err := ecdh.P256().NewPublicKey(asPub)
	if err != nil {
		return nil, fmt.Errorf("push: keyid is not a P-256 point: %v", err)
	}
	shared, err := s.priv.ECDH(as)
	if err != nil {
		return nil, err
	}
	prkKey, _ := hkdf.Extract(sha256.New, shared, s.auth)
	info := append(append([]byte("WebPush: info\x00"), s.priv.PublicKey().Bytes()...), asPub...)
	ikm, _ := hkdf.Expand(sha256.New, prkKey, string(info), 32)
	prk, _ := hkdf.Extract(sha256.New, ikm, salt)
	cek, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	nonce, _ := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	block, _ := aes.NewCipher(cek)
	gcm, _ := cipher.NewGCM(block)
	plain, err := gcm.Open(nil, nonce, ct, nil)
	if err != nil {
		return nil, fmt.Errorf("push: payload does not decrypt: %v", err)
	}
	end := len(plain) - 1
	for end >= 0 && plain[end] == 0 {
		end--
	}
	if end < 0 || plain[end] != 2 {
		return nil, errors.New("push: the last record's delimiter is not 2")
	}
	return plain[:end], nil
}
