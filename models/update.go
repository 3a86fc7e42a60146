package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/fiberchat/fiberchat/apierr"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Kind is what a row of the messages table is (API.md §13), stored as a
// small integer in its kind column.
type Kind int8

// The kinds. KindEdit, KindDelete and KindReaction are update entries: a
// change to the message RefID, in the same id sequence as messages, so
// that it reaches that message's readers through their Recv cursor.
const (
	KindText     Kind = 0
	KindFile     Kind = 1
	KindEdit     Kind = 2
	KindDelete   Kind = 3
	KindReaction Kind = 4
)

// IsUpdate reports whether a row of kind k is an update entry, which
// History leaves out.
func (k Kind) IsUpdate() bool { return k >= KindEdit }

// String is the kind's name on the wire.
func (k Kind) String() string {
	switch k {
	case KindFile:
		return "file"
	case KindEdit:
		return "edit"
	case KindDelete:
		return "delete"
	case KindReaction:
		return "reaction"
	}
	return "text"
}

// MaxReactionsPerUser bounds the distinct emoji one user puts on one
// message (API.md §13).
const MaxReactionsPerUser = 20

// The refusals of Edit, Delete, React and a Send's reply_to.
var (
	ErrNoMessage        = ErrNotFound.WithMsg("no such message: id")
	ErrNotSender        = apierr.Forbidden("not allowed: only the sender may edit a message")
	ErrEditWindow       = apierr.Forbidden("not allowed: the message is past its edit window")
	ErrMayNotDelete     = apierr.Forbidden("not allowed: only the sender, or a group's owner or admin, may delete a message")
	ErrMessageDeleted   = apierr.New(apierr.CodeConflict, http.StatusConflict, "conflict: the message is deleted")
	ErrTooManyReactions = apierr.Forbidden(fmt.Sprintf("not allowed: at most %d emoji per message per user", MaxReactionsPerUser))
	ErrBadReplyTo       = apierr.Invalid("invalid reply_to: not a message of this conversation")
)

// Reaction is one emoji on a message and the users who put it there, in
// the order they did: an element of a message's Reactions JSON, which is
// API.md's `reactions` as it is.
type Reaction struct {
	Emoji string  `json:"emoji"`
	UIDs  []int64 `json:"uids"`
}

// Update names a change Actor makes at Now to the message ID.
type Update struct {
	Actor, ID, Now int64
	// ContactsOnly refuses an edit or a reaction in a 1:1 conversation
	// whose users are no longer contacts (ErrNotContact), as it would a
	// Send; a block refuses them always (ErrBlocked). A delete is never
	// refused for either: a sender may always take a message back.
	ContactsOnly bool
}

// Updated is what an update did: Entry is the update entry it stored,
// nil when nothing changed (a reaction already there, or not, a message
// deleted already); Wake are the users it goes to.
type Updated struct {
	Entry *Message
	Wake  []int64
	// Doomed is the file a Delete doomed (0: none), for the caller to
	// erase at once rather than at the next sweep.
	Doomed int64
}

// conversationOf is the conversation of a message under update, as the
// update's transaction locked it.
type conversationOf struct {
	peer int64  // 1:1: the other user
	role string // group: the actor's role
	wake []int64
}

// msgState are the columns an update reads of the message it changes.
var msgState = []string{"id", "from_uid", "COALESCE(to_uid, 0) AS to_uid", "gid", "created_at", "enc", "kind", "deleted", "reactions", "file_id"}

// updateMessage runs apply on the message u.ID in a transaction that
// holds the locks a Send to the message's readers takes (the other
// user's row; the group's row and, on MySQL/MariaDB, its members'), so
// the entry's id becomes visible to each reader in order, as a message's
// does (see CreateMessage), and then the message's row, so concurrent
// updates of one message run one after the other. apply changes the
// message's row and returns the entry to store, nil for none.
//
// With senderAnyway, a group message's update is open to its sender
// as well as its readers, member or not (a delete: API.md lets the
// sender take a message back at any time).
func (s *Store) updateMessage(ctx context.Context, u Update, senderAnyway bool, apply func(tx *gorm.DB, m *Message, c *conversationOf) (*Message, error)) (Updated, error) {
	var out Updated
	err := s.contactTx(ctx, func(tx *gorm.DB) error {
		out = Updated{}
		m, c, err := s.lockMessage(tx, u, senderAnyway)
		if err != nil {
			return err
		}
		entry, err := apply(tx, m, c)
		if err != nil || entry == nil {
			return err
		}
		entry.FromUID, entry.RefID, entry.GID, entry.CreatedAt = u.Actor, m.ID, m.GID, u.Now
		if err := insertEntry(tx, entry, c.peer); err != nil {
			return err
		}
		out = Updated{Entry: entry, Wake: c.wake}
		return nil
	})
	return out, err
}

// lockMessage reads the message u names, checks the actor reads its
// conversation (or, with senderAnyway, sent it), and takes
// updateMessage's locks.
func (s *Store) lockMessage(tx *gorm.DB, u Update, senderAnyway bool) (*Message, *conversationOf, error) {
	var m Message
	if err := takeMessage(tx, u.ID, &m, false); err != nil {
		return nil, nil, err
	}
	c := &conversationOf{}
	if m.GID == 0 {
		if u.Actor != m.FromUID && u.Actor != m.ToUID {
			return nil, nil, ErrNoMessage
		}
		c.peer = m.FromUID + m.ToUID - u.Actor
		if _, err := lockUIDs(tx, []int64{c.peer}); err != nil {
			return nil, nil, fmt.Errorf("lock recipient: %w", err)
		}
		// On Galera the lock orders nothing on other nodes: the row is
		// written too, as a Send's (galera.go).
		if err := s.bumpMailboxes(tx, []int64{c.peer}); err != nil {
			return nil, nil, err
		}
		c.wake = []int64{c.peer}
	} else if err := s.lockGroupReaders(tx, &m, u.Actor, senderAnyway && m.FromUID == u.Actor, c); err != nil {
		return nil, nil, err
	}
	// Again, locked: as the last update left it.
	if err := takeMessage(tx, u.ID, &m, true); err != nil {
		return nil, nil, err
	}
	return &m, c, nil
}

// takeMessage reads message id's state into m, locking its row if lock;
// ErrNoMessage for none, or for an update entry.
func takeMessage(tx *gorm.DB, id int64, m *Message, lock bool) error {
	q := tx.Select(msgState).Where("id = ?", id)
	if lock {
		q = q.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate})
	}
	err := q.Take(m).Error
	switch {
	case errors.Is(err, gorm.ErrRecordNotFound):
		return ErrNoMessage
	case err != nil:
		return fmt.Errorf("read message: %w", err)
	case m.Kind.IsUpdate():
		return ErrNoMessage
	}
	return nil
}

// lockGroupReaders locks the group of m and, on MySQL/MariaDB, its
// members' rows (as GroupWriter does), and, unless anyway, checks actor
// is a member who sees m: ErrNotMember if not in the group now,
// ErrNoMessage if m was sent before they joined (and in none of their
// earlier spans: see GroupSpan).
func (s *Store) lockGroupReaders(tx *gorm.DB, m *Message, actor int64, anyway bool, c *conversationOf) error {
	var g Group
	err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).Select("gid").
		Where("gid = ?", m.GID).Take(&g).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNoMessage
	}
	if err != nil {
		return fmt.Errorf("lock group: %w", err)
	}
	var ms []GroupMember
	if err := tx.Select("uid", "role", "from_id").Where("gid = ? AND until_id = 0", m.GID).
		Order("uid").Find(&ms).Error; err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	// Members who came back saw m if an earlier span of theirs held it.
	var back []int64
	if err := spansHolding(tx, m.GID, m.ID).Pluck("uid", &back).Error; err != nil {
		return fmt.Errorf("read members: %w", err)
	}
	saw := func(gm GroupMember) bool { return gm.FromID < m.ID || slices.Contains(back, gm.UID) }
	i := slices.IndexFunc(ms, func(gm GroupMember) bool { return gm.UID == actor })
	switch {
	case anyway:
	case i < 0:
		return ErrNotMember
	case !saw(ms[i]):
		return ErrNoMessage
	}
	if i >= 0 {
		c.role = ms[i].Role
	}
	// The entry reaches those the message reached (see recvSQL): only
	// they are locked, bumped and woken.
	all := make([]int64, 0, len(ms))
	for _, gm := range ms {
		if saw(gm) {
			all = append(all, gm.UID)
		}
	}
	if s.mysql() {
		if _, err := lockUIDs(tx, slices.Clone(all)); err != nil {
			return fmt.Errorf("lock members: %w", err)
		}
		if err := s.bumpMailboxes(tx, all); err != nil {
			return err
		}
	}
	c.wake = othersThan(all, actor)
	return nil
}

// spansHolding selects the earlier spans of members of gid (see
// GroupSpan) that held message id.
func spansHolding(tx *gorm.DB, gid, id int64) *gorm.DB {
	return tx.Model(&GroupSpan{}).Where("gid = ? AND from_id < ? AND until_id >= ?", gid, id, id)
}

// entryRow is an update entry as inserted: a group's has no recipient
// (NULL), a 1:1 one goes to the other user of the conversation.
type entryRow struct {
	ID        int64 `gorm:"primaryKey"`
	FromUID   int64 `gorm:"column:from_uid"`
	ToUID     *int64
	Body      string
	CreatedAt int64 `gorm:"autoCreateTime:false"`
	Enc       bool
	PairLo    int64
	PairHi    int64
	GID       int64 `gorm:"column:gid"`
	Kind      Kind
	RefID     int64
}

// insertEntry stores e, for the other user peer of a 1:1 conversation
// (e.GID 0), and fills in its id and recipient.
func insertEntry(tx *gorm.DB, e *Message, peer int64) error {
	row := entryRow{FromUID: e.FromUID, Body: e.Body, CreatedAt: e.CreatedAt, Enc: e.Enc, GID: e.GID, Kind: e.Kind, RefID: e.RefID}
	if e.GID == 0 {
		e.ToUID = peer
		e.setPair()
		row.ToUID, row.PairLo, row.PairHi = &peer, e.PairLo, e.PairHi
	}
	table, err := tableOf(tx, &Message{})
	if err != nil {
		return err
	}
	if err := tx.Table(table).Create(&row).Error; err != nil {
		return fmt.Errorf("store update entry: %w", err)
	}
	e.ID = row.ID
	return nil
}

// mayUpdate refuses an edit or reaction in a 1:1 conversation the actor
// could not send in now (see Update.ContactsOnly); under the peer's lock,
// as a Send's check.
func mayUpdate(tx *gorm.DB, u Update, c *conversationOf) error {
	if c.peer == 0 {
		return nil
	}
	return mayMessage(tx, u.Actor, c.peer, u.ContactsOnly)
}

// EditMessage replaces the text of u.ID, its actor's message, with body
// (an `enc` when enc: an encrypted message's edit is encrypted too, and
// a plain one's plain), within window of its sending (none when 0). The
// message keeps only the latest text: the row's body is replaced, and
// the entry of an earlier edit, which carried the text it replaces, is
// deleted with it; the new entry carries body.
func (s *Store) EditMessage(ctx context.Context, u Update, body string, enc bool, window time.Duration) (Updated, error) {
	return s.updateMessage(ctx, u, false, func(tx *gorm.DB, m *Message, c *conversationOf) (*Message, error) {
		switch {
		case m.FromUID != u.Actor:
			return nil, ErrNotSender
		case m.Deleted:
			return nil, ErrMessageDeleted
		case window > 0 && time.Duration(u.Now-m.CreatedAt)*time.Second > window:
			return nil, ErrEditWindow
		case m.Enc && !enc:
			return nil, apierr.Invalid("invalid enc: an encrypted message is edited with enc")
		case !m.Enc && enc:
			return nil, apierr.Invalid("invalid enc: a plain message is edited with data")
		}
		if err := mayUpdate(tx, u, c); err != nil {
			return nil, err
		}
		if err := tx.Model(&Message{}).Where("id = ?", m.ID).
			Updates(map[string]any{"body": body, "edited_at": u.Now}).Error; err != nil {
			return nil, fmt.Errorf("edit message: %w", err)
		}
		if err := tx.Where("ref_id = ? AND ref_id <> 0 AND kind = ?", m.ID, KindEdit).Delete(&Message{}).Error; err != nil {
			return nil, fmt.Errorf("drop the earlier edit: %w", err)
		}
		return &Message{Kind: KindEdit, Body: body, Enc: enc}, nil
	})
}

// DeleteMessage deletes u.ID for everyone: its sender may, at any time,
// and so may a group's owner or admin. The text is erased, not hidden:
// the row keeps its place (History shows it deleted) with an empty body
// and no reactions, and every update entry of it goes, an edit's text
// with it. A message deleted already changes nothing.
func (s *Store) DeleteMessage(ctx context.Context, u Update) (Updated, error) {
	var doomed int64
	done, err := s.updateMessage(ctx, u, true, func(tx *gorm.DB, m *Message, c *conversationOf) (*Message, error) {
		doomed = 0
		if m.FromUID != u.Actor && c.role != RoleOwner && c.role != RoleAdmin {
			return nil, ErrMayNotDelete
		}
		if m.Deleted {
			return nil, nil
		}
		if err := tx.Model(&Message{}).Where("id = ?", m.ID).
			Updates(map[string]any{"body": "", "deleted": true, "edited_at": 0, "reactions": nil, "file_id": 0}).Error; err != nil {
			return nil, fmt.Errorf("delete message: %w", err)
		}
		// Its file goes too: doomed here, erased by the caller or the
		// sweep.
		if m.FileID != 0 {
			if err := doomFiles(tx, []int64{m.FileID}); err != nil {
				return nil, err
			}
			doomed = m.FileID
		}
		if err := tx.Where("ref_id = ? AND ref_id <> 0", m.ID).Delete(&Message{}).Error; err != nil {
			return nil, fmt.Errorf("drop the update entries: %w", err)
		}
		return &Message{Kind: KindDelete}, nil
	})
	if err == nil {
		done.Doomed = doomed
	}
	return done, err
}

// ReactMessage puts emoji on u.ID for its actor (on), or takes it off.
// It is idempotent: an emoji already there, or not, changes nothing.
// The entry's body is "+" or "-" and the emoji; an earlier entry of the
// same user and emoji on the message is deleted, as the new one
// supersedes it.
func (s *Store) ReactMessage(ctx context.Context, u Update, emoji string, on bool) (Updated, error) {
	return s.updateMessage(ctx, u, false, func(tx *gorm.DB, m *Message, c *conversationOf) (*Message, error) {
		if m.Deleted {
			return nil, ErrMessageDeleted
		}
		if err := mayUpdate(tx, u, c); err != nil {
			return nil, err
		}
		rs, changed, err := toggleReaction(m.Reactions, u.Actor, emoji, on)
		if err != nil || !changed {
			return nil, err
		}
		if err := tx.Model(&Message{}).Where("id = ?", m.ID).Update("reactions", rs).Error; err != nil {
			return nil, fmt.Errorf("react: %w", err)
		}
		if err := tx.Where("ref_id = ? AND ref_id <> 0 AND kind = ? AND from_uid = ? AND body IN ?",
			m.ID, KindReaction, u.Actor, []string{"+" + emoji, "-" + emoji}).Delete(&Message{}).Error; err != nil {
			return nil, fmt.Errorf("drop the earlier reaction: %w", err)
		}
		sign := "-"
		if on {
			sign = "+"
		}
		return &Message{Kind: KindReaction, Body: sign + emoji}, nil
	})
}

// toggleReaction returns the reactions JSON stored (nil for none) with
// uid's emoji put on or taken off, and whether that changed anything.
func toggleReaction(stored *string, uid int64, emoji string, on bool) (*string, bool, error) {
	var rs []Reaction
	if stored != nil {
		if err := json.Unmarshal([]byte(*stored), &rs); err != nil {
			return nil, false, fmt.Errorf("read reactions: %w", err)
		}
	}
	mine := 0
	at := -1
	for i, r := range rs {
		if slices.Contains(r.UIDs, uid) {
			mine++
		}
		if r.Emoji == emoji {
			at = i
		}
	}
	has := at >= 0 && slices.Contains(rs[at].UIDs, uid)
	switch {
	case has == on:
		return stored, false, nil
	case on && mine >= MaxReactionsPerUser:
		return nil, false, ErrTooManyReactions
	case on && at < 0:
		rs = append(rs, Reaction{Emoji: emoji, UIDs: []int64{uid}})
	case on:
		rs[at].UIDs = append(rs[at].UIDs, uid)
	default:
		rs[at].UIDs = slices.DeleteFunc(rs[at].UIDs, func(v int64) bool { return v == uid })
		if len(rs[at].UIDs) == 0 {
			rs = slices.Delete(rs, at, at+1)
		}
	}
	if len(rs) == 0 {
		return nil, true, nil
	}
	b, err := json.Marshal(rs)
	if err != nil {
		return nil, false, fmt.Errorf("write reactions: %w", err)
	}
	out := string(b)
	return &out, true, nil
}

// MessageHead returns who sent the message id and to whom (ToUID or
// GID), and its kind; ErrNoMessage if there is none. It reads no more:
// an edit's BeforeSend needs the conversation before the edit's
// transaction, which checks everything again.
func (s *Store) MessageHead(ctx context.Context, id int64) (*Message, error) {
	db, done := s.with(ctx)
	defer done()
	var m Message
	err := db.Select("id", "from_uid", "COALESCE(to_uid, 0) AS to_uid", "gid", "kind").Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, ErrNoMessage
	}
	if err != nil {
		return nil, fmt.Errorf("read message: %w", err)
	}
	return &m, nil
}

// CheckReplyTo checks that id, a Send's reply_to, is a message of the
// conversation the Send goes to: between from and to, or of the group
// gid and sent since from joined it. ErrBadReplyTo if not. A recipient
// or group that does not exist, or a sender who is not in the group, is
// left to the Send's own refusal (404, 403): what is wrong then is the
// uid_to or the gid, not the reply_to.
func (s *Store) CheckReplyTo(ctx context.Context, from, to, gid, id int64) error {
	db, done := s.with(ctx)
	defer done()
	// badReplyTo is ErrBadReplyTo, or nil when the Send goes nowhere it
	// may: asked only when the reply_to is wrong.
	badReplyTo := func() error {
		var n int64
		q := db.Model(&User{}).Where("uid = ?", to)
		if gid != 0 {
			q = db.Model(&GroupMember{}).Where("gid = ? AND uid = ? AND until_id = 0", gid, from)
		}
		if err := q.Count(&n).Error; err != nil {
			return fmt.Errorf("read reply_to's conversation: %w", err)
		}
		if n == 0 {
			return nil
		}
		return ErrBadReplyTo
	}
	var m Message
	err := db.Select("id", "from_uid", "COALESCE(to_uid, 0) AS to_uid", "gid", "kind").Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return badReplyTo()
	}
	if err != nil {
		return fmt.Errorf("read reply_to: %w", err)
	}
	switch {
	case m.Kind.IsUpdate(), m.GID != gid:
		return badReplyTo()
	case gid == 0:
		if min(m.FromUID, m.ToUID) != min(from, to) || max(m.FromUID, m.ToUID) != max(from, to) {
			return ErrBadReplyTo
		}
		return nil
	}
	var gm GroupMember
	err = db.Select("from_id").Where("gid = ? AND uid = ? AND until_id = 0", gid, from).Take(&gm).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read membership: %w", err)
	}
	if gm.FromID < id {
		return nil
	}
	// Sent before they joined: theirs to reply to only if an earlier
	// span of theirs held it (see GroupSpan).
	var n int64
	if err := spansHolding(db, gid, id).Where("uid = ?", from).Count(&n).Error; err != nil {
		return fmt.Errorf("read membership: %w", err)
	}
	if n == 0 {
		return ErrBadReplyTo
	}
	return nil
}

// richColumns are the columns of API.md §13 a read of messages selects
// after its own (with prefix, a table alias and its dot, or ""), in
// richDest's order.
func richColumns(prefix string) string {
	return prefix + "kind, " + prefix + "ref_id, " + prefix + "reply_to, " + prefix + "edited_at, " + prefix + "deleted, " + prefix + "reactions, " + prefix + "file_id"
}

// richDest are the scan destinations of richColumns in m.
func (m *Message) richDest() []any {
	return []any{&m.Kind, &m.RefID, &m.ReplyTo, &m.EditedAt, &m.Deleted, &m.Reactions, &m.FileID}
}
