package client

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/sethvargo/go-retry"
)

// Reconnection policy of Listen (see reconnectBackoff).
const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
	// streamTries is how many times in a row the stream may fail to open
	// before Listen long-polls instead for a while (streamPause).
	streamTries = 3
	streamPause = 5 * time.Minute
	// pollWait is how long each long poll asks the server to hold it.
	pollWait = 30 * time.Second
)

// reconnectBackoff is the waits between Listen's failed attempts: from
// backoffMin doubling to backoffMax, each drawn anywhere below that
// ("full jitter"), so that clients that lost the same server do not come
// back in step. It is sethvargo/go-retry's, rather than hand-written: the
// arithmetic (overflow included) is that library's, and tested there.
func reconnectBackoff() retry.Backoff {
	return retry.WithFullJitter(retry.WithCappedDuration(backoffMax, retry.NewExponential(backoffMin)))
}

// handlerError carries an error of Listen's handler out of the loop.
type handlerError struct{ err error }

func (e handlerError) Error() string { return e.err.Error() }

// Listen hands my messages (1:1 ones, and my groups' with GID set) with
// an id above fromID to handle, each once, in id order, until ctx ends (it
// returns ctx's error), handle returns an error (it returns that error,
// and the message handle failed on counts as not delivered), the
// session ends (an error wrapping ErrSessionEnded), or the server ends
// the stream for a newer one past its caps (ErrStreamReplaced).
//
// It listens on the push stream and falls back to long polls (Recv with a
// last_id, waiting 30 s) when the server has no stream (404) or the
// stream keeps failing to open. Whatever fails on the way (the network, a
// restarting server, a 5xx) is retried with exponential backoff, with
// full jitter, below 30 s, reset after a success and never shorter than a
// retry the stream asked for, from the last id handle accepted: nothing
// is skipped, and a message at or below that id is never handed out
// again. An error the server will answer again the same way (a bad
// api_token, a malformed request) ends Listen.
func (c *Client) Listen(ctx context.Context, fromID int64, handle func(Message) error, opts ...ListenOption) error {
	l := &listener{c: c, cursor: fromID, handle: handle}
	for _, opt := range opts {
		opt(l)
	}
	backoff := reconnectBackoff()
	streamFailures := 0
	var noStreamUntil time.Time
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		var (
			progressed bool
			err        error
		)
		if time.Now().After(noStreamUntil) {
			progressed, err = l.stream(ctx)
			switch {
			case err == nil, progressed:
				streamFailures = 0
			case isStatus(err, http.StatusNotFound):
				// A server without the stream route: it will not grow one
				// while this Listen runs, short of a restart we cannot see.
				noStreamUntil = time.Now().Add(24 * time.Hour)
				continue
			default:
				if streamFailures++; streamFailures >= streamTries {
					noStreamUntil = time.Now().Add(streamPause)
					streamFailures = 0
				}
			}
		} else {
			progressed, err = l.poll(ctx)
		}
		if progressed {
			backoff = reconnectBackoff()
		}
		if err == nil {
			continue
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var he handlerError
		if errors.As(err, &he) {
			return he.err
		}
		if IsCode(err, CodeBadToken) {
			return fmt.Errorf("%w: %w", ErrSessionEnded, err)
		}
		if errors.Is(err, ErrSessionEnded) || errors.Is(err, ErrStreamReplaced) || errors.Is(err, ErrNoSession) || errors.Is(err, ErrRedirectElsewhere) || permanent(err) {
			return err
		}
		wait, _ := backoff.Next() // it never stops
		if e := (*Error)(nil); errors.As(err, &e) {
			// A 429's, say; no longer than the backoff's longest.
			wait = max(wait, min(e.RetryAfter, backoffMax))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(max(wait, l.retry)):
		}
	}
}

// isStatus tells whether err is an *Error with the given HTTP status.
func isStatus(err error, status int) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == status
}

// permanent tells whether err is an answer that asking again would only
// repeat: a 4xx other than a timeout or a rate limit.
func permanent(err error) bool {
	var e *Error
	if !errors.As(err, &e) {
		return false
	}
	return e.Status >= 400 && e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// ListenOption changes what Listen does.
type ListenOption func(*listener)

// OnEvent hands the stream's events other than messages and byes (a
// TypingEvent, a PresenceEvent, a ReadReceipt, a ContactEvent, a
// GroupEvent) to f, on Listen's goroutine, as they arrive. They are live
// news, not a log: none is replayed after a reconnect, and a long poll
// carries none.
func OnEvent(f func(Event)) ListenOption {
	return func(l *listener) { l.onEvent = f }
}

// listener is the state of one Listen: the cursor is the last id handle
// accepted.
type listener struct {
	c      *Client
	cursor int64
	handle func(Message) error
	// onEvent, when set, takes the other events of the stream.
	onEvent func(Event)
	// retry is the least delay before reconnecting that the stream's
	// server asked for (its retry field).
	retry time.Duration
}

// deliver hands m to handle unless it is at or below the cursor.
func (l *listener) deliver(m Message) error {
	if m.ID <= l.cursor {
		return nil
	}
	if err := l.handle(m); err != nil {
		return handlerError{err}
	}
	l.cursor = m.ID
	return nil
}

// stream reads one push stream until it ends. progressed tells that it
// opened; a nil error means it ended in a way worth reopening at once.
func (l *listener) stream(ctx context.Context) (progressed bool, err error) {
	cursor := l.cursor
	st, err := l.c.Stream(ctx, &cursor)
	if err != nil {
		return false, err
	}
	defer st.Close()
	for {
		ev, err := st.Next()
		l.retry = min(st.Retry(), backoffMax)
		if err != nil {
			return true, err
		}
		switch ev := ev.(type) {
		case Message:
			if err := l.deliver(ev); err != nil {
				return true, err
			}
		case Bye:
			switch ev.Reason {
			case "logout", "password":
				return true, fmt.Errorf("%w: %s", ErrSessionEnded, ev.Reason)
			case "replaced":
				return true, ErrStreamReplaced
			}
			// A shutdown or the like: come back after a pause, which the
			// caller's backoff gives.
			return true, fmt.Errorf("fiberchat stream: server said bye: %s", ev.Reason)
		case nil:
		default:
			if l.onEvent != nil {
				l.onEvent(ev)
			}
		}
	}
}

// poll runs one long poll and hands out what it brought.
func (l *listener) poll(ctx context.Context) (progressed bool, err error) {
	for {
		cursor := l.cursor
		r, err := l.c.Recv(ctx, RecvRequest{LastID: &cursor, Wait: pollWait})
		if err != nil {
			return false, err
		}
		for _, m := range r.Messages {
			if err := l.deliver(m); err != nil {
				return true, err
			}
		}
		if !r.More {
			return true, nil
		}
	}
}
