package models

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/fiberchat/fiberchat/apierr"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Message is one message from FromUID to ToUID. ClientMsgID is the
// sender's optional idempotency key, unique per sender. A message written
// through the MessageWriter without one gets, on MySQL/MariaDB, a key of
// the server's own in the column (see serverKeys; m itself comes back
// without it), which nothing hands to clients.
//
// Read state lives beside it, per recipient and sender (Conversation):
// a watermark, not a column per message.
type Message struct {
	ID          int64   `gorm:"primaryKey"`
	FromUID     int64   `gorm:"column:from_uid;not null"`
	ToUID       int64   `gorm:"column:to_uid"`
	Body        string  `gorm:"column:body;not null"`
	CreatedAt   int64   `gorm:"not null;autoCreateTime:false"`
	ClientMsgID *string `gorm:"column:client_msg_id;size:256"`
	// PairLo and PairHi are FromUID and ToUID, the smaller first, so that
	// one index range holds a conversation in both directions (History).
	// The store sets them.
	PairLo int64 `gorm:"column:pair_lo;not null;default:0"`
	PairHi int64 `gorm:"column:pair_hi;not null;default:0"`
	// GID is the group of a group message (ToUID is then 0, NULL in the
	// table), 0 for a 1:1 message; GSeq is its place in the group,
	// counted from 1 (API.md §12).
	GID  int64 `gorm:"column:gid;not null;default:0"`
	GSeq int64 `gorm:"column:gseq;not null;default:0"`
	// Enc marks an end-to-end encrypted 1:1 message (API.md §15): Body is
	// then the sender's `enc` JSON, which the server cannot read, and is
	// handed back as JSON, never as text.
	Enc bool `gorm:"column:enc;not null;default:false"`
	// Kind is what the row is (API.md §13): KindText, KindFile, or an
	// update entry (KindEdit, KindDelete, KindReaction) of the message
	// RefID, which reaches the message's readers through their cursor.
	Kind  Kind  `gorm:"column:kind;not null;default:0"`
	RefID int64 `gorm:"column:ref_id;not null;default:0"`
	// ReplyTo is the message of the same conversation this one answers,
	// 0 for none.
	ReplyTo int64 `gorm:"column:reply_to;not null;default:0"`
	// EditedAt (unix seconds, 0 = never), Deleted and Reactions are a
	// message's current state, kept in its own row so that History reads
	// it with the message (see update.go). A deleted message's Body is
	// erased. Reactions is API.md's JSON, nil when there are none.
	EditedAt  int64   `gorm:"column:edited_at;not null;default:0"`
	Deleted   bool    `gorm:"column:deleted;not null;default:false"`
	Reactions *string `gorm:"column:reactions"`
	// FileID is the upload (File) the message carries, 0 for none; Body
	// is then its caption, which may be empty (API.md §13).
	FileID int64 `gorm:"column:file_id;not null;default:0"`
}

// replayAttempts bounds how often a send whose client_msg_id was taken
// looks for the message that took it and, finding it gone (purged),
// stores its own again.
//
// A send chosen as a deadlock victim, or rolled back by Galera's
// certification for a Send to the same recipient on another node (the
// same 1213), runs again until its deadline: nothing of it was stored,
// and on a cluster with writers on several nodes that is the price of
// their order (see galera.go), not a fault.
const replayAttempts = 3

// ErrNotContact is returned for a message between users who are not
// contacts when only contacts may message each other: 403/1008.
var ErrNotContact = apierr.Forbidden("not allowed: uid_to is not a contact")

// errNoRecipient is CreateMessage's ErrNotFound: the recipient does not
// exist.
var errNoRecipient = ErrNotFound.WithMsg("no such user: uid_to")

// CreateMessage stores m and fills in its id. When m carries a
// ClientMsgID the sender has used before, nothing is stored: m takes the
// first message's id and time (and keeps its own recipient and body, which
// are not compared), and replayed is true. ErrNotFound means the recipient
// does not exist; with contactsOnly, ErrNotContact that the two are not
// contacts.
//
// Why a recipient's lock: auto-increment ids are handed out at INSERT, not
// at COMMIT, so without it a reader could see message 11 committed while 10
// is still in flight, move its cursor past 10 and never see it. Each send
// therefore locks the recipient's user row (SELECT … FOR UPDATE) before it
// inserts, and holds the lock until it commits. Sends to one recipient thus
// take their ids one after another, each after the one before has
// committed, so the messages to any one user become visible in id order,
// and Recv, which only ever reads to_uid = me, cannot see a later id of
// mine before an earlier one. Sends to different users do not wait for each
// other. SQLite needs no lock: the module's SQLite has one connection, so
// its transactions run one at a time anyway (and it has no FOR UPDATE; the
// dialect drops the clause).
//
// A retry racing its first try is settled by the unique key on
// (from_uid, client_msg_id): InnoDB makes the second INSERT wait for the
// first to commit and then fail as a duplicate, and the first row is read
// back.
func (s *Store) CreateMessage(ctx context.Context, m *Message, contactsOnly bool) (replayed bool, err error) {
	db, done := s.with(ctx)
	defer done()
	for attempt := 1; ; attempt++ {
		err := db.Transaction(func(tx *gorm.DB) error {
			if err := s.insertMessage(tx, m, contactsOnly); err != nil {
				return err
			}
			if s.mysql() {
				// Bounded by the deadline, as a batch's COMMIT is (see
				// createBatch); Tx.Commit then finds nothing to end.
				return tx.Exec("COMMIT").Error
			}
			return nil
		})
		switch {
		case err == nil:
			return false, nil
		case isRefusal(err):
			return false, err
		case isDuplicate(err) && m.ClientMsgID != nil:
			first, ferr := s.MessageByClientID(db.Statement.Context, m.FromUID, *m.ClientMsgID)
			if ferr == nil {
				m.ID, m.CreatedAt = first.ID, first.CreatedAt
				return true, nil
			}
			if !errors.Is(ferr, ErrNotFound) || attempt >= replayAttempts {
				return false, fmt.Errorf("read replayed message: %w", ferr)
			}
			// The first try's row went between our INSERT and this
			// read (purged); storing ours is then right.
		case isDeadlock(err) && retryPause(db.Statement.Context, attempt):
		default:
			return false, fmt.Errorf("create message: %w", err)
		}
		m.ID = 0 // a failed Create may have set it
	}
}

// isRefusal reports whether err is CreateMessage refusing its message:
// its transaction rolled back, and trying again changes nothing.
func isRefusal(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrNotContact) || errors.Is(err, ErrBlocked) || errors.Is(err, ErrFileNotMine)
}

// insertMessage is one try of CreateMessage, inside its transaction: it
// locks the recipient, checks the sender may write to them, inserts m,
// and takes the file m names. The file comes last: a retry of a Send
// already stored fails its INSERT as a duplicate first, and is a replay
// whatever its file_id.
func (s *Store) insertMessage(tx *gorm.DB, m *Message, contactsOnly bool) error {
	if err := lockRecipient(tx, m.ToUID); err != nil {
		return err
	}
	if err := s.bumpMailboxes(tx, []int64{m.ToUID}); err != nil {
		return err
	}
	if err := mayMessage(tx, m.FromUID, m.ToUID, contactsOnly); err != nil {
		return err
	}
	m.setPair()
	if err := tx.Create(m).Error; err != nil {
		return err
	}
	if err := s.countStored(tx, []*Message{m}); err != nil {
		return err
	}
	if m.FileID != 0 {
		return claimFile(tx, m)
	}
	return nil
}

// lockRecipient locks the recipient's user row until the transaction ends
// (see CreateMessage for why), and returns errNoRecipient if there is none.
func lockRecipient(tx *gorm.DB, toUID int64) error {
	var u User
	err := tx.Clauses(clause.Locking{Strength: "UPDATE"}).Select("uid").
		Where("uid = ?", toUID).Take(&u).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return errNoRecipient
	}
	return err
}

// mayMessage returns, with contactsOnly, ErrNotContact if from is not to's
// contact; without, ErrBlocked if either blocks the other. It runs
// under the recipient's lock, so a contact ended or a block made by a
// concurrent transaction cannot slip a message through.
func mayMessage(tx *gorm.DB, from, to int64, contactsOnly bool) error {
	if contactsOnly {
		var n int64
		if err := tx.Model(&Contact{}).Where("uid = ? AND peer_uid = ?", from, to).
			Limit(1).Count(&n).Error; err != nil {
			return err
		}
		if n == 0 {
			return ErrNotContact
		}
		return nil
	}
	blocked, err := blockedPairs(tx, []fromTo{{from, to}})
	if err != nil {
		return err
	}
	if len(blocked) > 0 {
		return ErrBlocked
	}
	return nil
}

// MessageByClientID returns the message the sender stored under that
// client_msg_id.
func (s *Store) MessageByClientID(ctx context.Context, fromUID int64, clientMsgID string) (*Message, error) {
	db, done := s.with(ctx)
	defer done()
	var m Message
	err := db.Where("from_uid = ? AND client_msg_id = ?", fromUID, clientMsgID).Take(&m).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &m, nil
}

// RecvCursor returns a session's server-side Recv cursor; ErrSessionGone
// when the session has ended.
func (s *Store) RecvCursor(ctx context.Context, tokenID int64) (int64, error) {
	db, done := s.with(ctx)
	defer done()
	var t UserToken
	if err := db.Select("id", "recv_cursor").Where("id = ?", tokenID).Take(&t).Error; err != nil {
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return 0, ErrSessionGone
		}
		return 0, err
	}
	return t.RecvCursor, nil
}

// AdvanceRecvCursor moves a session's cursor on to id to, unless it
// stands there or past it already; a session that has ended is left
// alone. Recv calls it once an answer handing out messages up to to has
// been written, so the cursor only ever covers what was written to some
// request of the session: where two requests of one session raced and
// both wrote, the later id wins, and nothing either handed out is left
// behind it twice. (A compare-and-set from the cursor read would leave
// the cursor behind the other's answer and hand that out again.)
func (s *Store) AdvanceRecvCursor(ctx context.Context, tokenID, to int64) error {
	db, done := s.with(ctx)
	defer done()
	err := db.Model(&UserToken{}).Where("id = ? AND recv_cursor < ?", tokenID, to).
		Update("recv_cursor", to).Error
	if err != nil {
		return fmt.Errorf("advance recv cursor: %w", err)
	}
	return nil
}

// purgeGroupUncount takes the group messages among msgs, about to be
// purged, off their members' unread counts (a group's seq less a
// member's read_seq) by moving each read_seq still below them to the
// newest one purged: a message gone is not waiting to be read. It locks
// the groups, in gid order as the group writer does, so that no Send
// moves a group meanwhile.
func purgeGroupUncount(tx *gorm.DB, msgs []Message) error {
	newest := map[int64]int64{} // gid: the highest gseq purged
	for _, m := range msgs {
		if m.GID != 0 && m.GSeq > newest[m.GID] {
			newest[m.GID] = m.GSeq
		}
	}
	if len(newest) == 0 {
		return nil
	}
	gids := slices.Sorted(maps.Keys(newest))
	var locked []Group
	if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
		Select("gid").Where("gid IN ?", gids).Order("gid").Find(&locked).Error; err != nil {
		return fmt.Errorf("lock groups: %w", err)
	}
	for _, gid := range gids {
		if err := tx.Model(&GroupMember{}).Where("gid = ? AND read_seq < ?", gid, newest[gid]).
			Update("read_seq", newest[gid]).Error; err != nil {
			return fmt.Errorf("uncount purged group messages: %w", err)
		}
	}
	return nil
}

// DeleteMessagesBefore removes up to limit messages created before cutoff
// (unix seconds) and reports how many went, taking the unread ones off
// their conversations' counters in the same transaction. The transaction
// locks the recipients' rows, as Send and Read do, so the counters stay
// exact; the rows are deleted by primary key, so it locks at most limit
// messages and no index range, and Sends are never held up for long.
func (s *Store) DeleteMessagesBefore(ctx context.Context, cutoff int64, limit int) (int64, error) {
	var deleted int64
	err := s.contactTx(ctx, func(tx *gorm.DB) error {
		deleted = 0
		var msgs []Message
		if err := tx.Select("id", "from_uid", "COALESCE(to_uid, 0) AS to_uid", "gid", "gseq", "kind", "file_id").Where("created_at < ?", cutoff).
			Order("created_at").Limit(limit).Find(&msgs).Error; err != nil {
			return fmt.Errorf("read old messages: %w", err)
		}
		if len(msgs) == 0 {
			return nil
		}
		// Groups first, as the group writer locks them before users.
		if err := purgeGroupUncount(tx, msgs); err != nil {
			return err
		}
		// Group messages have no recipient and no conversation counter:
		// a group's unread count is its seq against a member's mark.
		// Update entries were never counted.
		direct := make([]Message, 0, len(msgs))
		recipients := make([]int64, 0, len(msgs))
		ids := make([]int64, len(msgs))
		var files []int64
		for i, m := range msgs {
			if m.FileID != 0 {
				files = append(files, m.FileID)
			}
			if m.GID == 0 && !m.Kind.IsUpdate() {
				direct = append(direct, m)
				recipients = append(recipients, m.ToUID)
			}
			ids[i] = m.ID
		}
		if len(direct) > 0 {
			if _, err := lockUIDs(tx, recipients); err != nil {
				return fmt.Errorf("lock recipients: %w", err)
			}
			if err := s.purgeUncount(tx, direct); err != nil {
				return err
			}
		}
		// A purged message's file goes with it: doomed here, in the
		// same transaction, and deleted by the file sweep.
		if err := doomFiles(tx, files); err != nil {
			return err
		}
		res := tx.Where("id IN ?", ids).Delete(&Message{})
		if res.Error != nil {
			return res.Error
		}
		// The update entries of the messages purged go with them, however
		// new they are (API.md §13).
		entries := tx.Where("ref_id IN ? AND ref_id <> 0", ids).Delete(&Message{})
		deleted = res.RowsAffected + entries.RowsAffected
		return entries.Error
	})
	return deleted, err
}
