package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"
)

// streamIdle is how long a stream may stay silent before it is taken for
// dead: the server sends a comment at least every 25 s (API.md §10), so
// three missed ones mean a connection nobody will close for us.
const streamIdle = 75 * time.Second

// Event is one event of a Stream: a Message, a ReadReceipt, a
// ContactEvent, a GroupEvent, a TypingEvent, a PresenceEvent, a KeysEvent
// or a Bye.
type Event interface{ isEvent() }

// ReadReceipt tells that UID read what I sent them, up to LastID.
type ReadReceipt struct {
	UID    int64 `json:"uid"`
	LastID int64 `json:"last_id"`
}

// ContactEvent tells that something happened between me and UID: What is
// one of "request", "accept", "refuse", "delete", "block".
type ContactEvent struct {
	UID  int64  `json:"uid"`
	What string `json:"what"`
}

// GroupEvent tells that a group I am in, or was in, changed: What is
// one of GroupCreated, GroupAdded, GroupRemoved, GroupLeft, GroupUpdated,
// GroupRole, and UID the member the change is about.
type GroupEvent struct {
	GID  int64  `json:"gid"`
	What string `json:"what"`
	UID  int64  `json:"uid"`
}

// TypingEvent tells that UID is typing to me, or in the group GID when
// it is not 0. It is sent at most every 3 s while they type: show it for a
// few seconds from the last one.
type TypingEvent struct {
	UID int64 `json:"uid"`
	GID int64 `json:"gid"`
}

// PresenceEvent tells that my contact UID came online or went offline;
// LastSeen is when they were last seen (unix seconds).
type PresenceEvent struct {
	UID      int64 `json:"uid"`
	Online   bool  `json:"online"`
	LastSeen int64 `json:"last_seen"`
}

// KeysEvent tells that UID, a contact, published a new or changed device
// key (API.md §15): its safety number has changed, and a client should
// say so. A client with a device fetches UID's keys afresh when it next
// needs them.
type KeysEvent struct {
	UID int64 `json:"uid"`
}

// Bye is the server ending the stream: Reason says why (a shutdown, a
// logout, a password change, an expired token).
type Bye struct {
	Reason string `json:"reason"`
}

func (Message) isEvent()       {}
func (ReadReceipt) isEvent()   {}
func (ContactEvent) isEvent()  {}
func (GroupEvent) isEvent()    {}
func (TypingEvent) isEvent()   {}
func (PresenceEvent) isEvent() {}
func (KeysEvent) isEvent()     {}
func (Bye) isEvent()           {}

// Stream is an open push stream (/Message/Stream). Next returns its
// events; Close ends it. It is meant for one reading goroutine; Close may
// be called from any.
type Stream struct {
	body   io.ReadCloser
	sse    *sseReader
	cancel context.CancelFunc
	idle   *time.Timer
	uid    int64

	// e2ee, set on a client with a device, decrypts messages and hears
	// of key changes.
	e2ee *streamE2EE

	mu     sync.Mutex
	lastID int64
	idled  bool
}

// streamE2EE is what a Stream of a client with a device decrypts with.
type streamE2EE struct {
	ctx context.Context
	c   *Client
}

// Stream opens the push stream of my messages (API.md §10) with a GET, as
// a browser's EventSource would, but with the user's credentials in the
// X-Uid and X-Access-Token headers rather than the URL, which proxies and
// servers log (only EventSource, which cannot set headers, needs them in
// the query); lastID, if given, goes both as last_id and as the
// Last-Event-ID header. The stream then
// carries my messages with a larger id, in id order; without lastID it
// starts after the newest message when it opens. A failure before the
// stream starts is an *Error (404 with CodeNotFound from a server that
// has no stream).
func (c *Client) Stream(ctx context.Context, lastID *int64) (*Stream, error) {
	const path = "/Message/Stream"
	s, err := c.session()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	req, err := c.streamRequest(ctx, path, s, lastID)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("fiberchat %s: %w", path, err)
	}
	resp, err := c.openStream(req, cancel)
	if err != nil {
		cancel()
		return nil, transportError(path, err)
	}
	ctype, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if resp.StatusCode != http.StatusOK || ctype != "text/event-stream" {
		defer cancel()
		defer resp.Body.Close()
		return nil, notAStream(path, resp)
	}
	st := newStream(resp.Body, cancel, s.UID, lastID)
	if c.e2ee != nil {
		st.e2ee = &streamE2EE{ctx: ctx, c: c}
	}
	return st, nil
}

// streamRequest builds the stream's GET: credentials in headers, not the
// URL, and lastID both as last_id and as Last-Event-ID.
func (c *Client) streamRequest(ctx context.Context, path string, s Session, lastID *int64) (*http.Request, error) {
	var q url.Values
	if lastID != nil {
		q = url.Values{"last_id": {strconv.FormatInt(*lastID, 10)}}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url(path, q), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("X-Uid", strconv.FormatInt(s.UID, 10))
	req.Header.Set("X-Access-Token", s.AccessToken)
	req.Header.Set("Accept", "text/event-stream")
	req.Header.Set("Cache-Control", "no-cache")
	if lastID != nil {
		req.Header.Set("Last-Event-ID", strconv.FormatInt(*lastID, 10))
	}
	return req, nil
}

// openStream sends req and waits for the answer's headers. Until they
// arrive, the call is bounded like any other, by calling cancel (which
// req's context must answer to) after requestTimeout; after that, the
// stream's idle timer bounds it.
func (c *Client) openStream(req *http.Request, cancel context.CancelFunc) (*http.Response, error) {
	opened := time.AfterFunc(requestTimeout, cancel)
	resp, err := c.hc.Do(req)
	if !opened.Stop() && err == nil {
		err = context.DeadlineExceeded
	}
	if err != nil {
		if resp != nil {
			resp.Body.Close()
		}
		return nil, err
	}
	return resp, nil
}

// notAStream turns an answer that did not open a stream into the error
// Stream returns: the server's envelope if it sent one, else an *Error
// quoting the start of what it sent.
func notAStream(path string, resp *http.Response) error {
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return transportError(path, err)
	}
	err = envelopeError(resp, raw)
	if err == nil {
		err = &Error{Status: resp.StatusCode, Msg: "answer is not an event stream: " + snippet(raw)}
	}
	return fmt.Errorf("fiberchat %s: %w", path, err)
}

// newStream wraps an opened stream's body; cancel ends it, and does so by
// itself once no byte has arrived for streamIdle, so a dead connection
// does not hang Next.
func newStream(body io.ReadCloser, cancel context.CancelFunc, uid int64, lastID *int64) *Stream {
	st := &Stream{body: body, cancel: cancel, uid: uid}
	if lastID != nil {
		st.lastID = *lastID
	}
	st.idle = time.AfterFunc(streamIdle, func() {
		st.mu.Lock()
		st.idled = true
		st.mu.Unlock()
		cancel()
	})
	st.sse = newSSEReader(&idleReader{r: body, t: st.idle})
	return st
}

// idleReader restarts the stream's idle timer whenever bytes arrive.
type idleReader struct {
	r io.Reader
	t *time.Timer
}

func (r *idleReader) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	if n > 0 {
		r.t.Reset(streamIdle)
	}
	return n, err
}

// errStreamIdle is why a stream that went silent ended.
var errStreamIdle = errors.New("fiberchat: stream silent for too long")

// Next returns the next event. Events of types it does not know are
// skipped, so a newer server's additions do not break an older client. It
// returns io.EOF when the server closed the stream without a Bye, and
// the context's error once the stream's context ends or Close was called.
func (s *Stream) Next() (Event, error) {
	for {
		ev, err := s.sse.next()
		if err != nil {
			s.mu.Lock()
			idled := s.idled
			s.mu.Unlock()
			if idled {
				return nil, errStreamIdle
			}
			return nil, err
		}
		out, err := s.decode(ev)
		if err != nil {
			return nil, fmt.Errorf("fiberchat stream: %s event: %w", ev.Type, err)
		}
		if out != nil {
			return out, nil
		}
	}
}

// decode turns one server-sent event into an Event, or nil for a type it
// does not know.
func (s *Stream) decode(ev sseEvent) (Event, error) {
	switch ev.Type {
	case "message":
		var m Message
		if err := json.Unmarshal([]byte(ev.Data), &m); err != nil {
			return nil, err
		}
		if m.ID == 0 {
			m.ID, _ = strconv.ParseInt(ev.ID, 10, 64)
		}
		if m.UIDTo == 0 && m.GID == 0 {
			m.UIDTo = s.uid
		}
		s.mu.Lock()
		s.lastID = max(s.lastID, m.ID)
		s.mu.Unlock()
		s.decrypt(&m)
		return m, nil
	case "read":
		return decodeEvent[ReadReceipt](ev.Data)
	case "contact":
		return decodeEvent[ContactEvent](ev.Data)
	case "group":
		return decodeEvent[GroupEvent](ev.Data)
	case "typing":
		return decodeEvent[TypingEvent](ev.Data)
	case "presence":
		return decodeEvent[PresenceEvent](ev.Data)
	case "keys":
		e, err := decodeEvent[KeysEvent](ev.Data)
		if k, ok := e.(KeysEvent); ok && s.e2ee != nil {
			s.e2ee.c.e2ee.forget(k.UID)
		}
		return e, err
	case "bye":
		return decodeEvent[Bye](ev.Data)
	}
	return nil, nil
}

// decrypt decrypts m (see Client.decrypt), fetching the sender's keys
// if need be within the usual request timeout.
func (s *Stream) decrypt(m *Message) {
	if s.e2ee == nil {
		if m.Enc != nil {
			m.Encrypted, m.DecryptErr = true, errNoDevice
		}
		return
	}
	ctx, cancel := context.WithTimeout(s.e2ee.ctx, requestTimeout)
	defer cancel()
	s.e2ee.c.decrypt(ctx, s.uid, m)
}

// decodeEvent decodes an event's data as an E.
func decodeEvent[E Event](data string) (Event, error) {
	var e E
	if err := json.Unmarshal([]byte(data), &e); err != nil {
		return nil, err
	}
	return e, nil
}

// LastID is the id of the newest message the stream handed out (or the
// id it was opened after): what to reopen it with. A stream opened with
// no id (after the newest message there was) knows none until its first
// message, and LastID is then 0: reopening with 0 would hand out every
// message kept, so reopen it with nil, or with an id of your own (the
// newest of a History page, say).
func (s *Stream) LastID() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastID
}

// Retry is the reconnection delay the server asked for in a retry field,
// or 0 if it asked for none.
func (s *Stream) Retry() time.Duration { return s.sse.retry }

// Close ends the stream.
func (s *Stream) Close() error {
	s.idle.Stop()
	s.cancel()
	return s.body.Close()
}
