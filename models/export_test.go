package models

import (
	"context"
	"database/sql/driver"

	"gorm.io/gorm"
)

// The store's private classifications, for the tests in models_test.
var (
	IsDuplicate  = isDuplicate
	IsDeadlock   = isDeadlock
	NodeNotReady = nodeNotReady
)

// OwnPool reports whether the writer's connections come from a pool of
// its own, which runs several statements in one round trip.
func (w *MessageWriter) OwnPool() bool { return w.ownPool != nil }

// TwoTripBatches is how many batches committed in two round trips.
func (w *MessageWriter) TwoTripBatches() int64 { return w.twoTrips.Load() }

// WrapConnector wraps the connector of the writers' own pool; call it
// before Start.
func (w *MessageWriter) WrapConnector(wrap func(driver.Connector) driver.Connector) {
	w.wrapConnector = wrap
}

// PreparedReads is how many read statements s keeps prepared.
func PreparedReads(s *Store) int {
	s.reads.mu.Lock()
	defer s.reads.mu.Unlock()
	return len(s.reads.stmts)
}

// ReaddSwept adds uid back to gid as addMembers would having read an
// ended membership of theirs that the sweep then deleted: existing says
// it is there, the table no longer has it.
func ReaddSwept(ctx context.Context, s *Store, gid, actor, uid int64) (AddStatus, error) {
	var st AddStatus
	err := s.groupTx(ctx, gid, func(tx *gorm.DB, g *Group) error {
		existing := map[int64]GroupMember{uid: {GID: gid, UID: uid, FromID: 1, UntilID: 1}}
		eligible, err := contactsOf(tx, actor, []int64{uid})
		if err != nil {
			return err
		}
		st, err = addOne(tx, g, uid, existing, eligible, map[int64]int{}, GroupLimits{}, 1, g.LastID)
		return err
	})
	return st, err
}
