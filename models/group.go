package models

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/fiberchat/fiberchat/apierr"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Group is a group conversation (API.md §12). Seq counts the messages
// ever stored in it and LastID is the newest one's id: a member's unread
// count is Seq less the Seq they have read, one row each, never a count
// of messages.
type Group struct {
	GID        int64  `gorm:"column:gid;primaryKey;autoIncrement"`
	Name       string `gorm:"size:64;not null"`
	HeadImg    string `gorm:"column:head_img;size:512;not null"`
	MembersNum int    `gorm:"column:members_num;not null;default:0"`
	Seq        int64  `gorm:"column:seq;not null;default:0"`
	LastID     int64  `gorm:"column:last_id;not null;default:0"`
	CreatedAt  int64  `gorm:"not null;autoCreateTime:false"`
	UpdatedAt  int64  `gorm:"not null;autoUpdateTime:false"`
}

// GroupMember is a user's membership of a group, kept after they leave
// (UntilID > 0) so that what was sent while they were in still reaches
// their Recv cursor. A member sees the group's messages with ids above
// FromID (and, once gone, up to UntilID). FromID is the newest message
// id of all when they joined, at least the group's newest: it is also
// when they joined on the scale of message ids, which orders their
// groups by activity, joining counting as some. ReadID/ReadSeq are their read
// watermark: the id and the group Seq they have read up to. Since orders
// members by how long they have been in.
type GroupMember struct {
	GID     int64  `gorm:"column:gid;primaryKey;autoIncrement:false"`
	UID     int64  `gorm:"column:uid;primaryKey;autoIncrement:false"`
	Role    string `gorm:"size:8;not null"`
	Since   int64  `gorm:"not null"`
	FromID  int64  `gorm:"column:from_id;not null"`
	UntilID int64  `gorm:"column:until_id;not null;default:0"`
	ReadID  int64  `gorm:"column:read_id;not null;default:0"`
	ReadSeq int64  `gorm:"column:read_seq;not null;default:0"`
}

// GroupSpan is an earlier span of a user's membership of a group, kept
// when they are added again after leaving (GroupMember then holds the new
// span): they still see the messages sent in it, those with FromID < id
// <= UntilID, as a member does (API.md §12). ReadID is their read mark
// when it ended: History's read_by counts them for the span's messages
// up to it.
type GroupSpan struct {
	GID     int64 `gorm:"column:gid;primaryKey;autoIncrement:false"`
	UID     int64 `gorm:"column:uid;primaryKey;autoIncrement:false"`
	FromID  int64 `gorm:"column:from_id;primaryKey;autoIncrement:false"`
	UntilID int64 `gorm:"column:until_id;not null"`
	ReadID  int64 `gorm:"column:read_id;not null;default:0"`
}

// The roles of API.md §12.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleMember = "member"
)

// What addMembers did about one uid (API.md §12).
const (
	GroupAdded         AddStatus = "added"
	GroupAlreadyMember AddStatus = "already_member"
	GroupFull          AddStatus = "full"
)

// The group failures: 404 for a group that is not there, 403 for one the
// caller may not read or change.
var (
	ErrNoGroup       = ErrNotFound.WithMsg("no such group: gid")
	ErrNotMember     = apierr.Forbidden("not allowed: not a member of the group")
	ErrGroupRole     = apierr.Forbidden("not allowed: your role in the group does not allow it")
	ErrTooManyGroups = apierr.Forbidden("not allowed: you are in as many groups as allowed")
)

// GroupLimits bounds groups: members per group and groups per user.
type GroupLimits struct {
	MaxMembers       int
	MaxGroupsPerUser int
}

// GroupSummary is a row of /Group/list.
type GroupSummary struct {
	GID        int64 `gorm:"column:gid"`
	Name       string
	HeadImg    string
	Role       string
	MembersNum int
	LastID     int64
}

// GroupMemberProfile is a member in /Group/info.
type GroupMemberProfile struct {
	UID     int64 `gorm:"column:uid"`
	Name    string
	HeadImg string
	Handle  string // "" for none
	Role    string
}

// groupTx runs fn in a transaction (contactTx's: retried on deadlock,
// READ COMMITTED on MySQL) with the group's row locked, so membership
// changes and sends to one group happen one after another. ErrNoGroup
// when there is none.
func (s *Store) groupTx(ctx context.Context, gid int64, fn func(tx *gorm.DB, g *Group) error) error {
	return s.contactTx(ctx, func(tx *gorm.DB) error {
		var g Group
		err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
			Where("gid = ?", gid).Take(&g).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return ErrNoGroup
		}
		if err != nil {
			return fmt.Errorf("lock group: %w", err)
		}
		return fn(tx, &g)
	})
}

// activeMember returns uid's membership of gid, ErrNotMember if they are
// not in it now.
func activeMember(tx *gorm.DB, gid, uid int64) (*GroupMember, error) {
	var m GroupMember
	err := tx.Where("gid = ? AND uid = ? AND until_id = 0", gid, uid).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNotMember
	}
	if err != nil {
		return nil, fmt.Errorf("read membership: %w", err)
	}
	return &m, nil
}

// CreateGroup makes a group named name owned by owner and adds those of
// uids addMembers would (see AddGroupMembers). It returns the group's gid
// and what was done about each uid.
func (s *Store) CreateGroup(ctx context.Context, owner int64, name string, uids []int64, now int64, lim GroupLimits) (int64, []AddResult, error) {
	var (
		gid     int64
		results []AddResult
	)
	err := s.contactTx(ctx, func(tx *gorm.DB) error {
		if err := lockMembersToBe(tx, owner, uids); err != nil {
			return err
		}
		if n, err := groupsOf(tx, []int64{owner}); err != nil {
			return err
		} else if lim.MaxGroupsPerUser > 0 && n[owner] >= lim.MaxGroupsPerUser {
			return ErrTooManyGroups
		}
		g := Group{Name: name, CreatedAt: now, UpdatedAt: now, MembersNum: 1}
		if err := tx.Create(&g).Error; err != nil {
			return fmt.Errorf("create group: %w", err)
		}
		from, err := newestMessageID(tx)
		if err != nil {
			return err
		}
		m := GroupMember{GID: g.GID, UID: owner, Role: RoleOwner, Since: time.Now().UnixNano(), FromID: from}
		if err := tx.Create(&m).Error; err != nil {
			return fmt.Errorf("add owner: %w", err)
		}
		gid = g.GID
		results, err = addMembers(tx, &g, owner, uids, lim, from)
		return err
	})
	if err != nil {
		return 0, nil, err
	}
	return gid, results, nil
}

// AddGroupMembers adds uids to gid on actor's behalf (an owner or admin).
// Per uid, in order, each once: added; already_member; not_found (no such
// user, not actor's contact, or blocking actor); full (the group, or the
// user's groups, at their limit).
func (s *Store) AddGroupMembers(ctx context.Context, gid, actor int64, uids []int64, lim GroupLimits) ([]AddResult, error) {
	var results []AddResult
	err := s.groupTx(ctx, gid, func(tx *gorm.DB, g *Group) error {
		me, err := activeMember(tx, gid, actor)
		if err != nil {
			return err
		}
		if me.Role == RoleMember {
			return ErrGroupRole
		}
		if err := lockMembersToBe(tx, actor, uids); err != nil {
			return err
		}
		newest, err := newestMessageID(tx)
		if err != nil {
			return err
		}
		results, err = addMembers(tx, g, actor, uids, lim, newest)
		return err
	})
	return results, err
}

// lockMembersToBe locks the user rows of actor and of the uids they add,
// in uid order (lockUIDs), before any membership is written: each
// membership's foreign key takes a shared lock on its user's row, and
// taken in the request's order, against a Send batch's locks in uid
// order, they could deadlock. Under them, actor's contacts, which say who
// may be added, cannot change either.
func lockMembersToBe(tx *gorm.DB, actor int64, uids []int64) error {
	if _, err := lockUIDs(tx, append([]int64{actor}, uids...)); err != nil {
		return fmt.Errorf("lock users: %w", err)
	}
	return nil
}

// addMembers is AddGroupMembers' work in tx, under g's lock (or in the
// transaction that created g) and lockMembersToBe's. A new member starts
// after the group's newest message, with nothing unread; newest is
// newestMessageID's, read under the same lock.
func addMembers(tx *gorm.DB, g *Group, actor int64, uids []int64, lim GroupLimits, newest int64) ([]AddResult, error) {
	uids = dedupe(uids)
	if len(uids) == 0 {
		return []AddResult{}, nil
	}
	eligible, err := contactsOf(tx, actor, uids)
	if err != nil {
		return nil, err
	}
	var rows []GroupMember
	if err := tx.Where("gid = ? AND uid IN ?", g.GID, uids).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	existing := make(map[int64]GroupMember, len(rows))
	for _, r := range rows {
		existing[r.UID] = r
	}
	counts, err := groupsOf(tx, uids)
	if err != nil {
		return nil, err
	}
	results := make([]AddResult, len(uids))
	added := 0
	since := time.Now().UnixNano()
	for i, uid := range uids {
		st, err := addOne(tx, g, uid, existing, eligible, counts, lim, since+int64(i), max(newest, g.LastID))
		if err != nil {
			return nil, err
		}
		if st == GroupAdded {
			g.MembersNum++
			added++
		}
		results[i] = AddResult{UID: uid, Status: st}
	}
	if added > 0 {
		if err := tx.Model(&Group{}).Where("gid = ?", g.GID).Update("members_num", g.MembersNum).Error; err != nil {
			return nil, fmt.Errorf("count members: %w", err)
		}
	}
	return results, nil
}

// addOne decides about one uid of addMembers and, when it is added,
// writes its membership.
func addOne(tx *gorm.DB, g *Group, uid int64, existing map[int64]GroupMember, eligible map[int64]bool, counts map[int64]int, lim GroupLimits, since, from int64) (AddStatus, error) {
	if m, ok := existing[uid]; ok && m.UntilID == 0 {
		return GroupAlreadyMember, nil
	}
	if !eligible[uid] {
		return AddNotFound, nil
	}
	if (lim.MaxMembers > 0 && g.MembersNum >= lim.MaxMembers) ||
		(lim.MaxGroupsPerUser > 0 && counts[uid] >= lim.MaxGroupsPerUser) {
		return GroupFull, nil
	}
	m := GroupMember{GID: g.GID, UID: uid, Role: RoleMember, Since: since, FromID: from, ReadID: g.LastID, ReadSeq: g.Seq}
	var err error
	if old, was := existing[uid]; was {
		// Back after leaving: a new span, from now on; the one that ended
		// is kept if it held any message.
		if old.UntilID > old.FromID {
			if err := keepSpan(tx, GroupSpan{GID: g.GID, UID: uid, FromID: old.FromID, UntilID: old.UntilID, ReadID: old.ReadID}); err != nil {
				return "", err
			}
		}
		res := tx.Model(&GroupMember{}).Where("gid = ? AND uid = ?", g.GID, uid).
			Updates(map[string]any{"role": m.Role, "since": m.Since, "from_id": m.FromID, "until_id": 0, "read_id": m.ReadID, "read_seq": m.ReadSeq})
		err = res.Error
		if err == nil && res.RowsAffected == 0 {
			// The ended membership went meanwhile (DeleteEndedMemberships
			// takes no group lock): a new one, then.
			err = tx.Create(&m).Error
		}
	} else {
		err = tx.Create(&m).Error
	}
	if err != nil {
		return "", fmt.Errorf("add member: %w", err)
	}
	counts[uid]++
	return GroupAdded, nil
}

// MaxGroupSpans is how many earlier spans of one user in one group are
// kept (see GroupSpan); past it the oldest goes, and its messages with
// it. Every History and Recv reads a member's spans, one index range
// each, so an owner adding and removing a member again and again cannot
// make them unbounded.
const MaxGroupSpans = 16

// keepSpan stores sp, an earlier span of a member added again, and drops
// the oldest of theirs past MaxGroupSpans.
func keepSpan(tx *gorm.DB, sp GroupSpan) error {
	if err := tx.Create(&sp).Error; err != nil {
		return fmt.Errorf("keep the earlier span: %w", err)
	}
	var froms []int64
	if err := tx.Model(&GroupSpan{}).Where("gid = ? AND uid = ?", sp.GID, sp.UID).
		Order("from_id DESC").Pluck("from_id", &froms).Error; err != nil {
		return fmt.Errorf("read the earlier spans: %w", err)
	}
	if len(froms) <= MaxGroupSpans {
		return nil
	}
	if err := tx.Where("gid = ? AND uid = ? AND from_id < ?", sp.GID, sp.UID, froms[MaxGroupSpans-1]).
		Delete(&GroupSpan{}).Error; err != nil {
		return fmt.Errorf("drop the oldest span: %w", err)
	}
	return nil
}

// greatestFunc is the name of SQL's two-argument maximum: GREATEST on
// MySQL/MariaDB, max on SQLite.
func (s *Store) greatestFunc() string {
	if s.mysql() {
		return "GREATEST"
	}
	return "max"
}

// greatest is SQL for the larger of a and b.
func (s *Store) greatest(a, b string) string { return s.greatestFunc() + "(" + a + ", " + b + ")" }

// newestMessageID is the newest message id committed, of all
// conversations: under the group's lock no message of the group can be
// on its way, so a member who joins at it sees exactly what is sent
// after (see GroupMember).
func newestMessageID(tx *gorm.DB) (int64, error) {
	var id int64
	if err := tx.Model(&Message{}).Select("COALESCE(MAX(id), 0)").Scan(&id).Error; err != nil {
		return 0, fmt.Errorf("read the newest message id: %w", err)
	}
	return id, nil
}

// contactsOf returns which of uids are actor's contacts and do not block
// actor: those actor may add to a group.
func contactsOf(tx *gorm.DB, actor int64, uids []int64) (map[int64]bool, error) {
	var peers []int64
	if err := tx.Model(&Contact{}).Where("uid = ? AND peer_uid IN ?", actor, uids).
		Pluck("peer_uid", &peers).Error; err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	var blockers []int64
	if err := tx.Model(&Block{}).Where("blocked_uid = ? AND uid IN ?", actor, uids).
		Pluck("uid", &blockers).Error; err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	out := make(map[int64]bool, len(peers))
	for _, p := range peers {
		out[p] = true
	}
	for _, b := range blockers {
		delete(out, b)
	}
	return out, nil
}

// groupsOf counts the groups each of uids is in now.
func groupsOf(tx *gorm.DB, uids []int64) (map[int64]int, error) {
	var rows []struct {
		UID int64
		N   int
	}
	if err := tx.Model(&GroupMember{}).Select("uid, COUNT(*) AS n").
		Where("uid IN ? AND until_id = 0", uids).Group("uid").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("count groups: %w", err)
	}
	out := make(map[int64]int, len(rows))
	for _, r := range rows {
		out[r.UID] = r.N
	}
	return out, nil
}

// dedupe returns uids without repeats, in the order of their first place.
func dedupe(uids []int64) []int64 {
	seen := make(map[int64]bool, len(uids))
	out := make([]int64, 0, len(uids))
	for _, u := range uids {
		if !seen[u] {
			seen[u] = true
			out = append(out, u)
		}
	}
	return out
}

// RemoveGroupMembers ends the membership of those of uids who are in gid,
// on actor's behalf: the owner removes anyone, an admin members only
// (ErrGroupRole, and nothing removed, when uids name anyone else). It
// returns the uids removed. Removing oneself is leaving (LeaveGroup).
func (s *Store) RemoveGroupMembers(ctx context.Context, gid, actor int64, uids []int64) ([]int64, error) {
	var removed []int64
	err := s.groupTx(ctx, gid, func(tx *gorm.DB, g *Group) error {
		removed = nil
		me, err := activeMember(tx, gid, actor)
		if err != nil {
			return err
		}
		if me.Role == RoleMember {
			return ErrGroupRole
		}
		var targets []GroupMember
		if err := tx.Where("gid = ? AND uid IN ? AND until_id = 0 AND uid <> ?", gid, dedupe(uids), actor).
			Order("since").Find(&targets).Error; err != nil {
			return fmt.Errorf("read members: %w", err)
		}
		for _, t := range targets {
			if me.Role == RoleAdmin && t.Role != RoleMember {
				return ErrGroupRole
			}
			removed = append(removed, t.UID)
		}
		return endMemberships(tx, g, removed)
	})
	return removed, err
}

// endMemberships ends the memberships of uids in g: they keep receiving
// what was sent up to now, and nothing after.
func endMemberships(tx *gorm.DB, g *Group, uids []int64) error {
	if len(uids) == 0 {
		return nil
	}
	// The span ends at the newest message id of all, as it starts (see
	// newestMessageID): the group's edits, deletes and reactions stored
	// after its last message are in it too. until_id 0 means "still in":
	// with no message stored at all the end is -1, which lets no message
	// through.
	newest, err := newestMessageID(tx)
	if err != nil {
		return err
	}
	until := max(newest, g.LastID)
	if until == 0 {
		until = -1
	}
	if err := tx.Model(&GroupMember{}).Where("gid = ? AND uid IN ?", g.GID, uids).
		Updates(map[string]any{"until_id": until, "role": ""}).Error; err != nil {
		return fmt.Errorf("remove members: %w", err)
	}
	g.MembersNum -= len(uids)
	if err := tx.Model(&Group{}).Where("gid = ?", g.GID).Update("members_num", g.MembersNum).Error; err != nil {
		return fmt.Errorf("count members: %w", err)
	}
	return nil
}

// LeaveResult is what LeaveGroup did besides ending the membership.
type LeaveResult struct {
	// NewOwner is who became owner when the owner left, 0 otherwise.
	NewOwner int64
	// Deleted is true when the last member left and the group went.
	Deleted bool
}

// LeaveGroup ends uid's membership of gid. The owner's leaving hands
// ownership to the longest-standing admin, else the longest-standing
// member; the last member's deletes the group and its messages.
func (s *Store) LeaveGroup(ctx context.Context, gid, uid int64) (LeaveResult, error) {
	var res LeaveResult
	err := s.groupTx(ctx, gid, func(tx *gorm.DB, g *Group) error {
		res = LeaveResult{}
		me, err := activeMember(tx, gid, uid)
		if err != nil {
			return err
		}
		if g.MembersNum <= 1 {
			res.Deleted = true
			return deleteGroup(tx, gid)
		}
		if me.Role == RoleOwner {
			var heir GroupMember
			// "admin" sorts before "member": admins first, each by seniority.
			if err := tx.Where("gid = ? AND until_id = 0 AND uid <> ?", gid, uid).
				Order("role, since").Take(&heir).Error; err != nil {
				return fmt.Errorf("find the next owner: %w", err)
			}
			if err := setRole(tx, gid, heir.UID, RoleOwner); err != nil {
				return err
			}
			res.NewOwner = heir.UID
		}
		return endMemberships(tx, g, []int64{uid})
	})
	return res, err
}

// deleteGroup removes a group, its memberships and its messages, whose
// files it dooms for the file sweep (as deleting a message does): left
// sent, they would stay for good, on their uploader's quota.
func deleteGroup(tx *gorm.DB, gid int64) error {
	// Not left to the foreign key's cascade: a host may run SQLite
	// without foreign keys.
	if err := tx.Where("gid = ?", gid).Delete(&GroupSpan{}).Error; err != nil {
		return fmt.Errorf("delete members' earlier spans: %w", err)
	}
	if err := tx.Where("gid = ?", gid).Delete(&GroupMember{}).Error; err != nil {
		return fmt.Errorf("delete members: %w", err)
	}
	var files []int64
	if err := tx.Model(&Message{}).Where("gid = ? AND gid <> 0 AND file_id <> 0", gid).Pluck("file_id", &files).Error; err != nil {
		return fmt.Errorf("read group files: %w", err)
	}
	if err := doomFiles(tx, files); err != nil {
		return err
	}
	if err := tx.Where("gid = ? AND gid <> 0", gid).Delete(&Message{}).Error; err != nil {
		return fmt.Errorf("delete group messages: %w", err)
	}
	if err := tx.Where("gid = ?", gid).Delete(&Group{}).Error; err != nil {
		return fmt.Errorf("delete group: %w", err)
	}
	return nil
}

// setRole sets uid's role in gid.
func setRole(tx *gorm.DB, gid, uid int64, role string) error {
	if err := tx.Model(&GroupMember{}).Where("gid = ? AND uid = ?", gid, uid).
		Update("role", role).Error; err != nil {
		return fmt.Errorf("set role: %w", err)
	}
	return nil
}

// UpdateGroup sets gid's name and head_img on actor's behalf (an owner or
// admin); an empty value leaves its field as it is.
func (s *Store) UpdateGroup(ctx context.Context, gid, actor int64, name, headImg string, now int64) error {
	return s.groupTx(ctx, gid, func(tx *gorm.DB, _ *Group) error {
		me, err := activeMember(tx, gid, actor)
		if err != nil {
			return err
		}
		if me.Role == RoleMember {
			return ErrGroupRole
		}
		fields := map[string]any{"updated_at": now}
		if name != "" {
			fields["name"] = name
		}
		if headImg != "" {
			fields["head_img"] = headImg
		}
		if err := tx.Model(&Group{}).Where("gid = ?", gid).Updates(fields).Error; err != nil {
			return fmt.Errorf("update group: %w", err)
		}
		return nil
	})
}

// SetGroupRole gives member role in gid on actor's behalf (the owner
// only). Giving RoleOwner hands ownership over: actor becomes an admin.
func (s *Store) SetGroupRole(ctx context.Context, gid, actor, member int64, role string) error {
	return s.groupTx(ctx, gid, func(tx *gorm.DB, _ *Group) error {
		me, err := activeMember(tx, gid, actor)
		if err != nil {
			return err
		}
		if me.Role != RoleOwner {
			return ErrGroupRole
		}
		if member == actor {
			return apierr.Invalid("invalid member: cannot change your own role")
		}
		if _, err := activeMember(tx, gid, member); err != nil {
			if errors.Is(err, ErrNotMember) {
				return ErrNotFound.WithMsg("not a member of the group: member")
			}
			return err
		}
		if role == RoleOwner {
			if err := setRole(tx, gid, actor, RoleAdmin); err != nil {
				return err
			}
		}
		return setRole(tx, gid, member, role)
	})
}

// Groups returns the groups uid is in, the most recently active first:
// by their newest message, or by when uid joined (its FromID, on the same
// scale) if that came after, so that a group just made or joined comes
// first.
func (s *Store) Groups(ctx context.Context, uid int64) ([]GroupSummary, error) {
	db, done := s.with(ctx)
	defer done()
	members, groups, err := s.tables(&GroupMember{}, &Group{})
	if err != nil {
		return nil, err
	}
	var out []GroupSummary
	err = db.Table(members+" AS gm").
		Select("g.gid, g.name, g.head_img, gm.role, g.members_num, g.last_id").
		Joins("JOIN "+groups+" AS g ON g.gid = gm.gid").
		Where("gm.uid = ? AND gm.until_id = 0", uid).
		Order(s.greatest("g.last_id", "gm.from_id") + " DESC, g.gid DESC").Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list groups: %w", err)
	}
	return out, nil
}

// GroupInfo returns gid and its members, the longest-standing first, for
// a member of it: ErrNoGroup if there is no such group, ErrNotMember if
// uid is not in it.
func (s *Store) GroupInfo(ctx context.Context, gid, uid int64) (*Group, []GroupMemberProfile, error) {
	db, done := s.with(ctx)
	defer done()
	g, err := memberOf(db, gid, uid)
	if err != nil {
		return nil, nil, err
	}
	members, users, err := s.tables(&GroupMember{}, &User{})
	if err != nil {
		return nil, nil, err
	}
	var out []GroupMemberProfile
	err = db.Table(members+" AS gm").
		Select(profileColumns+", gm.role").
		Joins("JOIN "+users+" AS u ON u.uid = gm.uid").
		Where("gm.gid = ? AND gm.until_id = 0", gid).
		Order("gm.since").Find(&out).Error
	if err != nil {
		return nil, nil, fmt.Errorf("list members: %w", err)
	}
	return g, out, nil
}

// memberOf returns gid if uid is in it now: ErrNoGroup if there is no
// such group, ErrNotMember if uid is not in it.
func memberOf(db *gorm.DB, gid, uid int64) (*Group, error) {
	var g Group
	if err := db.Where("gid = ?", gid).Take(&g).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil, ErrNoGroup
		}
		return nil, fmt.Errorf("read group: %w", err)
	}
	if _, err := activeMember(db, gid, uid); err != nil {
		return nil, err
	}
	return &g, nil
}

// GroupMembers returns the uids of gid's members now, in uid order.
func (s *Store) GroupMembers(ctx context.Context, gid int64) ([]int64, error) {
	db, done := s.with(ctx)
	defer done()
	var uids []int64
	if err := db.Model(&GroupMember{}).Where("gid = ? AND until_id = 0", gid).
		Order("uid").Pluck("uid", &uids).Error; err != nil {
		return nil, fmt.Errorf("list members: %w", err)
	}
	return uids, nil
}

// DeleteEndedMemberships removes up to limit rows of memberships that
// ended before the oldest message still stored: retention purged all a
// former member could still receive of the group, so their row only
// lengthens their Recv's read of memberships. Earlier spans of members
// who came back (see GroupSpan) that ended before it go too. It reports
// how many memberships went.
func (s *Store) DeleteEndedMemberships(ctx context.Context, limit int) (int64, error) {
	db, done := s.with(ctx)
	defer done()
	var oldest int64
	if err := db.Model(&Message{}).Select("COALESCE(MIN(id), 0)").Scan(&oldest).Error; err != nil {
		return 0, fmt.Errorf("read oldest message: %w", err)
	}
	var ended []GroupMember
	q := db.Select("gid", "uid").Where("until_id <> 0 AND until_id < ?", oldest)
	if oldest == 0 {
		q = db.Select("gid", "uid").Where("until_id <> 0") // nothing is stored at all
	}
	if err := q.Limit(limit).Find(&ended).Error; err != nil {
		return 0, fmt.Errorf("read ended memberships: %w", err)
	}
	spans := db.Where("until_id < ?", oldest)
	if oldest == 0 {
		spans = db.Where("1 = 1")
	}
	if err := spans.Delete(&GroupSpan{}).Error; err != nil {
		return 0, fmt.Errorf("delete ended spans: %w", err)
	}
	var n int64
	for _, m := range ended {
		res := db.Where("gid = ? AND uid = ? AND until_id <> 0", m.GID, m.UID).Delete(&GroupMember{})
		if res.Error != nil {
			return n, fmt.Errorf("delete ended membership: %w", res.Error)
		}
		n += res.RowsAffected
	}
	return n, nil
}
