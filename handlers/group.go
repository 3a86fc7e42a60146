package handlers

import (
	"context"
	"log/slog"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// GroupStore is what the group routes need from the database.
type GroupStore interface {
	CreateGroup(ctx context.Context, owner int64, name string, uids []int64, now int64, lim models.GroupLimits) (int64, []models.AddResult, error)
	AddGroupMembers(ctx context.Context, gid, actor int64, uids []int64, lim models.GroupLimits) ([]models.AddResult, error)
	RemoveGroupMembers(ctx context.Context, gid, actor int64, uids []int64) ([]int64, error)
	LeaveGroup(ctx context.Context, gid, uid int64) (models.LeaveResult, error)
	UpdateGroup(ctx context.Context, gid, actor int64, name, headImg string, now int64) error
	SetGroupRole(ctx context.Context, gid, actor, member int64, role string) error
	Groups(ctx context.Context, uid int64) ([]models.GroupSummary, error)
	GroupInfo(ctx context.Context, gid, uid int64) (*models.Group, []models.GroupMemberProfile, error)
	GroupMembers(ctx context.Context, gid int64) ([]int64, error)
}

// Groups serves the group routes of API.md §12.
type Groups struct {
	cfg GroupsConfig
}

// GroupsConfig carries the group routes' dependencies and settings.
type GroupsConfig struct {
	Store   GroupStore
	Decoder *wire.Decoder
	Now     func() time.Time
	Logger  *slog.Logger
	// Limits bounds members per group and groups per user.
	Limits models.GroupLimits
	// Events receives GroupChanged after commit.
	Events *events.Emitter
	// Notices takes the group notices for the members' open streams.
	//
	// Optional. Default: none (there are no streams to tell).
	Notices Notices
}

// NewGroups prepares the group routes' handlers.
func NewGroups(cfg GroupsConfig) *Groups {
	if cfg.Notices == nil {
		cfg.Notices = noStreams{}
	}
	return &Groups{cfg: cfg}
}

// What a group notice says happened (API.md §12).
const (
	groupCreated = "created"
	groupAdded   = "added"
	groupRemoved = "removed"
	groupLeft    = "left"
	groupUpdated = "updated"
	groupRole    = "role"
)

type groupNotice struct {
	GID  int64  `json:"gid"`
	What string `json:"what"`
	UID  int64  `json:"uid"`
}

// gidRequest is the body of the routes that take only a gid.
type gidRequest struct {
	GID wire.UID `json:"gid" validate:"required"`
}

type createGroupRequest struct {
	Name string     `json:"name" validate:"required,max=64,nocontrol"`
	Data []uidEntry `json:"data" validate:"max=100,dive"`
}

type groupUIDsRequest struct {
	GID  wire.UID   `json:"gid" validate:"required"`
	Data []uidEntry `json:"data" validate:"required,min=1,max=100,dive"`
}

type updateGroupRequest struct {
	GID     wire.UID `json:"gid" validate:"required"`
	Name    string   `json:"name" validate:"omitempty,max=64,nocontrol"`
	HeadImg string   `json:"head_img" validate:"omitempty,max=512,nocontrol"`
}

type roleRequest struct {
	GID    wire.UID `json:"gid" validate:"required"`
	Member wire.UID `json:"member" validate:"required"`
	Role   string   `json:"role" validate:"required,oneof=owner admin member"`
}

type createGroupResponse struct {
	GID   int64      `json:"gid"`
	Num   int        `json:"num"`
	Data  []addEntry `json:"data"`
	Error int        `json:"error"`
	Msg   string     `json:"msg"`
}

// entryUIDs returns the uids of a data list.
func entryUIDs(data []uidEntry) []int64 {
	uids := make([]int64, len(data))
	for i, e := range data {
		uids[i] = int64(e.UID)
	}
	return uids
}

// addEntries turns addMembers' results into the answer's data and num.
func addEntries(results []models.AddResult) ([]addEntry, int, []int64) {
	data := make([]addEntry, len(results))
	var added []int64
	for i, r := range results {
		data[i] = addEntry{UID: r.UID, Status: string(r.Status)}
		if r.Status == models.GroupAdded {
			added = append(added, r.UID)
		}
	}
	return data, len(added), added
}

// Create serves /Group/create: the caller becomes the owner of a new
// group with those of data's uids that may be added (as addMembers).
func (h *Groups) Create() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req createGroupRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		ctx := c.UserContext()
		now := h.cfg.Now().Unix()
		gid, results, err := h.cfg.Store.CreateGroup(ctx, me, req.Name, entryUIDs(req.Data), now, h.cfg.Limits)
		if err != nil {
			return err
		}
		data, num, _ := addEntries(results)
		h.tell(ctx, gid, nil, groupCreated, me, me)
		return c.JSON(createGroupResponse{GID: gid, Num: num, Data: data, Msg: "success"})
	}
}

// AddMembers serves /Group/IO/addMembers (owner and admins).
func (h *Groups) AddMembers() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req groupUIDsRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		ctx := c.UserContext()
		gid := int64(req.GID)
		results, err := h.cfg.Store.AddGroupMembers(ctx, gid, me, entryUIDs(req.Data), h.cfg.Limits)
		if err != nil {
			return err
		}
		data, num, added := addEntries(results)
		for _, uid := range added {
			h.tell(ctx, gid, nil, groupAdded, uid, me)
		}
		return c.JSON(addResponse{Num: num, Msg: "success", Data: data})
	}
}

// RemoveMembers serves /Group/IO/removeMembers: num is how many were
// removed. The owner removes anyone, an admin members only; to remove
// oneself is to leave.
func (h *Groups) RemoveMembers() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req groupUIDsRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		uids := entryUIDs(req.Data)
		for i, uid := range uids {
			if uid == me {
				return apierr.Invalid("invalid data[%d].uid: cannot remove yourself, leave instead", i)
			}
		}
		ctx := c.UserContext()
		gid := int64(req.GID)
		removed, err := h.cfg.Store.RemoveGroupMembers(ctx, gid, me, uids)
		if err != nil {
			return err
		}
		for _, uid := range removed {
			h.tell(ctx, gid, []int64{uid}, groupRemoved, uid, me)
		}
		return c.JSON(numResponse{Num: int64(len(removed)), Msg: "success"})
	}
}

// Leave serves /Group/IO/leave.
func (h *Groups) Leave() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req gidRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		ctx := c.UserContext()
		gid := int64(req.GID)
		res, err := h.cfg.Store.LeaveGroup(ctx, gid, me)
		if err != nil {
			return err
		}
		// A deleted group has no members left to tell but the leaver.
		h.tell(ctx, gid, []int64{me}, groupLeft, me, me)
		if res.NewOwner != 0 {
			h.tell(ctx, gid, nil, groupRole, res.NewOwner, me)
		}
		return c.JSON(success)
	}
}

// Update serves /Group/IO/update (owner and admins): empty fields stay
// unchanged.
func (h *Groups) Update() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req updateGroupRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		if req.HeadImg != "" && !safeImageURL(req.HeadImg) {
			return apierr.Invalid("invalid head_img: must be an http(s) URL or an absolute path")
		}
		me := middleware.SessionFrom(c).UID
		ctx := c.UserContext()
		gid := int64(req.GID)
		if err := h.cfg.Store.UpdateGroup(ctx, gid, me, req.Name, req.HeadImg, h.cfg.Now().Unix()); err != nil {
			return err
		}
		h.tell(ctx, gid, nil, groupUpdated, me, me)
		return c.JSON(success)
	}
}

// Role serves /Group/IO/role (owner only): role owner hands ownership
// over, the caller becoming an admin.
func (h *Groups) Role() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req roleRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		me := middleware.SessionFrom(c).UID
		member := int64(req.Member)
		ctx := c.UserContext()
		gid := int64(req.GID)
		if err := h.cfg.Store.SetGroupRole(ctx, gid, me, member, req.Role); err != nil {
			return err
		}
		h.tell(ctx, gid, nil, groupRole, member, me)
		if req.Role == models.RoleOwner {
			h.tell(ctx, gid, nil, groupRole, me, me)
		}
		return c.JSON(success)
	}
}

type groupListEntry struct {
	GID        int64  `json:"gid"`
	Name       string `json:"name"`
	HeadImg    string `json:"head_img"`
	Role       string `json:"role"`
	MembersNum int    `json:"members_num"`
	LastID     int64  `json:"last_id"`
}

type groupListResponse struct {
	Num   int              `json:"num"`
	Msg   string           `json:"msg"`
	Error int              `json:"error"`
	Data  []groupListEntry `json:"data"`
}

// List serves /Group/list: my groups, newest activity first.
func (h *Groups) List() fiber.Handler {
	return func(c *fiber.Ctx) error {
		gs, err := h.cfg.Store.Groups(c.UserContext(), middleware.SessionFrom(c).UID)
		if err != nil {
			return err
		}
		data := make([]groupListEntry, len(gs))
		for i, g := range gs {
			data[i] = groupListEntry{GID: g.GID, Name: g.Name, HeadImg: g.HeadImg, Role: g.Role, MembersNum: g.MembersNum, LastID: g.LastID}
		}
		return c.JSON(groupListResponse{Num: len(data), Msg: "success", Data: data})
	}
}

type groupMemberEntry struct {
	UID     int64  `json:"uid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"`
	Handle  string `json:"handle"`
	Role    string `json:"role"`
}

type groupInfoResponse struct {
	GID        int64              `json:"gid"`
	Name       string             `json:"name"`
	HeadImg    string             `json:"head_img"`
	Time       int64              `json:"time"`
	MembersNum int                `json:"members_num"`
	Data       []groupMemberEntry `json:"data"`
	Error      int                `json:"error"`
	Msg        string             `json:"msg"`
}

// Info serves /Group/info: the group and its members, for members only.
func (h *Groups) Info() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req gidRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		g, ms, err := h.cfg.Store.GroupInfo(c.UserContext(), int64(req.GID), middleware.SessionFrom(c).UID)
		if err != nil {
			return err
		}
		data := make([]groupMemberEntry, len(ms))
		for i, m := range ms {
			data[i] = groupMemberEntry{UID: m.UID, Name: m.Name, HeadImg: m.HeadImg, Handle: m.Handle, Role: m.Role}
		}
		return c.JSON(groupInfoResponse{GID: g.GID, Name: g.Name, HeadImg: g.HeadImg, Time: g.CreatedAt,
			MembersNum: len(data), Data: data, Msg: "success"})
	}
}

// tell hands a group notice to the group's members now and to also
// (members who just went), then emits the host's event. A failure to
// read the members loses the notices, which are best-effort news (see
// notice); the change itself has committed.
func (h *Groups) tell(ctx context.Context, gid int64, also []int64, what string, uid, by int64) {
	members, err := h.cfg.Store.GroupMembers(ctx, gid)
	if err != nil {
		h.cfg.Logger.WarnContext(ctx, "group notice: read members", "gid", gid, "error", err.Error())
	}
	n := groupNotice{GID: gid, What: what, UID: uid}
	noticeAll(h.cfg.Notices, append(members, also...), "group", n)
	h.cfg.Events.Emit(ctx, events.GroupChanged{GID: gid, What: what, UID: uid, By: by, Time: h.cfg.Now().Unix()})
}
