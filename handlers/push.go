package handlers

import (
	"context"
	"crypto/ecdh"
	"encoding/base64"
	"net/url"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// PushStore is what Web Push's routes need from the database.
type PushStore interface {
	SavePushSubscription(ctx context.Context, sub models.PushSubscription, max int) error
	DeletePushSubscription(ctx context.Context, uid int64, endpoint string) error
}

// Push serves Web Push's routes (API.md §14): the server's VAPID key and
// the caller's subscriptions. The pushes themselves are internal/push's.
type Push struct {
	cfg PushConfig
}

// PushConfig carries Web Push's dependencies.
type PushConfig struct {
	Store   PushStore
	Decoder *wire.Decoder
	Now     func() time.Time
	// PublicKey returns the VAPID public key (base64url, uncompressed
	// point), made on first use.
	PublicKey func(ctx context.Context) (string, error)
	// MaxSubscriptions is how many subscriptions a user keeps; the
	// oldest go past it.
	MaxSubscriptions int
}

// NewPush prepares Web Push's handlers.
func NewPush(cfg PushConfig) *Push { return &Push{cfg: cfg} }

type pushKeyResponse struct {
	Error int    `json:"error"`
	Msg   string `json:"msg"`
	Key   string `json:"key"`
}

// Key serves GET /push/key: the VAPID public key a page passes to
// pushManager.subscribe as its applicationServerKey. It is public, so
// the route is not signed.
func (h *Push) Key() fiber.Handler {
	return func(c *fiber.Ctx) error {
		key, err := h.cfg.PublicKey(c.UserContext())
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderCacheControl, "public, max-age=3600")
		return c.JSON(pushKeyResponse{Msg: "success", Key: key})
	}
}

// maxEndpoint is the longest endpoint stored (the column's size).
const maxEndpoint = 1024

type subscribeRequest struct {
	Endpoint string `json:"endpoint" validate:"required,max=1024"`
	Keys     struct {
		P256dh string `json:"p256dh" validate:"required,max=100"`
		Auth   string `json:"auth" validate:"required,max=64"`
	} `json:"keys"`
}

// Subscribe serves /user/push/subscribe: a browser's PushSubscription
// JSON, stored for the caller (taken over from whoever held the same
// endpoint before).
func (h *Push) Subscribe() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req subscribeRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		if err := checkEndpoint(req.Endpoint); err != nil {
			return err
		}
		if !p256Point(req.Keys.P256dh) {
			return apierr.Invalid("invalid keys.p256dh: must be the base64url of an uncompressed P-256 point")
		}
		if auth, err := decodeB64URL(req.Keys.Auth); err != nil || len(auth) != 16 {
			return apierr.Invalid("invalid keys.auth: must be the base64url of 16 bytes")
		}
		err := h.cfg.Store.SavePushSubscription(c.UserContext(), models.PushSubscription{
			UID: middleware.SessionFrom(c).UID, Endpoint: req.Endpoint,
			P256dh: req.Keys.P256dh, Auth: req.Keys.Auth, CreatedAt: h.cfg.Now().Unix(),
		}, h.cfg.MaxSubscriptions)
		if err != nil {
			return err
		}
		return c.JSON(numResponse{Num: 1, Msg: "success"})
	}
}

type unsubscribeRequest struct {
	Endpoint string `json:"endpoint" validate:"required,max=1024"`
}

// Unsubscribe serves /user/push/unsubscribe: the caller's subscription
// at endpoint is deleted, if they have one there.
func (h *Push) Unsubscribe() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req unsubscribeRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		if err := h.cfg.Store.DeletePushSubscription(c.UserContext(), middleware.SessionFrom(c).UID, req.Endpoint); err != nil {
			return err
		}
		return c.JSON(numResponse{Num: 1, Msg: "success"})
	}
}

// checkEndpoint accepts an absolute https URL with a host and no
// credentials: what browsers' push services hand out. Where it leads is
// checked when a push is posted (push.GuardedClient).
func checkEndpoint(endpoint string) error {
	u, err := url.Parse(endpoint)
	switch {
	case err != nil, len(endpoint) > maxEndpoint, u.Scheme != "https", u.Host == "", u.User != nil,
		u.Fragment != "", !wire.NoControl(endpoint):
		return apierr.Invalid("invalid endpoint: must be an https URL")
	}
	return nil
}

// p256Point reports whether s is the base64url (padded or not; browsers
// send it unpadded) of an uncompressed P-256 point on the curve.
func p256Point(s string) bool {
	raw, err := decodeB64URL(s)
	if err != nil || len(raw) != 65 || raw[0] != 4 {
		return false
	}
	_, err = ecdh.P256().NewPublicKey(raw)
	return err == nil
}

func decodeB64URL(s string) ([]byte, error) {
	return decodeBase64(base64.RawURLEncoding, strings.TrimRight(s, "="))
}
