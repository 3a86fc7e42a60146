package handlers

import (
	"context"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// BlockStore is what the blocking routes need from the database; the
// contacts group's store provides it.
type BlockStore interface {
	BlockUsers(ctx context.Context, me int64, peers []int64, now int64) (blocked, unfriended []int64, err error)
	UnblockUsers(ctx context.Context, me int64, peers []int64) ([]int64, error)
	Blocked(ctx context.Context, uid int64) ([]models.Profile, error)
}

// Block serves /Contacts/IO/block: num is how many of the given users are
// newly blocked. Blocking someone already blocked changes nothing.
func (h *Contacts) Block() fiber.Handler {
	return func(c *fiber.Ctx) error {
		uids, err := h.decodeUIDs(c)
		if err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		now := h.cfg.Now().Unix()
		ctx := c.UserContext()
		blocked, unfriended, err := h.cfg.Store.BlockUsers(ctx, me, uids, now)
		if err != nil {
			return err
		}
		for _, peer := range unfriended {
			noticeContact(h.cfg.Notices, peer, me, contactDelete)
		}
		for _, peer := range blocked {
			noticeContact(h.cfg.Notices, peer, me, contactBlock)
		}
		for _, peer := range unfriended {
			h.cfg.Events.Emit(ctx, events.ContactRemoved{UID: me, PeerUID: peer, Time: now})
		}
		for _, peer := range blocked {
			h.cfg.Events.Emit(ctx, events.UserBlocked{UID: me, PeerUID: peer, Time: now})
		}
		return c.JSON(numResponse{Num: int64(len(blocked)), Msg: "success"})
	}
}

// Unblock serves /Contacts/IO/unblock: num is how many blocks were
// lifted. Contacts and requests the block ended stay ended.
func (h *Contacts) Unblock() fiber.Handler {
	return func(c *fiber.Ctx) error {
		uids, err := h.decodeUIDs(c)
		if err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		ctx := c.UserContext()
		unblocked, err := h.cfg.Store.UnblockUsers(ctx, me, uids)
		if err != nil {
			return err
		}
		now := h.cfg.Now().Unix()
		for _, peer := range unblocked {
			h.cfg.Events.Emit(ctx, events.UserUnblocked{UID: me, PeerUID: peer, Time: now})
		}
		return c.JSON(numResponse{Num: int64(len(unblocked)), Msg: "success"})
	}
}

// Blocked serves /Contacts/blocked: the users I block, ordered by uid, in
// /Contacts/list's shape.
func (h *Contacts) Blocked() fiber.Handler {
	return func(c *fiber.Ctx) error {
		ps, err := h.cfg.Store.Blocked(c.UserContext(), middleware.SessionFrom(c).UID)
		if err != nil {
			return err
		}
		return c.JSON(profilesOf(ps))
	}
}
