package models

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"github.com/fiberchat/fiberchat/apierr"
	"gorm.io/gorm"
)

// ErrHandleTaken is returned when a handle is another user's already,
// whatever its case: 409/1007.
var ErrHandleTaken = apierr.New(apierr.CodeConflict, http.StatusConflict, "conflict: handle is taken")

// SearchLimit is the most profiles one search answers (API.md §14).
const SearchLimit = 20

// UserByHandle returns the user whose handle is handle (lower-cased by the
// caller); ErrNotFound if there is none.
func (s *Store) UserByHandle(ctx context.Context, handle string) (*User, error) {
	db, done := s.with(ctx)
	defer done()
	var u User
	if err := db.Where("handle = ?", handle).Take(&u).Error; err != nil {
		return nil, notFound(err)
	}
	return &u, nil
}

// SearchQuery is one /Contacts/search.
type SearchQuery struct {
	// Me is the searching user, never in the answer.
	Me int64
	// Q is the text searched for, as given; it matches a handle's
	// beginning (case-insensitively) or any part of a name.
	Q string
	// NameScan is how many of the most recently registered users a name
	// match looks at, at most: a name contains q anywhere, which no index
	// serves, so the scan is bounded instead.
	NameScan int
}

// SearchUsers returns up to SearchLimit discoverable users, neither me
// nor anyone blocking me or blocked by me: first those whose handle starts
// with q, in handle order (served by the handle's unique index), then
// those among the NameScan most recent users whose name contains q,
// newest first.
func (s *Store) SearchUsers(ctx context.Context, sq SearchQuery) ([]Profile, error) {
	users, blocks, err := s.tables(&User{}, &Block{})
	if err != nil {
		return nil, err
	}
	db, done := s.with(ctx)
	defer done()
	visible := func(q *gorm.DB) *gorm.DB {
		return q.Where("u.discoverable = ? AND u.uid <> ?", true, sq.Me).
			Where("NOT EXISTS (SELECT 1 FROM "+blocks+" b WHERE b.uid = ? AND b.blocked_uid = u.uid)", sq.Me).
			Where("NOT EXISTS (SELECT 1 FROM "+blocks+" b WHERE b.uid = u.uid AND b.blocked_uid = ?)", sq.Me)
	}
	var out []Profile
	if h := strings.ToLower(sq.Q); handleChars(h) {
		err := visible(db.Table(users+" AS u").Select(profileColumns)).
			Where("u.handle LIKE ? ESCAPE '!'", escapeLike(h)+"%").
			Order("u.handle").Limit(SearchLimit).Find(&out).Error
		if err != nil {
			return nil, fmt.Errorf("search handles: %w", err)
		}
	}
	if len(out) == SearchLimit || sq.NameScan <= 0 {
		return out, nil
	}
	// The window is a derived table (MySQL takes no LIMIT in an IN
	// subquery), read backwards along the primary key.
	window := db.Table(users).Select("uid").Order("uid DESC").Limit(sq.NameScan)
	q := visible(db.Table("(?) AS w", window).Select(profileColumns).
		Joins("JOIN "+users+" AS u ON u.uid = w.uid")).
		Where("u.name LIKE ? ESCAPE '!'", "%"+escapeLike(sq.Q)+"%").
		Where("(u.handle IS NULL OR u.handle NOT LIKE ? ESCAPE '!')", escapeLike(strings.ToLower(sq.Q))+"%").
		Order("u.uid DESC").Limit(SearchLimit - len(out))
	var byName []Profile
	if err := q.Find(&byName).Error; err != nil {
		return nil, fmt.Errorf("search names: %w", err)
	}
	return append(out, byName...), nil
}

// handleChars reports whether s could begin a handle, which are made of
// [a-z0-9_.] only: a q with anything else matches no handle, and needs no
// look at the index.
func handleChars(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '.') {
			return false
		}
	}
	return true
}

// escapeLike makes s match itself in a LIKE with ESCAPE '!': its own %, _
// and ! are escaped. '!' rather than a backslash, which MySQL's string
// literals would read as an escape of their own, and SQLite's would not.
func escapeLike(s string) string {
	return likeEscaper.Replace(s)
}

var likeEscaper = strings.NewReplacer(`!`, `!!`, `%`, `!%`, `_`, `!_`)

// handleConflict turns a unique-key violation of a users write that sets
// a handle into ErrHandleTaken.
func handleConflict(err error) error {
	if err != nil && isDuplicate(err) {
		return ErrHandleTaken
	}
	return err
}
