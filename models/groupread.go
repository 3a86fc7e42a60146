package models

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// recvSQL is MessagesFor's query, per table prefix: the ids of the
// caller's 1:1 messages (one range of the (to_uid, id) index) beside
// those of their groups' (one range of their memberships, and per group
// one range of (gid, id) from where their span and the cursor start),
// and those of the earlier spans of groups they came back to (one range
// of their spans, few or none), merged in id order, then the page's rows
// by primary key. An update entry goes, as its message went, only to the
// members who were in when the message was sent (its ref_id past their
// from_id, or in one of their earlier spans). Each side is
// cut to the limit first, so neither reads further than the answer
// needs. The union carries ids only: MariaDB materializes a UNION under
// ORDER BY in a temporary table, which for a TEXT column would be an
// on-disk engine's, made and dropped at every Recv; for integers it is
// an in-memory one. The limit is written into the text by the caller,
// in place of {limit} (see History for why).
func (s *Store) recvSQL() (string, error) {
	messages, members, err := s.tables(&Message{}, &GroupMember{})
	if err != nil {
		return "", err
	}
	spans, err := s.table(&GroupSpan{})
	if err != nil {
		return "", err
	}
	edit := strconv.Itoa(int(KindEdit))
	// heldEarlier is SQL for: the message m.ref_id names was in an
	// earlier span of the member the alias (gm or sp) stands for.
	heldEarlier := func(alias string) string {
		return "EXISTS (SELECT 1 FROM " + spans + " AS ps WHERE ps.gid = " + alias + ".gid AND ps.uid = " + alias + ".uid" +
			" AND m.ref_id > ps.from_id AND m.ref_id <= ps.until_id)"
	}
	return "SELECT m.id, m.from_uid, COALESCE(m.to_uid, 0), m.gid, m.body, m.created_at, m.enc, " + richColumns("m.") + " FROM (" +
		"SELECT id FROM (SELECT id FROM " + messages + " WHERE to_uid = ? AND id > ? ORDER BY id LIMIT {limit}) AS d" +
		" UNION ALL SELECT id FROM (SELECT m.id FROM " + members + " AS gm" +
		" JOIN " + messages + " AS m ON m.gid = gm.gid AND m.gid <> 0" +
		" WHERE gm.uid = ? AND (gm.until_id = 0 OR gm.until_id > ?)" +
		" AND m.id > ? AND m.id > gm.from_id AND (gm.until_id = 0 OR m.id <= gm.until_id) AND m.from_uid <> ?" +
		" AND (m.kind < " + edit + " OR m.ref_id > gm.from_id OR " + heldEarlier("gm") + ")" +
		" ORDER BY m.id LIMIT {limit}) AS g" +
		// What an earlier span of a member who came back held past the
		// cursor (see GroupSpan).
		" UNION ALL SELECT id FROM (SELECT m.id FROM " + spans + " AS sp" +
		" JOIN " + messages + " AS m ON m.gid = sp.gid AND m.gid <> 0" +
		" WHERE sp.uid = ? AND sp.until_id > ?" +
		" AND m.id > ? AND m.id > sp.from_id AND m.id <= sp.until_id AND m.from_uid <> ?" +
		" AND (m.kind < " + edit + " OR " + heldEarlier("sp") + ")" +
		" ORDER BY m.id LIMIT {limit}) AS p ORDER BY id LIMIT {limit}) AS ids" +
		" JOIN " + messages + " AS m ON m.id = ids.id ORDER BY m.id", nil
}

// RecvStatement returns the statement MessagesFor runs for up to limit
// messages to uid past afterID, and its arguments: for tools that measure
// Recv against the bare read (cmd/bench), which must be this one.
func (s *Store) RecvStatement(uid, afterID int64, limit int) (string, []any, error) {
	q, err := s.recvQuery()
	if err != nil {
		return "", nil, err
	}
	return strings.ReplaceAll(q, "{limit}", strconv.Itoa(limit)), RecvArgs(uid, afterID), nil
}

// RecvArgs are RecvStatement's arguments for uid past afterID.
func RecvArgs(uid, afterID int64) []any {
	return []any{uid, afterID, uid, afterID, afterID, uid, uid, afterID, afterID, uid}
}

// MessagesFor returns up to limit messages to uid with ids above afterID,
// in id order: 1:1 messages to uid, and the messages of uid's groups sent
// by others while uid was a member.
func (s *Store) MessagesFor(ctx context.Context, uid, afterID int64, limit int) ([]Message, error) {
	q, args, err := s.RecvStatement(uid, afterID, limit)
	if err != nil {
		return nil, err
	}
	if s.onGalera(ctx) {
		// A wake-up may come from an instance on another node, whose
		// Send committed there: the read waits until this node has
		// applied it (a causal read), or a poll woken for a message
		// would find nothing and wait on.
		q = "SET STATEMENT wsrep_sync_wait = 1 FOR " + q
	}
	db, done := s.with(ctx)
	defer done()
	rows, err := s.rows(db, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	defer rows.Close()
	ms := make([]Message, 0, min(limit, 64))
	var m Message
	dest := append([]any{&m.ID, &m.FromUID, &m.ToUID, &m.GID, &m.Body, &m.CreatedAt, &m.Enc}, m.richDest()...)
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return nil, fmt.Errorf("read messages: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read messages: %w", err)
	}
	return ms, nil
}

// LatestMessageID returns the id of the newest record uid receives
// (MessagesFor's), 0 when there is none: one lookup at the end of the
// (to_uid, id) index, and for each membership uid has or had, one from
// the end of the group's range of (gid, id) back to the newest record
// Recv hands them (a group's update entries of messages sent before they
// joined, their own records, those past their leaving, are not theirs).
//
// Only those: a stream starts past this id, and of the records a user
// receives, none commits below one already visible (each is written
// under the user's row lock: a 1:1 Send takes its recipient's, a group's
// Send every member's, an update every reader's). A record they do not
// receive (a reaction in a group of theirs to a message from before
// they joined) takes no lock of theirs, and can commit while one to them
// with a lower id is still in flight, which a start past it would skip
// for good. An entry of a message in an earlier span of theirs is
// left out too: a start below it replays it, never skips anything.
func (s *Store) LatestMessageID(ctx context.Context, uid int64) (int64, error) {
	messages, members, err := s.tables(&Message{}, &GroupMember{})
	if err != nil {
		return 0, err
	}
	db, done := s.with(ctx)
	defer done()
	var id int64
	// gid <> 0 lets SQLite use its partial (gid, id) index.
	err = db.Raw("SELECT COALESCE(MAX(id), 0) FROM (SELECT MAX(id) AS id FROM "+messages+" WHERE to_uid = ?"+
		" UNION ALL SELECT MAX((SELECT MAX(m.id) FROM "+messages+" AS m WHERE m.gid = gm.gid AND m.gid <> 0"+
		" AND m.id > gm.from_id AND (gm.until_id = 0 OR m.id <= gm.until_id) AND m.from_uid <> gm.uid"+
		" AND (m.kind < "+strconv.Itoa(int(KindEdit))+" OR m.ref_id > gm.from_id)))"+
		" FROM "+members+" AS gm WHERE gm.uid = ?) AS t", uid, uid).Row().Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("read latest message id: %w", err)
	}
	return id, nil
}

// GroupHistoryPage is one page of a group's messages, newest first, with
// how many members other than its sender have read each (ReadBy, by
// place).
type GroupHistoryPage struct {
	Messages []Message
	ReadBy   []int
}

// GroupHistory returns the messages of gid below beforeID (all when 0)
// that me may see: those sent since me joined, and in the spans of an
// earlier membership if me came back (see GroupSpan). ErrNoGroup if
// there is no such group, ErrNotMember if me is not in it.
func (s *Store) GroupHistory(ctx context.Context, gid, me, beforeID int64, limit int) (GroupHistoryPage, error) {
	var page GroupHistoryPage
	db, done := s.with(ctx)
	defer done()
	if _, err := memberOf(db, gid, me); err != nil {
		return page, err
	}
	var from int64
	if err := db.Model(&GroupMember{}).Select("from_id").Where("gid = ? AND uid = ?", gid, me).
		Scan(&from).Error; err != nil {
		return page, fmt.Errorf("read membership: %w", err)
	}
	var earlier []GroupSpan
	if err := db.Where("gid = ? AND uid = ?", gid, me).Order("from_id DESC").Find(&earlier).Error; err != nil {
		return page, fmt.Errorf("read membership: %w", err)
	}
	// Span by span, newest first, each one range of (gid, id), until the
	// page is full.
	spans := append([]GroupSpan{{FromID: from}}, earlier...)
	for _, sp := range spans {
		q := db.Select("id", "from_uid", "gid", "body", "created_at", "enc", "kind", "reply_to", "edited_at", "deleted", "reactions", "file_id").
			Where("gid = ? AND gid <> 0 AND id > ? AND kind < ?", gid, sp.FromID, KindEdit)
		if sp.UntilID > 0 {
			q = q.Where("id <= ?", sp.UntilID)
		}
		if beforeID > 0 {
			q = q.Where("id < ?", beforeID)
		}
		var got []Message
		if err := q.Order("id DESC").Limit(limit - len(page.Messages)).Find(&got).Error; err != nil {
			return page, fmt.Errorf("read group history: %w", err)
		}
		page.Messages = append(page.Messages, got...)
		if len(page.Messages) >= limit {
			break
		}
	}
	var marks []GroupMember
	if err := db.Select("uid", "from_id", "read_id").Where("gid = ? AND until_id = 0", gid).
		Find(&marks).Error; err != nil {
		return page, fmt.Errorf("read marks: %w", err)
	}
	// A member who came back was in when a message of an earlier span
	// was sent, too; only spans that reach into the page can count.
	var reaching []GroupSpan
	if n := len(page.Messages); n > 0 {
		if err := db.Select("uid", "from_id", "until_id", "read_id").
			Where("gid = ? AND until_id >= ? AND from_id < ?", gid, page.Messages[n-1].ID, page.Messages[0].ID).
			Find(&reaching).Error; err != nil {
			return page, fmt.Errorf("read earlier spans: %w", err)
		}
	}
	page.ReadBy = readBy(page.Messages, marks, reaching)
	return page, nil
}

// readBy counts, per message, the members other than its sender who
// have read it: those in since before it (their mark's FromID) whose
// read mark is at or past it, and those added back who had read it in an
// earlier span by the time it ended (its ReadID). A page is at most 100
// messages and a group 500 members at the default limits; spans are
// those that reach into the page, of members and of users who left again
// (whose marks are not among marks).
func readBy(ms []Message, marks []GroupMember, spans []GroupSpan) []int {
	earlier := make(map[int64][]GroupSpan, len(spans))
	for _, sp := range spans {
		earlier[sp.UID] = append(earlier[sp.UID], sp)
	}
	out := make([]int, len(ms))
	for i, m := range ms {
		for _, k := range marks {
			if k.UID == m.FromUID {
				continue
			}
			if (k.FromID < m.ID && k.ReadID >= m.ID) || readInSpan(earlier[k.UID], m.ID) {
				out[i]++
			}
		}
	}
	return out
}

// readInSpan says whether one of spans held message id and its read mark
// had reached it when the span ended.
func readInSpan(spans []GroupSpan, id int64) bool {
	for _, sp := range spans {
		if sp.FromID < id && id <= sp.UntilID && id <= sp.ReadID {
			return true
		}
	}
	return false
}

// MarkGroupRead moves me's read mark in gid to lastID (never backwards,
// never past the group's newest message) and returns how many of the
// group's messages became read and the mark that now stands.
func (s *Store) MarkGroupRead(ctx context.Context, gid, me, lastID int64) (newlyRead, readID int64, err error) {
	err = s.contactTx(ctx, func(tx *gorm.DB) error {
		newlyRead, readID = 0, 0
		if _, err := memberOf(tx, gid, me); err != nil {
			return err
		}
		var m GroupMember
		if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
			Where("gid = ? AND uid = ?", gid, me).Take(&m).Error; err != nil {
			return fmt.Errorf("read membership: %w", err)
		}
		readID = m.ReadID
		if lastID <= m.ReadID {
			return nil
		}
		var at Message
		err := tx.Select("id", "gseq").Where("gid = ? AND gid <> 0 AND id <= ? AND kind < ?", gid, lastID, KindEdit).
			Order("id DESC").Take(&at).Error
		if errors.Is(err, gorm.ErrRecordNotFound) || (err == nil && at.GSeq <= m.ReadSeq) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read group message: %w", err)
		}
		if err := tx.Model(&GroupMember{}).Where("gid = ? AND uid = ?", gid, me).
			Updates(map[string]any{"read_id": at.ID, "read_seq": at.GSeq}).Error; err != nil {
			return fmt.Errorf("move read mark: %w", err)
		}
		newlyRead, readID = at.GSeq-m.ReadSeq, at.ID
		return nil
	})
	return newlyRead, readID, err
}
