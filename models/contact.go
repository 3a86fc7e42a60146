package models

import (
	"context"
	"database/sql"
	"fmt"
	"slices"

	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// Contact is one direction of a mutual contact: both (a,b) and (b,a) are
// stored, so each user's list is one primary-key range.
//
// A host that writes contacts or blocks itself, rather than through the
// API, bumps both users' relations_seq in the same transaction (UPDATE
// users SET relations_seq = relations_seq + 1 WHERE uid IN (a, b)):
// message batches on MySQL/MariaDB go on using what they read of a pair
// until it moves (see relationsCache).
type Contact struct {
	UID       int64 `gorm:"column:uid;primaryKey;autoIncrement:false"`
	PeerUID   int64 `gorm:"column:peer_uid;primaryKey;autoIncrement:false;index"`
	CreatedAt int64 `gorm:"not null;autoCreateTime:false"`
}

// ContactRequest is a pending request from FromUID to ToUID. Accepting or
// refusing it deletes the row, so a refused requester may ask again.
type ContactRequest struct {
	FromUID   int64 `gorm:"column:from_uid;primaryKey;autoIncrement:false"`
	ToUID     int64 `gorm:"column:to_uid;primaryKey;autoIncrement:false"`
	CreatedAt int64 `gorm:"not null;autoCreateTime:false"`
}

// Profile is the public part of a user, as the contacts group shows it.
type Profile struct {
	UID     int64  `gorm:"column:uid"`
	Name    string `gorm:"column:name"`
	HeadImg string `gorm:"column:head_img"`
	Handle  string `gorm:"column:handle"` // "" for none
}

// handleColumn reads a user's handle with "" for none, so profiles scan
// into plain strings.
const handleColumn = "COALESCE(handle, '') AS handle"

// profileColumns are a Profile's columns of a users table aliased u.
const profileColumns = "u.uid, u.name, u.head_img, COALESCE(u.handle, '') AS handle"

// IncomingRequest is a pending request to a user, with its sender's
// profile and the time it was made.
type IncomingRequest struct {
	Profile
	CreatedAt int64 `gorm:"column:created_at"`
}

// AddStatus is what addContacts did about one uid (API.md §4).
type AddStatus string

// The addContacts statuses.
const (
	AddRequested      AddStatus = "requested"       // a new pending request was made
	AddPending        AddStatus = "pending"         // my request was already waiting
	AddAccepted       AddStatus = "accepted"        // they had asked me: now contacts
	AddAlreadyContact AddStatus = "already_contact" // nothing to do
	AddNotFound       AddStatus = "not_found"       // no such user
	AddSelf           AddStatus = "self"            // my own uid
)

// AddResult is the outcome of addContacts for one requested uid.
type AddResult struct {
	UID    int64
	Status AddStatus
}

// Contacts returns the profiles of uid's contacts ordered by uid, in one
// join along the contacts primary key.
func (s *Store) Contacts(ctx context.Context, uid int64) ([]Profile, error) {
	db, done := s.with(ctx)
	defer done()
	contacts, users, err := s.tables(&Contact{}, &User{})
	if err != nil {
		return nil, err
	}
	var out []Profile
	err = db.Table(contacts+" AS c").
		Select(profileColumns).
		Joins("JOIN "+users+" AS u ON u.uid = c.peer_uid").
		Where("c.uid = ?", uid).
		Order("c.peer_uid").
		Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list contacts: %w", err)
	}
	return out, nil
}

// Profiles returns the profiles of those uids that exist, in the order of
// uids, each user once (at its first place): a list showing the same user
// twice serves no client.
func (s *Store) Profiles(ctx context.Context, uids []int64) ([]Profile, error) {
	db, done := s.with(ctx)
	defer done()
	var rows []Profile
	err := db.Model(&User{}).Select("uid, name, head_img, "+handleColumn).
		Where("uid IN ?", uids).Find(&rows).Error
	if err != nil {
		return nil, fmt.Errorf("load profiles: %w", err)
	}
	byUID := make(map[int64]Profile, len(rows))
	for _, p := range rows {
		byUID[p.UID] = p
	}
	out := make([]Profile, 0, len(rows))
	for _, uid := range uids {
		if p, ok := byUID[uid]; ok {
			out = append(out, p)
			delete(byUID, uid)
		}
	}
	return out, nil
}

// IncomingRequests returns the pending requests to uid, oldest first (ties
// by sender uid), with each sender's profile, in one join along the
// (to_uid, created_at) index.
func (s *Store) IncomingRequests(ctx context.Context, uid int64) ([]IncomingRequest, error) {
	db, done := s.with(ctx)
	defer done()
	requests, users, err := s.tables(&ContactRequest{}, &User{})
	if err != nil {
		return nil, err
	}
	var out []IncomingRequest
	err = db.Table(requests+" AS r").
		Select(profileColumns+", r.created_at").
		Joins("JOIN "+users+" AS u ON u.uid = r.from_uid").
		Where("r.to_uid = ?", uid).
		Order("r.created_at, r.from_uid").
		Find(&out).Error
	if err != nil {
		return nil, fmt.Errorf("list contact requests: %w", err)
	}
	return out, nil
}

// AddContacts asks each of peers to become me's contact and reports, in
// the order of peers, what happened (see AddStatus). A uid given twice is
// answered as if sent in two requests one after the other: the second
// occurrence of a uid that was just requested reports pending, of one just
// accepted already_contact, anything else the same status again.
//
// However many peers there are, it costs a fixed number of statements: one
// lock, two reads, and at most three batched writes.
func (s *Store) AddContacts(ctx context.Context, me int64, peers []int64, now int64) ([]AddResult, error) {
	var results []AddResult
	err := s.contactTx(ctx, func(tx *gorm.DB) error {
		locked, err := s.lockRelations(tx, me, peers)
		if err != nil {
			return err
		}
		rel, err := readRelations(tx, me, locked)
		if err != nil {
			return err
		}
		// Results are rebuilt on every attempt: a retried transaction must
		// not keep what a rolled-back one decided.
		var plan addPlan
		results, plan = decideAdds(me, peers, rel, now)
		return applyAdds(tx, me, plan, now)
	})
	if err != nil {
		return nil, err
	}
	return results, nil
}

// relations is what stands between me and the locked users.
type relations struct {
	exists    map[int64]bool // the uid is a user (me included)
	isContact map[int64]bool
	incoming  map[int64]bool // they asked me
	outgoing  map[int64]bool // I asked them
}

// readRelations reads, in three queries, how me stands with each of the
// locked users. A user who blocks me, or whom I block, is as good as
// absent: addContacts answers not_found for them (API.md §9).
func readRelations(tx *gorm.DB, me int64, locked []int64) (relations, error) {
	rel := relations{
		exists:    make(map[int64]bool, len(locked)),
		isContact: map[int64]bool{},
		incoming:  map[int64]bool{},
		outgoing:  map[int64]bool{},
	}
	others := make([]int64, 0, len(locked))
	for _, uid := range locked {
		rel.exists[uid] = true
		if uid != me {
			others = append(others, uid)
		}
	}
	if len(others) == 0 {
		return rel, nil
	}
	blocked, err := blockedAmong(tx, me, others)
	if err != nil {
		return rel, err
	}
	for uid := range blocked {
		delete(rel.exists, uid)
	}
	var contactPeers []int64
	if err := tx.Model(&Contact{}).Where("uid = ? AND peer_uid IN ?", me, others).
		Pluck("peer_uid", &contactPeers).Error; err != nil {
		return rel, fmt.Errorf("read contacts: %w", err)
	}
	for _, p := range contactPeers {
		rel.isContact[p] = true
	}
	var reqs []ContactRequest
	if err := tx.Where("(from_uid = ? AND to_uid IN ?) OR (from_uid IN ? AND to_uid = ?)", me, others, others, me).
		Find(&reqs).Error; err != nil {
		return rel, fmt.Errorf("read contact requests: %w", err)
	}
	for _, r := range reqs {
		if r.FromUID == me {
			rel.outgoing[r.ToUID] = true
		} else {
			rel.incoming[r.FromUID] = true
		}
	}
	return rel, nil
}

// addPlan is the writes AddContacts decided on.
type addPlan struct {
	newRequests []ContactRequest
	accepted    []int64 // peers whose request to me becomes a contact
}

// decideAdds gives each of peers, in order, its status, and collects the
// writes that follow; a uid given again is answered as by a second request
// after the first.
func decideAdds(me int64, peers []int64, rel relations, now int64) ([]AddResult, addPlan) {
	results := make([]AddResult, 0, len(peers))
	var plan addPlan
	seen := map[int64]AddStatus{}
	for _, uid := range peers {
		var st AddStatus
		prev, again := seen[uid]
		switch {
		case uid == me:
			st = AddSelf
		case !rel.exists[uid]:
			st = AddNotFound
		case again && prev == AddRequested:
			st = AddPending
		case again && prev == AddAccepted:
			st = AddAlreadyContact
		case again:
			st = prev
		case rel.isContact[uid]:
			st = AddAlreadyContact
		case rel.incoming[uid]:
			st = AddAccepted
			plan.accepted = append(plan.accepted, uid)
		case rel.outgoing[uid]:
			st = AddPending
		default:
			st = AddRequested
			plan.newRequests = append(plan.newRequests, ContactRequest{FromUID: me, ToUID: uid, CreatedAt: now})
		}
		seen[uid] = st
		results = append(results, AddResult{UID: uid, Status: st})
	}
	return results, plan
}

// applyAdds makes the new requests and the accepted contacts, in at most
// three batched statements.
func applyAdds(tx *gorm.DB, me int64, plan addPlan, now int64) error {
	if len(plan.newRequests) > 0 {
		// The locks make a duplicate impossible; DoNothing is the
		// primary key's second line of defence, not the first.
		if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&plan.newRequests).Error; err != nil {
			return fmt.Errorf("create contact requests: %w", err)
		}
	}
	if len(plan.accepted) > 0 {
		return connect(tx, me, plan.accepted, now)
	}
	return nil
}

// errNoPendingRequest is AnswerRequest's ErrNotFound.
var errNoPendingRequest = ErrNotFound.WithMsg("no pending request from uid_from")

// AnswerRequest accepts (making the two contacts) or refuses the pending
// request from `from` to me, deleting it either way, so a refused
// requester may ask again. ErrNotFound if no such request is pending,
// which is also what the loser of two concurrent answers gets; ErrUserGone
// if me no longer exists.
func (s *Store) AnswerRequest(ctx context.Context, me, from int64, accept bool, now int64) error {
	return s.contactTx(ctx, func(tx *gorm.DB) error {
		if _, err := s.lockRelations(tx, me, []int64{from}); err != nil {
			return err
		}
		res := tx.Where("from_uid = ? AND to_uid = ?", from, me).Delete(&ContactRequest{})
		if res.Error != nil {
			return fmt.Errorf("delete contact request: %w", res.Error)
		}
		if res.RowsAffected == 0 {
			return errNoPendingRequest
		}
		if !accept {
			return nil
		}
		return connect(tx, me, []int64{from}, now)
	})
}

// DeleteContacts ends me's contact with each of peers, both directions,
// and returns the peers whose contact ended. Uids that are not contacts
// (or not users) are passed over. Pending requests are left alone: none
// can exist between contacts, since addContacts never makes one for a
// contact and accepting deletes them in the same transaction.
func (s *Store) DeleteContacts(ctx context.Context, me int64, peers []int64) ([]int64, error) {
	var removed []int64
	err := s.contactTx(ctx, func(tx *gorm.DB) error {
		if _, err := s.lockRelations(tx, me, peers); err != nil {
			return err
		}
		removed = removed[:0]
		if err := tx.Model(&Contact{}).Where("uid = ? AND peer_uid IN ?", me, peers).
			Order("peer_uid").Pluck("peer_uid", &removed).Error; err != nil {
			return fmt.Errorf("read contacts: %w", err)
		}
		if len(removed) == 0 {
			return nil
		}
		if err := tx.Where("(uid = ? AND peer_uid IN ?) OR (uid IN ? AND peer_uid = ?)", me, removed, removed, me).
			Delete(&Contact{}).Error; err != nil {
			return fmt.Errorf("delete contacts: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return removed, nil
}

// connect makes me and each of peers contacts, both directions, and
// deletes the pending requests between them (both ways, should an old
// one linger), all in the caller's transaction.
func connect(tx *gorm.DB, me int64, peers []int64, now int64) error {
	if err := tx.Where("(from_uid IN ? AND to_uid = ?) OR (from_uid = ? AND to_uid IN ?)", peers, me, me, peers).
		Delete(&ContactRequest{}).Error; err != nil {
		return fmt.Errorf("delete contact requests: %w", err)
	}
	rows := make([]Contact, 0, 2*len(peers))
	for _, p := range peers {
		rows = append(rows, Contact{UID: me, PeerUID: p, CreatedAt: now}, Contact{UID: p, PeerUID: me, CreatedAt: now})
	}
	if err := tx.Clauses(clause.OnConflict{DoNothing: true}).Create(&rows).Error; err != nil {
		return fmt.Errorf("create contacts: %w", err)
	}
	return nil
}

// lockUsers locks the rows of me and of those peers that exist, in uid
// order, in one statement, and returns their uids. Every transaction that
// changes contacts or requests starts here, so two of them touching the
// same pair of users run one after the other (A adding B while B adds A
// ends as one mutual contact, not two crossed requests), and taking the
// locks in one global order means they cannot deadlock on them. ErrUserGone
// if me itself is gone (the host deleted the user mid-session).
//
// SQLite ignores FOR UPDATE; it needs no row locks, as it admits one
// writer at a time. On a Galera cluster, where a lock taken on one node
// orders nothing on another, the rows are written too (bumpMailboxes),
// so that such a transaction and a Send to the same users on another
// node are ordered by certification, as the locks order them on one
// server.
func (s *Store) lockUsers(tx *gorm.DB, me int64, peers []int64) ([]int64, error) {
	locked, err := lockUIDs(tx, append([]int64{me}, peers...))
	if err != nil {
		return nil, fmt.Errorf("lock users: %w", err)
	}
	if err := s.bumpMailboxes(tx, locked); err != nil {
		return nil, err
	}
	if _, ok := slices.BinarySearch(locked, me); !ok {
		return nil, ErrUserGone
	}
	return locked, nil
}

// lockRelations is lockUsers for a transaction that may make or end
// contacts or blocks between me and peers: it also bumps the
// relations_seq of every user it locked, so that no message batch takes
// what it checked of their pairs before as still true (see
// relationsCache). Bumping those that end up unchanged costs a batch only
// a fresh check.
func (s *Store) lockRelations(tx *gorm.DB, me int64, peers []int64) ([]int64, error) {
	locked, err := s.lockUsers(tx, me, peers)
	if err != nil {
		return nil, err
	}
	q, err := s.bumpSQL(nil, "relations_seq", locked)
	if err != nil {
		return nil, err
	}
	if err := tx.Exec(string(q)).Error; err != nil {
		return nil, fmt.Errorf("bump relations: %w", err)
	}
	return locked, nil
}

// lockUIDs locks the user rows of uids (sorted and deduplicated in place)
// in uid order, in one statement, and returns the sorted uids of those
// that exist. Every transaction that takes user locks takes them through
// here, in the one global order, so no two of them can deadlock on them.
func lockUIDs(tx *gorm.DB, uids []int64) ([]int64, error) {
	slices.Sort(uids)
	uids = slices.Compact(uids)
	var locked []int64
	err := tx.Model(&User{}).Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
		Where("uid IN ?", uids).Order("uid").Pluck("uid", &locked).Error
	return locked, err
}

// contactTx runs fn in a transaction, retrying it when MySQL/MariaDB
// breaks a deadlock by rolling it back (nothing of it was written, so
// running it again is safe; fn must not keep state from a failed attempt).
//
// On MySQL/MariaDB it runs at READ COMMITTED: after lockUsers has waited
// for another transaction on the same users, fn's plain reads must see
// what that one committed, and searches for absent keys take no gap
// locks, which under REPEATABLE READ would block unrelated users' inserts
// and could deadlock transactions on disjoint pairs.
func (s *Store) contactTx(ctx context.Context, fn func(tx *gorm.DB) error) error {
	db, done := s.with(ctx)
	defer done()
	var opts []*sql.TxOptions
	if s.db.Dialector.Name() == "mysql" {
		opts = append(opts, &sql.TxOptions{Isolation: sql.LevelReadCommitted})
	}
	// A deadlock victim, or a transaction Galera's certification rolled
	// back, wrote nothing: it runs again until the deadline.
	for attempt := 1; ; attempt++ {
		err := db.Transaction(fn, opts...)
		if err == nil || !isDeadlock(err) {
			return err
		}
		if !retryPause(db.Statement.Context, attempt) {
			return err
		}
	}
}

// tables returns the table names (prefix included) of two models, for
// queries that join them in SQL text.
func (s *Store) tables(a, b any) (string, string, error) {
	ta, err := s.table(a)
	if err != nil {
		return "", "", err
	}
	tb, err := s.table(b)
	return ta, tb, err
}

// table returns a model's table name, prefix included, for SQL text.
func (s *Store) table(model any) (string, error) {
	stmt := &gorm.Statement{DB: s.db}
	if err := stmt.Parse(model); err != nil {
		return "", fmt.Errorf("table of %T: %w", model, err)
	}
	return stmt.Schema.Table, nil
}
