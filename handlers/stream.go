package handlers

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/deliver"
	"github.com/fiberchat/fiberchat/internal/park"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// Bye reasons an ended stream gives (API.md §10), besides "replaced" for
// a stream that made room for a newer one of its session.
const (
	ByeShutdown = "shutdown"
	ByeLogout   = "logout"
	ByePassword = "password"
	ByeExpired  = "expired"
	ByeReplaced = "replaced"
	// ByeSlow ends a stream whose client fell behind: it stopped reading,
	// or reads more slowly than its events come. It resumes losslessly
	// with Last-Event-ID.
	ByeSlow = "slow"
)

const (
	// streamBatch is how many messages one read of a stream takes.
	streamBatch = 100
	// streamBatchesPerStep bounds the reads of one step, so that a stream
	// far behind does not hold a checker (or build a large write) for
	// long: it steps again after the others queued.
	streamBatchesPerStep = 10
)

// openStream is one /Message/Stream response, parked or held: its waiter
// in the hub, and its cursor.
type openStream struct {
	h         *Messages
	uid       int64
	tokenHash string
	cursor    int64
	// eventSize is the size of the last message event read, which sizes
	// the next read to the room the step has.
	eventSize int
	// checked says the session was checked since the waiter joined the
	// hub: a logout between the auth gate and then told no one.
	checked bool
	w       deliver.Waiter
	mu      sync.Mutex
	bye     string
}

// replace ends s with bye "replaced": the hub's stop past a cap.
func (s *openStream) replace() {
	s.mu.Lock()
	s.bye = ByeReplaced
	s.mu.Unlock()
	s.w.Wake()
}

type streamMessage struct {
	ID      int64           `json:"id"`
	UIDFrom int64           `json:"uid_from"`
	UIDTo   int64           `json:"uid_to,omitempty"`
	GID     int64           `json:"gid,omitempty"`
	Message string          `json:"message,omitempty"`
	Enc     json.RawMessage `json:"enc,omitempty"` // see recordBody
	Time    int64           `json:"time"`
	richFields
}

// next is the stream's step: what to write, and whether it ends after.
// It runs on one goroutine at a time (a checker, or the fallback's own).
func (s *openStream) next(t park.Tick) (out []byte, end bool) {
	switch {
	case t.Closing:
		return appendBye(nil, ByeShutdown), true
	case t.Slow:
		return appendBye(nil, ByeSlow), true
	}
	notices, recheck := s.w.Take()
	s.mu.Lock()
	bye := s.bye
	s.mu.Unlock()
	if bye != "" {
		return appendBye(nil, bye), true
	}
	// The request is over as far as fasthttp knows, and so is its
	// context: these reads belong to the module.
	ctx := context.Background()
	if recheck != "" || t.Ping || !s.checked {
		s.checked = true
		if reason := s.sessionEnded(ctx, recheck); reason != "" {
			return appendBye(nil, reason), true
		}
	}
	// A ping reads too: a wake-up can be lost (a note between instances
	// that Redis dropped, a sender that died between its commit and its
	// note), and the stream would wait for the next one. Long polls
	// read again at their timeout; a stream, every PingInterval.
	if s.w.Messages() || t.Ping {
		out = s.readMessages(ctx, out, t.Room)
	}
	out = append(out, notices...)
	if t.Ping {
		out = append(out, ": ping\n\n"...)
	}
	return out, false
}

// readMessages appends the events of the messages past the cursor, a
// batch at a time until caught up, or until room bytes are taken or the
// step's share is read: the stream then wakes itself for the rest.
func (s *openStream) readMessages(ctx context.Context, out []byte, room int) []byte {
	for range streamBatchesPerStep {
		limit := streamBatch
		if s.eventSize > 0 {
			limit = min(streamBatch, (room-len(out))/s.eventSize+1)
		}
		ms, err := s.h.cfg.Store.MessagesFor(ctx, s.uid, s.cursor, limit)
		if err != nil {
			// Read again at the next wake-up or ping; nothing is lost.
			s.h.cfg.Logger.Warn("stream: read messages", "uid", s.uid, "error", err.Error())
			s.w.More()
			return out
		}
		links, err := s.h.cfg.Files.Links(ctx, ms)
		if err != nil {
			s.h.cfg.Logger.Warn("stream: read files", "uid", s.uid, "error", err.Error())
			s.w.More()
			return out
		}
		for i, m := range ms {
			text, enc := recordBody(&ms[i])
			b, err := json.Marshal(streamMessage{ID: m.ID, UIDFrom: m.FromUID, UIDTo: m.ToUID, GID: m.GID, Message: text, Enc: enc, Time: m.CreatedAt, richFields: richOf(&ms[i], links)})
			if err != nil {
				continue // a struct of strings and ints: cannot happen
			}
			n := len(out)
			out = appendEvent(out, strconv.FormatInt(m.ID, 10), "message", b)
			s.cursor, s.eventSize = m.ID, len(out)-n
			if len(out) >= room {
				// The rest of the batch is read again from the cursor.
				s.w.More()
				return out
			}
		}
		if len(ms) < limit {
			return out
		}
	}
	s.w.More()
	return out
}

// sessionEnded checks the stream's session and returns why it ended, ""
// while it lives. hint is the reason given with a wake-up (logout or
// password change of the user's sessions), used if the session is gone.
func (s *openStream) sessionEnded(ctx context.Context, hint string) string {
	reason, err := s.h.sessionEnd(ctx, s.tokenHash)
	if err != nil {
		// An unreachable database does not end the stream; the next ping
		// checks again.
		s.h.cfg.Logger.Warn("stream: check session", "uid", s.uid, "error", err.Error())
	}
	if reason == ByeLogout && hint != "" {
		return hint
	}
	return reason
}

// appendEvent appends one SSE event; data is one line (JSON, whose
// strings never hold a raw newline).
func appendEvent(out []byte, id, event string, data []byte) []byte {
	if id != "" {
		out = append(out, "id: "...)
		out = append(out, id...)
		out = append(out, '\n')
	}
	out = append(out, "event: "...)
	out = append(out, event...)
	out = append(out, "\ndata: "...)
	out = append(out, data...)
	return append(out, "\n\n"...)
}

func appendBye(out []byte, reason string) []byte {
	b, _ := json.Marshal(struct {
		Reason string `json:"reason"`
	}{reason})
	return appendEvent(out, "", "bye", b)
}

type streamRequest struct {
	LastID *wire.Int `json:"last_id"`
}

// Stream serves /Message/Stream (API.md §10): my messages as Server-Sent
// Events, pushed as they are stored, plus read receipts and contact
// changes as live notices, until the client leaves, the session ends or
// the module closes. It answers POST (credentials and last_id as for
// Recv) and GET (all in the query, for a browser's EventSource).
//
// The stream's cursor is the Last-Event-ID header, else last_id, else the
// newest message to me when it opens. Its reads are Recv's with last_id:
// each message once, in id order, nothing skipped; the notifier
// subscription comes before the first read, so a message stored while the
// stream opens is read too.
//
// Where the request may park (park.Parker.Parkable), the stream is a
// park.Stream: no goroutine of its own while idle. Elsewhere (app.Test, a
// server without KeepHijackedConns) it is a park.HeldStream, on a
// goroutine through fasthttp's body stream writer, with the same steps.
func (h *Messages) Stream() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req streamRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		s := middleware.SessionFrom(c)
		_, token, err := middleware.Credentials(c)
		if err != nil {
			return err // the auth gate passed, so this does not happen
		}
		st := &openStream{h: h, uid: s.UID, tokenHash: models.HashToken(token)}
		cursor, known, err := streamCursor(c, req.LastID)
		if err != nil {
			return err
		}
		if !known {
			// Messages to one user become visible in id order (see
			// models.Store.CreateMessage), so nothing at or below this id
			// can still appear.
			if cursor, err = h.cfg.Store.LatestMessageID(c.UserContext(), s.UID); err != nil {
				return err
			}
		}
		st.cursor = cursor
		if c.Method() == fiber.MethodHead {
			setStreamHeaders(c)
			return nil
		}
		// One path, two drivers: parked, or held on a goroutine. The
		// waiter subscribes before the first step reads.
		d := h.cfg.Parker.StreamFor(c, h.cfg.Closing)
		if !h.cfg.Waiters.Add(&st.w, deliver.Stream, s.UID, s.TokenID, d.Wake, st.replace) {
			return errTooManyWaiters
		}
		setStreamHeaders(c)
		d.Start(c, h.cfg.PingInterval, st.w.Remove, st.next)
		return nil
	}
}

// streamCursor finds the cursor the client gave: the Last-Event-ID
// header, else last_id in the body, else in the query.
func streamCursor(c *fiber.Ctx, bodyLastID *wire.Int) (cursor int64, known bool, err error) {
	if v := c.Get("Last-Event-ID"); v != "" {
		var id wire.Int
		if id.UnmarshalJSON([]byte(v)) != nil {
			return 0, false, apierr.Invalid("invalid Last-Event-ID")
		}
		return int64(id), true, nil
	}
	if bodyLastID != nil {
		return int64(*bodyLastID), true, nil
	}
	if v := c.Query("last_id"); v != "" {
		var id wire.Int
		if id.UnmarshalJSON([]byte(v)) != nil {
			return 0, false, apierr.Invalid("invalid last_id")
		}
		return int64(id), true, nil
	}
	return 0, false, nil
}

// errTooManyWaiters refuses a stream while the process holds as many
// waiters as it may (MaxWaiters): the client retries later, or on
// another instance.
var errTooManyWaiters = apierr.ErrUnavailable.WithMsg("too many open streams, retry later")

// setStreamHeaders makes c's answer an event stream.
func setStreamHeaders(c *fiber.Ctx) {
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	// nginx would otherwise buffer the events.
	c.Set("X-Accel-Buffering", "no")
}
