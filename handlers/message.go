package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"time"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/deliver"
	"github.com/fiberchat/fiberchat/internal/park"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/notify"
	"github.com/gofiber/fiber/v2"
)

// MessageStore is what the message group needs from the database.
type MessageStore interface {
	MessageByClientID(ctx context.Context, fromUID int64, clientMsgID string) (*models.Message, error)
	MessagesFor(ctx context.Context, uid, afterID int64, limit int) ([]models.Message, error)
	RecvCursor(ctx context.Context, tokenID int64) (int64, error)
	AdvanceRecvCursor(ctx context.Context, tokenID, to int64) error
	LatestMessageID(ctx context.Context, uid int64) (int64, error)
	// QueryTimeout is how long a store call may take; a Send takes no
	// longer in all.
	QueryTimeout() time.Duration
}

// MessageWriter stores a new message: see models.Store.CreateMessage,
// which models.MessageWriter batches.
type MessageWriter interface {
	CreateMessage(ctx context.Context, m *models.Message, contactsOnly bool) (replayed bool, err error)
}

// GroupMessageWriter stores a new group message and returns the group's
// other members: see models.GroupWriter.
type GroupMessageWriter interface {
	CreateGroupMessage(ctx context.Context, m *models.Message) (replayed bool, members []int64, err error)
}

// Messages serves the message group of API.md §5.
type Messages struct {
	cfg MessagesConfig
}

// MessagesConfig carries the message group's dependencies and settings.
type MessagesConfig struct {
	Store MessageStore
	// Writer stores new messages (a group-committing models.MessageWriter,
	// say).
	Writer MessageWriter
	// GroupWriter stores new group messages.
	GroupWriter GroupMessageWriter
	// Updates edits, deletes and reacts to messages, and checks a Send's
	// reply_to (API.md §13).
	Updates UpdateStore
	// EditWindow is how long after sending a message its sender may edit
	// it; zero or less is no limit.
	EditWindow time.Duration
	Decoder    *wire.Decoder
	Notifier   notify.Notifier
	Now        func() time.Time
	Logger     *slog.Logger
	// MaxChars is the longest message in characters.
	MaxChars int
	// AllowStrangers lets users who are not contacts message each other.
	AllowStrangers bool
	// MaxWait caps a long poll; zero or less answers every Recv at once.
	MaxWait time.Duration
	// Closing is closed when the module shuts down: held polls then
	// answer at once instead of being cut off with the connection.
	Closing <-chan struct{}
	// Parker, when set, parks idle long polls instead of holding them
	// where the request allows it (see park.Parker.Parkable).
	Parker *park.Parker
	// BeforeSend, when set, may refuse a message before it is stored.
	BeforeSend events.BeforeSend
	// Events receives MessageStored after commit.
	Events *events.Emitter
	// Waiters subscribes the long polls and streams to their wake-ups,
	// caps them, and carries the streams' notices; Recv and Stream need
	// it.
	Waiters *deliver.Hub
	// Tokens is where an open stream, and a long poll woken, check that
	// their session still exists and has not expired; Stream needs it,
	// and a Recv that waits checks with it when it is set.
	Tokens middleware.TokenSource
	// PingInterval is how often an open stream sends a comment line to
	// keep proxies from closing it, and checks its session.
	PingInterval time.Duration
	// Files takes the uploads Sends name and links the files of the
	// records Recv and Stream hand out; nil refuses every file_id.
	Files *Files
	// Push, when set, is handed every new message's recipients for Web
	// Push (API.md §14). It never blocks.
	Push MessagePusher
}

// MessagePusher schedules Web Push for the recipients of a message who
// stay away: internal/push.Pusher.
type MessagePusher interface {
	Queue(m *models.Message, to []int64)
}

// NewMessages prepares the message group's handlers.
func NewMessages(cfg MessagesConfig) *Messages {
	return &Messages{cfg: cfg}
}

// maxClientMsgID is the longest client_msg_id, in characters (API.md §5).
const maxClientMsgID = 64

type sendRequest struct {
	// Exactly one of UIDTo and GID (API.md §12).
	UIDTo wire.UID `json:"uid_to"`
	GID   wire.UID `json:"gid"`
	// Exactly one of Data and Enc (API.md §15): Enc is an end-to-end
	// encrypted message's envelope, checked by checkEnc.
	Data string          `json:"data"`
	Enc  json.RawMessage `json:"enc"`
	// ClientMsgID is checked in newMessage (max 64, no control
	// characters): a tag would cost every Send the validator's walk.
	ClientMsgID string `json:"client_msg_id"`
	// ReplyTo is a message of the same conversation (API.md §13).
	ReplyTo wire.Int `json:"reply_to"`
	// FileID is an upload of the sender's (API.md §13); Data is then an
	// optional caption.
	FileID wire.Int `json:"file_id"`
}

type sendResponse struct {
	Num   int    `json:"num"`
	Msg   string `json:"msg"`
	Error int    `json:"error"`
	ID    int64  `json:"id"`
	Time  int64  `json:"time"`
}

// Send serves /Message/Send. A client_msg_id the sender has used before
// answers with the first message's id and time and stores nothing, even if
// uid_to, data or file_id differ this time: the key names the message, and
// a client reusing it for another has a bug that storing a second copy
// would hide no better. A file_id named again by such a retry is not
// taken (see write).
//
// The whole Send has one deadline, QueryTimeout from its start: the
// retry's lookup, BeforeSend and the write (its wait for a group commit
// included, see models.MessageWriter) share it, so a database that
// pauses between them costs the client one QueryTimeout, not one per
// query. The wake-up and the event after the commit are not bounded by
// it: the message is stored by then.
func (h *Messages) Send() fiber.Handler {
	return func(c *fiber.Ctx) error {
		ctx, cancel := context.WithTimeout(c.UserContext(), h.cfg.Store.QueryTimeout())
		defer cancel()
		var req sendRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		msg, err := h.newMessage(c, &req)
		if err != nil {
			return err
		}
		if req.ClientMsgID != "" {
			// A retry is answered before any other check, so that it gets
			// the first try's answer even if, say, the contact ended since.
			first, err := h.cfg.Store.MessageByClientID(ctx, msg.FromUID, req.ClientMsgID)
			if err == nil {
				return c.JSON(sendResponse{Num: 1, Msg: "success", ID: first.ID, Time: first.CreatedAt})
			}
			if !errors.Is(err, models.ErrNotFound) {
				return err
			}
			msg.ClientMsgID = &req.ClientMsgID
		}
		if msg.ReplyTo != 0 {
			if err := h.cfg.Updates.CheckReplyTo(ctx, msg.FromUID, msg.ToUID, msg.GID, msg.ReplyTo); err != nil {
				return err
			}
		}
		if h.cfg.BeforeSend != nil {
			out := events.Outgoing{From: msg.FromUID, To: msg.ToUID, GID: msg.GID, Body: msg.Body, Encrypted: msg.Enc, ClientMsgID: req.ClientMsgID}
			if err := h.cfg.BeforeSend(ctx, out); err != nil {
				return err
			}
		}
		// The recipient (or the membership) and the contact are checked in
		// the write's transaction, under the recipient's (the group's)
		// lock: no extra query, and no window for a change in between.
		replayed, wake, err := h.write(ctx, msg)
		if err != nil {
			return err
		}
		if !replayed {
			h.stored(c.UserContext(), msg, wake)
		}
		return c.JSON(sendResponse{Num: 1, Msg: "success", ID: msg.ID, Time: msg.CreatedAt})
	}
}

// write stores msg and returns whom to wake. A file msg names is taken
// in the transaction that stores msg (see models.MessageWriter): it is
// sent exactly when msg is stored, and a retry of a Send already stored
// is a replay whatever its file_id, on any instance.
func (h *Messages) write(ctx context.Context, msg *models.Message) (replayed bool, wake []int64, err error) {
	if msg.FileID != 0 && h.cfg.Files == nil {
		return false, nil, models.ErrFileNotMine
	}
	if msg.GID != 0 {
		return h.cfg.GroupWriter.CreateGroupMessage(ctx, msg)
	}
	replayed, err = h.cfg.Writer.CreateMessage(ctx, msg, !h.cfg.AllowStrangers)
	return replayed, []int64{msg.ToUID}, err
}

// newMessage checks a Send's target and body and makes its message.
func (h *Messages) newMessage(c *fiber.Ctx, req *sendRequest) (*models.Message, error) {
	if err := wire.TextRule("client_msg_id", req.ClientMsgID, maxClientMsgID); err != nil {
		return nil, err
	}
	switch {
	case req.UIDTo == 0 && req.GID == 0:
		return nil, apierr.Invalid("invalid uid_to: uid_to or gid is required")
	case req.UIDTo != 0 && req.GID != 0:
		return nil, apierr.Invalid("invalid gid: give uid_to or gid, not both")
	case utf8.RuneCountInString(req.Data) > h.cfg.MaxChars:
		return nil, apierr.Invalid("invalid data: max length %d characters", h.cfg.MaxChars)
	}
	body, enc, err := h.sendBody(req)
	if err != nil {
		return nil, err
	}
	s := middleware.SessionFrom(c)
	to := int64(req.UIDTo)
	if to == s.UID {
		return nil, apierr.Invalid("invalid uid_to: cannot message yourself")
	}
	m := &models.Message{FromUID: s.UID, ToUID: to, GID: int64(req.GID), Body: body, Enc: enc, ReplyTo: int64(req.ReplyTo), FileID: int64(req.FileID), CreatedAt: h.cfg.Now().Unix()}
	if m.FileID != 0 {
		m.Kind = models.KindFile
	}
	return m, nil
}

// sendBody returns what a Send stores: its data, or its checked enc
// (then enc is true). Exactly one of the two is given, and enc only to a
// user: a group's members have no shared key (API.md §15 is 1:1 only).
func (h *Messages) sendBody(req *sendRequest) (body string, enc bool, err error) {
	switch {
	case req.FileID != 0 && len(req.Enc) > 0:
		return "", false, apierr.Invalid("invalid file_id: not with enc")
	case len(req.Enc) == 0 && req.Data == "" && req.FileID == 0:
		return "", false, apierr.Invalid("invalid data: data or enc is required")
	case len(req.Enc) == 0:
		return req.Data, false, nil
	case req.Data != "":
		return "", false, apierr.Invalid("invalid enc: give data or enc, not both")
	case req.GID != 0:
		return "", false, apierr.Invalid("invalid enc: encrypted messages are 1:1 only, not to a gid")
	}
	b, err := checkEnc(req.Enc, h.cfg.MaxChars)
	if err != nil {
		return "", false, err
	}
	return string(b), true, nil
}

// stored wakes the recipients of a message just committed and tells the
// host. After the commit, so a woken poll finds the message. A lost
// wake-up delays delivery to the next poll but loses nothing, so it does
// not fail a send that is already stored.
func (h *Messages) stored(ctx context.Context, msg *models.Message, wake []int64) {
	for _, uid := range wake {
		if err := h.cfg.Notifier.Publish(ctx, uid); err != nil {
			h.cfg.Logger.WarnContext(ctx, "wake long polls", "uid", uid, "error", err.Error())
		}
	}
	if h.cfg.Push != nil {
		h.cfg.Push.Queue(msg, wake)
	}
	h.cfg.Events.Emit(ctx, events.MessageStored{ID: msg.ID, From: msg.FromUID, To: msg.ToUID, GID: msg.GID, Body: msg.Body, Encrypted: msg.Enc, Time: msg.CreatedAt})
}

type recvRequest struct {
	// LastID is a pointer because 0 ("everything") and absent ("use the
	// session's cursor") mean different things.
	LastID *wire.Int `json:"last_id"`
	Wait   wire.Int  `json:"wait" validate:"max=30"`
	Limit  *wire.Int `json:"limit" validate:"omitempty,min=1,max=500"`
}

// recvMessage is one message of Recv. An encrypted one has Enc and no
// message (a plain one's is never empty): see recordBody.
type recvMessage struct {
	ID      int64           `json:"id"`
	UIDFrom int64           `json:"uid_from"`
	GID     int64           `json:"gid,omitempty"`
	Message string          `json:"message,omitempty"`
	Enc     json.RawMessage `json:"enc,omitempty"`
	Time    int64           `json:"time"`
	richFields
}

// recordBody splits a stored message into what a record carries: its
// text as message, or, for an encrypted one, its enc as JSON (and no
// message: a client that does not know enc shows nothing rather than
// ciphertext as text).
func recordBody(m *models.Message) (string, json.RawMessage) {
	switch {
	case m.Kind == models.KindReaction:
		return "", nil // its body is the emoji: see richOf
	case m.Enc:
		return "", json.RawMessage(m.Body)
	}
	return m.Body, nil
}

type recvResponse struct {
	Num    int           `json:"num"`
	Msg    string        `json:"msg"`
	Error  int           `json:"error"`
	Data   []recvMessage `json:"data"`
	LastID int64         `json:"last_id"`
	More   bool          `json:"more"`
}

const defaultRecvLimit = 100

// Recv serves /Message/Recv: the caller's messages past a cursor, in id
// order. The cursor is last_id when the client sends one, else the
// session's own, which Recv moves on past what it hands out once the
// answer has been written, and not at all when the client is found gone
// first (see answer; what "written" can prove is in park.Check).
//
// With wait > 0 the request is a long poll (at most deliver.DefaultCaps
// per session and per user; past them the oldest is answered at once,
// empty; past the process's MaxWaiters the new one is answered at once): it subscribes to wake-ups for the caller before its first read
// (so a message stored between the read and the wait still wakes it),
// then waits for a wake-up, the deadline, the module's shutdown or a cap.
// While it waits it costs no query; each wake-up costs one read, and a
// wake-up that finds nothing (a spurious one, or a message another
// request of the session took) goes back to waiting until the deadline.
//
// One path, two drivers: where the request may park
// (park.Parker.Parkable), neither the reads nor the wait keep the
// request's goroutine (park.Poll); elsewhere the poll is held on it
// (park.HeldPoll).
func (h *Messages) Recv() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req recvRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		limit := defaultRecvLimit
		if req.Limit != nil {
			limit = int(*req.Limit)
		}
		wait := min(time.Duration(req.Wait)*time.Second, h.cfg.MaxWait)
		s := middleware.SessionFrom(c)
		if wait > 0 {
			_, token, err := middleware.Credentials(c)
			if err != nil {
				return err // the auth gate passed, so this does not happen
			}
			d := h.cfg.Parker.PollFor(c, h.cfg.Closing)
			w := new(deliver.Waiter)
			if h.cfg.Waiters.Add(w, deliver.Poll, s.UID, s.TokenID, d.Wake, d.Finish) {
				return d.Park(c, wait, w.Remove, h.recvCheck(s, models.HashToken(token), req.LastID, limit))
			}
			// The process holds as many waiters as it may: this poll is
			// answered at once, as if it had not asked to wait.
		}
		ms, cursor, err := h.next(c.UserContext(), s, req.LastID, limit)
		if err != nil {
			return err
		}
		// The same rule as a long poll's (park.Check): the cursor moves
		// once the answer is made, unless the client is gone.
		write, written := h.answer(s, req.LastID, ms, cursor, limit)
		return park.AnswerHeld(c, write, written)
	}
}

// LongPolls reports how many Recv long polls are waiting, held or parked.
func (h *Messages) LongPolls() int { return h.cfg.Waiters.Len(deliver.Poll) }

// Streams reports how many /Message/Stream responses are open, parked or
// held.
func (h *Messages) Streams() int { return h.cfg.Waiters.Len(deliver.Stream) }

// recvCheck is a long poll's check (park.Check), whichever its driver:
// it reads past the cursor, answers if that found messages, and else
// waits, or, final, answers empty. A final answer before the first read
// still needs the cursor (last_id), and may as well carry what that read
// finds.
//
// Each read after the first, when the poll is woken, checks first that
// the session (tokenHash's) still lives: a poll held across its
// session's logout, or a password change, answers 401/1004 then, and
// hands out nothing more (API.md §3: the token is dead from then on).
// A logout wakes the user's polls for it (deliver.Hub.SessionsEnded).
func (h *Messages) recvCheck(s middleware.Session, tokenHash string, lastID *wire.Int, limit int) park.Check {
	var (
		read   bool
		cursor int64
	)
	return func(final bool) (fiber.Handler, func()) {
		var ms []models.Message
		if read && !final {
			// A database that cannot say does not end the poll: that is
			// for the read after to say.
			if ended, _ := h.sessionEnd(context.Background(), tokenHash); ended != "" {
				return func(out *fiber.Ctx) error { return WriteError(out, h.cfg.Logger, apierr.ErrBadToken, nil) }, nil
			}
		}
		if !final || !read {
			var err error
			// A parked poll's request is over as far as fasthttp knows, and
			// so is its context: this read belongs to the module.
			if ms, cursor, err = h.next(context.Background(), s, lastID, limit); err != nil {
				return func(out *fiber.Ctx) error { return WriteError(out, h.cfg.Logger, err, nil) }, nil
			}
			read = true
			if len(ms) == 0 && !final {
				return nil, nil
			}
		}
		return h.answer(s, lastID, ms, cursor, limit)
	}
}

// sessionEnd says why tokenHash's session ended: ByeLogout when it is
// gone (logged out, or replaced by a password change), ByeExpired past
// its expiry, "" while it lives, or when Tokens is not set or the
// database cannot say (err). It reads through the module's session
// cache, which forgets a user's sessions when one ends, on every
// instance.
func (h *Messages) sessionEnd(ctx context.Context, tokenHash string) (string, error) {
	if h.cfg.Tokens == nil {
		return "", nil
	}
	t, err := h.cfg.Tokens.TokenByHash(ctx, tokenHash)
	switch {
	case errors.Is(err, models.ErrNotFound):
		return ByeLogout, nil
	case err != nil:
		return "", err
	case t.ExpireTime <= h.cfg.Now().Unix():
		return ByeExpired, nil
	}
	return "", nil
}

// linked is recvReply with the records' files linked: one read when the
// page has files.
func (h *Messages) linked(ctx context.Context, ms []models.Message, cursor int64, limit int) (recvResponse, error) {
	links, err := h.cfg.Files.Links(ctx, ms)
	if err != nil {
		return recvResponse{}, err
	}
	return recvReply(ms, links, cursor, limit), nil
}

// answer makes Recv's answer from what next read, and, for the session's
// cursor, what moves the cursor past it once it is written (park.Check's
// written): a Recv whose client is gone consumes nothing (API.md §5).
func (h *Messages) answer(s middleware.Session, lastID *wire.Int, ms []models.Message, cursor int64, limit int) (fiber.Handler, func()) {
	reply, err := h.linked(context.Background(), ms, cursor, limit)
	if err != nil {
		return func(out *fiber.Ctx) error { return WriteError(out, h.cfg.Logger, err, nil) }, nil
	}
	write := func(out *fiber.Ctx) error { return out.JSON(reply) }
	if lastID != nil || reply.Num == 0 {
		return write, nil
	}
	return write, func() {
		// The answer is out: the request that wrote it may be over, and
		// so may its context.
		if err := h.cfg.Store.AdvanceRecvCursor(context.Background(), s.TokenID, reply.LastID); err != nil {
			// The client has the messages; the next Recv hands them to
			// this session again, which the contract allows.
			h.cfg.Logger.Error("recv: advance the session cursor", "err", err)
		}
	}
}

// next reads up to limit+1 messages past the cursor (the extra one tells
// whether there are more) and returns them with the cursor they follow:
// last_id when the client sends one, else the session's own. It moves
// nothing: the session's cursor moves once the answer is written (see
// answer). Two requests of one session that read at once may so both
// hand out the same messages: each device sees each message at least
// once, never none.
func (h *Messages) next(ctx context.Context, s middleware.Session, lastID *wire.Int, limit int) ([]models.Message, int64, error) {
	if lastID != nil {
		ms, err := h.cfg.Store.MessagesFor(ctx, s.UID, int64(*lastID), limit+1)
		return ms, int64(*lastID), err
	}
	cursor, err := h.cfg.Store.RecvCursor(ctx, s.TokenID)
	if err != nil {
		return nil, 0, err
	}
	ms, err := h.cfg.Store.MessagesFor(ctx, s.UID, cursor, limit+1)
	return ms, cursor, err
}

// recvReply builds the answer from up to limit+1 messages: last_id is the
// last one handed out, or the cursor they followed when there are none.
func recvReply(ms []models.Message, links map[int64]*FileRecord, cursor int64, limit int) recvResponse {
	more := len(ms) > limit
	if more {
		ms = ms[:limit]
	}
	out := recvResponse{Num: len(ms), Msg: "success", Data: make([]recvMessage, len(ms)), LastID: cursor, More: more}
	for i, m := range ms {
		text, enc := recordBody(&ms[i])
		out.Data[i] = recvMessage{ID: m.ID, UIDFrom: m.FromUID, GID: m.GID, Message: text, Enc: enc, Time: m.CreatedAt, richFields: richOf(&ms[i], links)}
	}
	if len(ms) > 0 {
		out.LastID = ms[len(ms)-1].ID
	}
	return out
}
