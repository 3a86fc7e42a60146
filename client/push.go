package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
)

// Web Push (API.md §14): a client that can receive pushes (a browser's
// service worker, a native app behind a push service) subscribes with
// the server's VAPID key; the server then pushes to it when a message
// finds the user with no stream or poll open for PushDelay.

// PushSubscription is a browser's PushSubscription as its toJSON gives
// it: the push service's endpoint and the keys the payload is encrypted
// to (base64url).
type PushSubscription struct {
	Endpoint string   `json:"endpoint"`
	Keys     PushKeys `json:"keys"`
}

// PushKeys are a subscription's keys: P256dh, the uncompressed P-256
// point, and Auth, the 16-byte authentication secret, each base64url.
type PushKeys struct {
	P256dh string `json:"p256dh"`
	Auth   string `json:"auth"`
}

// PushPayload is what a push carries once decrypted. Preview is empty
// for an end-to-end encrypted message.
type PushPayload struct {
	UIDFrom int64  `json:"uid_from"`
	GID     int64  `json:"gid,omitempty"`
	Name    string `json:"name"`
	Preview string `json:"preview"`
}

// PushKey returns the server's VAPID public key (GET /push/key, not
// signed): base64url of the uncompressed P-256 point, the
// applicationServerKey a subscription is made with.
func (c *Client) PushKey(ctx context.Context) (string, error) {
	const path = "/push/key"
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.baseURL+path, nil)
	if err != nil {
		return "", fmt.Errorf("fiberchat %s: %w", path, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", transportError(path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", transportError(path, err)
	}
	if err := envelopeError(resp, raw); err != nil {
		return "", fmt.Errorf("fiberchat %s: %w", path, err)
	}
	var out struct {
		Key string `json:"key"`
	}
	if err := json.Unmarshal(raw, &out); err != nil || out.Key == "" {
		return "", fmt.Errorf("fiberchat %s: answer without a key", path)
	}
	return out.Key, nil
}

// PushSubscribe asks the server to push to sub for the session's user
// (/user/push/subscribe). Subscribing the same endpoint again replaces
// its keys, and moves it to this user if another held it.
func (c *Client) PushSubscribe(ctx context.Context, sub PushSubscription) error {
	var out envelope
	return c.call(ctx, "/user/push/subscribe", true, sub, &out)
}

// PushUnsubscribe stops pushes to endpoint for the session's user
// (/user/push/unsubscribe).
func (c *Client) PushUnsubscribe(ctx context.Context, endpoint string) error {
	var out envelope
	return c.call(ctx, "/user/push/unsubscribe", true, struct {
		Endpoint string `json:"endpoint"`
	}{endpoint}, &out)
}
