package models

import "database/sql/driver"

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
