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
// take their pairs as one JSON array, read by jsonb_each, whose text
// does not change with the batch. The INSERT and the counters' upsert
// take their rows as parameters, in statements prepared for 1, 2, 4, …
// 64 rows (see sizedStmts): reading a message's eleven columns out of its
// JSON cost more than binding them (BenchmarkSend 30-32 µs a Send
// against 33).
type liteStmts struct {
	check *sql.Stmt
	// known is the checks of a batch whose pairs the relationsCache has
	// (see liteChecks): the users' relations_seq, uids as a JSON array.
	known *sql.Stmt
	// insert and count are the messages' INSERT and the counters' upsert.
	insert, count sizedStmts
}

// sizedStmts is a statement of rows given as parameters, prepared for
// 1, 2, 4, … 64 rows: stmts[i] takes 1<<i rows of cols parameters each.
type sizedStmts struct {
	stmts [sizedClasses]*sql.Stmt
	cols  int
}

// sizedClasses is how many sizes of a sizedStmts are prepared.
const sizedClasses = 7

// prepareSized prepares head followed by 1, 2, 4, … 64 rows of cols
// placeholders, then tail.
func prepareSized(ctx context.Context, pool *sql.DB, head string, cols int, tail string) (sizedStmts, error) {
	st := sizedStmts{cols: cols}
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	for i := range st.stmts {
		var err error
		if st.stmts[i], err = pool.PrepareContext(ctx, head+row+strings.Repeat(", "+row, 1<<i-1)+tail); err != nil {
			st.close()
			return sizedStmts{}, fmt.Errorf("prepare the batch statements: %w", err)
		}
	}
	return st, nil
}

func (st sizedStmts) close() {
	for _, p := range st.stmts {
		if p != nil {
			_ = p.Close()
		}
	}
}

// exec runs st in tx for n rows, in as few statements as n's bits (64
// rows at most each), the parameters of row i appended by fill, and
// returns the last statement's result.
func (st sizedStmts) exec(ctx context.Context, tx txStmts, n int, fill func(args []any, i int) []any) (sql.Result, error) {
	args := make([]any, 0, st.cols*min(n, 1<<(sizedClasses-1)))
	var res sql.Result
	for done := 0; done < n; {
		class := min(bits.Len(uint(n-done))-1, sizedClasses-1)
		args = args[:0]
		for i := done; i < done+1<<class; i++ {
			args = fill(args, i)
		}
		var err error
		if res, err = tx.StmtContext(ctx, st.stmts[class]).ExecContext(ctx, args...); err != nil {
			return nil, err
		}
		done += 1 << class
	}
	return res, nil
}

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
	// lockAndCheck's reading (see there), pairs as [[from, to], …].
	check, err := pool.PrepareContext(ctx, "WITH p(f, t) AS (SELECT value->>0, value->>1 FROM jsonb_each(?)) SELECT "+lockAndCheckColumns+
		"p JOIN "+users+" u ON u.uid = p.t LEFT JOIN "+contacts+" c ON c.uid = p.f AND c.peer_uid = u.uid LEFT JOIN "+
		blocks+" b1 ON b1.uid = u.uid AND b1.blocked_uid = p.f LEFT JOIN "+blocks+" b2 ON b2.uid = p.f AND b2.blocked_uid = u.uid")
	if err != nil {
		return nil, fmt.Errorf("prepare the batch statements: %w", err)
	}
	known, err := pool.PrepareContext(ctx, "SELECT uid, relations_seq FROM "+users+" WHERE uid IN (SELECT value FROM jsonb_each(?))")
	if err != nil {
		_ = check.Close()
		return nil, fmt.Errorf("prepare the batch statements: %w", err)
	}
	st := &liteStmts{check: check, known: known}
	// insertMessages' rows, in order (ids rise with them).
	st.insert, err = prepareSized(ctx, pool, "INSERT INTO "+messages+
		" (from_uid, to_uid, body, created_at, client_msg_id, pair_lo, pair_hi, enc, kind, reply_to, file_id) VALUES ", 11, "")
	if err != nil {
		_ = check.Close()
		_ = known.Close()
		return nil, err
	}
	// countStored's upsert, rows as (uid, peer_uid, last_id, n).
	st.count, err = prepareSized(ctx, pool, "INSERT INTO "+conversations+" (uid, peer_uid, last_id, unread) VALUES ", 4,
		" ON CONFLICT (uid, peer_uid) DO UPDATE SET unread = unread + excluded.unread, last_id = max(last_id, excluded.last_id)")
	if err != nil {
		_ = check.Close()
		_ = known.Close()
		st.insert.close()
		return nil, err
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

	c, err := s.liteChecks(ctx, sqlTx, st, batchPairs(batch))
	if err != nil {
		return nil, err
	}
	earlier, err := readEarlierKeys(tx, batch, false)
	if err != nil {
		return nil, err
	}
	outcome, msgs := decideBatch(batch, earlier, c.refusal())
	if len(msgs) == 0 {
		return outcome, nil
	}

	res, err := st.insert.exec(ctx, sqlTx, len(msgs), func(args []any, i int) []any {
		m := msgs[i]
		var key any
		if m.ClientMsgID != nil {
			key = *m.ClientMsgID
		}
		return append(args, m.FromUID, m.ToUID, m.Body, m.CreatedAt, key, m.PairLo, m.PairHi, m.Enc, int64(m.Kind), m.ReplyTo, m.FileID)
	})
	if err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	last, err := res.LastInsertId()
	if err != nil {
		return nil, fmt.Errorf("create messages: %w", err)
	}
	setIDs(msgs, last-int64(len(msgs)-1), 1)
	noteTried(batch, outcome)

	order, per := countPairs(msgs, func(_ int, m *Message) int64 { return m.ID })
	_, err = st.count.exec(ctx, sqlTx, len(order), func(args []any, i int) []any {
		k := order[i]
		c := per[k]
		return append(args, k.to, k.from, c.last, c.n)
	})
	if err != nil {
		return nil, fmt.Errorf("count stored messages: %w", err)
	}
	return outcome, nil
}

// liteChecks reads the checks of a batch's pairs (batchPairs) in tx. When
// the relationsCache has every pair, that is only the senders' and
// recipients' relations_seq by primary key: a pair whose recipient's
// relations_seq is unchanged is as it was (see relationsCache). Otherwise,
// or when an entry is out of date or a user gone, it is the pairs' full
// check, whose reading the cache then keeps. SQLite runs one write
// transaction at a time, so what the batch reads stays true until it
// commits.
func (s *Store) liteChecks(ctx context.Context, tx txStmts, st *liteStmts, pairs []fromTo) (checked, error) {
	if known := s.relations.lookup(pairs); known != nil {
		arg := make([]byte, 0, 2+24*len(pairs))
		arg = append(arg, '[')
		for i, p := range pairs {
			if i > 0 {
				arg = append(arg, ',')
			}
			arg = appendInts(arg, p.from, p.to)
		}
		rows, err := tx.StmtContext(ctx, st.known).QueryContext(ctx, string(append(arg, ']')))
		if err != nil {
			return checked{}, fmt.Errorf("lock recipients: %w", err)
		}
		c, stale, err := readKnownChecks(rows, pairs, known)
		_ = rows.Close()
		if err != nil {
			return checked{}, err
		}
		if len(stale) == 0 {
			return c, nil
		}
		s.relations.forget(stale)
	}
	arg := make([]byte, 0, 2+24*len(pairs))
	arg = append(arg, '[')
	for i, p := range pairs {
		if i > 0 {
			arg = append(arg, ',')
		}
		arg = append(appendInts(append(arg, '['), p.from, p.to), ']')
	}
	rows, err := tx.StmtContext(ctx, st.check).QueryContext(ctx, string(append(arg, ']')))
	if err != nil {
		return checked{}, fmt.Errorf("lock recipients: %w", err)
	}
	c, err := readChecks(rows)
	_ = rows.Close()
	if err != nil {
		return checked{}, err
	}
	s.relations.store(pairs, c)
	return c, nil
}
