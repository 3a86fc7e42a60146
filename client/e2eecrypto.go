package client

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
)

// The wrapping of API.md §15, in one place; docs/security.md describes
// it and client/testdata/e2ee_vectors.json pins it for every
// implementation (the page's fiberchat.js must match it byte for byte).
//
//	ct      = AES-256-GCM(msgKey, nonce, plaintext), no associated data
//	kek     = HKDF-SHA-256(X25519(own private, their public), salt none,
//	          info "fiberchat v1"), 32 bytes
//	wrapped = wrapNonce (12 random bytes) || AES-256-GCM(kek, wrapNonce, msgKey)
//
// The message key is fresh for each message; the kek is fixed for a pair
// of devices, which is why each wrap has a random nonce of its own.
const (
	e2eeInfo     = "fiberchat v1"
	e2eeKeyLen   = 32
	e2eeNonceLen = 12
	// wrappedLen is a wrapped key's length: nonce, key and GCM's tag.
	wrappedLen = e2eeNonceLen + e2eeKeyLen + 16
)

// ErrUndecryptable is why a message could not be decrypted: it was not
// encrypted for this device, its sender's device key is unknown, or it
// was tampered with. Message.DecryptErr wraps it.
var ErrUndecryptable = errors.New("fiberchat: message cannot be decrypted on this device")

// kek derives the key-encryption key of two devices: either side gets
// the same one, from its private key and the other's public key.
func kek(priv *ecdh.PrivateKey, peer *ecdh.PublicKey) ([]byte, error) {
	shared, err := priv.ECDH(peer)
	if err != nil {
		return nil, fmt.Errorf("x25519: %w", err)
	}
	return hkdf.Key(sha256.New, shared, nil, e2eeInfo, e2eeKeyLen)
}

func newGCM(key []byte) (cipher.AEAD, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// wrapKey wraps msgKey for the device peer, with a nonce read from rnd.
func wrapKey(rnd io.Reader, priv *ecdh.PrivateKey, peer *ecdh.PublicKey, msgKey []byte) ([]byte, error) {
	k, err := kek(priv, peer)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	out := make([]byte, e2eeNonceLen, wrappedLen)
	if _, err := io.ReadFull(rnd, out); err != nil {
		return nil, err
	}
	return aead.Seal(out, out, msgKey, nil), nil
}

// unwrapKey recovers the message key peer wrapped for priv's device.
func unwrapKey(priv *ecdh.PrivateKey, peer *ecdh.PublicKey, wrapped []byte) ([]byte, error) {
	if len(wrapped) != wrappedLen {
		return nil, ErrUndecryptable
	}
	k, err := kek(priv, peer)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(k)
	if err != nil {
		return nil, err
	}
	key, err := aead.Open(nil, wrapped[:e2eeNonceLen], wrapped[e2eeNonceLen:], nil)
	if err != nil {
		return nil, ErrUndecryptable
	}
	return key, nil
}

// sealText encrypts text under msgKey with nonce.
func sealText(msgKey, nonce []byte, text string) ([]byte, error) {
	aead, err := newGCM(msgKey)
	if err != nil {
		return nil, err
	}
	return aead.Seal(nil, nonce, []byte(text), nil), nil
}

// openText decrypts ct under msgKey with nonce.
func openText(msgKey, nonce, ct []byte) (string, error) {
	aead, err := newGCM(msgKey)
	if err != nil || len(nonce) != e2eeNonceLen {
		return "", ErrUndecryptable
	}
	pt, err := aead.Open(nil, nonce, ct, nil)
	if err != nil {
		return "", ErrUndecryptable
	}
	return string(pt), nil
}
