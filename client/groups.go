package client

import "context"

// The statuses of AddGroupMembers and CreateGroup (API.md §12), beside
// StatusNotFound, which there also covers a user who is not my contact or
// who blocks me.
const (
	StatusAdded         AddStatus = "added"          // now a member
	StatusAlreadyMember AddStatus = "already_member" // nothing to do
	StatusFull          AddStatus = "full"           // the group has as many members as the server allows
)

// Role is a member's role in a group.
type Role string

// The roles of API.md §12.
const (
	RoleOwner  Role = "owner"  // exactly one per group; SetGroupRole to it hands ownership over
	RoleAdmin  Role = "admin"  // adds members, removes plain members, renames the group
	RoleMember Role = "member" // talks
)

// The What of a GroupEvent.
const (
	GroupCreated = "created" // UID created the group, with me in it
	GroupAdded   = "added"   // UID joined
	GroupRemoved = "removed" // UID was removed
	GroupLeft    = "left"    // UID left
	GroupUpdated = "updated" // the name or avatar changed (UID made the change)
	GroupRole    = "role"    // UID's role changed
)

// Group is a group as Groups lists it: one I am in.
type Group struct {
	GID     int64  `json:"gid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"`
	// Role is mine.
	Role       Role `json:"role"`
	MembersNum int  `json:"members_num"`
	// LastID is the id of the group's newest message (0 for none).
	LastID int64 `json:"last_id"`
}

// GroupMember is a member of a group, as GroupInfo lists them.
type GroupMember struct {
	Profile
	Role Role `json:"role"`
}

// GroupInfo is a group and its members, as GroupInfo returns it.
type GroupInfo struct {
	GID     int64  `json:"gid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"`
	// Time is when the group was created (unix seconds).
	Time       int64         `json:"time"`
	MembersNum int           `json:"members_num"`
	Members    []GroupMember `json:"data"`
}

// NewGroup is what CreateGroup made.
type NewGroup struct {
	GID int64
	// Added is how many of the uids asked for became members (the creator
	// aside).
	Added int
	// Results says, per uid asked for, what happened.
	Results []AddResult
}

// GroupUpdate is what UpdateGroup changes; an empty field is left as it
// is.
type GroupUpdate struct {
	Name    string `json:"name,omitempty"`
	HeadImg string `json:"head_img,omitempty"`
}

// gidBody is the body of the routes that name a group and nothing else.
type gidBody struct {
	GID int64 `json:"gid"`
}

// gidUIDs is the body of the routes that name a group and a list of users.
type gidUIDs struct {
	GID int64 `json:"gid"`
	uidList
}

// CreateGroup creates a group named name (1–64 characters) with me as its
// owner and each of uids (0–100, my contacts) as members (/Group/create).
func (c *Client) CreateGroup(ctx context.Context, name string, uids ...int64) (NewGroup, error) {
	var out struct {
		envelope
		GID  int64       `json:"gid"`
		Num  int         `json:"num"`
		Data []AddResult `json:"data"`
	}
	err := c.call(ctx, "/Group/create", true, struct {
		Name string `json:"name"`
		uidList
	}{name, uidsBody(uids)}, &out)
	return NewGroup{GID: out.GID, Added: out.Num, Results: out.Data}, err
}

// Groups lists the groups I am in, newest activity first (/Group/list).
func (c *Client) Groups(ctx context.Context) ([]Group, error) {
	var out struct {
		envelope
		Data []Group `json:"data"`
	}
	err := c.call(ctx, "/Group/list", true, nil, &out)
	return out.Data, err
}

// GroupInfo returns the group gid and its members (/Group/info). A group
// that does not exist is an *Error with CodeNotFound; one I am not in,
// CodeForbidden.
func (c *Client) GroupInfo(ctx context.Context, gid int64) (GroupInfo, error) {
	var out struct {
		envelope
		GroupInfo
	}
	err := c.call(ctx, "/Group/info", true, gidBody{gid}, &out)
	return out.GroupInfo, err
}

// AddGroupMembers adds each of uids (1–100, my contacts) to the group gid
// (/Group/IO/addMembers) and reports what happened for each. Only the
// owner and admins may: anyone else gets an *Error with CodeForbidden.
func (c *Client) AddGroupMembers(ctx context.Context, gid int64, uids ...int64) ([]AddResult, error) {
	var out struct {
		envelope
		Data []AddResult `json:"data"`
	}
	err := c.call(ctx, "/Group/IO/addMembers", true, gidUIDs{gid, uidsBody(uids)}, &out)
	return out.Data, err
}

// RemoveGroupMembers removes each of uids (1–100) from the group gid
// (/Group/IO/removeMembers) and returns how many were removed. The owner
// removes anyone, an admin plain members only.
func (c *Client) RemoveGroupMembers(ctx context.Context, gid int64, uids ...int64) (int, error) {
	var out numAnswer
	err := c.call(ctx, "/Group/IO/removeMembers", true, gidUIDs{gid, uidsBody(uids)}, &out)
	return out.Num, err
}

// LeaveGroup leaves the group gid (/Group/IO/leave). An owner who leaves
// hands ownership to the longest-standing admin, else member; the last
// member to leave deletes the group.
func (c *Client) LeaveGroup(ctx context.Context, gid int64) error {
	return c.call(ctx, "/Group/IO/leave", true, gidBody{gid}, nil)
}

// UpdateGroup renames the group gid or changes its avatar URL
// (/Group/IO/update); owner and admins only.
func (c *Client) UpdateGroup(ctx context.Context, gid int64, u GroupUpdate) error {
	return c.call(ctx, "/Group/IO/update", true, struct {
		GID int64 `json:"gid"`
		GroupUpdate
	}{gid, u}, nil)
}

// SetGroupRole gives member the role in the group gid (/Group/IO/role);
// the owner only. RoleOwner hands ownership over to member.
func (c *Client) SetGroupRole(ctx context.Context, gid, member int64, role Role) error {
	return c.call(ctx, "/Group/IO/role", true, struct {
		GID    int64 `json:"gid"`
		Member int64 `json:"member"`
		Role   Role  `json:"role"`
	}{gid, member, role}, nil)
}
