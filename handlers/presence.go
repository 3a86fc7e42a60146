package handlers

import (
	"context"
	"time"

	"github.com/fiberchat/fiberchat/models"
)

// Presence (API.md §13): who among my contacts is online, and since when
// they were last seen. A user who hides their presence shows as offline,
// never seen, and sees everyone so too ("both ways"); only contacts are
// ever told.

// PresenceStore reads the presence columns of users.
type PresenceStore interface {
	PresenceOf(ctx context.Context, uids []int64) (map[int64]models.Presence, error)
}

// OnlineSource says which users have a stream or long poll open on any
// instance (or had one within the grace): the module's presence tracker.
type OnlineSource interface {
	Online(ctx context.Context, uids []int64) map[int64]bool
}

// PresenceConfig is what /Contacts/list reads presence from.
type PresenceConfig struct {
	Store  PresenceStore
	Online OnlineSource
	// Now is the last_seen of a contact online now: last_seen is stored
	// when a user goes offline only.
	Now func() time.Time
}

// contactEntry is a /Contacts/list entry: a profile and its presence.
type contactEntry struct {
	profileEntry
	Online   bool  `json:"online"`
	LastSeen int64 `json:"last_seen"`
}

type contactsResponse struct {
	Num   int            `json:"num"`
	Msg   string         `json:"msg"`
	Error int            `json:"error"`
	Data  []contactEntry `json:"data"`
}

// withPresence adds to me's contacts' profiles their presence as me may
// see it: none at all when p is nil, when me hides theirs, or for a
// contact who hides theirs.
func withPresence(ctx context.Context, p *PresenceConfig, me int64, list profilesResponse) (contactsResponse, error) {
	out := contactsResponse{Num: list.Num, Msg: list.Msg, Data: make([]contactEntry, len(list.Data))}
	for i, e := range list.Data {
		out.Data[i].profileEntry = e
	}
	if p == nil || len(list.Data) == 0 {
		return out, nil
	}
	uids := make([]int64, 0, len(list.Data)+1)
	uids = append(uids, me)
	for _, e := range list.Data {
		uids = append(uids, e.UID)
	}
	rows, err := p.Store.PresenceOf(ctx, uids)
	if err != nil {
		return out, err
	}
	if !rows[me].ShowPresence {
		return out, nil
	}
	online := p.Online.Online(ctx, uids[1:])
	for i := range out.Data {
		r := rows[out.Data[i].UID]
		switch {
		case !r.ShowPresence:
		case online[r.UID]:
			out.Data[i].Online, out.Data[i].LastSeen = true, p.Now().Unix()
		default:
			out.Data[i].LastSeen = r.LastSeen
		}
	}
	return out, nil
}

type presenceNotice struct {
	UID      int64 `json:"uid"`
	Online   bool  `json:"online"`
	LastSeen int64 `json:"last_seen"`
}

// TellPresence tells watchers' streams that uid came online or went
// offline, last seen at lastSeen. The caller has chosen the watchers:
// contacts of uid who may see it (models.Store.PresenceWatchers).
func TellPresence(n Notices, watchers []int64, uid int64, online bool, lastSeen int64) {
	noticeAll(n, watchers, "presence", presenceNotice{UID: uid, Online: online, LastSeen: lastSeen})
}
