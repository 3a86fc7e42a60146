package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"
)

// Device is this client's end-to-end encryption identity (API.md §15):
// a device id, unique among the user's devices, and an X25519 key pair
// whose private half never leaves the device.
type Device struct {
	ID      string
	Private *ecdh.PrivateKey
}

// NewDevice makes a device with a fresh key pair.
func NewDevice(id string) (*Device, error) {
	priv, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	return &Device{ID: id, Private: priv}, nil
}

// PublicKey is the device's raw 32-byte public key.
func (d *Device) PublicKey() []byte { return d.Private.PublicKey().Bytes() }

// deviceFile is how LoadOrCreateDevice keeps a device on disk.
type deviceFile struct {
	DeviceID string `json:"device_id"`
	Private  []byte `json:"private"`
}

// LoadOrCreateDevice reads the device kept at path, or makes one named
// id and keeps it there, readable by its owner only. Whoever can read
// the file can read every message sent to this device.
func LoadOrCreateDevice(path, id string) (*Device, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		var f deviceFile
		if err := json.Unmarshal(b, &f); err != nil {
			return nil, fmt.Errorf("device file %s: %w", path, err)
		}
		priv, err := ecdh.X25519().NewPrivateKey(f.Private)
		if err != nil {
			return nil, fmt.Errorf("device file %s: %w", path, err)
		}
		return &Device{ID: f.DeviceID, Private: priv}, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	d, err := NewDevice(id)
	if err != nil {
		return nil, err
	}
	b, _ = json.Marshal(deviceFile{DeviceID: d.ID, Private: d.Private.Bytes()})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return nil, err
	}
	return d, nil
}

// WithDevice makes the client encrypt and decrypt as d: SendEncrypted
// works, and Recv, History and Stream decrypt the messages sent to it.
func WithDevice(d *Device) Option { return func(c *Client) { c.e2ee = &e2eeState{dev: d} } }

// e2eeState is a client's device and the device keys it has fetched.
type e2eeState struct {
	dev  *Device
	mu   sync.Mutex
	keys map[int64][]DeviceKey
	// fetched is when each user's keys were last read from the server (or
	// a read of them tried), on the Client's clock.
	fetched map[int64]time.Time
}

// keyRefetchEvery is how often a message that does not open with a
// remembered key makes the client read its sender's keys again: the key
// may have changed (a reinstalled device) with no stream to say so, but
// a stream of messages that never open (tampered, or from before a
// change) must not make a read each.
const keyRefetchEvery = 10 * time.Second

// DeviceKey is one device key a user published.
type DeviceKey struct {
	UID      int64  `json:"uid"`
	DeviceID string `json:"device_id"`
	Key      []byte `json:"key"` // the raw X25519 public key
	Time     int64  `json:"time"`
}

// errNoDevice is what the encryption calls return on a client without
// WithDevice.
var errNoDevice = errors.New("fiberchat: no device: use WithDevice for end-to-end encryption")

// PublishKey publishes this device's public key (/user/keys/publish):
// at every start is fine, the same key again changes nothing.
func (c *Client) PublishKey(ctx context.Context) error {
	if c.e2ee == nil {
		return errNoDevice
	}
	d := c.e2ee.dev
	var out envelope
	return c.call(ctx, "/user/keys/publish", true, struct {
		DeviceID string `json:"device_id"`
		Key      []byte `json:"key"`
	}{d.ID, d.PublicKey()}, &out)
}

// Keys returns every device key of uids (/user/keys/get), and remembers
// them for encrypting and decrypting.
func (c *Client) Keys(ctx context.Context, uids ...int64) ([]DeviceKey, error) {
	var out struct {
		envelope
		Data []DeviceKey `json:"data"`
	}
	if err := c.call(ctx, "/user/keys/get", true, uidsBody(uids), &out); err != nil {
		return nil, err
	}
	if c.e2ee != nil {
		c.e2ee.remember(uids, out.Data, c.now())
	}
	return out.Data, nil
}

// remember keeps ks as the keys of uids.
func (s *e2eeState) remember(uids []int64, ks []DeviceKey, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keys == nil {
		s.keys = make(map[int64][]DeviceKey)
		s.fetched = make(map[int64]time.Time)
	}
	for _, uid := range uids {
		s.keys[uid] = nil
		s.fetched[uid] = now
	}
	for _, k := range ks {
		s.keys[k.UID] = append(s.keys[k.UID], k)
	}
}

// forget drops what is known of uid's keys (event: keys).
func (s *e2eeState) forget(uid int64) {
	s.mu.Lock()
	delete(s.keys, uid)
	s.mu.Unlock()
}

// stale reports whether uid's keys were read from the server longer than
// keyRefetchEvery before now; when they were, it counts now as a read,
// the caller's, so that a read that fails is not tried again at once.
func (s *e2eeState) stale(uid int64, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.fetched[uid]) < keyRefetchEvery {
		return false
	}
	if s.fetched == nil {
		s.fetched = make(map[int64]time.Time)
	}
	s.fetched[uid] = now
	return true
}

// known returns uid's remembered keys, and whether there are any.
func (s *e2eeState) known(uid int64) ([]DeviceKey, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ks, ok := s.keys[uid]
	return ks, ok
}

// Envelope is an encrypted message's enc (API.md §15).
type Envelope struct {
	V     int          `json:"v"`
	From  string       `json:"from"`
	Nonce []byte       `json:"nonce"`
	CT    []byte       `json:"ct"`
	Keys  []WrappedKey `json:"keys"`
}

// WrappedKey is the message key wrapped for one device.
type WrappedKey struct {
	UID      int64  `json:"uid"`
	DeviceID string `json:"device_id"`
	Wrapped  []byte `json:"wrapped"`
}

// SendEncrypted sends text to the user to, end-to-end encrypted for
// every device key of to and of mine (this device included, so that
// History reads back what it sent): the server stores only ciphertext.
// The keys are fetched afresh for each Send, so a new device of either
// user can read it. A recipient without any device key is an error:
// nobody could read the message.
func (c *Client) SendEncrypted(ctx context.Context, to int64, text string, opts ...SendOption) (Sent, error) {
	if c.e2ee == nil {
		return Sent{}, errNoDevice
	}
	enc, err := c.sealFor(ctx, to, text)
	if err != nil {
		return Sent{}, err
	}
	return c.sendMessage(ctx, sendBody{UIDTo: to, Enc: enc}, opts)
}

// sealFor returns text as an enc for the devices of to and my own.
func (c *Client) sealFor(ctx context.Context, to int64, text string) (json.RawMessage, error) {
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	ks, err := c.Keys(ctx, to, s.UID)
	if err != nil {
		return nil, err
	}
	if !hasKeyOf(ks, to) {
		return nil, fmt.Errorf("fiberchat: user %d has published no device key", to)
	}
	env, err := seal(rand.Reader, c.e2ee.dev, ks, text)
	if err != nil {
		return nil, err
	}
	return json.Marshal(env)
}

func hasKeyOf(ks []DeviceKey, uid int64) bool {
	for _, k := range ks {
		if k.UID == uid {
			return true
		}
	}
	return false
}

// seal encrypts text from dev for the devices ks, reading every random
// byte (message key, nonces) from rnd: the known-answer test passes a
// fixed one.
func seal(rnd io.Reader, dev *Device, ks []DeviceKey, text string) (*Envelope, error) {
	msgKey := make([]byte, e2eeKeyLen)
	nonce := make([]byte, e2eeNonceLen)
	if _, err := io.ReadFull(rnd, msgKey); err != nil {
		return nil, err
	}
	if _, err := io.ReadFull(rnd, nonce); err != nil {
		return nil, err
	}
	ct, err := sealText(msgKey, nonce, text)
	if err != nil {
		return nil, err
	}
	env := &Envelope{V: 1, From: dev.ID, Nonce: nonce, CT: ct, Keys: make([]WrappedKey, 0, len(ks))}
	for _, k := range ks {
		pub, err := ecdh.X25519().NewPublicKey(k.Key)
		if err != nil {
			return nil, fmt.Errorf("device key of %d/%s: %w", k.UID, k.DeviceID, err)
		}
		w, err := wrapKey(rnd, dev.Private, pub, msgKey)
		if err != nil {
			return nil, err
		}
		env.Keys = append(env.Keys, WrappedKey{UID: k.UID, DeviceID: k.DeviceID, Wrapped: w})
	}
	return env, nil
}

// open decrypts env, sent by uid's device env.From whose public key is
// senderKey, for dev of user me.
func open(dev *Device, me int64, senderKey []byte, env *Envelope) (string, error) {
	if env.V != 1 {
		return "", ErrUndecryptable
	}
	pub, err := ecdh.X25519().NewPublicKey(senderKey)
	if err != nil {
		return "", ErrUndecryptable
	}
	for _, k := range env.Keys {
		if k.UID != me || k.DeviceID != dev.ID {
			continue
		}
		msgKey, err := unwrapKey(dev.Private, pub, k.Wrapped)
		if err != nil {
			return "", err
		}
		return openText(msgKey, env.Nonce, env.CT)
	}
	return "", ErrUndecryptable
}

// decrypt fills in m's text when it is encrypted, or marks it as not
// decryptable (Message.DecryptErr); a plain message is left alone.
func (c *Client) decrypt(ctx context.Context, me int64, m *Message) {
	if m.Enc == nil {
		return
	}
	m.Encrypted = true
	if c.e2ee == nil {
		m.DecryptErr = errNoDevice
		return
	}
	env := m.Enc
	key, err := c.senderKey(ctx, m.UIDFrom, env.From)
	if err != nil {
		m.DecryptErr = err
		return
	}
	text, err := open(c.e2ee.dev, me, key, env)
	if err != nil && c.e2ee.stale(m.UIDFrom, c.now()) {
		// The sender's device may have a new key that no stream told of:
		// read them again (kept only if the read succeeds), and try once
		// more if it changed.
		if ks, ferr := c.Keys(ctx, m.UIDFrom); ferr == nil {
			for _, k := range ks {
				if k.DeviceID == env.From && !bytes.Equal(k.Key, key) {
					text, err = open(c.e2ee.dev, me, k.Key, env)
				}
			}
		}
	}
	if err != nil {
		m.DecryptErr = err
		return
	}
	m.Message = text
}

// senderKey is the public key of uid's device, fetched when not known
// (or known without that device: it may be new).
func (c *Client) senderKey(ctx context.Context, uid int64, device string) ([]byte, error) {
	find := func(ks []DeviceKey) []byte {
		for _, k := range ks {
			if k.DeviceID == device {
				return k.Key
			}
		}
		return nil
	}
	if ks, ok := c.e2ee.known(uid); ok {
		if key := find(ks); key != nil {
			return key, nil
		}
	}
	ks, err := c.Keys(ctx, uid)
	if err != nil {
		return nil, err
	}
	if key := find(ks); key != nil {
		return key, nil
	}
	return nil, fmt.Errorf("%w: no key of user %d's device %q", ErrUndecryptable, uid, device)
}

// SafetyNumber is a digest of my and peer's device keys, the same on
// both sides: read aloud or compared side by side, it shows that neither
// was handed a key of the server's (docs/security.md). It changes when
// either user's devices change.
func (c *Client) SafetyNumber(ctx context.Context, peer int64) (string, error) {
	s, err := c.session()
	if err != nil {
		return "", err
	}
	ks, err := c.Keys(ctx, s.UID, peer)
	if err != nil {
		return "", err
	}
	return SafetyNumber(ks), nil
}
