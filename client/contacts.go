package client

import "context"

// AddStatus is what AddContacts did for one uid.
type AddStatus string

// The statuses of AddContacts (API.md §4).
const (
	StatusRequested      AddStatus = "requested"       // a request was made
	StatusPending        AddStatus = "pending"         // one was already waiting: nothing new
	StatusAccepted       AddStatus = "accepted"        // they had asked me: we are contacts now
	StatusAlreadyContact AddStatus = "already_contact" // nothing to do
	StatusNotFound       AddStatus = "not_found"       // no such user (or one who blocks me)
	StatusSelf           AddStatus = "self"            // my own uid
)

// AddResult is AddContacts' answer for one uid.
type AddResult struct {
	UID    int64     `json:"uid"`
	Status AddStatus `json:"status"`
}

// ContactRequest is a pending request to me.
type ContactRequest struct {
	Profile
	// Time is when the request was made (unix seconds).
	Time int64 `json:"time"`
}

// uidList is the body of the routes that take a list of users.
type uidList struct {
	Data []uidEntry `json:"data"`
}

type uidEntry struct {
	UID int64 `json:"uid"`
}

func uidsBody(uids []int64) uidList {
	l := uidList{Data: make([]uidEntry, len(uids))}
	for i, u := range uids {
		l.Data[i].UID = u
	}
	return l
}

// profilesAnswer is the answer of the routes that list profiles.
type profilesAnswer struct {
	Data []Profile `json:"data"`
}

// numAnswer is the answer of the routes that report a count.
type numAnswer struct {
	Num int `json:"num"`
}

// Contact is one of my contacts as /Contacts/list shows them: their
// profile and presence (API.md §13). Online is false and LastSeen 0 for a
// contact who hides their presence, and for all while I hide mine.
type Contact struct {
	Profile
	Online bool `json:"online"`
	// LastSeen is when they were last seen online (unix seconds; 0 for
	// never, or hidden).
	LastSeen int64 `json:"last_seen"`
}

// Contacts lists my contacts, ordered by uid, with their presence
// (/Contacts/list).
func (c *Client) Contacts(ctx context.Context) ([]Contact, error) {
	var out struct {
		Data []Contact `json:"data"`
	}
	err := c.call(ctx, "/Contacts/list", true, nil, &out)
	return out.Data, err
}

// Search finds up to 20 discoverable users whose handle starts with q or
// whose name contains it (/Contacts/search); q is 2–64 characters. It
// never lists me, nor anyone I block or who blocks me. Searching too
// often is an *Error with CodeRateLimited.
func (c *Client) Search(ctx context.Context, q string) ([]Profile, error) {
	var out profilesAnswer
	err := c.call(ctx, "/Contacts/search", true, struct {
		Q string `json:"q"`
	}{q}, &out)
	return out.Data, err
}

// ContactsInfo returns the profiles of those of uids (1–100) that exist,
// in the order asked (/Contacts/Info).
func (c *Client) ContactsInfo(ctx context.Context, uids ...int64) ([]Profile, error) {
	var out profilesAnswer
	err := c.call(ctx, "/Contacts/Info", true, uidsBody(uids), &out)
	return out.Data, err
}

// AddContacts asks each of uids (1–100) to be my contact
// (/Contacts/IO/addContacts) and reports what happened for each.
func (c *Client) AddContacts(ctx context.Context, uids ...int64) ([]AddResult, error) {
	var out struct {
		Data []AddResult `json:"data"`
	}
	err := c.call(ctx, "/Contacts/IO/addContacts", true, uidsBody(uids), &out)
	return out.Data, err
}

// DeleteContacts ends my contact with each of uids (1–100), both ways,
// and returns how many contacts were removed (/Contacts/IO/delContacts).
func (c *Client) DeleteContacts(ctx context.Context, uids ...int64) (int, error) {
	var out numAnswer
	err := c.call(ctx, "/Contacts/IO/delContacts", true, uidsBody(uids), &out)
	return out.Num, err
}

// ContactRequests lists the pending requests to me (/Contacts/list/add).
func (c *Client) ContactRequests(ctx context.Context) ([]ContactRequest, error) {
	var out struct {
		Data []ContactRequest `json:"data"`
	}
	err := c.call(ctx, "/Contacts/list/add", true, nil, &out)
	return out.Data, err
}

// AnswerRequest accepts or refuses the pending request from uidFrom
// (/Contacts/IO/acceptContacts); no such request is an *Error with
// CodeNotFound.
func (c *Client) AnswerRequest(ctx context.Context, uidFrom int64, accept bool) error {
	typ := 0
	if accept {
		typ = 1
	}
	return c.call(ctx, "/Contacts/IO/acceptContacts", true, struct {
		UIDFrom int64 `json:"uid_from"`
		Type    int   `json:"type"`
	}{uidFrom, typ}, nil)
}

// Block blocks each of uids (/Contacts/IO/block), which ends any contact
// and pending request both ways, and returns the count the server reports.
func (c *Client) Block(ctx context.Context, uids ...int64) (int, error) {
	var out numAnswer
	err := c.call(ctx, "/Contacts/IO/block", true, uidsBody(uids), &out)
	return out.Num, err
}

// Unblock lifts my block on each of uids (/Contacts/IO/unblock) and
// returns the count the server reports.
func (c *Client) Unblock(ctx context.Context, uids ...int64) (int, error) {
	var out numAnswer
	err := c.call(ctx, "/Contacts/IO/unblock", true, uidsBody(uids), &out)
	return out.Num, err
}

// Blocked lists the users I block (/Contacts/blocked).
func (c *Client) Blocked(ctx context.Context) ([]Profile, error) {
	var out profilesAnswer
	err := c.call(ctx, "/Contacts/blocked", true, nil, &out)
	return out.Data, err
}
