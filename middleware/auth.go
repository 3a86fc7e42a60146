package middleware

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// TokenSource finds sessions by token hash and slides their expiry.
type TokenSource interface {
	TokenByHash(ctx context.Context, hash string) (*models.UserToken, error)
	ExtendToken(ctx context.Context, id, expire int64) error
}

// AuthConfig configures the user_token check. The module fills every
// field from its Config, which owns the defaults.
type AuthConfig struct {
	// Tokens is where sessions are looked up. Required.
	Tokens TokenSource
	// IdleLifetime is how long a session lives without use: each use
	// slides its expiry to this far ahead.
	IdleLifetime time.Duration
	// TouchInterval bounds how often a session's expiry is written: a
	// request extends it only when the stored expiry is older than this
	// would make it, so a busy client costs one write per interval, not
	// one a request. 0 writes on every request.
	TouchInterval time.Duration
	// Now is the clock. Required.
	Now func() time.Time
}

// Session is the authenticated caller of a request.
type Session struct {
	UID     int64
	TokenID int64
}

type sessionKey struct{}

// SessionFrom returns the session the auth gate stored on the request.
func SessionFrom(c *fiber.Ctx) Session {
	s, _ := c.Locals(sessionKey{}).(Session)
	return s
}

// NewAuth returns the user_token gate. A config without Tokens or Now is
// a caller's mistake: the gate then refuses every request with an internal
// error naming the field, rather than panicking on each.
func NewAuth(cfg AuthConfig) fiber.Handler {
	switch {
	case cfg.Tokens == nil:
		return failed(errMissing("AuthConfig.Tokens"))
	case cfg.Now == nil:
		return failed(errMissing("AuthConfig.Now"))
	}
	idle := int64(cfg.IdleLifetime / time.Second)
	touch := int64(cfg.TouchInterval / time.Second)
	return func(c *fiber.Ctx) error {
		uid, token, err := Credentials(c)
		if err != nil {
			return err
		}
		if uid == 0 || !validTokenShape(token) {
			return apierr.ErrBadToken
		}
		ctx := c.UserContext()
		t, err := cfg.Tokens.TokenByHash(ctx, models.HashToken(token))
		if errors.Is(err, models.ErrNotFound) {
			return apierr.ErrBadToken
		}
		if err != nil {
			return err
		}
		now := cfg.Now().Unix()
		// The uid check makes another user's token useless with my uid; the
		// hash lookup itself is the constant-time part, as only a hash of a
		// 165-bit secret is ever compared.
		if t.UID != uid || t.ExpireTime <= now {
			return apierr.ErrBadToken
		}
		if want := now + idle; t.ExpireTime < want-touch {
			if err := cfg.Tokens.ExtendToken(ctx, t.ID, want); err != nil {
				return err
			}
		}
		c.Locals(sessionKey{}, Session{UID: uid, TokenID: t.ID})
		return c.Next()
	}
}

// Credentials finds uid and access_token in the first place that holds a
// token: body fields uid/access_token, query user_id/user_token, headers
// X-Uid/X-Access-Token. A uid that is present but malformed is a 400.
func Credentials(c *fiber.Ctx) (uid int64, token string, err error) {
	fields, err := wire.Fields(c)
	if err != nil {
		return 0, "", err
	}
	if raw, ok := fields["access_token"]; ok {
		if err := jsonString(raw, &token); err != nil {
			return 0, "", apierr.ErrBadToken
		}
	}
	// An empty one holds no token, as in the query and the headers: a
	// client's blank form field does not hide the token it sent in
	// another place.
	if token != "" {
		var u wire.UID
		if rawUID, ok := fields["uid"]; ok {
			if err := u.UnmarshalJSON(rawUID); err != nil {
				return 0, "", apierr.Invalid("invalid uid: %s", wire.UIDRule)
			}
		}
		return int64(u), token, nil
	}
	for _, place := range [...]struct{ uidName, uid, token string }{
		{"user_id", c.Query("user_id"), c.Query("user_token")},
		{"X-Uid", c.Get("X-Uid"), c.Get("X-Access-Token")},
	} {
		if place.token == "" {
			continue
		}
		if place.uid == "" {
			return 0, place.token, nil
		}
		id, ok := wire.ParseUID(place.uid)
		if !ok {
			// Named as the client sent it, so the 400 points at the
			// parameter or header to fix.
			return 0, "", apierr.Invalid("invalid %s: %s", place.uidName, wire.UIDRule)
		}
		return id, place.token, nil
	}
	return 0, "", apierr.ErrBadToken
}

func validTokenShape(t string) bool {
	if len(t) != models.TokenLength {
		return false
	}
	for i := 0; i < len(t); i++ {
		if !(t[i] >= 'a' && t[i] <= 'z' || t[i] >= '0' && t[i] <= '9') {
			return false
		}
	}
	return true
}

// jsonString decodes raw, a JSON string; a token is plain ASCII, which
// needs no decoder (wire.PlainString).
func jsonString(raw []byte, dst *string) error {
	if s, ok := wire.PlainString(raw); ok {
		*dst = s
		return nil
	}
	return json.Unmarshal(raw, dst)
}
