package models

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/fiberchat/fiberchat/apierr"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Conversation holds one recipient's read state and unread count for one
// sender: UID's messages from PeerUID. LastID is the newest of them,
// ReadID how far UID has read (every one with id <= ReadID is read), and
// Unread how many stored ones lie past ReadID. Send keeps the row in the
// transaction that stores the message, under the recipient's row lock,
// so an unread count is one row read, never a count of messages.
type Conversation struct {
	UID     int64 `gorm:"column:uid;primaryKey;autoIncrement:false"`
	PeerUID int64 `gorm:"column:peer_uid;primaryKey;autoIncrement:false"`
	LastID  int64 `gorm:"column:last_id;not null;default:0"`
	ReadID  int64 `gorm:"column:read_id;not null;default:0"`
	Unread  int64 `gorm:"column:unread;not null;default:0"`
}

// Block is UID blocking BlockedUID: no contact, no request and no message
// between the two, either way, until UID unblocks.
type Block struct {
	UID        int64 `gorm:"column:uid;primaryKey;autoIncrement:false"`
	BlockedUID int64 `gorm:"column:blocked_uid;primaryKey;autoIncrement:false;index"`
	CreatedAt  int64 `gorm:"not null;autoCreateTime:false"`
}

// ErrBlocked is returned for a message between two users one of whom
// blocks the other: 403/1008.
var ErrBlocked = apierr.Forbidden("not allowed: uid_to is blocked, or blocks you")

// setPair fills the message's pair columns from its two uids.
func (m *Message) setPair() {
	m.PairLo, m.PairHi = min(m.FromUID, m.ToUID), max(m.FromUID, m.ToUID)
}

// countStored adds the messages just stored in tx to their recipients'
// conversations: per (recipient, sender), one more unread per message and
// the newest id, in one upsert for the whole batch. It runs in the
// transaction that stored them, so the counters commit, or not, with the
// messages.
func (s *Store) countStored(tx *gorm.DB, msgs []*Message) error {
	if len(msgs) == 0 {
		return nil
	}
	q, err := s.countSQL(nil, msgs, 0)
	if err != nil {
		return err
	}
	if _, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, string(q)); err != nil {
		return fmt.Errorf("count stored messages: %w", err)
	}
	return nil
}

// countSQL appends countStored's upsert to q. With step 0 it takes each
// message's id from the message; otherwise the messages are not stored
// yet, and it writes the id the INSERT just before it on the connection
// gives the message (see appendInsertedID). All its values are integers,
// written into the statement: nothing to escape, and nothing for the
// driver to interpolate.
func (s *Store) countSQL(q []byte, msgs []*Message, step int64) ([]byte, error) {
	last := func(_ int, m *Message) int64 { return m.ID }
	if step != 0 {
		last = func(i int, _ *Message) int64 { return int64(i) } // ids rise with the rows
	}
	order, per := countPairs(msgs, last)
	table, err := s.table(&Conversation{})
	if err != nil {
		return nil, err
	}
	q = slices.Grow(q, 192+64*len(order))
	q = append(q, "INSERT INTO "...)
	q = append(q, table...)
	q = append(q, " (uid, peer_uid, last_id, read_id, unread) VALUES "...)
	for i, k := range order {
		if i > 0 {
			q = append(q, ", "...)
		}
		c := per[k]
		q = append(appendInts(append(q, '('), k.to, k.from), ", "...)
		if step != 0 {
			q = append(appendInsertedID(q, c.last, step), ", "...)
			q = append(appendInts(q, 0, c.n), ')')
			continue
		}
		q = append(appendInts(q, c.last, 0, c.n), ')')
	}
	if s.mysql() {
		q = append(q, " ON DUPLICATE KEY UPDATE unread = unread + VALUES(unread), last_id = GREATEST(last_id, VALUES(last_id))"...)
	} else {
		q = append(q, " ON CONFLICT (uid, peer_uid) DO UPDATE SET unread = unread + excluded.unread, last_id = max(last_id, excluded.last_id)"...)
	}
	return q, nil
}

// pairCount is what a batch stored for one (sender, recipient) pair: how
// many messages, and the highest of their last values (see countPairs).
type pairCount struct{ n, last int64 }

// countPairs counts msgs by pair, each pair's last the highest value last
// gives its messages (msgs[i] is given i). The pairs are in key order, so
// that two batches upserting the same rows take their locks in the same
// order.
func countPairs(msgs []*Message, last func(i int, m *Message) int64) ([]fromTo, map[fromTo]*pairCount) {
	per := make(map[fromTo]*pairCount, len(msgs))
	order := make([]fromTo, 0, len(msgs))
	for i, m := range msgs {
		k := fromTo{m.FromUID, m.ToUID}
		c := per[k]
		if c == nil {
			c = &pairCount{}
			per[k] = c
			order = append(order, k)
		}
		c.n++
		c.last = max(c.last, last(i, m))
	}
	slices.SortFunc(order, byRecipient)
	return order, per
}

// byRecipient orders pairs as the conversations' primary key does:
// recipient, then sender.
func byRecipient(a, b fromTo) int {
	if c := cmp.Compare(a.to, b.to); c != 0 {
		return c
	}
	return cmp.Compare(a.from, b.from)
}

// HistoryPage is one page of a conversation, newest first, with what
// tells which of its messages were read: a message to Me is read when its
// id is at most MyReadID, one from Me when at most TheirReadID.
type HistoryPage struct {
	Messages    []Message
	MyReadID    int64
	TheirReadID int64
}

// Read reports whether m, a message of the page, was read by its
// recipient.
func (p HistoryPage) Read(me int64, m Message) bool {
	if m.ToUID == me {
		return m.ID <= p.MyReadID
	}
	return m.ID <= p.TheirReadID
}

// History returns up to limit messages between me and with, both
// directions, newest first, with ids below beforeID (all when beforeID is
// 0): one range of the (pair_lo, pair_hi, id) index, however long either
// user's mailbox is, and never an OFFSET.
func (s *Store) History(ctx context.Context, me, with, beforeID int64, limit int) (HistoryPage, error) {
	var page HistoryPage
	messages, convs, err := s.tables(&Message{}, &Conversation{})
	if err != nil {
		return page, err
	}
	// On MariaDB/MySQL the two read watermarks ride along as uncorrelated
	// subqueries, which it evaluates once: one round trip. SQLite has no
	// round trips to save, but its driver pays for every column of
	// every row, and two more columns on every row of a page cost more
	// than a one-row statement that reads them first
	// (docs/performance.md has the figures).
	// (They may then be a moment older than the page, as they could be
	// a moment later anyway.)
	watermarks := "COALESCE((SELECT read_id FROM " + convs + " WHERE uid = ? AND peer_uid = ?), 0), " +
		"COALESCE((SELECT read_id FROM " + convs + " WHERE uid = ? AND peer_uid = ?), 0)"
	joined := s.mysql()
	q := "SELECT id, from_uid, to_uid, body, created_at, enc, " + richColumns("")
	var args []any
	if joined {
		q += ", " + watermarks
		args = append(args, me, with, with, me)
	}
	// Update entries are left out: each message's row holds its current
	// state (see update.go).
	q += " FROM " + messages + " WHERE pair_lo = ? AND pair_hi = ? AND kind < " + strconv.Itoa(int(KindEdit))
	args = append(args, min(me, with), max(me, with))
	if beforeID > 0 {
		q += " AND id < ?"
		args = append(args, beforeID)
	}
	// The limit is written into the text, not bound: SQLite's planner
	// reads a bound LIMIT, so each call would compile the statement a
	// second time once the value was bound. It is an int, so nothing
	// can be injected through it.
	q += " ORDER BY id DESC LIMIT " + strconv.Itoa(limit)
	db, done := s.with(ctx)
	defer done()
	if !joined {
		if err := s.scanRow(db, "SELECT "+watermarks, []any{me, with, with, me}, &page.MyReadID, &page.TheirReadID); err != nil {
			return page, fmt.Errorf("read history: %w", err)
		}
	}
	if err := s.scanHistory(db, q, args, limit, joined, &page); err != nil {
		return page, fmt.Errorf("read history: %w", err)
	}
	return page, nil
}

// scanHistory runs History's query q and fills page's messages, and its
// watermarks too when they ride along (joined). The rows are scanned by
// hand, as this is the one read a scrolling client repeats.
func (s *Store) scanHistory(db *gorm.DB, q string, args []any, limit int, joined bool, page *HistoryPage) error {
	rows, err := s.rows(db, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	page.Messages = make([]Message, 0, limit)
	var m Message // scanned into, then copied onto the page
	dest := append([]any{&m.ID, &m.FromUID, &m.ToUID, &m.Body, &m.CreatedAt, &m.Enc}, m.richDest()...)
	if joined {
		dest = append(dest, &page.MyReadID, &page.TheirReadID)
	}
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		page.Messages = append(page.Messages, m)
	}
	return rows.Err()
}

// MarkRead marks every message from `from` to me with id <= lastID as
// read and returns how many were newly read and the read watermark that
// now stands. Marking is idempotent and never moves backwards; a lastID
// past the newest stored message marks what is stored, not messages yet
// to come.
//
// It locks me's user row, as every Send to me does, so the count it takes
// off the unread counter is exact against Sends racing it.
func (s *Store) MarkRead(ctx context.Context, me, from, lastID int64) (newlyRead, readID int64, err error) {
	err = s.contactTx(ctx, func(tx *gorm.DB) error {
		newlyRead, readID = 0, 0
		if _, err := s.lockUsers(tx, me, nil); err != nil {
			return err
		}
		var c Conversation
		err := tx.Where("uid = ? AND peer_uid = ?", me, from).Take(&c).Error
		if errors.Is(err, gorm.ErrRecordNotFound) {
			return nil // nothing was ever sent: nothing to read
		}
		if err != nil {
			return fmt.Errorf("read conversation: %w", err)
		}
		readID = c.ReadID
		upto := min(lastID, c.LastID)
		if upto <= c.ReadID {
			return nil
		}
		n := c.Unread // marking up to the newest reads them all
		if upto < c.LastID {
			lo, hi := min(me, from), max(me, from)
			if err := tx.Model(&Message{}).
				Where("pair_lo = ? AND pair_hi = ? AND id > ? AND id <= ? AND to_uid = ? AND kind < ?", lo, hi, c.ReadID, upto, me, KindEdit).
				Count(&n).Error; err != nil {
				return fmt.Errorf("count read messages: %w", err)
			}
		}
		if err := tx.Model(&Conversation{}).Where("uid = ? AND peer_uid = ?", me, from).
			Updates(map[string]any{"read_id": upto, "unread": gorm.Expr("unread - ?", n)}).Error; err != nil {
			return fmt.Errorf("mark read: %w", err)
		}
		newlyRead, readID = n, upto
		return nil
	})
	return newlyRead, readID, err
}

// UnreadFrom is one sender's (PeerUID) or one group's (GID) unread
// messages to a user: how many, and the newest one's id.
type UnreadFrom struct {
	PeerUID int64
	GID     int64
	Count   int64
	LastID  int64
}

// unreadSQL is Unread's statement, per table prefix: the user's
// conversation counters (one range of their primary key, a row per
// sender with unread messages) beside their groups' (one range of their
// memberships, a subtraction per group), newest first, in one statement.
// Its arguments are the uid twice.
func (s *Store) unreadSQL() (string, error) {
	convs, members, err := s.tables(&Conversation{}, &GroupMember{})
	if err != nil {
		return "", err
	}
	groups, err := s.table(&Group{})
	if err != nil {
		return "", err
	}
	return "SELECT peer_uid, 0, unread, last_id FROM " + convs + " WHERE uid = ? AND unread > 0" +
		" UNION ALL SELECT 0, g.gid, g.seq - gm.read_seq, g.last_id FROM " + members + " AS gm" +
		" JOIN " + groups + " AS g ON g.gid = gm.gid WHERE gm.uid = ? AND gm.until_id = 0 AND g.seq > gm.read_seq" +
		" ORDER BY 4 DESC", nil
}

// UnreadStatement returns the statement Unread runs: for tools that
// measure /Message/Unread against the bare read (cmd/bench). Its
// arguments are the uid twice.
func (s *Store) UnreadStatement() (string, error) { return s.unreadQuery() }

// Unread returns, per sender and per group with unread messages to uid,
// the count and newest id, newest first: one statement, at most a row per
// sender and per group, whatever the number of messages.
func (s *Store) Unread(ctx context.Context, uid int64) ([]UnreadFrom, error) {
	q, err := s.unreadQuery()
	if err != nil {
		return nil, err
	}
	db, done := s.with(ctx)
	defer done()
	rows, err := s.rows(db, q, uid, uid)
	if err != nil {
		return nil, fmt.Errorf("read unread counts: %w", err)
	}
	defer rows.Close()
	out := []UnreadFrom{}
	for rows.Next() {
		var u UnreadFrom
		if err := rows.Scan(&u.PeerUID, &u.GID, &u.Count, &u.LastID); err != nil {
			return nil, fmt.Errorf("read unread counts: %w", err)
		}
		out = append(out, u)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read unread counts: %w", err)
	}
	return out, nil
}

// BlockUsers makes me block each of peers that exists and is not me,
// ending any contact and pending request between them both ways, in one
// transaction; it returns the peers newly blocked, in uid order, and those
// whose contact with me ended.
func (s *Store) BlockUsers(ctx context.Context, me int64, peers []int64, now int64) (blocked, unfriended []int64, err error) {
	err = s.contactTx(ctx, func(tx *gorm.DB) error {
		blocked, unfriended = nil, nil
		locked, err := s.lockRelations(tx, me, peers)
		if err != nil {
			return err
		}
		others := slices.DeleteFunc(locked, func(uid int64) bool { return uid == me })
		if len(others) == 0 {
			return nil
		}
		var already []int64
		if err := tx.Model(&Block{}).Where("uid = ? AND blocked_uid IN ?", me, others).
			Pluck("blocked_uid", &already).Error; err != nil {
			return fmt.Errorf("read blocks: %w", err)
		}
		for _, uid := range others {
			if !slices.Contains(already, uid) {
				blocked = append(blocked, uid)
			}
		}
		if err := tx.Model(&Contact{}).Where("uid = ? AND peer_uid IN ?", me, others).
			Order("peer_uid").Pluck("peer_uid", &unfriended).Error; err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		if err := tx.Where("(uid = ? AND peer_uid IN ?) OR (uid IN ? AND peer_uid = ?)", me, others, others, me).
			Delete(&Contact{}).Error; err != nil {
			return fmt.Errorf("delete contacts: %w", err)
		}
		if err := tx.Where("(from_uid = ? AND to_uid IN ?) OR (from_uid IN ? AND to_uid = ?)", me, others, others, me).
			Delete(&ContactRequest{}).Error; err != nil {
			return fmt.Errorf("delete contact requests: %w", err)
		}
		if len(blocked) == 0 {
			return nil
		}
		rows := make([]Block, len(blocked))
		for i, uid := range blocked {
			rows[i] = Block{UID: me, BlockedUID: uid, CreatedAt: now}
		}
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
			return fmt.Errorf("create blocks: %w", err)
		}
		return nil
	})
	return blocked, unfriended, err
}

// UnblockUsers lifts me's blocks of peers and returns the peers that were
// blocked, in uid order. Nothing the block ended comes back.
func (s *Store) UnblockUsers(ctx context.Context, me int64, peers []int64) ([]int64, error) {
	var unblocked []int64
	err := s.contactTx(ctx, func(tx *gorm.DB) error {
		unblocked = nil
		if _, err := s.lockRelations(tx, me, peers); err != nil {
			return err
		}
		if err := tx.Model(&Block{}).Where("uid = ? AND blocked_uid IN ?", me, peers).
			Order("blocked_uid").Pluck("blocked_uid", &unblocked).Error; err != nil {
			return fmt.Errorf("read blocks: %w", err)
		}
		if len(unblocked) == 0 {
			return nil
		}
		if err := tx.Where("uid = ? AND blocked_uid IN ?", me, unblocked).Delete(&Block{}).Error; err != nil {
			return fmt.Errorf("delete blocks: %w", err)
		}
		return nil
	})
	return unblocked, err
}

// Blocked returns the profiles of the users uid blocks, ordered by uid.
func (s *Store) Blocked(ctx context.Context, uid int64) ([]Profile, error) {
	blocks, users, err := s.tables(&Block{}, &User{})
	if err != nil {
		return nil, err
	}
	db, done := s.with(ctx)
	defer done()
	var out []Profile
	err = db.Table(blocks+" AS b").
		Select(profileColumns).
		Joins("JOIN "+users+" AS u ON u.uid = b.blocked_uid").
		Where("b.uid = ?", uid).
		Order("b.blocked_uid").
		Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list blocked users: %w", err)
	}
	return out, nil
}

// blockedAmong returns those of others who block me or whom me blocks, in
// the caller's transaction.
func blockedAmong(tx *gorm.DB, me int64, others []int64) (map[int64]bool, error) {
	var rows []Block
	if err := tx.Select("uid", "blocked_uid").
		Where("(uid = ? AND blocked_uid IN ?) OR (uid IN ? AND blocked_uid = ?)", me, others, others, me).
		Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	out := make(map[int64]bool, len(rows))
	for _, b := range rows {
		if b.UID == me {
			out[b.BlockedUID] = true
		} else {
			out[b.UID] = true
		}
	}
	return out, nil
}

// blockedPairs returns which of the (from, to) pairs are blocked either
// way, in one query in the caller's transaction.
func blockedPairs(tx *gorm.DB, pairs []fromTo) (map[fromTo]bool, error) {
	if len(pairs) == 0 {
		return nil, nil
	}
	asked := make([][]any, 0, 2*len(pairs))
	for _, p := range pairs {
		asked = append(asked, []any{p.to, p.from}, []any{p.from, p.to})
	}
	var rows []Block
	if err := tx.Select("uid", "blocked_uid").Where("(uid, blocked_uid) IN ?", asked).Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("read blocks: %w", err)
	}
	out := make(map[fromTo]bool, len(rows))
	for _, b := range rows {
		out[fromTo{b.UID, b.BlockedUID}] = true
		out[fromTo{b.BlockedUID, b.UID}] = true
	}
	return out, nil
}

// purgeUncount takes the unread messages among ids, about to be purged,
// off their conversations' counters, in the caller's transaction, which
// holds their recipients' locks.
func (s *Store) purgeUncount(tx *gorm.DB, msgs []Message) error {
	keys := map[fromTo]bool{}
	var pairs [][]any
	for _, m := range msgs {
		k := fromTo{m.FromUID, m.ToUID}
		if !keys[k] {
			keys[k] = true
			pairs = append(pairs, []any{m.ToUID, m.FromUID})
		}
	}
	var convs []Conversation
	if err := tx.Select("uid", "peer_uid", "read_id").Where("(uid, peer_uid) IN ?", pairs).
		Find(&convs).Error; err != nil {
		return fmt.Errorf("read conversations: %w", err)
	}
	readID := make(map[fromTo]int64, len(convs))
	for _, c := range convs {
		readID[fromTo{c.PeerUID, c.UID}] = c.ReadID
	}
	gone := map[fromTo]int64{}
	for _, m := range msgs {
		k := fromTo{m.FromUID, m.ToUID}
		if m.ID > readID[k] {
			gone[k]++
		}
	}
	keysSorted := make([]fromTo, 0, len(gone))
	for k := range gone {
		keysSorted = append(keysSorted, k)
	}
	slices.SortFunc(keysSorted, byRecipient)
	for _, k := range keysSorted {
		if err := tx.Model(&Conversation{}).Where("uid = ? AND peer_uid = ?", k.to, k.from).
			Update("unread", gorm.Expr("unread - ?", gone[k])).Error; err != nil {
			return fmt.Errorf("uncount purged messages: %w", err)
		}
	}
	return nil
}

// mysql reports whether the store runs on MySQL/MariaDB.
func (s *Store) mysql() bool { return s.db.Dialector.Name() == "mysql" }
