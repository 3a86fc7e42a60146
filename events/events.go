// Package events defines what fiberchat tells a host about: after-commit
// events (a user registered, a session opened, a contact added or removed,
// a message stored) and the message a before-send hook may refuse. Hosts
// implement its Handler and BeforeSend for module.Config; handlers emit
// through its Emitter. It is a package of its own so that neither imports
// the other.
package events

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
)

// Event is one of the event types below; switch on its concrete type.
type Event interface {
	// Kind is a short stable name of the event type, for logs and audits.
	Kind() string
}

// UserRegistered: a user registered through /user/reg/ajax_reg, or a host
// provisioned one (Provisioned is then true).
type UserRegistered struct {
	UID         int64
	Name        string
	Provisioned bool
	Time        int64
}

// LoggedIn: a session was opened, by /user/login or by the host's
// IssueToken (ByHost is then true).
type LoggedIn struct {
	UID    int64
	ByHost bool
	Time   int64
}

// ContactAdded: UID and PeerUID became contacts (PeerUID's request was
// accepted by UID).
type ContactAdded struct {
	UID, PeerUID int64
	Time         int64
}

// ContactRequested: UID asked PeerUID to become contacts (a new pending
// request; asking again while one waits emits nothing).
type ContactRequested struct {
	UID, PeerUID int64
	Time         int64
}

// RequestRefused: UID refused the pending request of PeerUID.
type RequestRefused struct {
	UID, PeerUID int64
	Time         int64
}

// ContactRemoved: UID ended its contact with PeerUID.
type ContactRemoved struct {
	UID, PeerUID int64
	Time         int64
}

// MessageStored: a message was committed. A retried Send that stored
// nothing new emits nothing. A group message has GID set and To 0.
type MessageStored struct {
	ID, From, To int64
	GID          int64
	Body         string
	// Encrypted marks an end-to-end encrypted message (API.md §15): Body
	// is then its enc JSON, ciphertext the server cannot read.
	Encrypted bool
	Time      int64
}

// MessageUpdated: a message was edited, deleted, or reacted to (API.md
// §13), and the update entry ID was committed for the message RefID.
// What is edit, delete or reaction; By is who did it; To is the other
// user of a 1:1 conversation, GID the group of a group's. Body is an
// edit's new text (its enc JSON when Encrypted), or a reaction's emoji
// (On says whether it was put on or taken off); a delete has none.
type MessageUpdated struct {
	ID, RefID int64
	What      string
	By, To    int64
	GID       int64
	Body      string
	Encrypted bool
	On        bool
	Time      int64
}

// GroupChanged: a group's membership or settings changed (API.md §12).
// What is one of created, added, removed, left, updated, role; UID is the
// member the change is about (the creator for created, the one who
// changed the settings for updated); By is who did it.
type GroupChanged struct {
	GID     int64
	What    string
	UID, By int64
	Time    int64
}

// MessagesRead: UID read PeerUID's messages to it up to LastID; Num of
// them had not been read before. For a group, GID is set and PeerUID 0:
// UID read the group up to LastID. Marking what was read already emits
// nothing.
type MessagesRead struct {
	UID, PeerUID int64
	GID          int64
	LastID       int64
	Num          int64
	Time         int64
}

// UserBlocked: UID blocked PeerUID (any contact between them ended, and
// is reported as ContactRemoved too).
type UserBlocked struct {
	UID, PeerUID int64
	Time         int64
}

// UserUnblocked: UID lifted its block of PeerUID.
type UserUnblocked struct {
	UID, PeerUID int64
	Time         int64
}

// Kind implements Event.
func (UserRegistered) Kind() string { return "user.registered" }

// Kind implements Event.
func (LoggedIn) Kind() string { return "user.logged_in" }

// Kind implements Event.
func (ContactAdded) Kind() string { return "contact.added" }

// Kind implements Event.
func (ContactRequested) Kind() string { return "contact.requested" }

// Kind implements Event.
func (RequestRefused) Kind() string { return "contact.refused" }

// Kind implements Event.
func (ContactRemoved) Kind() string { return "contact.removed" }

// Kind implements Event.
func (MessageStored) Kind() string { return "message.stored" }

// Kind implements Event.
func (MessageUpdated) Kind() string { return "message.updated" }

// Kind implements Event.
func (MessagesRead) Kind() string { return "message.read" }

// Kind implements Event.
func (GroupChanged) Kind() string { return "group.changed" }

// Kind implements Event.
func (UserBlocked) Kind() string { return "user.blocked" }

// Kind implements Event.
func (UserUnblocked) Kind() string { return "user.unblocked" }

// Outgoing is a message about to be stored, as a before-send hook sees it.
type Outgoing struct {
	// To is the recipient of a 1:1 message; GID the group of a group
	// message (To is then 0).
	From, To int64
	GID      int64
	Body     string
	// Encrypted marks an end-to-end encrypted message (API.md §15): Body
	// is then its enc JSON, not text: a hook can refuse it, not read it.
	Encrypted   bool
	ClientMsgID string
	// EditOf is, for an edit (/Message/Edit, API.md §13), the message
	// whose text Body replaces; 0 for a new message. An edit's new text
	// passes the same hook as a message's, so it cannot carry what a
	// Send could not.
	EditOf int64
}

// Handler receives after-commit events, with the request's context. Its
// error is logged; the request has already succeeded.
type Handler func(ctx context.Context, e Event) error

// BeforeSend may refuse a message before it is stored by returning an
// error: an *apierr.Error (say apierr.Forbidden("…") for 403/1008) is
// answered as it is; any other error is a 500.
type BeforeSend func(ctx context.Context, m Outgoing) error

// Emitter delivers events to a host's Handler so that no handler failure
// can break a request: errors and panics are logged and swallowed.
type Emitter struct {
	handler Handler
	logger  *slog.Logger
}

// NewEmitter returns an Emitter for h (nil: events go nowhere).
func NewEmitter(h Handler, logger *slog.Logger) *Emitter {
	return &Emitter{handler: h, logger: logger}
}

// Emit hands e to the host's handler. Call it only after the change e
// describes has committed.
func (em *Emitter) Emit(ctx context.Context, e Event) {
	if em == nil || em.handler == nil {
		return
	}
	defer func() {
		if r := recover(); r != nil {
			em.logger.ErrorContext(ctx, "event handler panicked", "event", e.Kind(),
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
		}
	}()
	if err := em.handler(ctx, e); err != nil {
		em.logger.WarnContext(ctx, "event handler failed", "event", e.Kind(), "error", err.Error())
	}
}
