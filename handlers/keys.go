package handlers

import (
	"context"
	"encoding/base64"
	"log/slog"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// KeyStore is what the device-key directory needs from the database.
type KeyStore interface {
	PublishDeviceKey(ctx context.Context, k models.DeviceKey) (changed bool, err error)
	DeviceKeys(ctx context.Context, uids []int64) ([]models.DeviceKey, error)
	ContactUIDs(ctx context.Context, uid int64) ([]int64, error)
}

// Keys serves the device-key directory of end-to-end encryption
// (API.md §15). It holds public keys only: the server can relay them, and
// could lie about them, which is what safety numbers are for
// (docs/security.md).
type Keys struct {
	cfg KeysConfig
}

// KeysConfig carries the key directory's dependencies.
type KeysConfig struct {
	Store   KeyStore
	Decoder *wire.Decoder
	Now     func() time.Time
	// Notices carries event: keys to the publisher's contacts.
	Notices Notices
	Logger  *slog.Logger
}

// NewKeys prepares the key directory's handlers.
func NewKeys(cfg KeysConfig) *Keys {
	if cfg.Notices == nil {
		cfg.Notices = noStreams{}
	}
	return &Keys{cfg: cfg}
}

// x25519KeyLen is the length of a raw X25519 public key.
const x25519KeyLen = 32

type publishKeyRequest struct {
	DeviceID string `json:"device_id" validate:"required,max=64,nocontrol"`
	Key      string `json:"key" validate:"required"`
}

type keysNotice struct {
	UID int64 `json:"uid"`
}

// Publish serves /user/keys/publish: the caller's device device_id now
// has key. A new or changed key is event: keys on the streams of the
// caller's contacts, for their clients to fetch the keys again (and warn
// of a change); republishing the same key tells no one.
func (h *Keys) Publish() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req publishKeyRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		raw, err := decodeBase64(base64.StdEncoding, req.Key)
		if err != nil || len(raw) != x25519KeyLen {
			return apierr.Invalid("invalid key: must be the base64 of a raw %d-byte X25519 public key", x25519KeyLen)
		}
		me := middleware.SessionFrom(c).UID
		ctx := c.UserContext()
		changed, err := h.cfg.Store.PublishDeviceKey(ctx, models.DeviceKey{
			UID: me, DeviceID: req.DeviceID, Key: req.Key, UpdatedAt: h.cfg.Now().Unix(),
		})
		if err != nil {
			return err
		}
		if changed {
			h.tellContacts(ctx, me)
		}
		return c.JSON(numResponse{Num: 1, Msg: "success"})
	}
}

// tellContacts sends event: keys about uid to its contacts' streams. The
// key is stored by then; a notice that cannot be sent costs a client a
// fresh look at the keys later, not the publish.
func (h *Keys) tellContacts(ctx context.Context, uid int64) {
	peers, err := h.cfg.Store.ContactUIDs(ctx, uid)
	if err != nil {
		if h.cfg.Logger != nil {
			h.cfg.Logger.WarnContext(ctx, "tell contacts of a key change", "uid", uid, "error", err.Error())
		}
		return
	}
	noticeAll(h.cfg.Notices, peers, "keys", keysNotice{UID: uid})
}

type deviceKeyEntry struct {
	UID      int64  `json:"uid"`
	DeviceID string `json:"device_id"`
	Key      string `json:"key"`
	Time     int64  `json:"time"`
}

type deviceKeysResponse struct {
	Num   int              `json:"num"`
	Msg   string           `json:"msg"`
	Error int              `json:"error"`
	Data  []deviceKeyEntry `json:"data"`
}

// Get serves /user/keys/get: every device key of the given users (1–100
// of them), by uid and device id; a user without keys, or who does not
// exist, has none.
func (h *Keys) Get() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req uidListRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		uids := make([]int64, len(req.Data))
		for i, e := range req.Data {
			uids[i] = int64(e.UID)
		}
		ks, err := h.cfg.Store.DeviceKeys(c.UserContext(), uids)
		if err != nil {
			return err
		}
		out := deviceKeysResponse{Num: len(ks), Msg: "success", Data: make([]deviceKeyEntry, len(ks))}
		for i, k := range ks {
			out.Data[i] = deviceKeyEntry{UID: k.UID, DeviceID: k.DeviceID, Key: k.Key, Time: k.UpdatedAt}
		}
		return c.JSON(out)
	}
}
