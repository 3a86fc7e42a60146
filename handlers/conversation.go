package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// ConversationStore is what the conversation routes need from the
// database.
type ConversationStore interface {
	History(ctx context.Context, me, with, beforeID int64, limit int) (models.HistoryPage, error)
	MarkRead(ctx context.Context, me, from, lastID int64) (newlyRead, readID int64, err error)
	Unread(ctx context.Context, uid int64) ([]models.UnreadFrom, error)
	GroupHistory(ctx context.Context, gid, me, beforeID int64, limit int) (models.GroupHistoryPage, error)
	MarkGroupRead(ctx context.Context, gid, me, lastID int64) (newlyRead, readID int64, err error)
	UserByID(ctx context.Context, uid int64) (*models.User, error)
}

// noSuchUser answers a History or Read that found nothing: 404/1006
// naming field when uid is no user's (API.md §2), nil when it is.
// Asked only then, it costs the routes' usual answers nothing.
func (h *Conversations) noSuchUser(ctx context.Context, uid int64, field string) error {
	_, err := h.cfg.Store.UserByID(ctx, uid)
	if errors.Is(err, models.ErrNotFound) {
		return models.ErrNotFound.WithMsg("no such user: " + field)
	}
	return err
}

// Conversations serves the conversation routes of API.md §9: history,
// read receipts and unread counts.
type Conversations struct {
	cfg ConversationsConfig
}

// ConversationsConfig carries the conversation routes' dependencies.
type ConversationsConfig struct {
	Store ConversationStore
	// Files links the files of History's records; nil links none.
	Files   *Files
	Decoder *wire.Decoder
	Now     func() time.Time
	// Events receives MessagesRead after commit.
	Events *events.Emitter
	// Notices takes the read receipts for the senders' open streams.
	//
	// Optional. Default: none (there are no streams to tell).
	Notices Notices
}

// NewConversations prepares the conversation routes' handlers.
func NewConversations(cfg ConversationsConfig) *Conversations {
	if cfg.Notices == nil {
		cfg.Notices = noStreams{}
	}
	return &Conversations{cfg: cfg}
}

// historyRequest is /Message/History's body; before_id 0 or absent is the
// newest page.
type historyRequest struct {
	// Exactly one of UIDWith and GID.
	UIDWith  wire.UID  `json:"uid_with"`
	GID      wire.UID  `json:"gid"`
	BeforeID wire.Int  `json:"before_id"`
	Limit    *wire.Int `json:"limit" validate:"omitempty,min=1,max=100"`
}

type historyMessage struct {
	ID      int64           `json:"id"`
	UIDFrom int64           `json:"uid_from"`
	UIDTo   int64           `json:"uid_to"`
	Message string          `json:"message,omitempty"`
	Enc     json.RawMessage `json:"enc,omitempty"` // see recordBody
	Time    int64           `json:"time"`
	Read    bool            `json:"read"`
	richFields
}

type historyResponse struct {
	Num   int              `json:"num"`
	Msg   string           `json:"msg"`
	Error int              `json:"error"`
	Data  []historyMessage `json:"data"`
	More  bool             `json:"more"`
}

const defaultHistoryLimit = 50

// History serves /Message/History: the messages between me and uid_with,
// both directions, newest first, below before_id. Any uid may be asked
// for: with a stranger the page is empty, as there are no messages
// between us to show.
func (h *Conversations) History() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req historyRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		with := int64(req.UIDWith)
		switch {
		case with == 0 && req.GID == 0:
			return apierr.Invalid("invalid uid_with: uid_with or gid is required")
		case with != 0 && req.GID != 0:
			return apierr.Invalid("invalid gid: give uid_with or gid, not both")
		case with == me:
			return apierr.Invalid("invalid uid_with: cannot be yourself")
		}
		limit := defaultHistoryLimit
		if req.Limit != nil {
			limit = int(*req.Limit)
		}
		if req.GID != 0 {
			return h.groupHistory(c, int64(req.GID), me, int64(req.BeforeID), limit)
		}
		// One more than asked for tells whether there are more.
		page, err := h.cfg.Store.History(c.UserContext(), me, with, int64(req.BeforeID), limit+1)
		if err != nil {
			return err
		}
		ms := page.Messages
		if len(ms) == 0 {
			if err := h.noSuchUser(c.UserContext(), with, "uid_with"); err != nil {
				return err
			}
		}
		more := len(ms) > limit
		if more {
			ms = ms[:limit]
		}
		links, err := h.cfg.Files.Links(c.UserContext(), ms)
		if err != nil {
			return err
		}
		resp := historyResponse{Num: len(ms), Msg: "success", Data: make([]historyMessage, len(ms)), More: more}
		for i, m := range ms {
			text, enc := recordBody(&ms[i])
			resp.Data[i] = historyMessage{ID: m.ID, UIDFrom: m.FromUID, UIDTo: m.ToUID, Message: text, Enc: enc, Time: m.CreatedAt, Read: page.Read(me, m), richFields: richOf(&ms[i], links)}
		}
		return c.JSON(resp)
	}
}

// readRequest is /Message/Read's body. LastID is a pointer so that a
// missing last_id is told from 0.
type readRequest struct {
	// Exactly one of UIDFrom and GID.
	UIDFrom wire.UID  `json:"uid_from"`
	GID     wire.UID  `json:"gid"`
	LastID  *wire.Int `json:"last_id" validate:"required"`
}

// Read serves /Message/Read: every message from uid_from to me up to
// last_id becomes read; num is how many were not before.
func (h *Conversations) Read() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req readRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		from := int64(req.UIDFrom)
		switch {
		case from == 0 && req.GID == 0:
			return apierr.Invalid("invalid uid_from: uid_from or gid is required")
		case from != 0 && req.GID != 0:
			return apierr.Invalid("invalid gid: give uid_from or gid, not both")
		case from == me:
			return apierr.Invalid("invalid uid_from: cannot be yourself")
		}
		ctx := c.UserContext()
		if req.GID != 0 {
			gid := int64(req.GID)
			n, readID, err := h.cfg.Store.MarkGroupRead(ctx, gid, me, int64(*req.LastID))
			if err != nil {
				return err
			}
			if n > 0 {
				h.cfg.Events.Emit(ctx, events.MessagesRead{UID: me, GID: gid, LastID: readID, Num: n, Time: h.cfg.Now().Unix()})
			}
			return c.JSON(numResponse{Num: n, Msg: "success"})
		}
		n, readID, err := h.cfg.Store.MarkRead(ctx, me, from, int64(*req.LastID))
		if err != nil {
			return err
		}
		if n == 0 && readID == 0 {
			// Nothing of from's was ever read: from may be no user. (A
			// Read that marks again what was read, as clients do, has a
			// readID, and asks nothing more.)
			if err := h.noSuchUser(ctx, from, "uid_from"); err != nil {
				return err
			}
		}
		if n > 0 {
			noticeRead(h.cfg.Notices, from, me, readID)
			h.cfg.Events.Emit(ctx, events.MessagesRead{UID: me, PeerUID: from, LastID: readID, Num: n, Time: h.cfg.Now().Unix()})
		}
		return c.JSON(numResponse{Num: n, Msg: "success"})
	}
}

type unreadEntry struct {
	// One of UIDFrom (a sender) and GID (a group).
	UIDFrom int64 `json:"uid_from,omitempty"`
	GID     int64 `json:"gid,omitempty"`
	Count   int64 `json:"count"`
	LastID  int64 `json:"last_id"`
}

type unreadResponse struct {
	Num   int           `json:"num"`
	Msg   string        `json:"msg"`
	Error int           `json:"error"`
	Data  []unreadEntry `json:"data"`
}

// Unread serves /Message/Unread: per sender and per group, my unread
// count and the newest unread id, the most recent first.
func (h *Conversations) Unread() fiber.Handler {
	return func(c *fiber.Ctx) error {
		rows, err := h.cfg.Store.Unread(c.UserContext(), middleware.SessionFrom(c).UID)
		if err != nil {
			return err
		}
		data := make([]unreadEntry, len(rows))
		for i, r := range rows {
			data[i] = unreadEntry{UIDFrom: r.PeerUID, GID: r.GID, Count: r.Count, LastID: r.LastID}
		}
		return c.JSON(unreadResponse{Num: len(data), Msg: "success", Data: data})
	}
}

// groupHistoryMessage is one record of a group's History. Like a 1:1
// record (recvMessage), a deleted one, or a file sent without a caption,
// has no message.
type groupHistoryMessage struct {
	ID      int64  `json:"id"`
	UIDFrom int64  `json:"uid_from"`
	GID     int64  `json:"gid"`
	Message string `json:"message,omitempty"`
	Time    int64  `json:"time"`
	ReadBy  int    `json:"read_by"`
	richFields
}

type groupHistoryResponse struct {
	Num   int                   `json:"num"`
	Msg   string                `json:"msg"`
	Error int                   `json:"error"`
	Data  []groupHistoryMessage `json:"data"`
	More  bool                  `json:"more"`
}

// groupHistory is History with gid: the group's messages I may see,
// newest first, each with how many other members have read it.
func (h *Conversations) groupHistory(c *fiber.Ctx, gid, me, beforeID int64, limit int) error {
	page, err := h.cfg.Store.GroupHistory(c.UserContext(), gid, me, beforeID, limit+1)
	if err != nil {
		return err
	}
	ms := page.Messages
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	links, err := h.cfg.Files.Links(c.UserContext(), ms)
	if err != nil {
		return err
	}
	resp := groupHistoryResponse{Num: len(ms), Msg: "success", Data: make([]groupHistoryMessage, len(ms)), More: more}
	for i, m := range ms {
		resp.Data[i] = groupHistoryMessage{ID: m.ID, UIDFrom: m.FromUID, GID: m.GID, Message: m.Body, Time: m.CreatedAt, ReadBy: page.ReadBy[i], richFields: richOf(&ms[i], links)}
	}
	return c.JSON(resp)
}
