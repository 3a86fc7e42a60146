package models

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"slices"
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
// The batch keeps every promise CreateMessage makes, contacts-only
// included: one query checks every pair of the batch under the locks. Recipients are
// locked in uid order before the INSERT, so ids per recipient still
// commit in order and a reader's cursor never skips one; messages of one
// batch get ids in arrival order, so a sender's messages keep their
// order; a client_msg_id seen before, in the table or earlier in the
// batch, stores nothing and answers with the first message's id.
//
// Start runs a fixed number of writer goroutines, each committing one
// batch at a time; batches grow by themselves under load (what queues
// during a commit forms the next batch), and a lone Send waits for no
// timer. Several writers overlap one batch's round trips and fsync with
// the next batch's, which pays on a networked database; batches of
// different writers that share a recipient still run one after the other,
// on the recipient's lock.
//
// A batch that fails as a whole is run again message by message, and its
// COMMIT may have failed after the server committed (the connection went
// between the two). So every message carries an idempotency key: the
// client's client_msg_id or, when it sent none, one of the server's own
// (see serverKey), and the retry of a message already stored stores
// nothing and answers with its id. A server key costs each message 23
// bytes in its row and in the (from_uid, client_msg_id) unique index
// (which otherwise holds a NULL), and no query: a fresh key cannot have
// been used, so the batch looks up only clients' keys. The batch stays one
// multi-row INSERT.
type MessageWriter struct {
	store    *Store
	maxBatch int
	reqs     chan *writeReq
	done     chan struct{}
	running  sync.WaitGroup

	batches, written atomic.Int64

	// OnCommit, when set, is called after each batch that committed as
	// one, with its size and how long its transaction took (retries of a
	// deadlock included), on the goroutine that committed it: the
	// module's metrics, which this package does not import. Set it before
	// Start.
	OnCommit func(size int, took time.Duration)
}

type writeReq struct {
	m            *Message
	contactsOnly bool
	replayed     bool
	err          error
	ready        chan struct{}
	// triedID is the id the last batch attempt inserted the message
	// under, 0 if it inserted none: a retry that finds the message stored
	// under that id finds the batch's own row, not an earlier Send's.
	triedID int64
}

// NewMessageWriter returns a writer storing up to maxBatch messages per
// transaction. Start must have been called for writes to be batched.
func NewMessageWriter(store *Store, maxBatch int) *MessageWriter {
	if maxBatch < 1 {
		maxBatch = 1
	}
	return &MessageWriter{
		store:    store,
		maxBatch: maxBatch,
		reqs:     make(chan *writeReq),
		done:     make(chan struct{}),
	}
}

// CreateMessage stores m (see Store.CreateMessage for what it returns),
// in the next batch. After Stop it stores m in a transaction of its own.
//
// It waits at most twice the query timeout (for a writer, then for its
// batch) and then fails as the database being unavailable: database/sql
// sends COMMIT without a context, so a database that stops answering
// mid-COMMIT would hold a writer, and every Send queued behind it, for as
// long as the connection lives. Such a message may still commit later,
// once; its sender was told to retry.
func (w *MessageWriter) CreateMessage(ctx context.Context, m *Message, contactsOnly bool) (bool, error) {
	// The writer works on a copy, so a Send that stopped waiting shares
	// nothing with it; the copy carries the idempotency key, which is the
	// store's business and never reaches the caller.
	mc := *m
	if mc.ClientMsgID == nil {
		key, err := serverKey()
		if err != nil {
			return false, err
		}
		mc.ClientMsgID = &key
	}
	r := &writeReq{m: &mc, contactsOnly: contactsOnly, ready: make(chan struct{})}
	wait := time.NewTimer(2 * w.store.timeout)
	defer wait.Stop()
	select {
	case w.reqs <- r:
	case <-w.done:
		return w.store.CreateMessage(ctx, m, contactsOnly)
	case <-ctx.Done():
		return false, ctx.Err()
	case <-wait.C:
		return false, fmt.Errorf("wait for a message writer: %w", context.DeadlineExceeded)
	}
	// Once handed over, the message may commit whatever the caller does,
	// so the answer is awaited even if the client has gone.
	select {
	case <-r.ready:
	case <-wait.C:
		return false, fmt.Errorf("wait for the group commit: %w", context.DeadlineExceeded)
	}
	key := m.ClientMsgID
	*m = mc
	m.ClientMsgID = key
	return r.replayed, r.err
}

// Start runs n writer goroutines until Stop; Write needs them to batch.
func (w *MessageWriter) Start(n int) {
	for range max(n, 1) {
		w.running.Add(1)
		go w.run()
	}
}

// run commits batches until Stop. The channel is unbuffered: every
// request a writer takes, it answers.
func (w *MessageWriter) run() {
	defer w.running.Done()
	batch := make([]*writeReq, 0, w.maxBatch)
	for {
		select {
		case r := <-w.reqs:
			batch = append(batch[:0], r)
		case <-w.done:
			return
		}
	collect:
		for len(batch) < w.maxBatch {
			select {
			case r := <-w.reqs:
				batch = append(batch, r)
			default:
				break collect
			}
		}
		w.commit(batch)
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
}

// commit stores a batch, falling back to one transaction per message
// when the batch as a whole fails (a duplicate key raced in from another
// process, deadlocks outlasting the retries, or a COMMIT whose answer was
// lost), so one message's trouble never fails the others. The idempotency
// keys make the fallback safe after a COMMIT that did commit: it finds the
// batch's rows and stores nothing again.
//
// The batch and its fallback share one query timeout, so a Send waits at
// most that long once its batch starts. Past the deadline nothing is run
// again: database/sql commits only before the deadline, so what failed
// by it was rolled back, and a stuck database would make each message wait
// its own timeout in turn.
func (w *MessageWriter) commit(batch []*writeReq) {
	ctx, cancel := context.WithTimeout(context.Background(), w.store.timeout)
	defer cancel()
	var err error
	start := time.Now()
	for attempt := 1; attempt <= sendAttempts; attempt++ {
		if err = w.store.createBatch(ctx, batch); err == nil || !isDeadlock(err) {
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
			close(r.ready)
		}
		return
	}
	for _, r := range batch {
		if ctx.Err() != nil {
			r.err = fmt.Errorf("create messages: %w", err)
			close(r.ready)
			continue
		}
		r.m.ID = 0
		r.replayed, r.err = w.store.CreateMessage(ctx, r.m, r.contactsOnly)
		if r.replayed && r.triedID != 0 && r.m.ID == r.triedID {
			// The batch did commit: this is the message's first answer.
			r.replayed = false
		}
		close(r.ready)
	}
}

// serverKeyPrefix starts every idempotency key the server makes. It is a
// control character, which a client's client_msg_id may not contain
// (API.md), so a server key never collides with a client's, and Send's
// lookup of a client's key never finds one.
const serverKeyPrefix = "\x01"

// serverKey returns a fresh idempotency key for a message sent without a
// client_msg_id: the prefix and 128 random bits, 23 bytes in all.
func serverKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("idempotency key: %w", err)
	}
	return serverKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:]), nil
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

// createBatch is the batch transaction. On success every request holds its
// outcome; on error nothing was stored and the requests are untouched but
// for fields the caller resets.
func (s *Store) createBatch(ctx context.Context, batch []*writeReq) error {
	db, done := s.with(ctx)
	defer done()
	var outcome []batchOutcome
	err := db.Transaction(func(tx *gorm.DB) error {
		// Decided afresh on every attempt: a retried transaction must not
		// keep what a rolled-back one decided.
		for _, r := range batch {
			r.triedID = 0
		}
		present, err := lockRecipients(tx, batch)
		if err != nil {
			return err
		}
		earlier, err := readEarlierKeys(tx, batch)
		if err != nil {
			return err
		}
		contacts, err := readBatchContacts(tx, batch)
		if err != nil {
			return err
		}
		blocked, err := readBatchBlocks(tx, batch)
		if err != nil {
			return err
		}
		var rows []*Message
		outcome, rows = decideBatch(batch, present, earlier, contacts, blocked)
		if err := insertMessages(tx, rows); err != nil {
			return err
		}
		for i, r := range batch {
			if o := outcome[i]; o.err == nil && !o.replayed {
				r.triedID = r.m.ID
			}
		}
		return s.countStored(tx, rows)
	})
	if err != nil {
		return err
	}
	settleBatch(batch, outcome)
	return nil
}

// lockRecipients locks every recipient of the batch, in uid order so that
// batches in several processes cannot deadlock on them, and returns the
// sorted uids of those that exist.
func lockRecipients(tx *gorm.DB, batch []*writeReq) ([]int64, error) {
	to := make([]int64, 0, len(batch))
	for _, r := range batch {
		to = append(to, r.m.ToUID)
	}
	present, err := lockUIDs(tx, to)
	if err != nil {
		return nil, fmt.Errorf("lock recipients: %w", err)
	}
	return present, nil
}

// readEarlierKeys returns the stored messages whose client_msg_ids the
// batch uses again, in one query.
func readEarlierKeys(tx *gorm.DB, batch []*writeReq) (map[msgKey]Message, error) {
	var pairs [][]any
	for _, r := range batch {
		// A server key is fresh: no earlier message can have it.
		if k := r.m.ClientMsgID; k != nil && !strings.HasPrefix(*k, serverKeyPrefix) {
			pairs = append(pairs, []any{r.m.FromUID, *k})
		}
	}
	earlier := map[msgKey]Message{}
	if len(pairs) == 0 {
		return earlier, nil
	}
	var found []Message
	if err := tx.Where("(from_uid, client_msg_id) IN ?", pairs).Find(&found).Error; err != nil {
		return nil, fmt.Errorf("read client_msg_ids: %w", err)
	}
	for _, m := range found {
		earlier[msgKey{m.FromUID, *m.ClientMsgID}] = m
	}
	return earlier, nil
}

// readBatchContacts returns which of the contacts-only requests' pairs
// are contacts, in one query, under the recipients' locks.
func readBatchContacts(tx *gorm.DB, batch []*writeReq) (map[fromTo]bool, error) {
	var asked [][]any
	for _, r := range batch {
		if r.contactsOnly {
			asked = append(asked, []any{r.m.FromUID, r.m.ToUID})
		}
	}
	contacts := map[fromTo]bool{}
	if len(asked) == 0 {
		return contacts, nil
	}
	var found []Contact
	if err := tx.Where("(uid, peer_uid) IN ?", asked).Find(&found).Error; err != nil {
		return nil, fmt.Errorf("read contacts: %w", err)
	}
	for _, c := range found {
		contacts[fromTo{c.UID, c.PeerUID}] = true
	}
	return contacts, nil
}

// readBatchBlocks returns which pairs of the requests that may message
// strangers are blocked either way, in one query, under the recipients'
// locks. A contacts-only request needs no such check: a block ends the
// contact, and no contact can be made across one.
func readBatchBlocks(tx *gorm.DB, batch []*writeReq) (map[fromTo]bool, error) {
	var pairs []fromTo
	for _, r := range batch {
		if !r.contactsOnly {
			pairs = append(pairs, fromTo{r.m.FromUID, r.m.ToUID})
		}
	}
	return blockedPairs(tx, pairs)
}

// decideBatch settles each request from what was read: a replay of an
// earlier message takes that message's id and time, a repeat within the
// batch points at its first, a missing recipient, a stranger or a block
// fails, and everything else becomes a row to insert, in arrival order.
func decideBatch(batch []*writeReq, present []int64, earlier map[msgKey]Message, contacts, blocked map[fromTo]bool) ([]batchOutcome, []*Message) {
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
		if _, ok := slices.BinarySearch(present, m.ToUID); !ok {
			outcome[i].err = ErrNotFound
			continue
		}
		if r.contactsOnly && !contacts[fromTo{m.FromUID, m.ToUID}] {
			outcome[i].err = ErrNotContact
			continue
		}
		if blocked[fromTo{m.FromUID, m.ToUID}] {
			outcome[i].err = ErrBlocked
			continue
		}
		m.ID = 0
		m.setPair()
		rows = append(rows, m)
	}
	return outcome, rows
}

// insertMessages stores rows in one multi-row INSERT; ids come back in
// row order.
func insertMessages(tx *gorm.DB, rows []*Message) error {
	if len(rows) == 0 {
		return nil
	}
	if err := tx.Create(rows).Error; err != nil {
		return fmt.Errorf("create messages: %w", err)
	}
	return nil
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
