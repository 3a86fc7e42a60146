package client

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Codes of the envelope's "error" field, as API.md §2 lists them.
const (
	CodeInvalid     = 1001 // malformed body or failed validation (400)
	CodeAccessDeny  = 1002 // api_token missing or wrong, client unknown or disabled (403)
	CodeBadToken    = 1004 // access_token missing, wrong or expired (401)
	CodeBadLogin    = 1005 // wrong uid or password at login (401)
	CodeNotFound    = 1006 // no such user, pending request or route (404)
	CodeConflict    = 1007 // conflict (409)
	CodeForbidden   = 1008 // not allowed, e.g. messaging a stranger (403)
	CodeTooLarge    = 1009 // body or upload too large (413)
	CodeRateLimited = 1010 // rate limited (429)
	CodeUnsupported = 1011 // upload is not a supported image (415)
	CodeInternal    = 1500 // anything else, logged by the server (500)
	CodeUnavailable = 1503 // database unavailable, nothing half-written (503)
)

// Error is a failure the server answered: a status other than 2xx, or an
// envelope whose error is not 0. Code is 0 when the answer was not an
// envelope at all (a proxy's error page, say).
type Error struct {
	// Status is the HTTP status.
	Status int
	// Code is the envelope's "error" field (see the Code constants).
	Code int
	// Msg is the envelope's "msg", or the start of a body that was not one.
	Msg string
	// RetryAfter is how long the server asked to wait before asking again
	// (its Retry-After header, as on a 429), 0 when it asked nothing.
	RetryAfter time.Duration
}

// retryAfter reads a Retry-After header given in seconds (the server
// gives no dates), 0 when there is none.
func retryAfter(h http.Header) time.Duration {
	n, err := strconv.Atoi(h.Get("Retry-After"))
	if err != nil || n <= 0 {
		return 0
	}
	return time.Duration(n) * time.Second
}

// Error reports status, code and message.
func (e *Error) Error() string {
	return fmt.Sprintf("fiberchat: HTTP %d, error %d: %s", e.Status, e.Code, e.Msg)
}

// IsCode tells whether err is, or wraps, an *Error with the given code.
func IsCode(err error, code int) bool {
	var e *Error
	return errors.As(err, &e) && e.Code == code
}

// ErrSessionEnded is what Listen returns, wrapped with the reason, when
// the server ended the session it listens with (a logout, a password
// change elsewhere, an expired access_token): listening again needs a new
// Login.
var ErrSessionEnded = errors.New("fiberchat: session ended")

// ErrStreamReplaced is what Listen returns when the server ended its
// stream for a newer one of the same session or user, past the caps
// (API.md §10, bye reason "replaced"): listening again would end another
// listener's stream in turn, and that one would come back for this one's.
var ErrStreamReplaced = errors.New("fiberchat: stream replaced by a newer one")

// ErrNoSession is returned by a method that needs a logged-in user when
// the Client holds no session.
var ErrNoSession = errors.New("fiberchat: no session: Login or SetSession first")

// ErrRedirectElsewhere is returned, wrapped, for an answer that redirects
// to another scheme or host: following it would send the request's
// credentials (in its body or headers) there.
var ErrRedirectElsewhere = errors.New("fiberchat: redirect to another host refused")
