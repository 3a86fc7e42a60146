package models

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"gorm.io/gorm"
	"gorm.io/gorm/clause"
)

// The store's failures are apierr values, declared here once with the
// code and status a client gets for them, so that a handler returns what
// the store returned. A call that has a more precise message for one
// returns a form of it (apierr.Error.WithMsg), which errors.Is still
// matches against the sentinel.
var (
	// ErrNotFound is returned when the row asked for does not exist: 404/1006.
	ErrNotFound = apierr.NotFound("not found")

	// ErrUserGone is returned when the caller's own user, the one its
	// session belongs to, no longer exists (the host deleted it
	// mid-session), as opposed to ErrNotFound for anything else missing,
	// such as a recipient. To the client it is a dead session: 401/1004.
	ErrUserGone = apierr.ErrBadToken.WithMsg(apierr.ErrBadToken.Msg)

	// ErrSessionGone is returned when the caller's own session no longer
	// exists (logged out, or expired and swept): 401/1004.
	ErrSessionGone = apierr.ErrBadToken.WithMsg(apierr.ErrBadToken.Msg)

	// ErrPasswordChanged is returned when a login would open a session
	// with a password that was changed since it was checked: to the
	// client, a wrong password, which it now is.
	ErrPasswordChanged = apierr.ErrBadLogin.WithMsg(apierr.ErrBadLogin.Msg)

	// ErrDuplicate is returned when a unique key is already taken: 409/1007.
	ErrDuplicate = apierr.New(apierr.CodeConflict, http.StatusConflict, "already exists")
)

// DefaultQueryTimeout is how long a store call may take when NewStore is
// given no timeout of its own (module.Config.QueryTimeout's default).
const DefaultQueryTimeout = 5 * time.Second

// Store runs fiberchat's queries on the module's own *gorm.DB (the host's
// connection pool with the module's table prefix). Every call has a
// deadline, so a database that stops answering without refusing
// connections fails calls with context.DeadlineExceeded (Unavailable)
// instead of holding them, and their callers, for minutes.
type Store struct {
	db      *gorm.DB
	timeout time.Duration
	// recvQuery and unreadQuery are MessagesFor's and Unread's statement
	// texts, made once (see recvSQL, unreadSQL).
	recvQuery, unreadQuery func() (string, error)
	// lite holds the batch's statements on SQLite once prepared (see
	// liteStmts); mu guards it.
	lite struct {
		mu    sync.Mutex
		stmts *liteStmts
	}
	// reads holds the hot reads prepared on SQLite (see rows).
	reads preparedReads
	// handOff makes each call yield its processor once it is done, so
	// that the goroutine waiting for SQLite's one connection, which
	// database/sql has just handed it to and Go has queued to run next
	// on this processor, takes it at once instead of after this
	// request's response is encoded and written.
	handOff bool
	// wsrep is whether the database is a Galera node, once known (see
	// onGalera).
	wsrep atomic.Int32
	// relations is what message batches read of their pairs, kept while
	// the recipients' relations_seq stays as it was.
	relations relationsCache
}

// NewStore returns a Store on db whose every call ends within
// queryTimeout (DefaultQueryTimeout when it is zero or less).
func NewStore(db *gorm.DB, queryTimeout time.Duration) *Store {
	if queryTimeout <= 0 {
		queryTimeout = DefaultQueryTimeout
	}
	s := &Store{db: db, timeout: queryTimeout, handOff: db.Dialector.Name() == "sqlite"}
	s.recvQuery = sync.OnceValues(s.recvSQL)
	s.unreadQuery = sync.OnceValues(s.unreadSQL)
	return s
}

// QueryTimeout is the deadline of each store call.
func (s *Store) QueryTimeout() time.Duration { return s.timeout }

// with is the one way to the database: the module's *gorm.DB bound to ctx
// limited to the query timeout, and the cancel to defer. GORM keeps the
// context in the *gorm.DB it returns, so the deadline cannot be cancelled
// inside with; each store method takes one for its whole call (a
// transaction and its retries included: the deadline bounds what the
// caller waits) and releases its timer on return (on SQLite it also
// yields the processor then: see handOff). A store method calling
// another gives it the bounded context, so the inner call ends no later.
func (s *Store) with(ctx context.Context) (*gorm.DB, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	if !s.handOff {
		return s.db.WithContext(ctx), cancel
	}
	return s.db.WithContext(ctx), func() {
		cancel()
		runtime.Gosched()
	}
}

// notFound turns GORM's not-found into ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return ErrNotFound
	}
	return err
}

// ---- API clients ----

// CreateClient stores a new API client; ErrDuplicate if the id is taken.
func (s *Store) CreateClient(ctx context.Context, c *APIClient) error {
	db, done := s.with(ctx)
	defer done()
	if err := db.Create(c).Error; err != nil {
		if isDuplicate(err) {
			return ErrDuplicate
		}
		return fmt.Errorf("create client: %w", err)
	}
	return nil
}

// ClientByID returns the client with that client_id.
func (s *Store) ClientByID(ctx context.Context, clientID string) (*APIClient, error) {
	db, done := s.with(ctx)
	defer done()
	var c APIClient
	err := db.Where("client_id = ?", clientID).Take(&c).Error
	if err != nil {
		return nil, notFound(err)
	}
	return &c, nil
}

// ListClients returns every client ordered by client_id.
func (s *Store) ListClients(ctx context.Context) ([]APIClient, error) {
	db, done := s.with(ctx)
	defer done()
	var cs []APIClient
	err := db.Order("client_id").Find(&cs).Error
	return cs, err
}

// CountClients returns how many clients exist.
func (s *Store) CountClients(ctx context.Context) (int64, error) {
	db, done := s.with(ctx)
	defer done()
	var n int64
	err := db.Model(&APIClient{}).Count(&n).Error
	return n, err
}

// SetClientDisabled disables or enables a client; ErrNotFound if none.
func (s *Store) SetClientDisabled(ctx context.Context, clientID string, disabled bool, now int64) error {
	return s.updateClient(ctx, clientID, map[string]any{"disabled": disabled, "updated_at": now})
}

// SetClientSecret replaces a client's secret; ErrNotFound if none.
func (s *Store) SetClientSecret(ctx context.Context, clientID, secret string, now int64) error {
	return s.updateClient(ctx, clientID, map[string]any{"client_secret": secret, "updated_at": now})
}

// updateClient sets fields of a client; ErrNotFound if none.
func (s *Store) updateClient(ctx context.Context, clientID string, fields map[string]any) error {
	db, done := s.with(ctx)
	defer done()
	res := db.Model(&APIClient{}).Where("client_id = ?", clientID).Updates(fields)
	if res.Error != nil {
		return res.Error
	}
	if res.RowsAffected == 0 {
		// MySQL counts only changed rows: tell "already so" (the same
		// value again) from "absent".
		if _, err := s.ClientByID(db.Statement.Context, clientID); err != nil {
			return err
		}
	}
	return nil
}

// ---- users ----

// CreateUser stores u and fills in its uid; ErrHandleTaken if its
// handle is another user's.
func (s *Store) CreateUser(ctx context.Context, u *User) error {
	db, done := s.with(ctx)
	defer done()
	if err := db.Create(u).Error; err != nil {
		return fmt.Errorf("create user: %w", handleConflict(err))
	}
	return nil
}

// UserByID returns the user with that uid; ErrNotFound if there is none.
func (s *Store) UserByID(ctx context.Context, uid int64) (*User, error) {
	db, done := s.with(ctx)
	defer done()
	var u User
	if err := db.Where("uid = ?", uid).Take(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// SessionUser returns the user a session belongs to; ErrUserGone if it no
// longer exists.
func (s *Store) SessionUser(ctx context.Context, uid int64) (*User, error) {
	u, err := s.UserByID(ctx, uid)
	if errors.Is(err, ErrNotFound) {
		return nil, ErrUserGone
	}
	return u, err
}

// ProvisionUser returns the user tied to hostRef, creating it with name
// if there is none. Two concurrent calls for one hostRef end with one
// user: the loser of the unique index reads the winner's row.
func (s *Store) ProvisionUser(ctx context.Context, hostRef, name string, now int64) (*User, bool, error) {
	db, done := s.with(ctx)
	defer done()
	var u User
	err := db.Where("host_ref = ?", hostRef).Take(&u).Error
	if err == nil {
		return &u, false, nil
	}
	if !errors.Is(err, gorm.ErrRecordNotFound) {
		return nil, false, err
	}
	// No password: a provisioned user signs in through the host only.
	u = User{Name: name, HostRef: &hostRef, CreatedAt: now, UpdatedAt: now}
	if err := db.Create(&u).Error; err != nil {
		if !isDuplicate(err) {
			return nil, false, fmt.Errorf("provision user: %w", err)
		}
		if err := db.Where("host_ref = ?", hostRef).Take(&u).Error; err != nil {
			return nil, false, notFound(err)
		}
		return &u, false, nil
	}
	return &u, true, nil
}

// UpdateProfile sets the given profile columns (name, head_img, handle,
// discoverable) and nothing else, so columns a host added to the table are
// never touched; ErrHandleTaken if the handle is another user's.
func (s *Store) UpdateProfile(ctx context.Context, uid int64, fields map[string]any, now int64) error {
	db, done := s.with(ctx)
	defer done()
	if len(fields) == 0 {
		return nil
	}
	fields["updated_at"] = now
	return handleConflict(db.Model(&User{}).Where("uid = ?", uid).Updates(fields).Error)
}

// ChangePassword sets a new password hash and ends every session of the
// user but keepToken, in one transaction.
func (s *Store) ChangePassword(ctx context.Context, uid int64, hash string, keepToken int64, now int64) error {
	db, done := s.with(ctx)
	defer done()
	return db.Transaction(func(tx *gorm.DB) error {
		if err := tx.Model(&User{}).Where("uid = ?", uid).
			Updates(map[string]any{"passwd_hash": hash, "updated_at": now}).Error; err != nil {
			return err
		}
		return tx.Where("uid = ? AND id <> ?", uid, keepToken).Delete(&UserToken{}).Error
	})
}

// ---- tokens ----

// TokenLength is the length of an access token: 32 characters of
// [a-z0-9], about 165 bits.
const TokenLength = 32

const tokenAlphabet = "abcdefghijklmnopqrstuvwxyz0123456789"

// NewToken returns a fresh random access token.
func NewToken() (string, error) {
	var b [TokenLength]byte
	out := make([]byte, 0, TokenLength)
	for len(out) < TokenLength {
		if _, err := rand.Read(b[:]); err != nil {
			return "", err
		}
		for _, x := range b {
			// 252 = 7*36: rejecting the top values keeps every character equally likely.
			if x < 252 && len(out) < TokenLength {
				out = append(out, tokenAlphabet[x%36])
			}
		}
	}
	return string(out), nil
}

// HashToken is what the token table stores and is searched by.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// CreateToken stores a new session and, past maxSessions for the user,
// drops the oldest ones, in one transaction.
func (s *Store) CreateToken(ctx context.Context, t *UserToken, maxSessions int) error {
	_, err := s.createToken(ctx, t, "", maxSessions)
	return err
}

// createToken is CreateToken, also saying whether the cap ended a session.
// With a checked password hash, it first locks the user's row and makes
// sure the hash is still that one (see OpenSession).
func (s *Store) createToken(ctx context.Context, t *UserToken, checked string, maxSessions int) (evicted bool, err error) {
	db, done := s.with(ctx)
	defer done()
	err = db.Transaction(func(tx *gorm.DB) error {
		if checked != "" {
			var hash []string
			err := tx.Model(&User{}).Clauses(clause.Locking{Strength: clause.LockingStrengthUpdate}).
				Where("uid = ?", t.UID).Pluck("passwd_hash", &hash).Error
			switch {
			case err != nil:
				return fmt.Errorf("lock user: %w", err)
			case len(hash) == 0:
				return ErrNotFound
			case subtle.ConstantTimeCompare([]byte(hash[0]), []byte(checked)) != 1:
				return ErrPasswordChanged
			}
		}
		if err := tx.Create(t).Error; err != nil {
			return fmt.Errorf("create token: %w", err)
		}
		if maxSessions <= 0 {
			return nil
		}
		var ids []int64
		if err := tx.Model(&UserToken{}).Where("uid = ?", t.UID).
			Order("id DESC").Offset(maxSessions).Limit(1000).Pluck("id", &ids).Error; err != nil {
			return err
		}
		if len(ids) == 0 {
			return nil
		}
		evicted = true
		return tx.Where("id IN ?", ids).Delete(&UserToken{}).Error
	})
	return evicted && err == nil, err
}

// NewSession is a session OpenSession started.
type NewSession struct {
	// Token is the access token; only its hash is stored.
	Token      string
	ExpireTime int64
	// Evicted says that the session cap ended older sessions of the user
	// to make room: their streams and cached copies must go.
	Evicted bool
}

// OpenSession starts a session for uid: a fresh access token living idle
// past now, within the cap of maxSessions a user (0: none).
//
// checked is the password hash a login checked its password against ("":
// none, for a host that vouches for the user). A password change that
// commits between the check and the session would end every other
// session, but not this one, made after it with the old password: the
// session is made under the lock of the user's row that ChangePassword
// takes, and only while the hash is still checked, else
// ErrPasswordChanged.
func (s *Store) OpenSession(ctx context.Context, uid int64, checked string, now time.Time, idle time.Duration, maxSessions int) (NewSession, error) {
	token, err := NewToken()
	if err != nil {
		return NewSession{}, fmt.Errorf("new token: %w", err)
	}
	t := &UserToken{UID: uid, TokenHash: HashToken(token), ExpireTime: now.Add(idle).Unix(), CreatedAt: now.Unix()}
	evicted, err := s.createToken(ctx, t, checked, maxSessions)
	if err != nil {
		return NewSession{}, err
	}
	return NewSession{Token: token, ExpireTime: t.ExpireTime, Evicted: evicted}, nil
}

// TokenByHash returns the session with that token hash.
//
// On a Galera cluster a hash not found is looked for again by a causal
// read, which waits until this node has applied what the cluster had
// committed: a session made through another node a moment ago (a login
// answered there, its token used here at once) is found, not refused as
// unknown. Only a miss pays the wait; made-up tokens are few once the
// token cache remembers them (see middleware.TokenCache).
func (s *Store) TokenByHash(ctx context.Context, hash string) (*UserToken, error) {
	t, err := s.tokenByHash(ctx, hash)
	if errors.Is(err, ErrNotFound) && s.onGalera(ctx) {
		return s.tokenByHashCausal(ctx, hash)
	}
	return t, err
}

func (s *Store) tokenByHash(ctx context.Context, hash string) (*UserToken, error) {
	db, done := s.with(ctx)
	defer done()
	var t UserToken
	if err := db.Where("token_hash = ?", hash).Take(&t).Error; err != nil {
		return nil, notFound(err)
	}
	return &t, nil
}

// tokenByHashCausal is tokenByHash as a causal read of a Galera node.
func (s *Store) tokenByHashCausal(ctx context.Context, hash string) (*UserToken, error) {
	table, err := s.table(&UserToken{})
	if err != nil {
		return nil, err
	}
	db, done := s.with(ctx)
	defer done()
	var t UserToken
	res := db.Raw("SET STATEMENT wsrep_sync_wait = 1 FOR SELECT * FROM "+table+" WHERE token_hash = ? LIMIT 1", hash).Scan(&t)
	if res.Error != nil {
		return nil, res.Error
	}
	if res.RowsAffected == 0 {
		return nil, ErrNotFound
	}
	return &t, nil
}

// ExtendToken moves a session's expiry forward (never back).
func (s *Store) ExtendToken(ctx context.Context, id, expire int64) error {
	db, done := s.with(ctx)
	defer done()
	return db.Model(&UserToken{}).
		Where("id = ? AND expire_time < ?", id, expire).
		Update("expire_time", expire).Error
}

// DeleteToken ends one session.
func (s *Store) DeleteToken(ctx context.Context, id int64) error {
	db, done := s.with(ctx)
	defer done()
	return db.Where("id = ?", id).Delete(&UserToken{}).Error
}

// DeleteExpiredTokens removes up to limit sessions expired at now and
// reports how many went; small batches keep each statement's locks short.
func (s *Store) DeleteExpiredTokens(ctx context.Context, now int64, limit int) (int64, error) {
	db, done := s.with(ctx)
	defer done()
	var ids []int64
	if err := db.Model(&UserToken{}).Where("expire_time <= ?", now).
		Limit(limit).Pluck("id", &ids).Error; err != nil {
		return 0, err
	}
	if len(ids) == 0 {
		return 0, nil
	}
	res := db.Where("id IN ?", ids).Delete(&UserToken{})
	return res.RowsAffected, res.Error
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	db, done := s.with(ctx)
	defer done()
	var one int
	return db.Raw("SELECT 1").Scan(&one).Error
}
