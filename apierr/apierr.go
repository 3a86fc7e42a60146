// Package apierr is fiberchat's one error type: every failure a client can
// see is an *Error carrying the contract's error code and HTTP status. Code
// anywhere in the module returns these (or wraps them with %w), as may a
// host's BeforeSend hook; the HTTP layer (package handlers) turns them into
// the {"error","msg"} envelope in exactly one place. Any error that is not
// an *Error is internal and is never shown to clients.
//
// Failures are declared once, where they arise: package models declares
// its sentinels (models.ErrNotFound, models.ErrBlocked, …) as *Error
// values, so a handler returns what the store returned and no handler
// translates one error into another.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Codes of the envelope's "error" field, as API.md §2 lists them; 0
// (success) is written by the handlers' own responses.
const (
	CodeInvalid     = 1001
	CodeAccessDeny  = 1002
	CodeBadToken    = 1004
	CodeBadLogin    = 1005
	CodeNotFound    = 1006
	CodeConflict    = 1007
	CodeForbidden   = 1008
	CodeTooLarge    = 1009
	CodeRateLimited = 1010
	CodeUnsupported = 1011
	CodeInternal    = 1500
	CodeUnavailable = 1503
)

// Error is a failure with a contract code, an HTTP status and a message that
// is safe to show to the client.
type Error struct {
	Code   int
	Status int
	Msg    string
	// of is the error this one is a more specific form of (WithMsg).
	of *Error
	// anyOfCode marks this package's sentinels, which every error of
	// their code matches (see Is).
	anyOfCode bool
}

// Error returns the code and message, for logs.
func (e *Error) Error() string { return fmt.Sprintf("apierr %d: %s", e.Code, e.Msg) }

// Is makes errors.Is(err, target) hold, for an err whose chain holds e,
// when target is one of this package's sentinels (ErrNotFound, …) with
// e's code, whatever e's message, or when e was made from target by
// WithMsg, at any remove. Any other *Error matches only itself, so that
// two sentinels of one code (models.ErrNotContact and models.ErrBlocked,
// both 1008) stay apart.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	if t.anyOfCode {
		return t.Code == e.Code
	}
	for of := e.of; of != nil; of = of.of {
		if of == t {
			return true
		}
	}
	return false
}

// WithMsg returns an error like e with a more specific message, which
// errors.Is still matches against e: a store's "no pending request" is
// still its ErrNotFound to a caller comparing with that.
func (e *Error) WithMsg(msg string) *Error {
	return &Error{Code: e.Code, Status: e.Status, Msg: msg, of: e}
}

// New returns an *Error with the given code, status and client-safe message.
func New(code, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Msg: msg}
}

// sentinel is New for this package's own sentinels, which match any error
// of their code.
func sentinel(code, status int, msg string) *Error {
	e := New(code, status, msg)
	e.anyOfCode = true
	return e
}

// The contract's failures, one per code: errors.Is(err, ErrNotFound) holds
// for every 1006. Use the helpers below, or WithMsg, for a custom message.
var (
	ErrInvalid     = sentinel(CodeInvalid, http.StatusBadRequest, "invalid request")
	ErrAccessDeny  = sentinel(CodeAccessDeny, http.StatusForbidden, "access deny")
	ErrBadToken    = sentinel(CodeBadToken, http.StatusUnauthorized, "invalid or expired access_token")
	ErrBadLogin    = sentinel(CodeBadLogin, http.StatusUnauthorized, "wrong uid or password")
	ErrNotFound    = sentinel(CodeNotFound, http.StatusNotFound, "not found")
	ErrConflict    = sentinel(CodeConflict, http.StatusConflict, "conflict")
	ErrForbidden   = sentinel(CodeForbidden, http.StatusForbidden, "not allowed")
	ErrTooLarge    = sentinel(CodeTooLarge, http.StatusRequestEntityTooLarge, "request too large")
	ErrRateLimited = sentinel(CodeRateLimited, http.StatusTooManyRequests, "too many requests")
	ErrUnsupported = sentinel(CodeUnsupported, http.StatusUnsupportedMediaType, "unsupported media type")
	ErrUnavailable = sentinel(CodeUnavailable, http.StatusServiceUnavailable, "database unavailable, retry later")
	ErrInternal    = sentinel(CodeInternal, http.StatusInternalServerError, "internal error")
)

// Invalid is a 400/1001 for a malformed or failed field; msg names the
// field, as API.md §2 asks: "invalid <field>" or "invalid <field>:
// <why>", the field written as the client sent it (data[2].uid for the
// uid of a list's third entry).
func Invalid(format string, args ...any) *Error {
	return New(CodeInvalid, http.StatusBadRequest, fmt.Sprintf(format, args...))
}

// NotFound is a 404/1006 with a message naming what is missing.
func NotFound(msg string) *Error { return New(CodeNotFound, http.StatusNotFound, msg) }

// Forbidden is a 403/1008 with a message saying what is not allowed.
func Forbidden(msg string) *Error { return New(CodeForbidden, http.StatusForbidden, msg) }

// TooLarge is a 413/1009 with a message saying which limit was passed.
func TooLarge(msg string) *Error { return New(CodeTooLarge, http.StatusRequestEntityTooLarge, msg) }

// Unsupported is a 415/1011 with a message saying what was refused.
func Unsupported(msg string) *Error {
	return New(CodeUnsupported, http.StatusUnsupportedMediaType, msg)
}

// As returns the *Error in err's chain, if there is one.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// Code returns the contract code of err: that of the *Error in its chain,
// 0 for nil, and CodeInternal for any other error.
func Code(err error) int {
	if err == nil {
		return 0
	}
	if e, ok := As(err); ok {
		return e.Code
	}
	return CodeInternal
}
