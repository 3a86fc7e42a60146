package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/database"
)

// The conversation workloads' seed: every user receives seedPerUser
// messages, seedPartner of them from a partner (user 2k and 2k+1 are each
// other's), the rest spread evenly over seedOthers other senders (user
// u±2, u±4, … u±seedOthers, all of whom u writes to as well). So each
// user has 1+seedOthers senders with unread messages, each partner
// conversation holds 2×seedPartner messages (enough for a full page below
// a before_id), and the others 2×(seedPerUser−seedPartner)/seedOthers.
const (
	seedPerUser = 100
	seedPartner = 60
	seedOthers  = 20
	// seedRows is how many rows one INSERT statement carries, and
	// seedTxRows how many one transaction commits. The SQLite driver
	// finds each argument of a statement by a scan of all of them, so
	// binding costs the square of a statement's arguments: 25 rows (175
	// arguments) already save nearly all of the per-statement cost, and
	// 500 spent most of a minute binding.
	seedRows   = 25
	seedTxRows = 100_000
	// historyPage is the page History is asked for, and the reference
	// SELECT's LIMIT.
	historyPage = 50
	// minMessages is the smallest seed: 2+2×seedOthers users, so that a
	// user's others are distinct.
	minMessages = (2 + 2*seedOthers) * seedPerUser
)

// historySQL is the reference of the history workload: the keyset page
// History reads, with nothing around it.
// It selects what the store's History selects, and leaves out update
// entries (API.md §13) as it does.
const historySQL = "SELECT id, from_uid, to_uid, body, created_at, enc, kind, ref_id, reply_to, edited_at, deleted, reactions, file_id FROM chat_messages" +
	" WHERE pair_lo = ? AND pair_hi = ? AND kind < 2 AND id < ? ORDER BY id DESC LIMIT 50"

// seedIDStride is how far apart seeded messages' ids are: the ids
// between are the update entries of the messages seedUpdates edits and
// reacts to, so that entries lie among the messages of a conversation,
// in its History's range, as they do in real traffic.
const seedIDStride = 3

// seedUpdates gives every fourth seeded message an edit and a reaction
// (API.md §13): its row's current state (text, edited_at, reactions),
// and the two update entries in the ids after it, as /Message/Edit and
// /Message/React would leave them.
var seedUpdates = []string{
	`INSERT INTO chat_messages (id, from_uid, to_uid, body, created_at, pair_lo, pair_hi, kind, ref_id)
		SELECT id + 1, from_uid, to_uid, body || ' (edited)', created_at, pair_lo, pair_hi, 2, id FROM chat_messages WHERE kind = 0 AND id % 12 = 0`,
	`INSERT INTO chat_messages (id, from_uid, to_uid, body, created_at, pair_lo, pair_hi, kind, ref_id)
		SELECT id + 2, to_uid, from_uid, '+👍', created_at, pair_lo, pair_hi, 4, id FROM chat_messages WHERE kind = 0 AND id % 12 = 0`,
	`UPDATE chat_messages SET body = body || ' (edited)', edited_at = created_at,
		reactions = '[{"emoji":"👍","uids":[' || to_uid || ']}]' WHERE kind = 0 AND id % 12 = 0`,
}

// convFixture is a database seeded for the conversation workloads.
type convFixture struct {
	*fixture
	// partnerIDs holds, per partner pair k (users 2k and 2k+1), the ids of
	// its 2×seedPartner messages in ascending order, one pair after another.
	partnerIDs []int64
	messages   int
	seeded     time.Duration
}

// partnerConv is the number of messages in each partner conversation.
const partnerConv = 2 * seedPartner

// seedConversations migrates the database dsn names, stores messages/
// seedPerUser users with sessions (an even number, at least 2+2×
// seedOthers), and then their messages and the conversations' counters
// straight into the tables: multi-row INSERTs prepared once, in large
// transactions, ids given explicitly so the pages to ask for are known,
// and the counters computed from the messages by one INSERT … SELECT …
// GROUP BY, as the migration that introduced them does. Rounds of one
// message to every user interleave the conversations, as real traffic
// does, so a conversation's rows are spread over the table.
func seedConversations(ctx context.Context, dsn string, messages int, log *slog.Logger) (*convFixture, error) {
	n := messages / seedPerUser &^ 1
	start := time.Now()
	fx, err := prepare(ctx, dsn, n, nil, log)
	if err != nil {
		return nil, err
	}
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer database.Close(gdb)
	db, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	// Secondary indexes are built once the rows are in, from their own
	// definitions: one sort each instead of a million random inserts
	// into each, through a page cache of two megabytes.
	indexes, err := dropIndexes(ctx, db, "chat_messages")
	if err != nil {
		return nil, err
	}
	cf := &convFixture{fixture: fx, partnerIDs: make([]int64, n/2*partnerConv), messages: n * seedPerUser}
	filled := make([]int, n/2) // messages of each partner pair so far
	const cols = "(id, from_uid, to_uid, body, created_at, pair_lo, pair_hi)"
	stmtText := "INSERT INTO chat_messages " + cols + " VALUES " +
		strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", seedRows), ", ")

	// The newest message is a minute old: well inside the retention, and
	// in the past, as stored messages are.
	base := time.Now().Add(-time.Minute).Unix() - int64(seedPerUser)
	args := make([]any, 0, 7*seedRows)
	var tx *sql.Tx
	var stmt *sql.Stmt
	flush := func() error {
		if _, err := stmt.ExecContext(ctx, args...); err != nil {
			return fmt.Errorf("seed messages: %w", err)
		}
		args = args[:0]
		return nil
	}
	id := int64(0)
	var text []byte
	for r := range seedPerUser {
		for to := range n {
			if tx == nil {
				if tx, err = db.BeginTx(ctx, nil); err != nil {
					return nil, err
				}
				if stmt, err = tx.PrepareContext(ctx, stmtText); err != nil {
					_ = tx.Rollback()
					return nil, fmt.Errorf("prepare seed insert: %w", err)
				}
			}
			from := senderOf(to, r, n)
			id += seedIDStride
			if from == to^1 {
				k := to / 2
				cf.partnerIDs[k*partnerConv+filled[k]] = id
				filled[k]++
			}
			a, b := fx.users[from].UID, fx.users[to].UID
			text = messageText(text[:0], from, r)
			args = append(args, id, a, b, string(text), base+int64(r), min(a, b), max(a, b))
			if len(args) == cap(args) {
				if err := flush(); err != nil {
					_ = tx.Rollback()
					return nil, err
				}
				if id%seedTxRows == 0 {
					_ = stmt.Close()
					if err := tx.Commit(); err != nil {
						return nil, fmt.Errorf("seed messages: %w", err)
					}
					tx = nil
				}
			}
		}
	}
	if tx != nil {
		if len(args) > 0 {
			// The last, shorter statement goes unprepared.
			rest := "INSERT INTO chat_messages " + cols + " VALUES " +
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?), ", len(args)/7), ", ")
			if _, err := tx.ExecContext(ctx, rest, args...); err != nil {
				_ = tx.Rollback()
				return nil, fmt.Errorf("seed messages: %w", err)
			}
		}
		_ = stmt.Close()
		if err := tx.Commit(); err != nil {
			return nil, fmt.Errorf("seed messages: %w", err)
		}
	}
	for _, q := range seedUpdates {
		if _, err := db.ExecContext(ctx, q); err != nil {
			return nil, fmt.Errorf("seed updates: %w", err)
		}
	}
	for _, def := range indexes {
		if _, err := db.ExecContext(ctx, def); err != nil {
			return nil, fmt.Errorf("rebuild index: %w", err)
		}
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO chat_conversations (uid, peer_uid, last_id, read_id, unread)
		SELECT to_uid, from_uid, MAX(id), 0, COUNT(*) FROM chat_messages WHERE kind < 2 GROUP BY to_uid, from_uid`); err != nil {
		return nil, fmt.Errorf("seed conversations: %w", err)
	}
	// The write-ahead log now holds the whole seed; folding it into the
	// database file first means neither side of a comparison reads
	// through a log of a hundred megabytes the other did not.
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	cf.seeded = time.Since(start)
	return cf, nil
}

// dropIndexes drops the secondary indexes of table and returns the
// statements that made them, as SQLite keeps them.
func dropIndexes(ctx context.Context, db *sql.DB, table string) ([]string, error) {
	rows, err := db.QueryContext(ctx, "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL", table)
	if err != nil {
		return nil, fmt.Errorf("read indexes: %w", err)
	}
	var names, defs []string
	for rows.Next() {
		var name, def string
		if err := rows.Scan(&name, &def); err != nil {
			_ = rows.Close()
			return nil, err
		}
		names, defs = append(names, name), append(defs, def)
	}
	if err := rows.Close(); err != nil {
		return nil, err
	}
	for _, name := range names {
		if _, err := db.ExecContext(ctx, `DROP INDEX "`+name+`"`); err != nil {
			return nil, fmt.Errorf("drop index %s: %w", name, err)
		}
	}
	return defs, nil
}

// senderOf is who sends user to its message of round r, of n users: the
// partner in seedPartner rounds of every seedPerUser, interleaved, and
// the others in turn in the rest.
//
// The rounds go in cycles of five: three from the partner, then two from
// others (so 60 and 40 of 100); the others' turns j = 0 … 39 go round the
// 20 others twice (the offsets +2, −2, +4, −4, … −20). The offsets are
// even, so never the partner (±1) nor the user; n > 40 keeps them apart.
func senderOf(to, r, n int) int {
	if r%5 < 3 {
		return to ^ 1
	}
	j := (r/5*2 + r%5 - 3) % seedOthers
	off := 2 * (j/2 + 1)
	if j%2 == 1 {
		off = -off
	}
	return ((to+off)%n + n) % n
}

// mix is splitmix64: a request's pseudo-random choice from its worker and
// sequence number, the same in a workload and its reference.
func mix(i, seq int) uint64 {
	z := uint64(i)<<32 ^ uint64(seq) + 0x9e3779b97f4a7c15
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// historyPick is worker i's seq-th history request: worker i is one
// logged-in user, as each client of the other workloads is, scrolling
// back through its conversation with its partner: a random before_id with
// at least a page of older messages below it. (A user per request picked
// at random among 10 000 would mostly measure session reads on cache
// misses, which no client polling with its own session causes.)
func (cf *convFixture) historyPick(i, seq int) (me, with user, beforeID int64) {
	h := mix(i, seq)
	u := cf.workerUser(i)
	k := historyPage + int(h>>32%uint64(partnerConv-historyPage))
	return cf.users[u], cf.users[u^1], cf.partnerIDs[u/2*partnerConv+k]
}

// unreadPick is worker i's seq-th unread request's user: worker i's own,
// as for history.
func (cf *convFixture) unreadPick(i, _ int) user {
	return cf.users[cf.workerUser(i)]
}

// workerUser is the index of worker i's user, spread over the seeded
// users.
func (cf *convFixture) workerUser(i int) int {
	return int(mix(i, 0) % uint64(len(cf.users)))
}

// queryLoad runs a prepared SELECT from workers goroutines and reads
// every row of each answer.
type queryLoad struct {
	stmt    *sql.Stmt
	workers int
	// args returns worker i's seq-th arguments; newScan makes a worker's
	// row reader, each with variables of its own.
	args    func(i, seq int) []any
	newScan func() func(*sql.Rows) error
	seq     []int
}

func newQueryLoad(ctx context.Context, db *sql.DB, query string, workers int, args func(i, seq int) []any, newScan func() func(*sql.Rows) error) (*queryLoad, error) {
	stmt, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, fmt.Errorf("prepare %q: %w", query, err)
	}
	return &queryLoad{stmt: stmt, workers: workers, args: args, newScan: newScan, seq: make([]int, workers)}, nil
}

func (l *queryLoad) round(ctx context.Context, p phase) (rate, error) {
	return closedLoop(ctx, l.workers, p, func(i int) func(int) string {
		scan := l.newScan()
		return func(int) string {
			seq := l.seq[i]
			l.seq[i]++
			rows, err := l.stmt.QueryContext(ctx, l.args(i, seq)...)
			if err != nil {
				return err.Error()
			}
			n := 0
			for rows.Next() {
				if err := scan(rows); err != nil {
					_ = rows.Close()
					return err.Error()
				}
				n++
			}
			if err := rows.Err(); err != nil {
				return err.Error()
			}
			_ = rows.Close()
			if n == 0 {
				return "no rows"
			}
			return ""
		}
	})
}

func (l *queryLoad) close() { _ = l.stmt.Close() }

// conversations seeds a SQLite database and runs history and unread,
// each against its bare SELECT through database/sql on a pool of its own
// as database.Open makes it, on the same file.
func (rep *report) conversations(ctx context.Context, path, dir string, log *slog.Logger, logf func(string, ...any)) error {
	o := rep.opts
	dsn := "sqlite:" + path
	logf("history/unread: seeding %d messages among %d users", o.messages, o.messages/seedPerUser&^1)
	cf, err := seedConversations(ctx, dsn, o.messages, log)
	if err != nil {
		return fmt.Errorf("history: seed: %w", err)
	}
	rep.seedMessages, rep.seedUsers, rep.seedTime = cf.messages, len(cf.users), cf.seeded
	logf("history/unread: seeded in %s", cf.seeded.Round(time.Millisecond))

	srv, err := startChat(ctx, dsn, "127.0.0.1:0", dir, nil, log)
	if err != nil {
		return fmt.Errorf("history: start server: %w", err)
	}
	defer srv.close()
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer database.Close(gdb)
	db, err := gdb.DB()
	if err != nil {
		return err
	}
	clients := o.clients
	p := phase{warmup: o.warmup, duration: o.duration}

	// Worker i is one user throughout (historyPick's and unreadPick's
	// me), so its SDK client holds that user's session.
	me := make([]user, clients)
	for i := range me {
		me[i] = cf.unreadPick(i, 0)
	}
	history, err := newSDKLoad([]string{srv.addr}, cf.secret, me, func(i int, c *client.Client) func(context.Context, int) error {
		return func(ctx context.Context, seq int) error {
			_, with, before := cf.historyPick(i, seq)
			page, err := c.History(ctx, client.HistoryRequest{With: with.UID, BeforeID: before})
			if err == nil && len(page.Messages) == 0 {
				err = errors.New("empty History page")
			}
			return err
		}
	})
	if err != nil {
		return err
	}
	defer history.close()
	selHistory, err := newQueryLoad(ctx, db, historySQL, clients, func(i, seq int) []any {
		me, with, before := cf.historyPick(i, seq)
		return []any{min(me.UID, with.UID), max(me.UID, with.UID), before}
	}, func() func(*sql.Rows) error {
		var id, from, to, at, kind, ref, reply, edited, file int64
		var body string
		var enc, deleted bool
		var reactions *string
		return func(rows *sql.Rows) error {
			return rows.Scan(&id, &from, &to, &body, &at, &enc, &kind, &ref, &reply, &edited, &deleted, &reactions, &file)
		}
	})
	if err != nil {
		return err
	}
	defer selHistory.close()
	logf("history: /Message/History (%d-message pages below a before_id) against the bare keyset SELECT, %d clients, %d rounds", historyPage, clients, o.rounds)
	if rep.history, rep.selectHistory, err = compare(ctx, o.rounds, p, history, selHistory, rep.profile("history"), rep.profile("select-history")); err != nil {
		return err
	}

	unread, err := newSDKLoad([]string{srv.addr}, cf.secret, me, func(_ int, c *client.Client) func(context.Context, int) error {
		return func(ctx context.Context, _ int) error {
			counts, err := c.Unread(ctx)
			if err == nil && len(counts) == 0 {
				err = errors.New("no Unread counts")
			}
			return err
		}
	})
	if err != nil {
		return err
	}
	defer unread.close()
	store, err := moduleStore(gdb)
	if err != nil {
		return err
	}
	unreadSQL, err := store.UnreadStatement()
	if err != nil {
		return err
	}
	selUnread, err := newQueryLoad(ctx, db, unreadSQL, clients, func(i, seq int) []any {
		uid := cf.unreadPick(i, seq).UID
		return []any{uid, uid}
	}, func() func(*sql.Rows) error {
		var peer, gid, n, last int64
		return func(rows *sql.Rows) error { return rows.Scan(&peer, &gid, &n, &last) }
	})
	if err != nil {
		return err
	}
	defer selUnread.close()
	logf("unread: /Message/Unread (%d senders each) against the bare SELECT, %d clients, %d rounds", 1+seedOthers, clients, o.rounds)
	rep.unread, rep.selectUnread, err = compare(ctx, o.rounds, p, unread, selUnread, rep.profile("unread"), rep.profile("select-unread"))
	return err
}
