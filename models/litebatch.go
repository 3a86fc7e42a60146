package models

import (
	"context"
	"database/sql"
	"fmt"
	"math/bits"
	"strings"

	"gorm.io/gorm"
)

// liteStmts are the batch transaction's statements on SQLite, prepared
// once on the module's pool and run in each batch's transaction, so
// SQLite parses and plans each once instead of once per batch (parsing a
// batch's statements cost about as much as running them). The checks
// and the counters take their rows as one JSON array, read by
// jsonb_each, whose text does not change with the batch. The INSERT,
// whose rows have eleven columns each, takes them as parameters, in
// statements prepared for 1, 2, 4, … 64 rows: reading eleven columns out
// of each row's JSON cost more than binding them (BenchmarkSend 30-32 µs
// a Send against 33).
type liteStmts struct {
	check, count *sql.Stmt
	// inserts[i] inserts 1<<i rows given as parameters.
	inserts [liteInsertClasses]*sql.Stmt
}

// liteInsertClasses is how many sizes of the INSERT are prepared: 1, 2,
// 4, … 64 rows; a batch is inserted in as few of them as its size's bits.
const liteInsertClasses = 7

// liteStatements returns the batch's statements, prepared on the first
// call that succeeds: one that fails (the database unreachable) leaves
// them to the next batch.
func (s *Store) liteStatements() (*liteStmts, error) {
	s.lite.mu.Lock()
	defer s.lite.mu.Unlock()
	if s.lite.stmts == nil {
		st, err := s.prepareLite()
		if err != nil {
			return nil, err
		}
		s.lite.stmts = st
	}
	return s.lite.stmts, nil
}

// prepareLite prepares liteStmts on the pool behind s.db. They stay
// prepared for the pool's life: database/sql prepares them again on a
// connection that replaces the pool's one, and closing the pool
// finalizes them.
func (s *Store) prepareLite() (*liteStmts, error) {
	users, err := s.table(&User{})
	if err != nil {
		return nil, err
	}
	contacts, blocks, err := s.tables(&Contact{}, &Block{})
	if err != nil {
		return nil, err
	}
	messages, conversations, err := s.tables(&Message{}, &Conversation{})
	if err != nil {
		return nil, err
	}
	pool, err := s.db.DB()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	texts := []string{
		// lockAndCheck's reading (see there), pairs as [[from, to], …].
		"WITH p(f, t) AS (SELECT value->>0, value->>1 FROM jsonb_each(?)) SELECT " + lockAndCheckColumns +
			"p JOIN " + users + " u ON u.uid = p.t LEFT JOIN " + contacts + " c ON c.uid = p.f AND c.peer_uid = u.uid LEFT JOIN " +
			blocks + " b1 ON b1.uid = u.uid AND b1.blocked_uid = p.f LEFT JOIN " + blocks + " b2 ON b2.uid = p.f AND b2.blocked_uid = u.uid",
		// countStored's upsert, rows as [[uid, peer_uid, last_id, n], …]. The
		// WHERE tells SQLite's parser that ON CONFLICT is the upsert's.
		"INSERT INTO " + conversations + " (uid, peer_uid, last_id, read_id, unread) SELECT value->>0, value->>1, value->>2, 0, value->>3 FROM jsonb_each(?) WHERE true" +
			" ON CONFLICT (uid, peer_uid) DO UPDATE SET unread = unread + excluded.unread, last_id = max(last_id, excluded.last_id)",
	}
	stmts := make([]*sql.Stmt, len(texts))
	for i, q := range texts {
		if stmts[i], err = pool.PrepareContext(ctx, q); err != nil {
			for _, st := range stmts[:i] {
				_ = st.Close()
			}
			return nil, fmt.Errorf("prepare the batch statements: %w", err)
		}
	}
	st := &liteStmts{check: stmts[0], count: stmts[1]}
	row := "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	for i := range st.inserts {
		q := "INSERT INTO " + messages + " (from_uid, to_uid, body, created_at, client_msg_id, pair_lo, pair_hi, enc, kind, reply_to, file_id) VALUES " +
			row + strings.Repeat(", "+row, 1<<i-1)
		if st.inserts[i], err = pool.PrepareContext(ctx, q); err != nil {
			for _, p := range append(stmts, st.inserts[:i]...) {
				_ = p.Close()
			}
			return nil, fmt.Errorf("prepare the batch statements: %w", err)
		}
	}
	return st, nil
}

// txStmts is what runs a prepared statement in a transaction: *sql.Tx.
type txStmts interface {
	StmtContext(ctx context.Context, stmt *sql.Stmt) *sql.Stmt
}

// liteBody is batchBody on SQLite, with the statements of st.
func (s *Store) liteBody(tx *gorm.DB, st *liteStmts, batch []*writeReq) ([]batchOutcome, error) {
	for _, r := range batch {
		r.triedID = 0
	}
	sqlTx, ok := tx.Statement.ConnPool.(txStmts)
	if !ok {
		return nil, fmt.Errorf("batch transaction: %T runs no prepared statement", tx.Statement.ConnPool)
	}
	ctx := tx.Statement.Context

	pairs := batchPairs(batch)
	arg := make([]byte, 0, 64+24*len(pairs)+96*len(batch))
	arg = append(arg, '[')
	for i, p := range pairs {
		if i > 0 {
			arg = append(arg, ',')
		}
		arg = append(appendInts(append(arg, '['), p.from, p.to), ']')
	}
	arg = append(arg, ']')
	rows, err := sqlTx.StmtContext(ctx, st.check).QueryContext(ctx, string(arg))
	if err != nil {
		return nil, fmt.Errorf("lock recipients: %w", err)
	}
	present, contacts, blocked, err := readChecks(rows)
	_ = rows.Close()
	if err != nil {
		return nil, err
	}
	earlier, err := readEarlierKeys(tx, batch, false)
	if err != nil {
		return nil, err
	}
	outcome, msgs := decideBatch(batch, earlier, checks(present, contacts, blocked))
	if len(msgs) == 0 {
		return outcome, nil
	}

	args := make([]any, 0, 11*min(len(msgs), 1<<(liteInsertClasses-1)))
	var last int64
	for rest := msgs; len(rest) > 0; {
		class := min(bits.Len(uint(len(rest)))-1, liteInsertClasses-1)
		chunk := rest[:1<<class]
		rest = rest[len(chunk):]
		args = args[:0]
		for _, m := range chunk {
			var key any
			if m.ClientMsgID != nil {
				key = *m.ClientMsgID
			}
			args = append(args, m.FromUID, m.ToUID, m.Body, m.CreatedAt, key, m.PairLo, m.PairHi, m.Enc, int64(m.Kind), m.ReplyTo, m.FileID)
		}
		res, err := sqlTx.StmtContext(ctx, st.inserts[class]).ExecContext(ctx, args...)
		if err != nil {
			return nil, fmt.Errorf("create messages: %w", err)
		}
		if last, err = res.LastInsertId(); err != nil {
			return nil, fmt.Errorf("create messages: %w", err)
		}
	}
	setIDs(msgs, last-int64(len(msgs)-1), 1)
	noteTried(batch, outcome)

	order, per := countPairs(msgs, func(_ int, m *Message) int64 { return m.ID })
	arg = append(arg[:0], '[')
	for i, k := range order {
		if i > 0 {
			arg = append(arg, ',')
		}
		c := per[k]
		arg = append(appendInts(append(arg, '['), k.to, k.from, c.last, c.n), ']')
	}
	arg = append(arg, ']')
	if _, err := sqlTx.StmtContext(ctx, st.count).ExecContext(ctx, string(arg)); err != nil {
		return nil, fmt.Errorf("count stored messages: %w", err)
	}
	return outcome, nil
}
