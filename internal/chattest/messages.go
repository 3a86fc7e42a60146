package chattest

import (
	"testing"

	"github.com/fiberchat/fiberchat/models"
)

// Befriend makes a and b contacts by inserting both directions of the
// contact directly, so message tests do not depend on the contacts routes.
func (s *Server) Befriend(t testing.TB, a, b User) {
	t.Helper()
	now := s.Clock.Now().Unix()
	rows := []models.Contact{{UID: a.UID, PeerUID: b.UID, CreatedAt: now}, {UID: b.UID, PeerUID: a.UID, CreatedAt: now}}
	if err := s.Module.DB().Create(&rows).Error; err != nil {
		t.Fatalf("befriend %d and %d: %v", a.UID, b.UID, err)
	}
}
