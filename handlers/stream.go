package handlers

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
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
	// maxStreamsPerSession caps the open streams of one session (a browser
	// opening one per tab, say); the oldest ends, with bye "replaced".
	maxStreamsPerSession = 4
	// maxStreamsPerUser caps them for all of a user's sessions together,
	// so that logging in again for fresh sessions does not lift the cap.
	maxStreamsPerUser = 16
	// maxPendingNotices bounds the bytes of notices waiting for one
	// stream's next step; past it notices are dropped (they are
	// best-effort anyway).
	maxPendingNotices = 64 << 10
)

// StreamHub is the in-process registry of open streams by uid. The module
// feeds it what happens in this process that a stream reports besides
// messages: read receipts and contact changes (Event), and ended sessions
// (SessionsEnded).
//
// Notices are best-effort live news, not a log: one reaches the streams
// open when it happens, in this process, and is not replayed to a stream
// that opens (or reconnects) later. A client that needs the state reads
// it after (re)connecting (/Message/Unread, /Contacts/list). Messages are
// different: a stream reads them from the database past its cursor, so
// none is lost.
type StreamHub struct {
	mu sync.Mutex
	// byUID holds each user's open streams, oldest first.
	byUID map[int64][]*openStream
	// open counts the streams in byUID, for Len.
	open atomic.Int64
}

// Len reports how many streams are open: registered and neither ended nor
// replaced by a newer stream of the same session.
func (h *StreamHub) Len() int { return int(h.open.Load()) }

// NewStreamHub returns an empty hub.
func NewStreamHub() *StreamHub {
	return &StreamHub{byUID: make(map[int64][]*openStream)}
}

type readNotice struct {
	UID    int64 `json:"uid"`
	LastID int64 `json:"last_id"`
}

type contactNotice struct {
	UID  int64  `json:"uid"`
	What string `json:"what"`
}

// Event passes e to the open streams of the user it concerns: a read
// receipt to the sender whose messages were read, a contact change to the
// peer it was done to. Other events are ignored. It does not block.
func (h *StreamHub) Event(e events.Event) {
	switch e := e.(type) {
	case events.MessagesRead:
		h.notice(e.PeerUID, "read", readNotice{UID: e.UID, LastID: e.LastID})
	case events.ContactRequested:
		h.notice(e.PeerUID, "contact", contactNotice{UID: e.UID, What: "request"})
	case events.RequestRefused:
		h.notice(e.PeerUID, "contact", contactNotice{UID: e.UID, What: "refuse"})
	case events.ContactAdded:
		h.notice(e.PeerUID, "contact", contactNotice{UID: e.UID, What: "accept"})
	case events.ContactRemoved:
		h.notice(e.PeerUID, "contact", contactNotice{UID: e.UID, What: "delete"})
	case events.UserBlocked:
		h.notice(e.PeerUID, "contact", contactNotice{UID: e.UID, What: "block"})
	}
}

// SessionsEnded tells uid's open streams that some of uid's sessions
// ended (reason ByeLogout or ByePassword): each checks its own session
// and, if that is the one gone, says bye with reason.
func (h *StreamHub) SessionsEnded(uid int64, reason string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.byUID[uid] {
		s.mu.Lock()
		s.recheck = reason
		s.mu.Unlock()
		s.wake()
	}
}

func (h *StreamHub) notice(uid int64, event string, data any) {
	b, err := json.Marshal(data)
	if err != nil {
		return // the notices are plain structs: cannot happen
	}
	frame := appendEvent(nil, "", event, b)
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, s := range h.byUID[uid] {
		s.mu.Lock()
		if len(s.notices)+len(frame) <= maxPendingNotices {
			s.notices = append(s.notices, frame...)
		}
		s.mu.Unlock()
		s.wake()
	}
}

// add registers s, and ends the oldest stream of its session, or of its
// user, past the caps.
func (h *StreamHub) add(s *openStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := append(h.byUID[s.uid], s)
	n := 0
	for _, o := range list {
		if o.tokenID == s.tokenID {
			n++
		}
	}
	for i := 0; n > maxStreamsPerSession; i++ {
		if list[i].tokenID == s.tokenID {
			list[i].replace()
			list = append(list[:i], list[i+1:]...)
			i--
			n--
		}
	}
	for _, o := range list[:max(0, len(list)-maxStreamsPerUser)] {
		o.replace()
	}
	h.set(s.uid, list[max(0, len(list)-maxStreamsPerUser):])
}

// set makes list uid's streams. Every change to byUID goes through it, so
// that open counts what byUID holds whichever way a stream left it.
func (h *StreamHub) set(uid int64, list []*openStream) {
	h.open.Add(int64(len(list) - len(h.byUID[uid])))
	if len(list) == 0 {
		delete(h.byUID, uid)
		return
	}
	h.byUID[uid] = list
}

// replace ends s with bye "replaced".
func (s *openStream) replace() {
	s.mu.Lock()
	s.bye = ByeReplaced
	s.mu.Unlock()
	s.wake()
}

// remove forgets s; it may have gone already (replaced).
func (h *StreamHub) remove(s *openStream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	list := h.byUID[s.uid]
	if i := slices.Index(list, s); i >= 0 {
		h.set(s.uid, slices.Delete(list, i, i+1))
	}
}

// openStream is one /Message/Stream response, parked or on its goroutine.
type openStream struct {
	h            *Messages
	uid, tokenID int64
	tokenHash    string
	cursor       int64
	// eventSize is the size of the last message event read, which sizes
	// the next read to the room the step has.
	eventSize    int
	wake         func()
	messages     atomic.Bool // a message may have arrived since the last read
	mu           sync.Mutex
	notices      []byte // framed events waiting for the next step
	recheck, bye string
}

// messageWake is the stream's notifier callback.
func (s *openStream) messageWake() {
	s.messages.Store(true)
	s.wake()
}

type streamMessage struct {
	ID      int64  `json:"id"`
	UIDFrom int64  `json:"uid_from"`
	UIDTo   int64  `json:"uid_to"`
	Message string `json:"message"`
	Time    int64  `json:"time"`
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
	s.mu.Lock()
	bye, recheck, notices := s.bye, s.recheck, s.notices
	s.recheck, s.notices = "", nil
	s.mu.Unlock()
	if bye != "" {
		return appendBye(nil, bye), true
	}
	// The request is over as far as fasthttp knows, and so is its
	// context: these reads belong to the module.
	ctx := context.Background()
	if recheck != "" || t.Ping {
		if reason := s.sessionEnded(ctx, recheck); reason != "" {
			return appendBye(nil, reason), true
		}
	}
	if s.messages.Swap(false) {
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
		ms, err := s.h.store.MessagesFor(ctx, s.uid, s.cursor, limit)
		if err != nil {
			// Read again at the next wake-up or ping; nothing is lost.
			s.h.logger.Warn("stream: read messages", "uid", s.uid, "error", err.Error())
			s.messages.Store(true)
			return out
		}
		for _, m := range ms {
			b, err := json.Marshal(streamMessage{ID: m.ID, UIDFrom: m.FromUID, UIDTo: m.ToUID, Message: m.Body, Time: m.CreatedAt})
			if err != nil {
				continue // a struct of strings and ints: cannot happen
			}
			n := len(out)
			out = appendEvent(out, strconv.FormatInt(m.ID, 10), "message", b)
			s.cursor, s.eventSize = m.ID, len(out)-n
			if len(out) >= room {
				// The rest of the batch is read again from the cursor.
				s.messageWake()
				return out
			}
		}
		if len(ms) < limit {
			return out
		}
	}
	s.messageWake()
	return out
}

// sessionEnded checks the stream's session and returns why it ended, ""
// while it lives. hint is the reason given with a wake-up (logout or
// password change of the user's sessions), used if the session is gone.
// It reads through the module's session cache, which forgets a user's
// sessions when one ends in this process.
func (s *openStream) sessionEnded(ctx context.Context, hint string) string {
	t, err := s.h.tokens.TokenByHash(ctx, s.tokenHash)
	switch {
	case errors.Is(err, models.ErrNotFound):
		if hint != "" {
			return hint
		}
		return ByeLogout
	case err != nil:
		// An unreachable database does not end the stream; the next ping
		// checks again.
		s.h.logger.Warn("stream: check session", "uid", s.uid, "error", err.Error())
		return ""
	case t.ExpireTime <= s.h.now().Unix():
		return ByeExpired
	}
	return ""
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
// server without KeepHijackedConns) it runs on a goroutine through
// fasthttp's body stream writer, with the same events.
func (h *Messages) Stream() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req streamRequest
		if err := h.decoder.Decode(c, &req); err != nil {
			return err
		}
		s := middleware.SessionFrom(c)
		_, token, err := middleware.Credentials(c)
		if err != nil {
			return err // the auth gate passed, so this does not happen
		}
		st := &openStream{h: h, uid: s.UID, tokenID: s.TokenID, tokenHash: models.HashToken(token)}
		cursor, known, err := streamCursor(c, req.LastID)
		if err != nil {
			return err
		}
		if !known {
			// Messages to one user become visible in id order (see
			// models.Store.CreateMessage), so nothing at or below this id
			// can still appear.
			if cursor, err = h.store.LatestMessageID(c.UserContext(), s.UID); err != nil {
				return err
			}
		}
		st.cursor = cursor
		c.Set(fiber.HeaderContentType, "text/event-stream")
		c.Set(fiber.HeaderCacheControl, "no-cache")
		// nginx would otherwise buffer the events.
		c.Set("X-Accel-Buffering", "no")
		if c.Method() == fiber.MethodHead {
			return nil
		}
		st.messages.Store(true) // the first step reads
		if h.parker.Parkable(c) {
			ps := h.parker.NewStream()
			st.wake = ps.Wake
			cancel := h.notifier.Subscribe(s.UID, st.messageWake)
			h.streams.add(st)
			ps.Start(c, h.pingInterval, func() { cancel(); h.streams.remove(st) }, st.next)
			return nil
		}
		h.streamHeld(c, st)
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

// streamHeld runs the stream where it cannot park: on fasthttp's body
// stream writer (a goroutine of its own, plus fasthttp's copying one),
// woken through a channel, pinged by a ticker and ended by the module's
// closing signal. Each write is flushed to the client at once (chunked).
func (h *Messages) streamHeld(c *fiber.Ctx, st *openStream) {
	kick := make(chan struct{}, 1)
	st.wake = func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	cancel := h.notifier.Subscribe(st.uid, st.messageWake)
	h.streams.add(st)
	conn := c.Context().Conn()
	// As a parked stream's, the body ends with the connection.
	c.Context().SetConnectionClose()
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		defer h.streams.remove(st)
		defer cancel()
		defer func() { _ = conn.SetWriteDeadline(time.Time{}) }()
		ping := time.NewTicker(h.pingInterval)
		defer ping.Stop()
		t := park.Tick{Room: park.StreamOutput}
		for {
			out, end := st.next(t)
			// The server's own write deadline (its WriteTimeout) would cut
			// a stream that outlives it; each write gets a short one.
			_ = conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := w.Write(out); err != nil || w.Flush() != nil || end {
				return
			}
			select {
			case <-kick:
				t = park.Tick{Room: park.StreamOutput}
			case <-ping.C:
				t = park.Tick{Ping: true, Room: park.StreamOutput}
			case <-h.closing:
				t = park.Tick{Closing: true}
			}
		}
	})
}
