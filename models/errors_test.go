package models_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/models"
)

// TestSentinelsStayApart checks that the store's sentinels, now apierr
// values carrying their code, still compare as a host's code expects:
// each matches itself however wrapped, never another of the same code,
// and the package-wide apierr sentinel of its code.
func TestSentinelsStayApart(t *testing.T) {
	sentinels := []error{models.ErrNotFound, models.ErrUserGone, models.ErrSessionGone, models.ErrDuplicate, models.ErrNotContact, models.ErrBlocked}
	for i, a := range sentinels {
		for j, b := range sentinels {
			if got := errors.Is(fmt.Errorf("x: %w", a), b); got != (i == j) {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", a, b, got, i == j)
			}
		}
	}
	for _, tc := range []struct {
		err, target error
	}{
		{models.ErrNoAvatar, models.ErrNotFound},
		{models.ErrUserGone, apierr.ErrBadToken},
		{models.ErrSessionGone, apierr.ErrBadToken},
		{models.ErrBlocked, apierr.ErrForbidden},
		{models.ErrDuplicate, apierr.ErrConflict},
	} {
		if !errors.Is(fmt.Errorf("x: %w", tc.err), tc.target) {
			t.Errorf("errors.Is(%v, %v) = false, want true", tc.err, tc.target)
		}
	}
}
