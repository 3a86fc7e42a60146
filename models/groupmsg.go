package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// GroupWriter stores group messages by group commit, as MessageWriter
// stores 1:1 ones: what arrives while a batch commits forms the next,
// so one transaction (one fsync) serves many Sends, and each caller
// returns once its own message has committed.
//
// A group message is one row, whatever the group's size: members read it
// through their membership (see Store.MessagesFor), so a Send to a group
// of 100 writes the message, the group's counters and the sender's read
// mark, not 100 copies.
//
// Why it locks every member's user row (on MySQL/MariaDB): ids are handed
// out at INSERT, not at COMMIT, and a member's Recv cursor must never
// pass an id still in flight. 1:1 Sends lock their recipient for that
// (see Store.CreateMessage); a group Send takes the same locks, for all
// its members at once, in uid order, so that whatever reaches a user,
// 1:1 or through any of their groups, becomes visible in id order.
// SQLite runs one transaction at a time and needs none.
//
// On MySQL/MariaDB the writer keeps a connection of its own, set up once
// as MessageWriter's are (see batchConn): READ COMMITTED and autocommit
// off, so that a batch opens no transaction with round trips of its own.
type GroupWriter struct {
	store    *Store
	maxBatch int
	reqs     chan *groupReq
	done     chan struct{}
	running  sync.WaitGroup
	stopOnce sync.Once
	// conn is the writer's own connection (see Start); nil on SQLite,
	// and where there is none to keep.
	conn    *batchConn
	ownPool *sql.DB
}

type groupReq struct {
	m        *Message
	replayed bool
	members  []int64
	err      error
	ready    chan struct{}
	deadline time.Time
}

// NewGroupWriter returns a writer storing up to maxBatch group messages
// per transaction, once Start has run it.
func NewGroupWriter(store *Store, maxBatch int) *GroupWriter {
	return &GroupWriter{store: store, maxBatch: max(maxBatch, 1), reqs: make(chan *groupReq), done: make(chan struct{})}
}

// Start runs the writer until Stop. One goroutine: a group's Sends
// queue on its row lock anyway, and SQLite has one connection.
//
// On MySQL/MariaDB its connection comes from a pool of its own when
// GORM was opened on a DSN (see openBatchPool), else from the module's
// pool if it has room to spare it (see roomToHold); otherwise each batch
// runs in a transaction of the module's pool, as Sends after Stop do.
func (w *GroupWriter) Start() {
	if w.store.mysql() {
		if pool, err := openBatchPool(w.store.db, 1, w.store.timeout, nil); err == nil && pool != nil {
			w.ownPool = pool
			w.conn = &batchConn{pool: pool, multi: true}
		} else if sqlDB, err := w.store.db.DB(); err == nil && roomToHold(sqlDB, 2) {
			// Room for this writer's connection and a message writer's.
			w.conn = &batchConn{pool: sqlDB}
		}
	}
	w.running.Add(1)
	go w.run()
}

// Stop ends the writer after the batch in hand; later Sends each run in
// a transaction of their own.
func (w *GroupWriter) Stop() {
	w.stopOnce.Do(func() { close(w.done) })
	w.running.Wait()
	if w.ownPool != nil {
		_ = w.ownPool.Close()
	}
}

func (w *GroupWriter) run() {
	defer w.running.Done()
	if w.conn != nil {
		defer w.conn.discard()
	}
	collectBatches(w.reqs, w.done, w.maxBatch, w.commit)
}

// CreateGroupMessage stores m, a message to group m.GID from m.FromUID,
// and returns the group's other members, for their wake-ups. With a
// ClientMsgID the sender used before it stores nothing, m takes the first
// message's id and time, and replayed is true. ErrNoGroup when there is
// no such group; ErrNotMember when the sender is not in it.
func (w *GroupWriter) CreateGroupMessage(ctx context.Context, m *Message) (replayed bool, members []int64, err error) {
	deadline := time.Now().Add(w.store.timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	mc := *m
	r := &groupReq{m: &mc, ready: make(chan struct{}), deadline: deadline}
	if m.FileID != 0 {
		// Stored alone, so that a file refused (see claimFile) refuses
		// no other message of a batch.
		ctx, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		w.store.storeGroupAlone(ctx, r)
	} else {
		select {
		case w.reqs <- r:
		case <-w.done:
			w.store.storeGroupAlone(ctx, r)
		case <-ctx.Done():
			return false, nil, fmt.Errorf("wait for the group writer: %w", ctx.Err())
		}
	}
	// Once handed over, the message may commit whatever the caller does:
	// the answer is awaited (the batch keeps the caller's deadline).
	<-r.ready
	if r.err != nil {
		return false, nil, r.err
	}
	m.ID, m.CreatedAt, m.GSeq = r.m.ID, r.m.CreatedAt, r.m.GSeq
	return r.replayed, r.members, nil
}

// commit stores a batch in one transaction. When its INSERT meets a
// client_msg_id that raced in from elsewhere, each message is stored
// alone, so that one message's replay fails no other; nothing was
// written then. Any other failure fails the batch: its COMMIT may have
// committed on a MySQL server whose answer was lost, and storing the
// messages again would store them twice (they may carry no key), so
// each Send is answered unavailable, to be retried by its client.
func (w *GroupWriter) commit(batch []*groupReq) {
	first := batch[0].deadline
	for _, r := range batch {
		if r.deadline.Before(first) {
			first = r.deadline
		}
	}
	ctx, cancel := context.WithDeadline(context.Background(), first)
	defer cancel()
	err := w.store.createGroupBatchOn(ctx, w.conn, batch)
	if err != nil && isDuplicate(err) {
		for _, r := range batch {
			w.store.storeGroupAlone(ctx, r)
		}
		return
	}
	for _, r := range batch {
		if err != nil {
			r.err = fmt.Errorf("create group messages: %w", Redact(err))
		}
		close(r.ready)
	}
}

// storeGroupAlone stores r in a transaction of its own and answers it; a
// duplicate client_msg_id is a replay of the first message.
func (s *Store) storeGroupAlone(ctx context.Context, r *groupReq) {
	defer close(r.ready)
	r.err = s.createGroupBatch(ctx, []*groupReq{r})
	if r.err == nil || !isDuplicate(r.err) || r.m.ClientMsgID == nil {
		r.err = Redact(r.err)
		return
	}
	first, err := s.MessageByClientID(ctx, r.m.FromUID, *r.m.ClientMsgID)
	if err != nil {
		r.err = Redact(err)
		return
	}
	r.err, r.replayed = nil, true
	r.m.ID, r.m.CreatedAt = first.ID, first.CreatedAt
}

// groupState is what a batch read of one group under its lock.
type groupState struct {
	seq, lastID int64
	members     []int64
	// readTo is, per sender of the batch, the id and seq of their newest
	// message in it: their read mark moves there.
	readTo map[int64][2]int64
}

// createGroupBatch is the batch transaction. On success every request
// holds its outcome (an error of its own, or its stored or replayed id);
// on error nothing was stored.
func (s *Store) createGroupBatch(ctx context.Context, batch []*groupReq) error {
	return s.contactTx(ctx, func(tx *gorm.DB) error { return s.groupBatchBody(tx, batch, nil) })
}

// createGroupBatchOn is createGroupBatch on the writer's own connection
// when it has one (conn not nil), deadlocks retried as contactTx retries
// them.
func (s *Store) createGroupBatchOn(ctx context.Context, conn *batchConn, batch []*groupReq) error {
	if conn == nil {
		return s.createGroupBatch(ctx, batch)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		err := s.groupBatchOn(ctx, conn, batch)
		if err == nil || !isDeadlock(err) || !retryPause(ctx, attempt) {
			return err
		}
	}
}

// groupBatchOn runs the batch's transaction once on conn.
func (s *Store) groupBatchOn(ctx context.Context, conn *batchConn, batch []*groupReq) error {
	c, err := conn.get(ctx)
	if err != nil {
		return err
	}
	tx := s.db.Session(&gorm.Session{NewDB: true, Context: ctx})
	tx.Statement.ConnPool = c
	return conn.end(ctx, s.groupBatchBody(tx, batch, conn))
}

// groupBatchBody is the batch transaction's statements, in tx; on the
// writer's connection conn when it is not nil.
func (s *Store) groupBatchBody(tx *gorm.DB, batch []*groupReq, conn *batchConn) error {
	multi := conn != nil && conn.multi
	groups, err := s.lockGroups(tx, batch, multi)
	if err != nil {
		return err
	}
	seen := make(map[msgKey]*groupReq)
	var rows []*groupReq
	for _, r := range batch {
		r.err, r.replayed, r.members = nil, false, nil
		if store, err := s.decideGroupSend(tx, r, groups, seen); err != nil {
			return err
		} else if store {
			rows = append(rows, r)
		}
	}
	if multi && !slices.ContainsFunc(rows, func(r *groupReq) bool { return r.m.FileID != 0 }) {
		if err := s.storeGroupRows(tx, rows, groups, !conn.escapes); err != nil {
			return err
		}
	} else {
		if err := s.insertGroupMessages(tx, rows, groups); err != nil {
			return err
		}
		if err := s.moveGroupMarks(tx, groups); err != nil {
			return err
		}
	}
	for _, r := range batch {
		if r.err == nil && r.members == nil {
			r.members = othersThan(groups[r.m.GID].members, r.m.FromUID)
		}
	}
	return nil
}

// storeGroupRows is insertGroupMessages and moveGroupMarks in one round
// trip, on a writer's connection that takes several statements at once:
// the INSERT, then each group's counters and its senders' read marks,
// whose ids are the INSERT's as the server numbered them (see
// appendInsertedID: here always with the server's step), then the first
// id and the step read back. Uids, seqs and places are integer literals;
// the texts go as appendText writes them. A message with a file takes
// the other path (see claimFile).
func (s *Store) storeGroupRows(tx *gorm.DB, rows []*groupReq, groups map[int64]*groupState, hexTexts bool) error {
	if len(rows) == 0 {
		return nil
	}
	messages, err := s.table(&Message{})
	if err != nil {
		return err
	}
	groupTable, memberTable, err := s.tables(&Group{}, &GroupMember{})
	if err != nil {
		return err
	}
	// Per group: the place of its last row, and each sender's newest
	// row's place and seq.
	type mark struct{ place, seq int64 }
	last := make(map[int64]int64, len(groups))
	marks := make(map[int64]map[int64]mark, len(groups))
	var args []any
	q := make([]byte, 0, 256+96*len(rows))
	q = append(q, "INSERT INTO "...)
	q = append(q, messages...)
	q = append(q, " (from_uid, to_uid, body, created_at, client_msg_id, gid, gseq, kind, reply_to, file_id) VALUES "...)
	for i, r := range rows {
		g := groups[r.m.GID]
		g.seq++
		r.m.GSeq = g.seq
		if i > 0 {
			q = append(q, ", "...)
		}
		q = append(strconv.AppendInt(append(q, '('), r.m.FromUID, 10), ", NULL, "...)
		q, args = appendText(q, args, &r.m.Body, hexTexts)
		q = strconv.AppendInt(append(q, ", "...), r.m.CreatedAt, 10)
		q, args = appendText(append(q, ", "...), args, r.m.ClientMsgID, hexTexts)
		q = append(appendInts(append(q, ", "...), r.m.GID, r.m.GSeq, int64(r.m.Kind), r.m.ReplyTo, 0), ')')
		last[r.m.GID] = int64(i)
		if marks[r.m.GID] == nil {
			marks[r.m.GID] = map[int64]mark{}
		}
		marks[r.m.GID][r.m.FromUID] = mark{int64(i), r.m.GSeq}
	}
	idAt := func(q []byte, place int64) []byte { return appendInsertedID(q, place, -1) }
	gids := make([]int64, 0, len(last))
	for gid := range last {
		gids = append(gids, gid)
	}
	slices.Sort(gids)
	for _, gid := range gids {
		q = append(q, "; UPDATE "...)
		q = append(q, groupTable...)
		q = strconv.AppendInt(append(q, " SET seq = "...), groups[gid].seq, 10)
		q = append(idAt(append(q, ", last_id = GREATEST(last_id, "...), last[gid]), ") WHERE gid = "...)
		q = strconv.AppendInt(q, gid, 10)

		uids := make([]int64, 0, len(marks[gid]))
		for uid := range marks[gid] {
			uids = append(uids, uid)
		}
		slices.Sort(uids)
		q = s.appendMarksSQL(append(q, "; "...), memberTable, gid, uids,
			func(q []byte, uid int64) []byte { return strconv.AppendInt(q, marks[gid][uid].seq, 10) },
			func(q []byte, uid int64) []byte { return idAt(q, marks[gid][uid].place) })
	}
	q = append(q, "; SELECT LAST_INSERT_ID(), @@auto_increment_increment"...)

	ctx := tx.Statement.Context
	res, err := tx.Statement.ConnPool.QueryContext(ctx, string(q), args...)
	if err != nil {
		return fmt.Errorf("create group messages: %w", err)
	}
	defer res.Close()
	var first, step int64
	for !res.Next() {
		if !res.NextResultSet() {
			if err := res.Err(); err != nil {
				return fmt.Errorf("create group messages: %w", err)
			}
			return errors.New("create group messages: no id read back")
		}
	}
	if err := res.Scan(&first, &step); err != nil {
		return fmt.Errorf("create group messages: %w", err)
	}
	if err := res.Close(); err != nil {
		return fmt.Errorf("create group messages: %w", err)
	}
	step = max(step, 1)
	for i, r := range rows {
		r.m.ID = first + int64(i)*step
		g := groups[r.m.GID]
		g.lastID = max(g.lastID, r.m.ID)
		g.readTo[r.m.FromUID] = [2]int64{r.m.ID, r.m.GSeq}
	}
	return nil
}

// lockGroups locks the batch's groups (in gid order) and, on
// MySQL/MariaDB, their members' user rows (see GroupWriter), and reads
// each group's counters and members: on a connection that takes several
// statements at once (multi), the groups and their members in one round
// trip.
func (s *Store) lockGroups(tx *gorm.DB, batch []*groupReq, multi bool) (map[int64]*groupState, error) {
	gids := make([]int64, 0, len(batch))
	for _, r := range batch {
		gids = append(gids, r.m.GID)
	}
	slices.Sort(gids)
	gids = slices.Compact(gids)
	var gs []Group
	var ms []GroupMember
	var err error
	if multi {
		gs, ms, err = s.readGroupsAtOnce(tx, gids)
	} else {
		gs, ms, err = readGroups(tx, gids)
	}
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*groupState, len(gs))
	for _, g := range gs {
		out[g.GID] = &groupState{seq: g.Seq, lastID: g.LastID, readTo: map[int64][2]int64{}}
	}
	all := make([]int64, 0, len(ms))
	for _, m := range ms {
		if g := out[m.GID]; g != nil {
			g.members = append(g.members, m.UID)
			all = append(all, m.UID)
		}
	}
	if s.mysql() && len(all) > 0 {
		if _, err := lockUIDs(tx, all); err != nil {
			return nil, fmt.Errorf("lock members: %w", err)
		}
		if err := s.bumpMailboxes(tx, all); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readGroups locks the groups gids (sorted) and reads their counters,
// then reads their members.
func readGroups(tx *gorm.DB, gids []int64) ([]Group, []GroupMember, error) {
	var gs []Group
	if err := tx.Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
		Select("gid", "seq", "last_id").Where("gid IN ?", gids).Order("gid").Find(&gs).Error; err != nil {
		return nil, nil, fmt.Errorf("lock groups: %w", err)
	}
	var ms []GroupMember
	if err := tx.Select("gid", "uid").Where("gid IN ? AND until_id = 0", gids).
		Order("gid, uid").Find(&ms).Error; err != nil {
		return nil, nil, fmt.Errorf("read members: %w", err)
	}
	return gs, ms, nil
}

// readGroupsAtOnce is readGroups in one round trip, on a connection that
// takes several statements at once; the gids are integer literals.
func (s *Store) readGroupsAtOnce(tx *gorm.DB, gids []int64) ([]Group, []GroupMember, error) {
	groupTable, memberTable, err := s.tables(&Group{}, &GroupMember{})
	if err != nil {
		return nil, nil, err
	}
	in := appendInts(nil, gids...)
	q := make([]byte, 0, 160+2*len(in))
	q = append(q, "SELECT gid, seq, last_id FROM "...)
	q = append(q, groupTable...)
	q = append(append(append(q, " WHERE gid IN ("...), in...), ") ORDER BY gid FOR UPDATE; SELECT gid, uid FROM "...)
	q = append(q, memberTable...)
	q = append(append(append(q, " WHERE gid IN ("...), in...), ") AND until_id = 0 ORDER BY gid, uid"...)
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, string(q))
	if err != nil {
		return nil, nil, fmt.Errorf("lock groups: %w", err)
	}
	defer rows.Close()
	var gs []Group
	for rows.Next() {
		var g Group
		if err := rows.Scan(&g.GID, &g.Seq, &g.LastID); err != nil {
			return nil, nil, fmt.Errorf("lock groups: %w", err)
		}
		gs = append(gs, g)
	}
	if !rows.NextResultSet() {
		if err := rows.Err(); err != nil {
			return nil, nil, fmt.Errorf("read members: %w", err)
		}
		return nil, nil, errors.New("read members: no result")
	}
	var ms []GroupMember
	for rows.Next() {
		var m GroupMember
		if err := rows.Scan(&m.GID, &m.UID); err != nil {
			return nil, nil, fmt.Errorf("read members: %w", err)
		}
		ms = append(ms, m)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("read members: %w", err)
	}
	return gs, ms, rows.Close()
}

// decideGroupSend decides r's fate: refused (r.err), a replay of a stored
// or earlier message (r.replayed), or to be stored (true).
func (s *Store) decideGroupSend(tx *gorm.DB, r *groupReq, groups map[int64]*groupState, seen map[msgKey]*groupReq) (bool, error) {
	g := groups[r.m.GID]
	switch {
	case g == nil:
		r.err = ErrNoGroup
		return false, nil
	case !slices.Contains(g.members, r.m.FromUID):
		r.err = ErrNotMember
		return false, nil
	case r.m.ClientMsgID == nil:
		return true, nil
	}
	k := msgKey{r.m.FromUID, *r.m.ClientMsgID}
	if first := seen[k]; first != nil {
		r.replayed, r.members = true, []int64{}
		// Its id is the first's, set once that one is inserted.
		r.m = first.m
		return false, nil
	}
	var prior Message
	err := tx.Select("id", "created_at").Where("from_uid = ? AND client_msg_id = ?", k.from, k.id).Take(&prior).Error
	if err == nil {
		r.replayed, r.members = true, []int64{}
		r.m.ID, r.m.CreatedAt = prior.ID, prior.CreatedAt
		return false, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return false, fmt.Errorf("look up client_msg_id: %w", err)
	}
	seen[k] = r
	return true, nil
}

// insertGroupMessages inserts the batch's stored messages, in order,
// each with its place in its group, and moves the groups' counters.
// GORM numbers a multi-row INSERT's rows one apart from the first id; on
// Galera they are the cluster's auto_increment_increment apart (see
// Store.idStep), so there the ids are numbered again.
func (s *Store) insertGroupMessages(tx *gorm.DB, rows []*groupReq, groups map[int64]*groupState) error {
	if len(rows) == 0 {
		return nil
	}
	ins := make([]groupMessageRow, len(rows))
	for i, r := range rows {
		g := groups[r.m.GID]
		g.seq++
		r.m.GSeq = g.seq
		ins[i] = groupMessageRow{FromUID: r.m.FromUID, Body: r.m.Body, CreatedAt: r.m.CreatedAt, ClientMsgID: r.m.ClientMsgID, GID: r.m.GID, GSeq: g.seq, Kind: r.m.Kind, ReplyTo: r.m.ReplyTo, FileID: r.m.FileID}
	}
	table, err := tableOf(tx, &Message{})
	if err != nil {
		return err
	}
	if err := tx.Table(table).Create(&ins).Error; err != nil {
		return fmt.Errorf("create group messages: %w", err)
	}
	step, err := s.idStep(tx, 1)
	if err != nil {
		return err
	}
	for i := range ins {
		ins[i].ID = ins[0].ID + int64(i)*step
	}
	for i, r := range rows {
		r.m.ID = ins[i].ID
		g := groups[r.m.GID]
		g.lastID = max(g.lastID, r.m.ID)
		g.readTo[r.m.FromUID] = [2]int64{r.m.ID, r.m.GSeq}
	}
	// Each file is taken with its message (see claimFile); a message
	// with a file comes in a batch of its own (see CreateGroupMessage),
	// so a refused file refuses no other message.
	for _, r := range rows {
		if r.m.FileID != 0 {
			if err := claimFile(tx, r.m); err != nil {
				return err
			}
		}
	}
	return nil
}

// groupMessageRow is a group message as inserted: no recipient (NULL).
type groupMessageRow struct {
	ID          int64 `gorm:"primaryKey"`
	FromUID     int64 `gorm:"column:from_uid"`
	ToUID       *int64
	Body        string
	CreatedAt   int64 `gorm:"autoCreateTime:false"`
	ClientMsgID *string
	GID         int64 `gorm:"column:gid"`
	GSeq        int64 `gorm:"column:gseq"`
	Kind        Kind
	ReplyTo     int64
	FileID      int64 `gorm:"column:file_id"`
}

// moveGroupMarks writes the groups' new counters and moves each sender's
// read mark past their newest message (API.md §12): two statements per
// group, whatever the number of senders in the batch, as every Send of
// the batch waits for each of them.
func (s *Store) moveGroupMarks(tx *gorm.DB, groups map[int64]*groupState) error {
	gids := make([]int64, 0, len(groups))
	for gid := range groups {
		gids = append(gids, gid)
	}
	slices.Sort(gids)
	table, err := tableOf(tx, &GroupMember{})
	if err != nil {
		return err
	}
	for _, gid := range gids {
		g := groups[gid]
		if len(g.readTo) == 0 {
			continue
		}
		if err := tx.Model(&Group{}).Where("gid = ?", gid).
			Updates(map[string]any{"seq": g.seq, "last_id": g.lastID}).Error; err != nil {
			return fmt.Errorf("count group messages: %w", err)
		}
		uids := make([]int64, 0, len(g.readTo))
		for uid := range g.readTo {
			uids = append(uids, uid)
		}
		slices.Sort(uids)
		q := s.appendMarksSQL(nil, table, gid, uids,
			func(q []byte, uid int64) []byte { return strconv.AppendInt(q, g.readTo[uid][1], 10) },
			func(q []byte, uid int64) []byte { return strconv.AppendInt(q, g.readTo[uid][0], 10) })
		if err := tx.Exec(string(q)).Error; err != nil {
			return fmt.Errorf("move read marks: %w", err)
		}
	}
	return nil
}

// appendMarksSQL appends to q one UPDATE moving the read mark in gid of
// each of uids (sorted) to the seq and id its functions append (integer
// literals or expressions: nothing to escape), never backwards. read_id
// is assigned first, from the old read_seq: MySQL assigns left to right
// with the new values, SQLite with the old ones, and this order reads
// the same on both.
func (s *Store) appendMarksSQL(q []byte, table string, gid int64, uids []int64, seqOf, idOf func(q []byte, uid int64) []byte) []byte {
	cases := func(q []byte, value func(q []byte, uid int64) []byte) []byte {
		q = append(q, "CASE uid"...)
		for _, uid := range uids {
			q = strconv.AppendInt(append(q, " WHEN "...), uid, 10)
			q = value(append(q, " THEN "...), uid)
		}
		return append(q, " END"...)
	}
	greatest := s.greatestFunc()
	q = append(q, "UPDATE "...)
	q = append(q, table...)
	q = cases(append(q, " SET read_id = CASE WHEN read_seq < ("...), seqOf)
	q = cases(append(q, ") THEN ("...), idOf)
	q = cases(append(q, ") ELSE read_id END, read_seq = "+greatest+"(read_seq, "...), seqOf)
	q = strconv.AppendInt(append(q, ") WHERE gid = "...), gid, 10)
	return append(appendInts(append(q, " AND uid IN ("...), uids...), ')')
}

// othersThan returns members without uid.
func othersThan(members []int64, uid int64) []int64 {
	out := make([]int64, 0, len(members))
	for _, m := range members {
		if m != uid {
			out = append(out, m)
		}
	}
	return out
}

// tableOf returns a model's table name, prefix included.
func tableOf(tx *gorm.DB, model any) (string, error) {
	stmt := &gorm.Statement{DB: tx}
	if err := stmt.Parse(model); err != nil {
		return "", fmt.Errorf("table of %T: %w", model, err)
	}
	return stmt.Schema.Table, nil
}
