package handlers

import (
	"context"
	"time"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// ContactStore is what the contacts group needs from the database.
type ContactStore interface {
	Contacts(ctx context.Context, uid int64) ([]models.Profile, error)
	Profiles(ctx context.Context, uids []int64) ([]models.Profile, error)
	IncomingRequests(ctx context.Context, uid int64) ([]models.IncomingRequest, error)
	AddContacts(ctx context.Context, me int64, peers []int64, now int64) ([]models.AddResult, error)
	AnswerRequest(ctx context.Context, me, from int64, accept bool, now int64) error
	DeleteContacts(ctx context.Context, me int64, peers []int64) ([]int64, error)
	BlockStore
}

// Contacts serves the contacts group of API.md §4.
type Contacts struct {
	cfg ContactsConfig
}

// ContactsConfig carries the contacts group's dependencies.
type ContactsConfig struct {
	Store   ContactStore
	Decoder *wire.Decoder
	Now     func() time.Time
	// Events receives ContactRequested, ContactAdded, RequestRefused,
	// ContactRemoved, UserBlocked and UserUnblocked after commit.
	Events *events.Emitter
	// Notices takes the contact notices for the peers' open streams
	// (request, accept, refuse, delete, block).
	//
	// Optional. Default: none (there are no streams to tell).
	Notices Notices
	// Presence is where /Contacts/list reads who is online.
	//
	// Optional. Default: nil, every contact offline and never seen.
	Presence *PresenceConfig
}

// NewContacts prepares the contacts group's handlers.
func NewContacts(cfg ContactsConfig) *Contacts {
	if cfg.Notices == nil {
		cfg.Notices = noStreams{}
	}
	return &Contacts{cfg: cfg}
}

// uidEntry is one {"uid":…} of a data list.
type uidEntry struct {
	UID wire.UID `json:"uid" validate:"required"`
}

// uidListRequest is the body of the routes taking data:[{"uid":…},…]. The
// 1–100 bound (API.md §4) bounds the IN lists and the row locks one
// request can take.
type uidListRequest struct {
	Data []uidEntry `json:"data" validate:"required,min=1,max=100,dive"`
}

// decodeUIDs reads a data list. A failure names the entry's field by its
// index (data[2].uid), an entry without a uid (`{}`, `null`) too.
func (h *Contacts) decodeUIDs(c *fiber.Ctx) ([]int64, error) {
	var req uidListRequest
	if err := h.cfg.Decoder.Decode(c, &req); err != nil {
		return nil, err
	}
	uids := make([]int64, len(req.Data))
	for i, e := range req.Data {
		uids[i] = int64(e.UID)
	}
	return uids, nil
}

type profileEntry struct {
	UID     int64  `json:"uid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"`
	Handle  string `json:"handle"`
}

type profilesResponse struct {
	Num   int            `json:"num"`
	Msg   string         `json:"msg"`
	Error int            `json:"error"`
	Data  []profileEntry `json:"data"`
}

func profilesOf(ps []models.Profile) profilesResponse {
	data := make([]profileEntry, len(ps))
	for i, p := range ps {
		data[i] = profileEntry{UID: p.UID, Name: p.Name, HeadImg: p.HeadImg, Handle: p.Handle}
	}
	return profilesResponse{Num: len(data), Msg: "success", Data: data}
}

// List serves /Contacts/list: my contacts ordered by uid, with their
// presence.
func (h *Contacts) List() fiber.Handler {
	return func(c *fiber.Ctx) error {
		me := middleware.SessionFrom(c).UID
		ps, err := h.cfg.Store.Contacts(c.UserContext(), me)
		if err != nil {
			return err
		}
		out, err := withPresence(c.UserContext(), h.cfg.Presence, me, profilesOf(ps))
		if err != nil {
			return err
		}
		return c.JSON(out)
	}
}

// Info serves /Contacts/Info: the profiles of the given uids that exist,
// in request order, each user once.
func (h *Contacts) Info() fiber.Handler {
	return func(c *fiber.Ctx) error {
		uids, err := h.decodeUIDs(c)
		if err != nil {
			return err
		}
		ps, err := h.cfg.Store.Profiles(c.UserContext(), uids)
		if err != nil {
			return err
		}
		return c.JSON(profilesOf(ps))
	}
}

type requestEntry struct {
	UID     int64  `json:"uid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"`
	Handle  string `json:"handle"`
	Time    int64  `json:"time"`
}

type requestsResponse struct {
	Num   int            `json:"num"`
	Msg   string         `json:"msg"`
	Error int            `json:"error"`
	Data  []requestEntry `json:"data"`
}

// Requests serves /Contacts/list/add: the pending requests to me, oldest
// first, with the time each was made.
func (h *Contacts) Requests() fiber.Handler {
	return func(c *fiber.Ctx) error {
		rs, err := h.cfg.Store.IncomingRequests(c.UserContext(), middleware.SessionFrom(c).UID)
		if err != nil {
			return err
		}
		data := make([]requestEntry, len(rs))
		for i, r := range rs {
			data[i] = requestEntry{UID: r.UID, Name: r.Name, HeadImg: r.HeadImg, Handle: r.Handle, Time: r.CreatedAt}
		}
		return c.JSON(requestsResponse{Num: len(data), Msg: "success", Data: data})
	}
}

type addEntry struct {
	UID    int64  `json:"uid"`
	Status string `json:"status"`
}

type addResponse struct {
	Num   int        `json:"num"`
	Msg   string     `json:"msg"`
	Error int        `json:"error"`
	Data  []addEntry `json:"data"`
}

// Add serves /Contacts/IO/addContacts: one status per given uid, in
// request order; num counts the requests made and accepted.
func (h *Contacts) Add() fiber.Handler {
	return func(c *fiber.Ctx) error {
		uids, err := h.decodeUIDs(c)
		if err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		now := h.cfg.Now().Unix()
		results, err := h.cfg.Store.AddContacts(c.UserContext(), me, uids, now)
		if err != nil {
			return err
		}
		resp := addResponse{Msg: "success", Data: make([]addEntry, len(results))}
		for i, r := range results {
			resp.Data[i] = addEntry{UID: r.UID, Status: string(r.Status)}
			switch r.Status {
			case models.AddAccepted:
				noticeContact(h.cfg.Notices, r.UID, me, contactAccept)
				resp.Num++
			case models.AddRequested:
				noticeContact(h.cfg.Notices, r.UID, me, contactRequest)
				resp.Num++
			}
		}
		// Every peer has its notice before the host hears of the first:
		// a slow OnEvent holds none of them up.
		for _, r := range results {
			switch r.Status {
			case models.AddAccepted:
				h.cfg.Events.Emit(c.UserContext(), events.ContactAdded{UID: me, PeerUID: r.UID, Time: now})
			case models.AddRequested:
				h.cfg.Events.Emit(c.UserContext(), events.ContactRequested{UID: me, PeerUID: r.UID, Time: now})
			}
		}
		return c.JSON(resp)
	}
}

type numResponse struct {
	Num   int64  `json:"num"`
	Msg   string `json:"msg"`
	Error int    `json:"error"`
}

// Delete serves /Contacts/IO/delContacts: num is how many contacts ended.
func (h *Contacts) Delete() fiber.Handler {
	return func(c *fiber.Ctx) error {
		uids, err := h.decodeUIDs(c)
		if err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		removed, err := h.cfg.Store.DeleteContacts(c.UserContext(), me, uids)
		if err != nil {
			return err
		}
		for _, peer := range removed {
			noticeContact(h.cfg.Notices, peer, me, contactDelete)
		}
		now := h.cfg.Now().Unix()
		for _, peer := range removed {
			h.cfg.Events.Emit(c.UserContext(), events.ContactRemoved{UID: me, PeerUID: peer, Time: now})
		}
		return c.JSON(numResponse{Num: int64(len(removed)), Msg: "success"})
	}
}

// answerRequest is acceptContacts' body. Type is a pointer so that a
// missing type is told from 0 (refuse).
type answerRequest struct {
	UIDFrom wire.UID  `json:"uid_from" validate:"required"`
	Type    *wire.Int `json:"type" validate:"required,oneof=0 1"`
}

// Answer serves /Contacts/IO/acceptContacts: type 1 accepts the pending
// request from uid_from, type 0 refuses it; 404 if none is pending.
func (h *Contacts) Answer() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req answerRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		now := h.cfg.Now().Unix()
		accept := *req.Type == 1
		if err := h.cfg.Store.AnswerRequest(c.UserContext(), me, int64(req.UIDFrom), accept, now); err != nil {
			return err
		}
		if accept {
			noticeContact(h.cfg.Notices, int64(req.UIDFrom), me, contactAccept)
			h.cfg.Events.Emit(c.UserContext(), events.ContactAdded{UID: me, PeerUID: int64(req.UIDFrom), Time: now})
		} else {
			noticeContact(h.cfg.Notices, int64(req.UIDFrom), me, contactRefuse)
			h.cfg.Events.Emit(c.UserContext(), events.RequestRefused{UID: me, PeerUID: int64(req.UIDFrom), Time: now})
		}
		return c.JSON(success)
	}
}
