// Package apierr is fiberchat's one error type: every failure a client can
// see is an *Error carrying the contract's error code and HTTP status. Code
// anywhere in the module returns these (or wraps them with %w), as may a
// host's BeforeSend hook; the HTTP layer (package handlers) turns them into
// the {"error","msg"} envelope in exactly one place. Any error that is not
// an *Error is internal and is never shown to clients.
package apierr

import (
	"errors"
	"fmt"
	"net/http"
)

// Codes of the envelope's "error" field, as API.md §2 lists them; 0
// (success) is written by the handlers' own responses, and 1007 (conflict)
// is one the module has no occasion to answer.
const (
	CodeInvalid     = 1001
	CodeAccessDeny  = 1002
	CodeBadToken    = 1004
	CodeBadLogin    = 1005
	CodeNotFound    = 1006
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
}

// Error returns the code and message, for logs.
func (e *Error) Error() string { return fmt.Sprintf("apierr %d: %s", e.Code, e.Msg) }

// Is reports whether target is an *Error with the same code, so that
// errors.Is(err, apierr.ErrNotFound) matches any 1006 whatever its message.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// New returns an *Error with the given code, status and client-safe message.
func New(code, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Msg: msg}
}

// The contract's failures. Use the helpers below for a custom message.
var (
	ErrAccessDeny  = New(CodeAccessDeny, http.StatusForbidden, "access deny")
	ErrBadToken    = New(CodeBadToken, http.StatusUnauthorized, "invalid or expired access_token")
	ErrBadLogin    = New(CodeBadLogin, http.StatusUnauthorized, "wrong uid or password")
	ErrNotFound    = New(CodeNotFound, http.StatusNotFound, "not found")
	ErrTooLarge    = New(CodeTooLarge, http.StatusRequestEntityTooLarge, "request too large")
	ErrRateLimited = New(CodeRateLimited, http.StatusTooManyRequests, "too many requests")
	ErrUnavailable = New(CodeUnavailable, http.StatusServiceUnavailable, "database unavailable, retry later")
	ErrInternal    = New(CodeInternal, http.StatusInternalServerError, "internal error")
)

// Invalid is a 400/1001 for a malformed or failed field; msg names the field.
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
