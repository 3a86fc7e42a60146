package apierr_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
)

func TestIs(t *testing.T) {
	notContact := apierr.Forbidden("not a contact")
	blocked := apierr.Forbidden("blocked")
	notFound := apierr.NotFound("not found")
	noRecipient := notFound.WithMsg("no such user")
	cases := []struct {
		name        string
		err, target error
		want        bool
	}{
		{"itself", notContact, notContact, true},
		{"wrapped", fmt.Errorf("send: %w", notContact), notContact, true},
		{"another sentinel of its code", blocked, notContact, false},
		{"the package's sentinel of its code", blocked, apierr.ErrForbidden, true},
		{"the package's sentinel of another code", blocked, apierr.ErrNotFound, false},
		{"a form of it", noRecipient, notFound, true},
		{"a wrapped form of it", fmt.Errorf("send: %w", noRecipient), notFound, true},
		{"a form of a form", noRecipient.WithMsg("gone"), notFound, true},
		{"the sentinel is not its form", notFound, noRecipient, false},
		{"a form of the package's sentinel", apierr.ErrBadToken.WithMsg("gone"), apierr.ErrBadToken, true},
		{"not an *Error", errors.New("not found"), notFound, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
		})
	}
}

func TestCode(t *testing.T) {
	cases := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{apierr.Invalid("invalid uid"), apierr.CodeInvalid},
		{fmt.Errorf("x: %w", apierr.ErrNotFound.WithMsg("no such user")), apierr.CodeNotFound},
		{errors.New("boom"), apierr.CodeInternal},
	}
	for _, tc := range cases {
		if got := apierr.Code(tc.err); got != tc.want {
			t.Errorf("Code(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}
