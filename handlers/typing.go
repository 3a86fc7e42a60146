package handlers

import (
	"context"
	"strconv"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

// TypingInterval is how often one user's typing in one conversation is
// relayed at most (API.md §13); the others in between are dropped.
const TypingInterval = 3 * time.Second

// TypingStore is what /Message/Typing checks: that the caller may write
// to the user, or is in the group, as a Send would.
type TypingStore interface {
	MayMessage(ctx context.Context, from, to int64, contactsOnly bool) error
	OtherMembers(ctx context.Context, gid, uid int64) ([]int64, error)
	QueryTimeout() time.Duration
}

// Throttle admits one of a kind per interval: SetNX of the login
// throttle's counters (middleware.Counters), in Redis when the instances
// share one, so that the interval holds whichever instance is asked.
type Throttle interface {
	SetNX(key string, val []byte, exp time.Duration) (bool, error)
}

// TypingConfig carries /Message/Typing's dependencies.
type TypingConfig struct {
	Store   TypingStore
	Decoder *wire.Decoder
	// Notices carries the typing notices to the other side's streams.
	Notices Notices
	// Throttle keeps the relayed notices to one per TypingInterval.
	Throttle Throttle
	// AllowStrangers lets users who are not contacts message (and so tell
	// typing to) each other.
	AllowStrangers bool
}

type typingRequest struct {
	// Exactly one of UIDTo and GID.
	UIDTo wire.UID `json:"uid_to"`
	GID   wire.UID `json:"gid"`
}

type typingNotice struct {
	UID int64 `json:"uid"`
	GID int64 `json:"gid,omitempty"`
}

// Typing makes /Message/Typing: it relays "I am typing" to the other side
// of a conversation, never stored. A notice within TypingInterval of the
// last one relayed for the conversation is dropped, and answered as
// success all the same: the client need not know the interval.
func Typing(cfg TypingConfig) fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), cfg.Store.QueryTimeout())
		defer cancel()
		var req typingRequest
		if err := cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		to, key, err := typingTarget(ctx, cfg, me, req)
		if err != nil {
			return err
		}
		if ok, err := cfg.Throttle.SetNX("typing:"+strconv.FormatInt(me, 10)+":"+key, []byte{1}, TypingInterval); err != nil || !ok {
			// A throttle that does not answer drops the notice: typing is
			// best-effort, and relaying every keystroke is not.
			return c.JSON(success)
		}
		noticeAll(cfg.Notices, to, "typing", typingNotice{UID: me, GID: int64(req.GID)})
		return c.JSON(success)
	}
}

// typingTarget checks req and returns whom to tell, and the
// conversation's throttle key.
func typingTarget(ctx context.Context, cfg TypingConfig, me int64, req typingRequest) ([]int64, string, error) {
	switch {
	case req.UIDTo == 0 && req.GID == 0:
		return nil, "", apierr.Invalid("invalid uid_to: uid_to or gid is required")
	case req.UIDTo != 0 && req.GID != 0:
		return nil, "", apierr.Invalid("invalid gid: give uid_to or gid, not both")
	case int64(req.UIDTo) == me:
		return nil, "", apierr.Invalid("invalid uid_to: cannot message yourself")
	case req.GID != 0:
		members, err := cfg.Store.OtherMembers(ctx, int64(req.GID), me)
		return members, "g" + strconv.FormatInt(int64(req.GID), 10), err
	}
	to := int64(req.UIDTo)
	if err := cfg.Store.MayMessage(ctx, me, to, !cfg.AllowStrangers); err != nil {
		return nil, "", err
	}
	return []int64{to}, "u" + strconv.FormatInt(to, 10), nil
}
