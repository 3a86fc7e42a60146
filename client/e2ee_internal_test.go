package client

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/e2ee_vectors.json")

// vectors is testdata/e2ee_vectors.json: fixed inputs of the wrapping of
// API.md §15 and what they must give, for every implementation (Go here,
// fiberchat.js in the page) to check itself against. Byte strings are
// base64, as on the wire.
type vectors struct {
	AlicePrivate []byte `json:"alice_private"`
	AlicePublic  []byte `json:"alice_public"`
	BobPrivate   []byte `json:"bob_private"`
	BobPublic    []byte `json:"bob_public"`
	// KEK is HKDF-SHA-256 of X25519(alice, bob), info "fiberchat v1".
	KEK []byte `json:"kek"`
	// Random is every random byte seal reads, in order: the message key
	// (32), the nonce (12), then one wrap nonce (12) per device key.
	Random    []byte   `json:"random"`
	Plaintext string   `json:"plaintext"`
	Envelope  Envelope `json:"envelope"`
	// Safety is SafetyNumber of both devices' keys.
	Safety string `json:"safety"`
}

func fill(n int, from byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = from + byte(i)
	}
	return b
}

// TestKnownAnswers: alice (device "a1", uid 1) encrypts for bob (device
// "b1", uid 2) and for herself with fixed keys and random bytes, and
// gets exactly the recorded envelope; bob and alice both decrypt it.
func TestKnownAnswers(t *testing.T) {
	alice, _ := ecdh.X25519().NewPrivateKey(fill(32, 0x01))
	bob, _ := ecdh.X25519().NewPrivateKey(fill(32, 0x41))
	random := append(append(fill(32, 0xa0), fill(12, 0xd0)...), fill(24, 0xe0)...)
	keys := []DeviceKey{
		{UID: 2, DeviceID: "b1", Key: bob.PublicKey().Bytes()},
		{UID: 1, DeviceID: "a1", Key: alice.PublicKey().Bytes()},
	}
	text := "Hello, Bob! — ünïcödé 🔒"
	env, err := seal(bytes.NewReader(random), &Device{ID: "a1", Private: alice}, keys, text)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := kek(alice, bob.PublicKey())
	got := vectors{
		AlicePrivate: alice.Bytes(), AlicePublic: alice.PublicKey().Bytes(),
		BobPrivate: bob.Bytes(), BobPublic: bob.PublicKey().Bytes(),
		KEK: k, Random: random, Plaintext: text, Envelope: *env, Safety: SafetyNumber(keys),
	}
	const path = "testdata/e2ee_vectors.json"
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var want vectors
	b, err := os.ReadFile(path)
	if err != nil || json.Unmarshal(b, &want) != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	gb, _ := json.Marshal(got)
	wb, _ := json.Marshal(want)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("got  %s\nwant %s", gb, wb)
	}
	for _, r := range []struct {
		dev *Device
		uid int64
	}{{&Device{ID: "b1", Private: bob}, 2}, {&Device{ID: "a1", Private: alice}, 1}} {
		pt, err := open(r.dev, r.uid, alice.PublicKey().Bytes(), &want.Envelope)
		if err != nil || pt != text {
			t.Errorf("uid %d opens %q, %v", r.uid, pt, err)
		}
	}
}

// TestTamperedFailsToDecrypt: a flipped bit in ct or in the wrapped key,
// a wrong sender key, or an envelope for other devices only is
// ErrUndecryptable, never text.
func TestTamperedFailsToDecrypt(t *testing.T) {
	alice, _ := NewDevice("a1")
	bob, _ := NewDevice("b1")
	eve, _ := NewDevice("e1")
	keys := []DeviceKey{{UID: 2, DeviceID: "b1", Key: bob.PublicKey()}}
	fresh := func() *Envelope {
		env, err := seal(rand.Reader, alice, keys, "secret")
		if err != nil {
			t.Fatal(err)
		}
		return env
	}
	cases := map[string]func(*Envelope) ([]byte, *Device, int64){
		"ct": func(e *Envelope) ([]byte, *Device, int64) { e.CT[3] ^= 1; return alice.PublicKey(), bob, 2 },
		"wrapped": func(e *Envelope) ([]byte, *Device, int64) {
			e.Keys[0].Wrapped[20] ^= 1
			return alice.PublicKey(), bob, 2
		},
		"nonce":  func(e *Envelope) ([]byte, *Device, int64) { e.Nonce[0] ^= 1; return alice.PublicKey(), bob, 2 },
		"sender": func(*Envelope) ([]byte, *Device, int64) { return eve.PublicKey(), bob, 2 },
		"device": func(*Envelope) ([]byte, *Device, int64) { return alice.PublicKey(), eve, 2 },
		"short": func(e *Envelope) ([]byte, *Device, int64) {
			e.Keys[0].Wrapped = e.Keys[0].Wrapped[:10]
			return alice.PublicKey(), bob, 2
		},
	}
	for name, tamper := range cases {
		env := fresh()
		sender, dev, uid := tamper(env)
		if pt, err := open(dev, uid, sender, env); !errors.Is(err, ErrUndecryptable) || pt != "" {
			t.Errorf("%s: got %q, %v", name, pt, err)
		}
	}
}
