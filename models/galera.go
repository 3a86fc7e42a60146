package models

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"gorm.io/gorm"
)

// On a MariaDB Galera cluster every node takes writes, and what orders
// two transactions made on different nodes is certification: the one
// whose writeset comes second in the cluster's total order, and that
// wrote a row the first wrote, is rolled back (1213) and run again. A
// locking read (SELECT … FOR UPDATE) is not replicated, so the recipient
// locks that order a user's messages on one server order nothing across
// nodes: a message could commit on node B with an id below one a reader
// had already passed on node A. So on Galera every transaction that
// stores messages also writes its recipients' user rows (bumpMailboxes),
// and two Sends to one user then either run one after the other on one
// node, or the later one to certify is rolled back and takes a new id,
// above every id the other could have handed out: a user's messages
// commit in id order on every node, and a cursor never skips one. The
// contact, block and read transactions, which take the same user locks
// (lockUsers), write the rows too, so a block made on one node and a
// Send made on another are ordered as on one server.
// docs/scaling.md says why this rather than one writing node.

// galeraUnknown, galeraNo and galeraYes are the states of Store.wsrep.
const (
	galeraUnknown int32 = iota
	galeraNo
	galeraYes
)

// onGalera reports whether the database is a node of a Galera cluster
// (wsrep_on), asked once. A question the database did not answer is
// asked again next time, and counts as yes meanwhile: the Galera path
// costs a plain server an UPDATE, and the other path costs a cluster its
// order.
func (s *Store) onGalera(ctx context.Context) bool {
	switch s.wsrep.Load() {
	case galeraNo:
		return false
	case galeraYes:
		return true
	}
	if !s.mysql() {
		s.wsrep.Store(galeraNo)
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	// Asked on the pool itself, past GORM: it is the store's set-up,
	// once, not one of its queries (the host's callbacks and logger do
	// not see it). SHOW VARIABLES finds no row on a MySQL without wsrep,
	// where SELECT @@wsrep_on would fail.
	const q = "SHOW VARIABLES LIKE 'wsrep_on'"
	var name, value string
	var err error
	if pool, perr := s.db.DB(); perr == nil {
		err = pool.QueryRowContext(ctx, q).Scan(&name, &value)
	} else { // a host's pool that is not database/sql's
		err = s.db.WithContext(ctx).Raw(q).Row().Scan(&name, &value)
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
		s.wsrep.Store(galeraNo)
		return false
	case err != nil:
		return true
	case value == "ON":
		s.wsrep.Store(galeraYes)
		return true
	}
	s.wsrep.Store(galeraNo)
	return false
}

// bumpMailboxes writes the user rows of uids (see the top of this file),
// in uid order, on a Galera cluster; elsewhere it does nothing.
func (s *Store) bumpMailboxes(tx *gorm.DB, uids []int64) error {
	if len(uids) == 0 || !s.onGalera(tx.Statement.Context) {
		return nil
	}
	q, err := s.bumpSQL(nil, "mailbox_seq", uids)
	if err != nil {
		return err
	}
	if err := tx.Exec(string(q)).Error; err != nil {
		return fmt.Errorf("bump mailboxes: %w", err)
	}
	return nil
}

// bumpSQL appends to q the statement that adds one to column (one of
// users' counters: mailbox_seq, relations_seq) of each of uids, in uid
// order on MySQL/MariaDB (SQLite's UPDATE takes no ORDER BY, and needs
// none, with one writer); the uids are integer literals (nothing to
// escape).
func (s *Store) bumpSQL(q []byte, column string, uids []int64) ([]byte, error) {
	users, err := s.table(&User{})
	if err != nil {
		return nil, err
	}
	uids = slices.Clone(uids)
	slices.Sort(uids)
	uids = slices.Compact(uids)
	q = append(q, "UPDATE "...)
	q = append(q, users...)
	q = append(q, " SET "+column+" = "+column+" + 1 WHERE uid IN ("...)
	q = append(appendInts(q, uids...), ')')
	if s.mysql() {
		q = append(q, " ORDER BY uid"...)
	}
	return q, nil
}

// idStep returns how far apart the ids of one multi-row INSERT just run
// in tx are: the session's auto_increment_increment, which Galera sets
// to the cluster's size and changes as nodes leave and join, so it is
// read after the INSERT rather than remembered. Elsewhere it is known:
// step.
func (s *Store) idStep(tx *gorm.DB, step int64) (int64, error) {
	if !s.mysql() || !s.onGalera(tx.Statement.Context) {
		return step, nil
	}
	var n int64
	if err := tx.Raw("SELECT @@auto_increment_increment").Row().Scan(&n); err != nil {
		return 0, fmt.Errorf("read auto_increment_increment: %w", err)
	}
	return max(n, 1), nil
}

// retryPause waits a little before a transaction that lost a deadlock or
// Galera's certification runs again, so that two victims do not meet
// again at once; false if ctx ended first. The pause grows with the
// attempt, to 50 ms at most.
func retryPause(ctx context.Context, attempt int) bool {
	pause := time.Duration(min(attempt, 10))*5*time.Millisecond + rand.N(10*time.Millisecond)
	t := time.NewTimer(pause)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
