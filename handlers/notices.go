package handlers

import "encoding/json"

// Notices takes the live notices a user's open streams carry besides
// their messages (API.md §10): read receipts and contact changes, and
// later group, typing, presence and key notices. The module passes its
// deliver.Hub, which queues a notice on the user's streams in this
// process and wakes them.
//
// A handler that causes a notice hands it over right after its commit,
// before it emits the host's event: the host's OnEvent, however slow, is
// never on a notice's way.
type Notices interface {
	// Notice queues frame, one framed SSE event, for the open streams of
	// each of uids: one call for all the members of a group, so that an
	// implementation that crosses processes carries the frame once. It
	// must not block.
	Notice(frame []byte, uids ...int64)
}

// SessionEnds tells a user's open streams that some of the user's
// sessions ended, for each to check its own at once rather than at its
// next ping. The module passes its deliver.Hub, behind a wrapper that
// also tells its other processes.
type SessionEnds interface {
	// SessionsEnded gives reason (a Bye… constant) for uid's streams to
	// say if theirs is one of them. It must not block.
	SessionsEnded(uid int64, reason string)
}

// noStreams is the default Notices and SessionEnds: there are no streams
// to tell.
type noStreams struct{}

func (noStreams) Notice([]byte, ...int64)     {}
func (noStreams) SessionsEnded(int64, string) {}

// What a contact notice says was done (API.md §10).
const (
	contactRequest = "request"
	contactAccept  = "accept"
	contactRefuse  = "refuse"
	contactDelete  = "delete"
	contactBlock   = "block"
)

type readNotice struct {
	UID    int64 `json:"uid"`
	LastID int64 `json:"last_id"`
}

type contactNotice struct {
	UID  int64  `json:"uid"`
	What string `json:"what"`
}

// noticeRead tells sender's streams that reader has read their messages
// to it up to lastID.
func noticeRead(n Notices, sender, reader, lastID int64) {
	notice(n, sender, "read", readNotice{UID: reader, LastID: lastID})
}

// noticeContact tells peer's streams that uid did what (a contact…
// constant) to peer.
func noticeContact(n Notices, peer, uid int64, what string) {
	notice(n, peer, "contact", contactNotice{UID: uid, What: what})
}

// notice frames data as an SSE event and hands it to uid's streams.
// Notices are best-effort live news, not a log (see deliver.Hub.Notice):
// a client that needs the state reads it after (re)connecting
// (/Message/Unread, /Contacts/list). Messages are different: a stream
// reads them from the database past its cursor, so none is lost.
func notice(n Notices, uid int64, event string, data any) {
	noticeAll(n, []int64{uid}, event, data)
}

// noticeAll is notice to each of uids, the frame made once.
func noticeAll(n Notices, uids []int64, event string, data any) {
	if len(uids) == 0 {
		return
	}
	b, err := json.Marshal(data)
	if err != nil {
		return // the notices are plain structs: cannot happen
	}
	n.Notice(appendEvent(nil, "", event, b), uids...)
}
