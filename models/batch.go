package models

import (
	"context"
	"crypto/rand"
	"database/sql"
	"database/sql/driver"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gorm.io/gorm"
)

// MessageWriter stores messages by group commit: Sends that arrive while
// a transaction is committing wait for the next one, which stores them
// all, so one commit (one fsync) serves many Sends. Each caller returns
// only after its own message has committed: an acknowledged Send is
// durable exactly as with a transaction of its own.
//
// The batch keeps every promise CreateMessage makes, contacts-only and
// blocks included: one statement locks the recipients, in uid order, and
// reads every pair's contact and block rows under those locks (see
// lockAndCheck). Recipients are locked before the INSERT, so ids per
// recipient still commit in order and a reader's cursor never skips one;
// messages of one batch get ids in arrival order, so a sender's messages
// keep their order; a client_msg_id seen before, in the table or earlier
// in the batch, stores nothing and answers with the first message's id.
//
// Start runs a fixed number of writer goroutines, each committing one
// batch at a time; batches grow by themselves under load (what queues
// during a commit forms the next batch), and a lone Send waits for no
// timer. Several writers overlap one batch's round trips and fsync with
// the next batch's, which pays on a networked database; batches of
// different writers that share a recipient still run one after the other,
// on the recipient's lock. On MySQL/MariaDB each writer keeps a connection
// of its own (see batchConn). Where it takes several statements at once, a
// batch whose every message may be stored is two round trips (see
// createBatchOn). Otherwise each statement of a batch (the locking read,
// the INSERT, the counters' upsert, COMMIT, and the lookup of the Sends'
// client_msg_ids when they carry any) is a round trip of its own, and a
// batch that found a message it must refuse pays the two-statement try
// first. Each round trip is a wait every Send of the batch makes, so they
// are what a Send costs there (docs/performance.md counts them).
//
// A batch that fails as a whole is run again message by message, and its
// COMMIT may have failed after the database committed (the connection to
// MySQL went between the two). A message sent with a client_msg_id is
// safe by it: the retry of a message already stored stores nothing and
// answers with its id. One sent without is made as safe in a way that
// suits each database:
//   - On MySQL/MariaDB it gets a key of the server's own (see
//     serverKeys), 25 bytes in its row and its (from_uid, client_msg_id)
//     index entry, which MySQL would keep anyway, holding a NULL (it has
//     no partial index). A fresh key cannot have been used, so the batch
//     looks up only clients' keys and stays one multi-row INSERT. The
//     key matters there: a retry whose COMMIT the old connection may
//     still be carrying out waits on the key's lock and finds its row.
//   - On SQLite the unique index holds only clients' keys (a partial
//     index), and the message carries none: a key would cost each message
//     its own index entry, the most written page of its INSERT. Its retry
//     looks first for the row the batch inserted it as (see storedAs).
//     SQLite's COMMIT is local, and one that failed did not commit, so
//     that look finds nothing unless COMMIT's answer was lost on its way
//     (a driver's fault); then it finds the row.
type MessageWriter struct {
	store    *Store
	keys     *serverKeys
	maxBatch int
	reqs     chan *writeReq
	// spare holds answered requests for the next Sends.
	spare   sync.Pool
	done    chan struct{}
	running sync.WaitGroup

	batches, written atomic.Int64

	// writers counts the writers Start ran; ownPool is their pool on
	// MySQL/MariaDB, nil without one (see openBatchPool).
	writers int
	ownPool *sql.DB
	// twoTrips counts the batches that committed in two round trips (see
	// createBatchOn).
	twoTrips atomic.Int64
	// wrapConnector, set by tests only, wraps the connector of the
	// writers' own pool, to put faults between them and the database.
	wrapConnector func(driver.Connector) driver.Connector

	// OnCommit, when set, is called after each batch that committed as
	// one, with its size and how long its transaction took (retries of a
	// deadlock included), on the goroutine that committed it: the
	// module's metrics, which this package does not import. Set it before
	// Start.
	OnCommit func(size int, took time.Duration)
	// OnOwnPoolError, when set, is told why Start could not open the
	// writers' own connections on GORM's DSN (see openBatchPool): the
	// writers then run slower, on the module's pool. Set it before Start.
	OnOwnPoolError func(error)
}

// writeReq is one Send's request to the writers. The Sends reuse them
// (see MessageWriter.reqs): a request goes back for reuse only once its
// Send has its answer, after which no writer touches it.
type writeReq struct {
	// msg is the writer's copy of the Send's message, and m points at it.
	msg          Message
	m            *Message
	contactsOnly bool
	replayed     bool
	err          error
	// ready takes one value when the request is answered; it has room
	// for it, so a writer never waits on a Send that stopped waiting.
	ready chan struct{}
	// triedID is the id the last batch attempt inserted the message
	// under, 0 if it inserted none: a retry that finds the message stored
	// under that id finds the batch's own row, not an earlier Send's.
	triedID int64
	// deadline is when the Send stops waiting: its batch must be done by
	// then (see MessageWriter.commit).
	deadline time.Time
}

// NewMessageWriter returns a writer storing up to maxBatch messages per
// transaction. Start must have been called for writes to be batched.
func NewMessageWriter(store *Store, maxBatch int) *MessageWriter {
	if maxBatch < 1 {
		maxBatch = 1
	}
	return &MessageWriter{
		store:    store,
		keys:     newServerKeys(),
		maxBatch: maxBatch,
		reqs:     make(chan *writeReq),
		done:     make(chan struct{}),
	}
}

// CreateMessage stores m (see Store.CreateMessage for what it returns),
// in the next batch. After Stop it stores m in a transaction of its own.
//
// It waits at most the query timeout in all, for a writer and then for
// its batch (or until ctx's deadline, if sooner), and then fails as the
// database being unavailable: the time a Send queues counts, so a
// database that stops answering costs each Send one QueryTimeout, not
// one for the queue and another for the batch. The batch keeps the same
// deadline (see commit). A message whose COMMIT the deadline cut off may
// still have committed, once; its sender was told to retry.
//
// A message with a file is stored in a transaction of its own, which
// takes the file (see Store.CreateMessage): the file is then sent
// exactly when its message is stored, and a refused file refuses no
// other message of a batch.
func (w *MessageWriter) CreateMessage(ctx context.Context, m *Message, contactsOnly bool) (bool, error) {
	deadline := time.Now().Add(w.store.timeout)
	d, ok := ctx.Deadline()
	if ok && d.Before(deadline) {
		deadline = d
	}
	// A Send's context ends at its deadline already (the handler sets
	// it): no timer of its own for the wait, then.
	if !ok || !deadline.Equal(d) {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, deadline)
		defer cancel()
	}
	if m.FileID != 0 {
		return w.createAlone(ctx, m, contactsOnly, deadline)
	}
	r := w.request(m, contactsOnly, deadline)
	select {
	case w.reqs <- r:
	case <-w.done:
		w.spare.Put(r)
		return w.store.CreateMessage(ctx, m, contactsOnly)
	case <-ctx.Done():
		w.spare.Put(r)
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, fmt.Errorf("wait for a message writer: %w", context.DeadlineExceeded)
		}
		return false, ctx.Err()
	}
	if err := awaitAnswer(ctx, r, deadline); err != nil {
		return false, err
	}
	replayed, err := r.answer(m)
	w.spare.Put(r)
	return replayed, err
}

// createAlone is CreateMessage in a transaction of its own, for a
// message with a file. A try that failed other than by a refusal may
// have committed (its COMMIT's answer lost): it is settled as a failed
// batch's message is (see storeAlone), by the same idempotency keys.
func (w *MessageWriter) createAlone(ctx context.Context, m *Message, contactsOnly bool, deadline time.Time) (bool, error) {
	r := w.request(m, contactsOnly, deadline)
	defer w.spare.Put(r)
	r.replayed, r.err = w.store.CreateMessage(ctx, r.m, contactsOnly)
	if r.err != nil && !isRefusal(r.err) {
		r.triedID = r.m.ID
		w.storeAlone(ctx, r, r.err)
	}
	return r.answer(m)
}

// answer copies the writer's copy of the message back into the caller's
// m, but for the idempotency key (see request), and returns r's outcome.
func (r *writeReq) answer(m *Message) (replayed bool, err error) {
	key := m.ClientMsgID
	*m = r.msg
	m.ClientMsgID = key
	return r.replayed, r.err
}

// request returns a request for m, from the spare ones if it can. The
// writer works on a copy of m, so a Send that stopped waiting shares
// nothing with it; the copy carries the idempotency key, which is the
// store's business and never reaches the caller.
func (w *MessageWriter) request(m *Message, contactsOnly bool, deadline time.Time) *writeReq {
	r, _ := w.spare.Get().(*writeReq)
	if r == nil {
		r = &writeReq{ready: make(chan struct{}, 1)}
	}
	*r = writeReq{msg: *m, contactsOnly: contactsOnly, ready: r.ready, deadline: deadline}
	r.m = &r.msg
	if r.msg.ClientMsgID == nil && w.store.mysql() {
		key := w.keys.next()
		r.msg.ClientMsgID = &key
	}
	return r
}

// awaitAnswer waits for a handed-over request's answer until deadline,
// ctx's. Once handed over, the message may commit whatever the caller
// does, so the answer is awaited even if ctx is cancelled before then.
// A request it gives up on is the writer's: it is never reused.
func awaitAnswer(ctx context.Context, r *writeReq, deadline time.Time) error {
	select {
	case <-r.ready:
		return nil
	case <-ctx.Done():
	}
	if wait := time.Until(deadline); wait > 0 && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-r.ready:
			return nil
		case <-t.C:
		}
	}
	return fmt.Errorf("wait for the group commit: %w", context.DeadlineExceeded)
}

// Start runs n writer goroutines until Stop; Write needs them to batch.
//
// On MySQL/MariaDB each writer keeps a connection of its own (see
// batchConn), from a pool of the writers' own when GORM was opened on a
// DSN (see openBatchPool), else from the module's pool if it has room to
// spare them (see roomToHold); Stop closes them. Writers that keep none
// run each batch in a transaction of the module's pool.
func (w *MessageWriter) Start(n int) {
	n = max(n, 1)
	var pool *sql.DB
	multi := false
	if w.store.mysql() {
		w.writers += n
		if w.ownPool == nil {
			var err error
			if w.ownPool, err = openBatchPool(w.store.db, w.writers, w.store.timeout, w.wrapConnector); err != nil && w.OnOwnPoolError != nil {
				w.OnOwnPoolError(err)
			}
		}
		if w.ownPool != nil {
			pool, multi = w.ownPool, true
			pool.SetMaxOpenConns(w.writers)
			pool.SetMaxIdleConns(w.writers)
		} else if sqlDB, err := w.store.db.DB(); err == nil && roomToHold(sqlDB, w.writers) {
			pool = sqlDB
		}
	}
	for range n {
		var conn *batchConn
		if pool != nil {
			conn = &batchConn{pool: pool, multi: multi, twoTrips: &w.twoTrips}
		}
		w.running.Add(1)
		go w.run(conn)
	}
}

// run commits batches until Stop. The channel is unbuffered: every
// request a writer takes, it answers.
func (w *MessageWriter) run(conn *batchConn) {
	defer w.running.Done()
	if conn != nil {
		defer conn.discard()
	}
	collectBatches(w.reqs, w.done, w.maxBatch, func(batch []*writeReq) { w.commit(batch, conn) })
}

// collectBatches is a group-commit writer's loop, until done: it waits
// for a request, takes with it every one that queued meanwhile (up to
// maxBatch: what arrives while a batch commits forms the next), and
// hands them to commit. A lone request waits for no timer.
func collectBatches[R any](reqs <-chan R, done <-chan struct{}, maxBatch int, commit func([]R)) {
	batch := make([]R, 0, maxBatch)
	for {
		select {
		case r := <-reqs:
			batch = append(batch[:0], r)
		case <-done:
			return
		}
	collect:
		for len(batch) < maxBatch {
			select {
			case r := <-reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		commit(batch)
	}
}

// Stop ends the writers after the batches in hand and waits for them;
// later writes take the one-by-one path.
func (w *MessageWriter) Stop() {
	select {
	case <-w.done:
	default:
		close(w.done)
	}
	w.running.Wait()
	if w.ownPool != nil {
		_ = w.ownPool.Close()
		w.ownPool = nil
	}
}

// commit stores a batch, falling back to one transaction per message
// when the batch as a whole fails (a duplicate key raced in from another
// process, deadlocks outlasting the retries, or a COMMIT whose answer was
// lost), so one message's trouble never fails the others. The idempotency
// keys make the fallback safe after a COMMIT that did commit: it finds the
// batch's rows and stores nothing again.
//
// The batch and its fallback share one deadline, the earliest of its
// Sends' (see CreateMessage): each Send's bound counts its time in the
// queue, and none of them is answered later than it, COMMIT included
// (see batchConn.end). A request whose deadline passed in the queue is
// answered at once and not stored: its Send has stopped waiting. Past the
// deadline nothing is run again: a stuck database would make each
// message wait in turn, and what failed by it was rolled back, or its
// COMMIT cut off, which the Sends' answer, unavailable, allows for.
func (w *MessageWriter) commit(batch []*writeReq, conn *batchConn) {
	batch, deadline := dropExpired(batch, time.Now())
	if len(batch) == 0 {
		return
	}
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	var err error
	start := time.Now()
	// A deadlock victim, or a batch Galera's certification rolled back,
	// stored nothing: it runs again until the deadline (see
	// replayAttempts).
	for attempt := 1; ; attempt++ {
		if err = w.store.createBatch(ctx, batch, conn); err == nil || !isDeadlock(err) || !retryPause(ctx, attempt) {
			break
		}
	}
	if err == nil {
		w.batches.Add(1)
		w.written.Add(int64(len(batch)))
		if w.OnCommit != nil {
			w.OnCommit(len(batch), time.Since(start))
		}
		for _, r := range batch {
			r.ready <- struct{}{}
		}
		return
	}
	err = Redact(err)
	for _, r := range batch {
		w.storeAlone(ctx, r, err)
		r.ready <- struct{}{}
	}
}

// storeAlone settles a request of a batch that failed with batchErr, in a
// transaction of its own: a message the batch did commit is answered as
// stored, with its id, and is not stored again.
func (w *MessageWriter) storeAlone(ctx context.Context, r *writeReq, batchErr error) {
	if ctx.Err() != nil {
		r.err = fmt.Errorf("create messages: %w", batchErr)
		return
	}
	if r.m.ClientMsgID == nil && r.triedID != 0 {
		// No key to find it by (SQLite: see MessageWriter).
		stored, err := w.store.storedAs(ctx, r.m, r.triedID)
		if err != nil {
			// Storing it again might store it twice.
			r.err = Redact(err)
			return
		}
		if stored {
			r.m.ID = r.triedID
			return
		}
	}
	r.m.ID = 0
	r.replayed, r.err = w.store.CreateMessage(ctx, r.m, r.contactsOnly)
	r.err = Redact(r.err)
	if r.replayed && r.triedID != 0 && r.m.ID == r.triedID {
		// The batch did commit: this is the message's first answer.
		r.replayed = false
	}
}

// storedAs reports whether m is stored under id: a row there from m's
// sender to its recipient, with its time and text, and no key. A batch
// that rolled back leaves its ids to later INSERTs (AUTOINCREMENT's
// sequence rolls back with it), so the row must be m's in every column,
// not only in its id: only the same sender's same text to the same
// recipient, in the same second and in the id the rolled-back batch gave
// m, would pass for it.
func (s *Store) storedAs(ctx context.Context, m *Message, id int64) (bool, error) {
	db, done := s.with(ctx)
	defer done()
	var n int64
	err := db.Model(&Message{}).Where("id = ? AND from_uid = ? AND to_uid = ? AND created_at = ? AND body = ? AND enc = ? AND file_id = ? AND client_msg_id IS NULL",
		id, m.FromUID, m.ToUID, m.CreatedAt, m.Body, m.Enc, m.FileID).Count(&n).Error
	if err != nil {
		return false, fmt.Errorf("look for a message of a failed batch: %w", err)
	}
	return n > 0, nil
}

// dropExpired answers the requests of batch whose deadline is past at
// now, and returns the others, in order, with the earliest of their
// deadlines.
func dropExpired(batch []*writeReq, now time.Time) ([]*writeReq, time.Time) {
	live := batch[:0]
	var first time.Time
	for _, r := range batch {
		if !now.Before(r.deadline) {
			r.err = fmt.Errorf("wait for the group commit: %w", context.DeadlineExceeded)
			r.ready <- struct{}{}
			continue
		}
		if len(live) == 0 || r.deadline.Before(first) {
			first = r.deadline
		}
		live = append(live, r)
	}
	return live, first
}

// serverKeyPrefix starts every idempotency key the server makes. It is a
// control character, which a client's client_msg_id may not contain
// (API.md), so a server key never collides with a client's, and Send's
// lookup of a client's key never finds one.
const serverKeyPrefix = "\x01"

// serverKeys makes the idempotency keys of messages sent without a
// client_msg_id on MySQL/MariaDB (see MessageWriter): the prefix, 72
// random bits drawn once per writer, and a counter, 25 bytes in all. The
// random part keeps apart the keys of writers in other processes, or of
// this one before a restart; the counter those of one writer, with no
// system call per Send. Its fixed-width hex keeps a sender's keys in the
// order they were made, so the unique index takes each at the end of the
// sender's range rather than anywhere in it.
type serverKeys struct {
	base string
	n    atomic.Uint64
}

// serverKeyDigits is how many hex digits of the counter a key holds: 48
// bits, more keys than one writer makes in its life.
const serverKeyDigits = 12

func newServerKeys() *serverKeys {
	var b [9]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return &serverKeys{base: serverKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])}
}

// next returns a key no writer has made before.
func (k *serverKeys) next() string {
	n := k.n.Add(1)
	b := make([]byte, len(k.base), len(k.base)+serverKeyDigits)
	copy(b, k.base)
	for i := serverKeyDigits - 1; i >= 0; i-- {
		b = append(b, "0123456789abcdef"[(n>>(4*i))&0xf])
	}
	return string(b)
}

// msgKey is a client_msg_id with its sender, unique in the table.
type msgKey struct {
	from int64
	id   string
}

// fromTo is an ordered pair of users: a sender and a recipient.
type fromTo struct{ from, to int64 }

// batchOutcome is what the batch transaction decided for one request.
type batchOutcome struct {
	replayed bool
	err      error
	firstOf  int // for an in-batch repeat: the index of the first; else -1
}

// createBatch is the batch transaction: on the writer's own connection
// (see createBatchOn), or, where conn is nil (SQLite, or a MySQL pool with
// no room to spare), in a transaction of the module's pool, where SQLite
// runs its statements prepared once (see liteStmts). On success every
// request holds its outcome; on error nothing was stored and the requests
// are untouched but for fields the caller resets.
//
// database/sql's Tx.Commit takes no deadline, so on MySQL, where a
// database that stops answering mid-COMMIT would hold the writer as long
// as the connection lives, a transaction of the pool commits by a COMMIT
// statement, which the deadline bounds as on the writer's own connection
// (see batchConn.end); Tx.Commit then finds no transaction left to end
// (a round trip that writes nothing). SQLite's COMMIT is local.
func (s *Store) createBatch(ctx context.Context, batch []*writeReq, conn *batchConn) error {
	if conn != nil {
		return s.createBatchOn(ctx, conn, batch)
	}
	var outcome []batchOutcome
	var lite *liteStmts
	if !s.mysql() {
		var err error
		if lite, err = s.liteStatements(); err != nil {
			return err
		}
	}
	db, done := s.with(ctx)
	defer done()
	var opts []*sql.TxOptions
	if s.mysql() {
		// lockAndCheck's locking read must take no gap locks (see
		// batchConn); a writer without a connection of its own asks for
		// READ COMMITTED per transaction.
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	err := db.Transaction(func(tx *gorm.DB) (err error) {
		if lite != nil {
			outcome, err = s.liteBody(tx, lite, batch)
			return err
		}
		// The pool's connections are the host's, their charset unknown:
		// on MySQL the texts go as literals no charset can misread.
		if outcome, err = s.batchBody(tx, batch, 1, true); err != nil {
			return err
		}
		return tx.Exec("COMMIT").Error
	}, opts...)
	if err != nil {
		return err
	}
	settleBatch(batch, outcome)
	return nil
}

// createBatchOn is the batch transaction on a writer's own connection.
// Where the connection takes several statements at once, the batch first
// assumes that every message may be stored, as nearly always: one round
// trip locks and checks (lockAndCheck), inserts, counts and reads back
// the first id, and a second commits. When the checks or the INSERT say
// otherwise (a recipient gone, a stranger, a block, a client_msg_id seen
// before) it rolls back and runs the batch again one statement at a time
// (batchBody), deciding each message's fate, as it does on a connection
// without several statements at once.
func (s *Store) createBatchOn(ctx context.Context, conn *batchConn, batch []*writeReq) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	c, err := conn.get(ctx)
	if err != nil {
		return err
	}
	if conn.multi {
		outcome, ok, err := s.optimisticBatch(ctx, c, batch, conn)
		if err != nil {
			return conn.end(ctx, err)
		}
		if ok {
			if err := conn.end(ctx, nil); err != nil {
				return err
			}
			conn.twoTrips.Add(1)
			settleBatch(batch, outcome)
			return nil
		}
		conn.rollback(ctx)
		if c, err = conn.get(ctx); err != nil {
			return err
		}
	}
	tx := s.db.Session(&gorm.Session{NewDB: true, Context: ctx})
	tx.Statement.ConnPool = c
	outcome, err := s.batchBody(tx, batch, conn.idStep, !conn.escapes)
	if err := conn.end(ctx, err); err != nil {
		return err
	}
	settleBatch(batch, outcome)
	return nil
}

// optimisticBatch sends, in one round trip on c, the batch's locking read
// and checks, the INSERT of every message but in-batch repeats, the
// counters' upsert and SELECT LAST_INSERT_ID(). ok says whether every
// message could be stored as it assumed, and the transaction may
// commit; if not, it must be rolled back. A duplicate client_msg_id or a
// recipient gone fails the INSERT itself, which is a false ok, not an
// error.
//
// When the store's relationsCache has every pair of the batch, the
// checks are only a locking read of the senders' and recipients' rows
// with their relations_seq (lockUsersSQL): a pair whose recipient's
// relations_seq is still the one its entry was read under is as it was.
// A pair whose entry is out of date, or whose sender is gone, is a false
// ok too: its entry is dropped, and the slow path checks it afresh.
func (s *Store) optimisticBatch(ctx context.Context, c *sql.Conn, batch []*writeReq, conn *batchConn) (outcome []batchOutcome, ok bool, err error) {
	for _, r := range batch {
		r.triedID = 0
	}
	// What decideBatch says when no check refuses anything.
	outcome, rows := decideBatch(batch, nil, func(*writeReq) error { return nil })
	if len(rows) == 0 {
		return nil, false, nil
	}

	pairs := batchPairs(batch)
	known := s.relations.lookup(pairs)
	var q []byte
	if known != nil {
		q, err = s.lockUsersSQL(nil, pairs)
	} else {
		q, err = s.lockAndCheckSQL(nil, pairs)
	}
	if err != nil {
		return nil, false, err
	}
	q = append(q, "; "...)
	// The connection's step holds for its life but on Galera (see
	// Store.idStep), where the upsert reads the server's.
	countStep := conn.idStep
	if s.onGalera(ctx) {
		countStep = -1
		if q, err = s.bumpSQL(q, "mailbox_seq", recipientsOf(rows)); err != nil {
			return nil, false, err
		}
		q = append(q, "; "...)
	}
	q, args, err := s.insertSQL(q, nil, rows, !conn.escapes)
	if err != nil {
		return nil, false, err
	}
	q = append(q, "; "...)
	if q, err = s.countSQL(q, rows, countStep); err != nil {
		return nil, false, err
	}
	// The step is read with the id: Galera changes it as nodes come
	// and go (see Store.idStep).
	q = append(q, "; SELECT LAST_INSERT_ID(), @@auto_increment_increment"...)

	res, err := c.QueryContext(ctx, string(q), args...)
	if err != nil {
		return nil, false, fmt.Errorf("lock recipients: %w", err)
	}
	defer res.Close()
	var read checked
	var stale []fromTo
	if known != nil {
		read, stale, err = readKnownChecks(res, pairs, known)
	} else if read, err = readChecks(res); err == nil {
		s.relations.store(pairs, read)
	}
	if err != nil {
		return nil, false, err
	}
	var first, step int64
	if !res.NextResultSet() || !res.Next() {
		err := res.Err()
		if err == nil {
			return nil, false, errors.New("create messages: no id read back")
		}
		if isDuplicate(err) || isMissingParent(err) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("create messages: %w", err)
	}
	if err := res.Scan(&first, &step); err != nil {
		return nil, false, fmt.Errorf("create messages: %w", err)
	}
	if countStep > 0 && step != countStep {
		// Nothing but a SET on this connection changes its step; the
		// counters took the one it was opened with. The batch rolls
		// back, and the next takes the new one.
		conn.idStep = step
		return nil, false, fmt.Errorf("create messages: auto_increment_increment went from %d to %d", countStep, step)
	}
	if err := res.Close(); err != nil {
		return nil, false, fmt.Errorf("create messages: %w", err)
	}
	if len(stale) > 0 {
		s.relations.forget(stale)
		return nil, false, nil
	}
	if refused(batch, outcome, read.refusal()) {
		return nil, false, nil
	}
	setIDs(rows, first, max(step, 1))
	noteTried(batch, outcome)
	return outcome, true, nil
}

// lockUsersSQL appends to q the checks of a batch whose pairs are all in
// the relationsCache: a locking read of the rows of their senders and
// recipients, in uid order, as every transaction that takes user locks
// takes them (see lockUIDs), with their relations_seq. The senders' rows
// say whether they still exist, which a host deleting one (and its
// contacts by cascade) does not tell relations_seq.
func (s *Store) lockUsersSQL(q []byte, pairs []fromTo) ([]byte, error) {
	users, err := s.table(&User{})
	if err != nil {
		return nil, err
	}
	uids := make([]int64, 0, 2*len(pairs))
	for _, p := range pairs {
		uids = append(uids, p.from, p.to)
	}
	slices.Sort(uids)
	q = append(q, "SELECT uid, relations_seq FROM "...)
	q = append(q, users...)
	q = append(q, " WHERE uid IN ("...)
	q = appendInts(q, slices.Compact(uids)...)
	return append(q, ") ORDER BY uid FOR UPDATE"...), nil
}

// readKnownChecks reads lockUsersSQL's rows and returns the checks they
// and the cache's entries (known, in the order of pairs) make, and the
// pairs whose entries are out of date or whose sender is gone.
func readKnownChecks(rows *sql.Rows, pairs []fromTo, known []relation) (checked, []fromTo, error) {
	seqs := make(map[int64]int64, 2*len(pairs))
	for rows.Next() {
		var uid, seq int64
		if err := rows.Scan(&uid, &seq); err != nil {
			return checked{}, nil, fmt.Errorf("lock users: %w", err)
		}
		seqs[uid] = seq
	}
	if err := rows.Err(); err != nil {
		return checked{}, nil, fmt.Errorf("lock users: %w", err)
	}
	c := checked{contacts: map[fromTo]bool{}, blocked: map[fromTo]bool{}}
	var stale []fromTo
	for i, p := range pairs {
		seq, present := seqs[p.to]
		if !present {
			// Refused as a recipient gone, and checked afresh.
			stale = append(stale, p)
			continue
		}
		c.present = append(c.present, p.to)
		if _, ok := seqs[p.from]; !ok || seq != known[i].seq {
			stale = append(stale, p)
			continue
		}
		c.contacts[p], c.blocked[p] = known[i].contact, known[i].blocked
	}
	// pairs are sorted by recipient.
	c.present = slices.Compact(c.present)
	return c, stale, nil
}

// recipientsOf returns the recipients of rows (repeats included).
func recipientsOf(rows []*Message) []int64 {
	uids := make([]int64, len(rows))
	for i, m := range rows {
		uids[i] = m.ToUID
	}
	return uids
}

// noteTried records, in each request whose message the attempt inserted,
// the id it was inserted under (see writeReq.triedID).
func noteTried(batch []*writeReq, outcome []batchOutcome) {
	for i, r := range batch {
		if o := outcome[i]; o.err == nil && !o.replayed {
			r.triedID = r.m.ID
		}
	}
}

// checks returns what lockAndCheck read as the reason, if any, a request's
// message must be refused: a recipient that is not there, a stranger
// where only contacts may write, or a block either way.
func checks(present []int64, contacts, blocked map[fromTo]bool) func(*writeReq) error {
	return func(r *writeReq) error {
		k := fromTo{r.m.FromUID, r.m.ToUID}
		if _, ok := slices.BinarySearch(present, k.to); !ok {
			return errNoRecipient
		}
		if r.contactsOnly && !contacts[k] {
			return ErrNotContact
		}
		if blocked[k] {
			return ErrBlocked
		}
		return nil
	}
}

// refused reports whether refusal refuses any message of the batch that
// outcome (decided with no refusal) stores.
func refused(batch []*writeReq, outcome []batchOutcome, refusal func(*writeReq) error) bool {
	for i, r := range batch {
		if o := outcome[i]; o.err == nil && !o.replayed && refusal(r) != nil {
			return true
		}
	}
	return false
}

// batchBody is what the batch transaction runs on MySQL/MariaDB (SQLite's
// is liteBody), in tx; hexTexts says how its statements carry texts (see
// appendText).
func (s *Store) batchBody(tx *gorm.DB, batch []*writeReq, step int64, hexTexts bool) ([]batchOutcome, error) {
	// Decided afresh on every attempt: a retried transaction must not
	// keep what a rolled-back one decided.
	for _, r := range batch {
		r.triedID = 0
	}
	c, err := s.lockAndCheck(tx, batch)
	if err != nil {
		return nil, err
	}
	if err := s.bumpMailboxes(tx, c.present); err != nil {
		return nil, err
	}
	earlier, err := readEarlierKeys(tx, batch, hexTexts)
	if err != nil {
		return nil, err
	}
	outcome, rows := decideBatch(batch, earlier, c.refusal())
	if err := s.insertMessages(tx, rows, step, hexTexts); err != nil {
		return nil, err
	}
	noteTried(batch, outcome)
	if err := s.countStored(tx, rows); err != nil {
		return nil, err
	}
	return outcome, nil
}

// lockAndCheck locks every recipient of the batch and reads, for each
// (sender, recipient) pair, whether the two are contacts and whether
// either blocks the other, in one statement, and keeps what it read in
// the store's relationsCache.
//
// On MySQL/MariaDB it is a locking read (FOR UPDATE) whose join order is
// fixed (STRAIGHT_JOIN): recipients first, in uid order, so that batches
// in several processes cannot deadlock on them; then each pair's contact
// and block rows, read after the recipient's lock is held. A locking read
// reads the latest committed rows, and every transaction that makes or
// ends a contact or a block locks both users' rows first, so what it reads
// stays true until the batch commits: a block that committed before is
// seen, and none can commit until the batch has. MySQL has no way to lock
// only some tables of a join, so the contact and block rows found are
// locked too, until the batch commits; a host deleting a user, whose
// contacts go by cascade without its row lock, can then deadlock with a
// batch, and InnoDB's victim is run again. The pairs themselves are a
// derived table written into the statement, their uids as literals
// (integers: nothing to escape), so the statement needs no placeholders.
func (s *Store) lockAndCheck(tx *gorm.DB, batch []*writeReq) (checked, error) {
	pairs := batchPairs(batch)
	q, err := s.lockAndCheckSQL(nil, pairs)
	if err != nil {
		return checked{}, err
	}
	rows, err := tx.Statement.ConnPool.QueryContext(tx.Statement.Context, string(q))
	if err != nil {
		return checked{}, fmt.Errorf("lock recipients: %w", err)
	}
	defer rows.Close()
	c, err := readChecks(rows)
	if err == nil {
		s.relations.store(pairs, c)
	}
	return c, err
}

// lockAndCheckColumns are lockAndCheck's result columns: recipient, sender,
// whether the sender is the recipient's contact, whether either blocks the
// other, and the recipient's relations_seq (see relationsCache).
const lockAndCheckColumns = "u.uid, p.f, c.uid IS NOT NULL, b1.uid IS NOT NULL OR b2.uid IS NOT NULL, u.relations_seq FROM "

// lockAndCheckSQL appends lockAndCheck's statement for a batch's pairs
// (batchPairs) to q.
func (s *Store) lockAndCheckSQL(q []byte, pairs []fromTo) ([]byte, error) {
	users, err := s.table(&User{})
	if err != nil {
		return nil, err
	}
	contactsTable, blocksTable, err := s.tables(&Contact{}, &Block{})
	if err != nil {
		return nil, err
	}
	q = slices.Grow(q, 512+48*len(pairs))
	q = appendPairsUnion(q, users, pairs)
	q = append(q, " ON p.t = u.uid LEFT JOIN "...)
	q = append(q, contactsTable...)
	q = append(q, " c ON c.uid = p.f AND c.peer_uid = u.uid LEFT JOIN "...)
	q = append(q, blocksTable...)
	q = append(q, " b1 ON b1.uid = u.uid AND b1.blocked_uid = p.f LEFT JOIN "...)
	q = append(q, blocksTable...)
	q = append(q, " b2 ON b2.uid = p.f AND b2.blocked_uid = u.uid WHERE u.uid IN ("...)
	q = append(appendRecipients(q, pairs), ')')
	return append(q, " FOR UPDATE"...), nil
}

// batchPairs returns the batch's distinct (sender, recipient) pairs sorted
// by recipient: the order lockAndCheck locks them in, and the one
// appendRecipients relies on to skip repeats.
func batchPairs(batch []*writeReq) []fromTo {
	pairs := make([]fromTo, 0, len(batch))
	for _, r := range batch {
		pairs = append(pairs, fromTo{r.m.FromUID, r.m.ToUID})
	}
	slices.SortFunc(pairs, byRecipient)
	return slices.Compact(pairs)
}

// appendPairsUnion appends the MySQL head of lockAndCheck's statement, up
// to the join of users u with the pairs p. The pairs are a UNION ALL
// because MySQL 5.7 has no VALUES table, and 8.0 spells it ROW(…), which
// MariaDB does not take; a UNION ALL every version takes.
func appendPairsUnion(q []byte, users string, pairs []fromTo) []byte {
	q = append(q, "SELECT STRAIGHT_JOIN "+lockAndCheckColumns...)
	q = append(q, users...)
	q = append(q, " u JOIN ("...)
	for i, p := range pairs {
		if i == 0 {
			q = append(q, "SELECT "...)
		} else {
			q = append(q, " UNION ALL SELECT "...)
		}
		q = strconv.AppendInt(q, p.from, 10)
		if i == 0 {
			q = append(q, " AS f, "...)
		} else {
			q = append(q, ", "...)
		}
		q = strconv.AppendInt(q, p.to, 10)
		if i == 0 {
			q = append(q, " AS t"...)
		}
	}
	return append(q, ") p"...)
}

// appendRecipients appends the pairs' recipients as a comma-separated
// list, each once; pairs must be sorted by recipient.
func appendRecipients(q []byte, pairs []fromTo) []byte {
	for i, p := range pairs {
		if i > 0 && p.to == pairs[i-1].to {
			continue
		}
		if i > 0 {
			q = append(q, ", "...)
		}
		q = strconv.AppendInt(q, p.to, 10)
	}
	return q
}

// checked is what a batch's checks read: the sorted uids of the
// recipients that exist, the pairs that are contacts and that are
// blocked, and the recipients' relations_seq.
type checked struct {
	present           []int64
	contacts, blocked map[fromTo]bool
	seqs              map[int64]int64
}

// refusal is checks for what c read.
func (c checked) refusal() func(*writeReq) error {
	return checks(c.present, c.contacts, c.blocked)
}

// readChecks reads lockAndCheck's rows.
func readChecks(rows *sql.Rows) (checked, error) {
	c := checked{contacts: map[fromTo]bool{}, blocked: map[fromTo]bool{}, seqs: map[int64]int64{}}
	for rows.Next() {
		var to, from, seq int64
		var isContact, isBlocked bool
		if err := rows.Scan(&to, &from, &isContact, &isBlocked, &seq); err != nil {
			return checked{}, fmt.Errorf("lock recipients: %w", err)
		}
		c.present = append(c.present, to)
		c.seqs[to] = seq
		if isContact {
			c.contacts[fromTo{from, to}] = true
		}
		if isBlocked {
			c.blocked[fromTo{from, to}] = true
		}
	}
	if err := rows.Err(); err != nil {
		return checked{}, fmt.Errorf("lock recipients: %w", err)
	}
	slices.Sort(c.present)
	c.present = slices.Compact(c.present)
	return c, nil
}

// readEarlierKeys returns the stored messages whose client_msg_ids the
// batch uses again, in one query; hexTexts says how it carries the keys
// (see appendText).
func readEarlierKeys(tx *gorm.DB, batch []*writeReq, hexTexts bool) (map[msgKey]Message, error) {
	var (
		cond []byte
		args []any
	)
	for _, r := range batch {
		// A server key is fresh: no earlier message can have it.
		if k := r.m.ClientMsgID; k != nil && !strings.HasPrefix(*k, serverKeyPrefix) {
			if cond == nil {
				cond = append(cond, "(from_uid, client_msg_id) IN ("...)
			} else {
				cond = append(cond, ", "...)
			}
			cond = strconv.AppendInt(append(cond, '('), r.m.FromUID, 10)
			cond, args = appendText(append(cond, ", "...), args, k, hexTexts)
			cond = append(cond, ')')
		}
	}
	earlier := map[msgKey]Message{}
	if cond == nil {
		return earlier, nil
	}
	// Said outright, for SQLite: its index on the keys is partial
	// (client_msg_id IS NOT NULL), and its planner does not infer that
	// from a row value's IN, so without it the lookup scans the table.
	cond = append(cond, ") AND client_msg_id IS NOT NULL"...)
	var found []Message
	if err := tx.Where(string(cond), args...).Find(&found).Error; err != nil {
		return nil, fmt.Errorf("read client_msg_ids: %w", err)
	}
	for _, m := range found {
		earlier[msgKey{m.FromUID, *m.ClientMsgID}] = m
	}
	return earlier, nil
}

// decideBatch settles each request from what was read: a replay of an
// earlier message takes that message's id and time, a repeat within the
// batch points at its first, one refusal refuses fails with its reason
// (see checks), and everything else becomes a row to insert, in arrival
// order.
func decideBatch(batch []*writeReq, earlier map[msgKey]Message, refusal func(*writeReq) error) ([]batchOutcome, []*Message) {
	outcome := make([]batchOutcome, len(batch))
	var rows []*Message
	firstInBatch := map[msgKey]int{}
	for i, r := range batch {
		outcome[i].firstOf = -1
		m := r.m
		if m.ClientMsgID != nil {
			k := msgKey{m.FromUID, *m.ClientMsgID}
			if first, ok := earlier[k]; ok {
				m.ID, m.CreatedAt = first.ID, first.CreatedAt
				outcome[i].replayed = true
				continue
			}
			if j, ok := firstInBatch[k]; ok {
				outcome[i].replayed, outcome[i].firstOf = true, j
				continue
			}
			firstInBatch[k] = i
		}
		if err := refusal(r); err != nil {
			outcome[i].err = err
			continue
		}
		m.ID = 0
		m.setPair()
		rows = append(rows, m)
	}
	return outcome, rows
}

// insertMessages stores rows in one multi-row INSERT and sets their ids.
// A multi-row INSERT of known length takes its ids in one go, in row
// order, step apart (MySQL's auto_increment_increment, 1 unless a cluster
// sets it), and MySQL reports the first row's id. The uids are written
// into the statement (integers: nothing to escape); the texts are
// placeholders or hex literals (see appendText).
func (s *Store) insertMessages(tx *gorm.DB, rows []*Message, step int64, hexTexts bool) error {
	if len(rows) == 0 {
		return nil
	}
	q, args, err := s.insertSQL(nil, nil, rows, hexTexts)
	if err != nil {
		return err
	}
	res, err := tx.Statement.ConnPool.ExecContext(tx.Statement.Context, string(q), args...)
	if err != nil {
		return fmt.Errorf("create messages: %w", err)
	}
	id, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("create messages: %w", err)
	}
	if step, err = s.idStep(tx, step); err != nil {
		return err
	}
	setIDs(rows, id, step)
	return nil
}

// appendInts appends ns to q as decimal literals parted by ", ".
func appendInts(q []byte, ns ...int64) []byte {
	for i, n := range ns {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = strconv.AppendInt(q, n, 10)
	}
	return q
}

// setIDs numbers rows from first, step apart.
func setIDs(rows []*Message, first, step int64) {
	for _, m := range rows {
		m.ID = first
		first += step
	}
}

// insertSQL appends insertMessages' statement to q, and its arguments to
// args (none when hexTexts: see appendText).
func (s *Store) insertSQL(q []byte, args []any, rows []*Message, hexTexts bool) ([]byte, []any, error) {
	table, err := s.table(&Message{})
	if err != nil {
		return nil, nil, err
	}
	q = slices.Grow(q, 128+64*len(rows))
	q = append(q, "INSERT INTO "...)
	q = append(q, table...)
	// A batch of plain messages, as nearly every one is, leaves enc,
	// kind, reply_to and file_id to their defaults: the server parses
	// and fills four values a row fewer.
	plain := !slices.ContainsFunc(rows, notPlain)
	if plain {
		q = append(q, " (from_uid, to_uid, body, created_at, client_msg_id, pair_lo, pair_hi) VALUES "...)
	} else {
		q = append(q, " (from_uid, to_uid, body, created_at, client_msg_id, pair_lo, pair_hi, enc, kind, reply_to, file_id) VALUES "...)
	}
	for i, m := range rows {
		if i > 0 {
			q = append(q, ", "...)
		}
		q = appendInts(append(q, '('), m.FromUID, m.ToUID)
		q, args = appendText(append(q, ", "...), args, &m.Body, hexTexts)
		q = strconv.AppendInt(append(q, ", "...), m.CreatedAt, 10)
		q, args = appendText(append(q, ", "...), args, m.ClientMsgID, hexTexts)
		q = appendInts(append(q, ", "...), m.PairLo, m.PairHi)
		if !plain {
			// enc, kind, reply_to and file_id are literals, as the ids
			// are: no argument, no escaping.
			q = append(append(q, ", "...), encLiteral(m.Enc), ',', ' ')
			q = appendInts(q, int64(m.Kind), m.ReplyTo, m.FileID)
		}
		q = append(q, ')')
	}
	return q, args, nil
}

// notPlain reports whether m sets any of enc, kind, reply_to and file_id,
// whose defaults (0) a plain message takes.
func notPlain(m *Message) bool {
	return m.Enc || m.Kind != 0 || m.ReplyTo != 0 || m.FileID != 0
}

// encLiteral is the SQL literal of a message's enc column.
func encLiteral(enc bool) byte {
	if enc {
		return '1'
	}
	return '0'
}

// appendText appends the text v (NULL when nil) to the statement q: as a
// placeholder, with v added to args, or, when hexTexts, as a MySQL hex
// literal of the UTF-8 text (_utf8mb4 X'…').
//
// A hex literal needs no escaping, and its introducer says its charset,
// so no connection charset can misread it: it is how a batch carries its
// texts on a MySQL connection whose character_set_client makes the
// driver's escaping unsafe (gbk, big5, sjis: see clientcharset), where a
// placeholder would be either escaped into SQL (interpolateParams) or
// converted from that charset (a server-side prepared statement, which a
// multi-statement batch cannot be anyway). It costs twice the text's
// bytes on the wire, so connections whose escaping is safe keep the
// placeholders.
func appendText(q []byte, args []any, v *string, hexTexts bool) ([]byte, []any) {
	switch {
	case !hexTexts && v == nil:
		return append(q, '?'), append(args, nil)
	case !hexTexts:
		return append(q, '?'), append(args, *v)
	case v == nil:
		return append(q, "NULL"...), args
	}
	q = append(q, "_utf8mb4 X'"...)
	q = hex.AppendEncode(q, []byte(*v))
	return append(q, '\''), args
}

// settleBatch hands each request its outcome once the batch committed.
func settleBatch(batch []*writeReq, outcome []batchOutcome) {
	for i, r := range batch {
		o := outcome[i]
		if j := o.firstOf; j >= 0 {
			// A repeat within the batch shares its first's fate.
			if outcome[j].err != nil {
				o.replayed, o.err = false, outcome[j].err
			} else {
				r.m.ID, r.m.CreatedAt = batch[j].m.ID, batch[j].m.CreatedAt
			}
		}
		r.replayed, r.err = o.replayed, o.err
	}
}

// Stats reports how many batches have committed and how many Sends they
// answered: written/batches is the mean batch size.
func (w *MessageWriter) Stats() (batches, written int64) {
	return w.batches.Load(), w.written.Load()
}
