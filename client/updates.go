package client

import (
	"context"
	"encoding/json"
)

// The kinds of a Message (API.md §13). KindEdit, KindDelete and
// KindReaction are updates: each changes the message RefID, and arrives
// through Recv and the stream like a message, so a client that was away
// learns of it through its cursor. History shows messages in their
// current state and no updates.
const (
	KindText     = "text"
	KindFile     = "file"
	KindEdit     = "edit"
	KindDelete   = "delete"
	KindReaction = "reaction"
)

// Rich are the fields API.md §13 adds to a Message.
type Rich struct {
	// Kind is one of the Kind constants.
	Kind string `json:"kind"`
	// RefID is, for an update, the message it changes.
	RefID int64 `json:"ref_id,omitempty"`
	// ReplyTo is the message of the conversation this one answers.
	ReplyTo int64 `json:"reply_to,omitempty"`
	// Emoji and On are a reaction update's: the emoji, put on or taken
	// off by UIDFrom.
	Emoji string `json:"emoji,omitempty"`
	On    bool   `json:"on,omitempty"`
	// EditedTime (unix seconds) is when a message was last edited, 0 if
	// never; an edit update carries the new text in Message.
	EditedTime int64 `json:"edited_time,omitempty"`
	// Deleted marks a message deleted for everyone: its text is gone.
	Deleted bool `json:"deleted,omitempty"`
}

// IsUpdate reports whether the record is an update of another message
// (an edit, delete or reaction) rather than a message.
func (r Rich) IsUpdate() bool {
	return r.Kind == KindEdit || r.Kind == KindDelete || r.Kind == KindReaction
}

// Reaction is one emoji on a message (HistoryMessage.Reactions) and the users who put it there.
type Reaction struct {
	Emoji string  `json:"emoji"`
	UIDs  []int64 `json:"uids"`
}

// ReplyTo makes a Send answer the message id, one of the same
// conversation (another is an *Error with CodeInvalid).
func ReplyTo(id int64) SendOption { return func(b *sendBody) { b.ReplyTo = id } }

// updateAnswer is what Edit, Delete and React answer.
type updateAnswer struct {
	envelope
	ID int64 `json:"id"`
}

// Edit replaces the text of my message id (/Message/Edit), within the
// server's edit window (an *Error with CodeForbidden past it). It
// returns the update's id. An encrypted message is edited with
// EditEncrypted.
func (c *Client) Edit(ctx context.Context, id int64, text string) (int64, error) {
	return c.update(ctx, "/Message/Edit", struct {
		ID   int64  `json:"id"`
		Data string `json:"data"`
	}{id, text})
}

// EditEncrypted replaces the text of my end-to-end encrypted message id
// to the user to, encrypting the new text as SendEncrypted does.
func (c *Client) EditEncrypted(ctx context.Context, to, id int64, text string) (int64, error) {
	if c.e2ee == nil {
		return 0, errNoDevice
	}
	enc, err := c.sealFor(ctx, to, text)
	if err != nil {
		return 0, err
	}
	return c.update(ctx, "/Message/Edit", struct {
		ID  int64           `json:"id"`
		Enc json.RawMessage `json:"enc"`
	}{id, enc})
}

// Delete deletes the message id for everyone (/Message/Delete): my own,
// or, as a group's owner or admin, any of the group's. The server erases
// its text. It returns the update's id, 0 if it was deleted already.
func (c *Client) Delete(ctx context.Context, id int64) (int64, error) {
	return c.update(ctx, "/Message/Delete", struct {
		ID int64 `json:"id"`
	}{id})
}

// React puts emoji (one emoji) on the message id, or takes it off
// (/Message/React). It returns the update's id, 0 when nothing changed.
func (c *Client) React(ctx context.Context, id int64, emoji string, on bool) (int64, error) {
	flag := 0
	if on {
		flag = 1
	}
	return c.update(ctx, "/Message/React", struct {
		ID    int64  `json:"id"`
		Emoji string `json:"emoji"`
		On    int    `json:"on"`
	}{id, emoji, flag})
}

func (c *Client) update(ctx context.Context, path string, body any) (int64, error) {
	var out updateAnswer
	err := c.call(ctx, path, true, body, &out)
	return out.ID, err
}
