package client

import (
	"context"
	"encoding/json"
	"time"
)

// Message is one chat message, as Recv, History and the stream hand it
// out: either to a user (UIDTo) or to a group (GID, with UIDTo 0).
type Message struct {
	ID      int64 `json:"id"`
	UIDFrom int64 `json:"uid_from"`
	UIDTo   int64 `json:"uid_to,omitempty"`
	// GID is the group the message was sent to; 0 for a 1:1 message.
	GID     int64  `json:"gid,omitempty"`
	Message string `json:"message"`
	Time    int64  `json:"time"` // when it was stored (unix seconds)
	// Enc is an end-to-end encrypted message's envelope (API.md §15).
	// On a client with a device (WithDevice) Message is its decrypted
	// text; Encrypted is set either way.
	Enc       *Envelope `json:"enc,omitempty"`
	Encrypted bool      `json:"-"`
	// DecryptErr says why an encrypted message could not be decrypted
	// (it wraps ErrUndecryptable, or tells that keys could not be
	// fetched); Message is then empty, never ciphertext.
	DecryptErr error `json:"-"`
	Rich
	// File is a file record's upload ("file" Kind; Message is then an
	// optional caption), with URLs fresh when it arrived; API.md §13.
	File *File `json:"file,omitempty"`
}

// Sent is what Send stored.
type Sent struct {
	ID   int64 `json:"id"`
	Time int64 `json:"time"`
}

// SendOption adjusts one Send.
type SendOption func(*sendBody)

// ClientMsgID makes a Send idempotent: a Send retried with the same id
// (at most 64 characters) stores nothing new and returns the first
// message's id.
func ClientMsgID(id string) SendOption { return func(b *sendBody) { b.ClientMsgID = id } }

// sendBody names the recipient in exactly one of uid_to and gid.
type sendBody struct {
	UIDTo       int64           `json:"uid_to,omitempty"`
	GID         int64           `json:"gid,omitempty"`
	Data        string          `json:"data,omitempty"`
	Enc         json.RawMessage `json:"enc,omitempty"`
	ClientMsgID string          `json:"client_msg_id,omitempty"`
	ReplyTo     int64           `json:"reply_to,omitempty"`
	FileID      int64           `json:"file_id,omitempty"`
}

// Send sends text to the user to (/Message/Send). Messaging a user who is
// not a contact, or who blocks me, is an *Error with CodeForbidden.
func (c *Client) Send(ctx context.Context, to int64, text string, opts ...SendOption) (Sent, error) {
	return c.sendMessage(ctx, sendBody{UIDTo: to, Data: text}, opts)
}

// SendToGroup sends text to the group gid (/Message/Send with gid): it
// reaches every member but me. Only members may send (an *Error with
// CodeForbidden otherwise); a gid that does not exist is CodeNotFound.
// ClientMsgID works as for Send.
func (c *Client) SendToGroup(ctx context.Context, gid int64, text string, opts ...SendOption) (Sent, error) {
	return c.sendMessage(ctx, sendBody{GID: gid, Data: text}, opts)
}

// Typing tells uidTo that I am typing to them (/Message/Typing). The
// server relays at most one every 3 s per conversation and drops the
// rest, so calling it on every keystroke is fine.
func (c *Client) Typing(ctx context.Context, uidTo int64) error {
	return c.call(ctx, "/Message/Typing", true, struct {
		UIDTo int64 `json:"uid_to"`
	}{uidTo}, nil)
}

// TypingGroup tells the other members of the group gid that I am typing
// there, as Typing does.
func (c *Client) TypingGroup(ctx context.Context, gid int64) error {
	return c.call(ctx, "/Message/Typing", true, struct {
		GID int64 `json:"gid"`
	}{gid}, nil)
}

// sendMessage is Send and SendToGroup.
func (c *Client) sendMessage(ctx context.Context, body sendBody, opts []SendOption) (Sent, error) {
	for _, opt := range opts {
		opt(&body)
	}
	var out struct {
		envelope
		Sent
	}
	err := c.call(ctx, "/Message/Send", true, body, &out)
	return out.Sent, err
}

// RecvRequest asks Recv for messages.
type RecvRequest struct {
	// LastID asks for my messages with a larger id. Nil uses the
	// session's cursor on the server, which Recv moves on.
	LastID *int64
	// Wait makes Recv a long poll: with nothing pending the server holds
	// the request until a message arrives or Wait runs out. Whole
	// seconds, rounded up; at most 30 s.
	Wait time.Duration
	// Limit is the most messages to return, 1–500; 0 is the server's
	// default (100).
	Limit int
}

// RecvResult is a batch of my messages, in id order.
type RecvResult struct {
	Messages []Message
	// LastID is the cursor to send as RecvRequest.LastID next time.
	LastID int64
	// More tells that Limit cut the batch: ask again at once.
	More bool
}

// Recv returns my messages past a cursor (/Message/Recv).
func (c *Client) Recv(ctx context.Context, r RecvRequest) (RecvResult, error) {
	s, err := c.session()
	if err != nil {
		return RecvResult{}, err
	}
	wait := (r.Wait + time.Second - 1) / time.Second
	body := struct {
		LastID *int64 `json:"last_id,omitempty"`
		Wait   int64  `json:"wait,omitempty"`
		Limit  int    `json:"limit,omitempty"`
	}{r.LastID, int64(wait), r.Limit}
	var out struct {
		envelope
		Data   []Message `json:"data"`
		LastID int64     `json:"last_id"`
		More   bool      `json:"more"`
	}
	if err := c.send(ctx, "/Message/Recv", &s, body, time.Duration(wait)*time.Second, &out); err != nil {
		return RecvResult{}, err
	}
	for i := range out.Data {
		if out.Data[i].GID == 0 {
			out.Data[i].UIDTo = s.UID // Recv's answer leaves out what is always me
		}
		c.decrypt(ctx, s.UID, &out.Data[i])
	}
	return RecvResult{Messages: out.Data, LastID: out.LastID, More: out.More}, nil
}

// HistoryRequest asks History for one page of a conversation: with a
// user (With) or of a group (GID), exactly one of the two.
type HistoryRequest struct {
	// With is the other user: a contact or a former contact.
	With int64
	// GID is the group, one I am a member of: its messages sent while I
	// was.
	GID int64
	// BeforeID asks for messages older than this id; 0 starts at the
	// newest.
	BeforeID int64
	// Limit is the page size, 1–100; 0 is the server's default (50).
	Limit int
}

// HistoryMessage is a message of a conversation and who has read it.
type HistoryMessage struct {
	Message
	// Read tells, in a conversation with a user, whether the recipient
	// has read it.
	Read bool `json:"read"`
	// ReadBy is, in a group, how many members other than the sender have
	// read it.
	ReadBy int `json:"read_by"`
	// Reactions are the message's emoji and who put each there (API.md
	// §13), as they stand. (Recv and the stream carry them too, on a
	// message that had some before it was received; Message leaves them
	// out, to stay comparable, and a client follows them by the reaction
	// updates.)
	Reactions []Reaction `json:"reactions,omitempty"`
}

// HistoryPage is one page of a conversation, newest first.
type HistoryPage struct {
	Messages []HistoryMessage
	// More tells that older messages remain: ask again with BeforeID set
	// to the last message's id.
	More bool
}

// History pages through the messages between me and r.With, both ways,
// or those of the group r.GID, newest first (/Message/History). A group I
// left or was removed from is an *Error with CodeForbidden.
func (c *Client) History(ctx context.Context, r HistoryRequest) (HistoryPage, error) {
	var out struct {
		envelope
		Data []HistoryMessage `json:"data"`
		More bool             `json:"more"`
	}
	err := c.call(ctx, "/Message/History", true, struct {
		With     int64 `json:"uid_with,omitempty"`
		GID      int64 `json:"gid,omitempty"`
		BeforeID int64 `json:"before_id,omitempty"`
		Limit    int   `json:"limit,omitempty"`
	}{r.With, r.GID, r.BeforeID, r.Limit}, &out)
	if err != nil {
		return HistoryPage{}, err
	}
	me := c.Session().UID
	for i := range out.Data {
		c.decrypt(ctx, me, &out.Data[i].Message)
	}
	return HistoryPage{Messages: out.Data, More: out.More}, nil
}

// Read marks every message from uidFrom to me with an id up to lastID as
// read (/Message/Read) and returns how many were newly marked.
func (c *Client) Read(ctx context.Context, uidFrom, lastID int64) (int, error) {
	var out numAnswer
	err := c.call(ctx, "/Message/Read", true, struct {
		UIDFrom int64 `json:"uid_from"`
		LastID  int64 `json:"last_id"`
	}{uidFrom, lastID}, &out)
	return out.Num, err
}

// ReadGroup marks the group gid read for me up to lastID (/Message/Read
// with gid) and returns how many messages were newly marked.
func (c *Client) ReadGroup(ctx context.Context, gid, lastID int64) (int, error) {
	var out numAnswer
	err := c.call(ctx, "/Message/Read", true, struct {
		GID    int64 `json:"gid"`
		LastID int64 `json:"last_id"`
	}{gid, lastID}, &out)
	return out.Num, err
}

// UnreadCount is how many unread messages one sender left me (UIDFrom),
// or one group holds for me (GID): exactly one of the two is set.
type UnreadCount struct {
	UIDFrom int64 `json:"uid_from,omitempty"`
	GID     int64 `json:"gid,omitempty"`
	Count   int64 `json:"count"`
	// LastID is the newest unread message's id.
	LastID int64 `json:"last_id"`
}

// Unread returns my unread counts per sender and per group
// (/Message/Unread).
func (c *Client) Unread(ctx context.Context) ([]UnreadCount, error) {
	var out struct {
		envelope
		Data []UnreadCount `json:"data"`
	}
	err := c.call(ctx, "/Message/Unread", true, nil, &out)
	return out.Data, err
}
