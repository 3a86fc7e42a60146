package module_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// group answers as a test reads them.
type groupStatus struct {
	UID    int64  `json:"uid"`
	Status string `json:"status"`
}

type groupCreated struct {
	GID  int64         `json:"gid"`
	Num  int           `json:"num"`
	Data []groupStatus `json:"data"`
}

type groupMsg struct {
	ID      int64  `json:"id"`
	UIDFrom int64  `json:"uid_from"`
	UIDTo   *int64 `json:"uid_to"`
	GID     int64  `json:"gid"`
	Message string `json:"message"`
	Time    int64  `json:"time"`
	ReadBy  *int   `json:"read_by"`
}

type groupMsgs struct {
	Num    int        `json:"num"`
	Data   []groupMsg `json:"data"`
	LastID int64      `json:"last_id"`
	More   bool       `json:"more"`
}

// call posts fields as u to path and checks the status and code.
func gcall(t *testing.T, s *chattest.Server, u chattest.User, path string, fields map[string]any, status int, code int64) *chattest.Response {
	t.Helper()
	r := s.Post(t, path, u.Creds(fields))
	chattest.Expect(t, r, status, code)
	return r
}

// into decodes r's body into v.
func into[T any](t *testing.T, r *chattest.Response) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(r.Raw, &v); err != nil {
		t.Fatalf("%v: %s", err, r.Raw)
	}
	return v
}

func members(us ...chattest.User) []map[string]any {
	out := make([]map[string]any, len(us))
	for i, u := range us {
		out[i] = map[string]any{"uid": u.UID}
	}
	return out
}

// recvAll reads everything past last_id 0 for u.
func recvAll(t *testing.T, s *chattest.Server, u chattest.User) groupMsgs {
	t.Helper()
	return into[groupMsgs](t, gcall(t, s, u, "/Message/Recv", map[string]any{"last_id": 0, "limit": 500}, 200, 0))
}

func groupSend(t *testing.T, s *chattest.Server, u chattest.User, gid int64, text string) int64 {
	t.Helper()
	return gcall(t, s, u, "/Message/Send", map[string]any{"gid": gid, "data": text}, 200, 0).Int("id")
}

// TestGroupLifecycle walks §12 through one group: create with statuses,
// list and info, messages to every member but the sender, unread and
// read, read_by, and who may not see or do what.
func TestGroupLifecycle(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c, d := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cat"), s.NewUser(t, "dan")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)

		cr := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "team", "data": members(b, c, d, b)}, 200, 0))
		if cr.GID < 20000001 || cr.Num != 2 {
			t.Fatalf("create: %+v", cr)
		}
		want := []groupStatus{{b.UID, "added"}, {c.UID, "added"}, {d.UID, "not_found"}}
		if fmt.Sprint(cr.Data) != fmt.Sprint(want) {
			t.Fatalf("create statuses %+v, want %+v", cr.Data, want)
		}
		gid := cr.GID
		if n := s.Count(t, "group_members", "gid = ? AND until_id = 0", gid); n != 3 {
			t.Fatalf("%d member rows, want 3", n)
		}

		list := gcall(t, s, b, "/Group/list", nil, 200, 0)
		if got := string(list.Raw); !json.Valid(list.Raw) || list.Int("num") != 1 {
			t.Fatalf("list: %s", got)
		}
		entry := list.Body["data"].([]any)[0].(map[string]any)
		if entry["gid"].(float64) != float64(gid) || entry["name"] != "team" || entry["role"] != "member" || entry["members_num"].(float64) != 3 {
			t.Fatalf("list entry %v", entry)
		}
		info := gcall(t, s, c, "/Group/info", map[string]any{"gid": gid}, 200, 0)
		if info.Int("members_num") != 3 || info.Str("name") != "team" || info.Int("time") == 0 {
			t.Fatalf("info: %s", info.Raw)
		}
		first := info.Body["data"].([]any)[0].(map[string]any)
		if first["uid"].(float64) != float64(a.UID) || first["role"] != "owner" || first["name"] != "ann" {
			t.Fatalf("info: owner first, got %v", first)
		}
		gcall(t, s, d, "/Group/info", map[string]any{"gid": gid}, 403, 1008)
		gcall(t, s, d, "/Group/info", map[string]any{"gid": 29999999}, 404, 1006)

		id1 := groupSend(t, s, a, gid, "hello team")
		id2 := groupSend(t, s, b, gid, "hi")
		gcall(t, s, d, "/Message/Send", map[string]any{"gid": gid, "data": "let me in"}, 403, 1008)
		gcall(t, s, a, "/Message/Send", map[string]any{"gid": 29999999, "data": "x"}, 404, 1006)
		gcall(t, s, a, "/Message/Send", map[string]any{"gid": gid, "uid_to": b.UID, "data": "x"}, 400, 1001)
		gcall(t, s, a, "/Message/Send", map[string]any{"data": "x"}, 400, 1001)
		gcall(t, s, a, "/Message/Send", map[string]any{"gid": "abc", "data": "x"}, 400, 1001)
		if n := s.Count(t, "messages", "gid = ?", gid); n != 2 {
			t.Fatalf("%d group messages stored, want 2 (each once)", n)
		}

		// Each member receives what the others sent, with gid and no uid_to.
		got := recvAll(t, s, c)
		if got.Num != 2 || got.Data[0].ID != id1 || got.Data[1].ID != id2 || got.Data[0].GID != gid || got.Data[0].UIDTo != nil || got.Data[1].UIDFrom != b.UID {
			t.Fatalf("c's recv %+v", got)
		}
		if got := recvAll(t, s, a); got.Num != 1 || got.Data[0].ID != id2 {
			t.Fatalf("a's recv %+v, want only b's message", got)
		}
		if got := recvAll(t, s, d); got.Num != 0 {
			t.Fatalf("a stranger received %+v", got)
		}

		// Unread: c has both, a has b's (a's own send moved a's mark).
		un := gcall(t, s, c, "/Message/Unread", nil, 200, 0)
		if string(un.Raw) != fmt.Sprintf(`{"num":1,"msg":"success","error":0,"data":[{"gid":%d,"count":2,"last_id":%d}]}`, gid, id2) {
			t.Fatalf("c's unread %s", un.Raw)
		}
		un = gcall(t, s, a, "/Message/Unread", nil, 200, 0)
		if un.Int("num") != 1 || un.Body["data"].([]any)[0].(map[string]any)["count"].(float64) != 1 {
			t.Fatalf("a's unread %s", un.Raw)
		}
		if r := gcall(t, s, c, "/Message/Read", map[string]any{"gid": gid, "last_id": id1}, 200, 0); r.Int("num") != 1 {
			t.Fatalf("read: %s", r.Raw)
		}
		if r := gcall(t, s, c, "/Message/Read", map[string]any{"gid": gid, "last_id": id1}, 200, 0); r.Int("num") != 0 {
			t.Fatalf("read again: %s", r.Raw)
		}
		un = gcall(t, s, c, "/Message/Unread", nil, 200, 0)
		if un.Body["data"].([]any)[0].(map[string]any)["count"].(float64) != 1 {
			t.Fatalf("c's unread after reading one: %s", un.Raw)
		}
		gcall(t, s, d, "/Message/Read", map[string]any{"gid": gid, "last_id": id1}, 403, 1008)

		// History: newest first, read_by counting others who read it.
		h := into[groupMsgs](t, gcall(t, s, b, "/Message/History", map[string]any{"gid": gid}, 200, 0))
		if h.Num != 2 || h.Data[0].ID != id2 || h.Data[1].ID != id1 || h.Data[0].GID != gid {
			t.Fatalf("history %+v", h)
		}
		// id1 (a's): read by b (b's send moved b past it) and c. id2 (b's): by nobody.
		if *h.Data[1].ReadBy != 2 || *h.Data[0].ReadBy != 0 {
			t.Fatalf("read_by %d/%d, want 2/0", *h.Data[1].ReadBy, *h.Data[0].ReadBy)
		}
		gcall(t, s, d, "/Message/History", map[string]any{"gid": gid}, 403, 1008)
		gcall(t, s, d, "/Message/History", map[string]any{"gid": gid, "uid_with": a.UID}, 400, 1001)
	})
}

// TestGroupRoles checks who may do what: members neither add nor
// update, admins remove members only, the owner hands over, the owner's
// leaving hands ownership on, and the last member's deletes the group.
func TestGroupRoles(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c, d := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cat"), s.NewUser(t, "dan")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		s.Befriend(t, b, d)
		gid := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "g", "data": members(b, c)}, 200, 0)).GID

		gcall(t, s, b, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(d)}, 403, 1008)
		gcall(t, s, b, "/Group/IO/update", map[string]any{"gid": gid, "name": "mine"}, 403, 1008)
		gcall(t, s, b, "/Group/IO/role", map[string]any{"gid": gid, "member": c.UID, "role": "admin"}, 403, 1008)
		gcall(t, s, b, "/Group/IO/role", map[string]any{"gid": gid, "member": b.UID, "role": "admin"}, 403, 1008)
		gcall(t, s, a, "/Group/IO/role", map[string]any{"gid": gid, "member": a.UID, "role": "admin"}, 400, 1001)
		gcall(t, s, a, "/Group/IO/role", map[string]any{"gid": gid, "member": b.UID, "role": "boss"}, 400, 1001)
		gcall(t, s, a, "/Group/IO/role", map[string]any{"gid": gid, "member": d.UID, "role": "admin"}, 404, 1006)
		gcall(t, s, a, "/Group/IO/role", map[string]any{"gid": gid, "member": b.UID, "role": "admin"}, 200, 0)

		// b, an admin now, adds b's contact d, who sees nothing from before.
		before := groupSend(t, s, a, gid, "before dan")
		r := gcall(t, s, b, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(d, c)}, 200, 0)
		if r.Int("num") != 1 {
			t.Fatalf("add: %s", r.Raw)
		}
		after := groupSend(t, s, a, gid, "after dan")
		if got := recvAll(t, s, d); got.Num != 1 || got.Data[0].ID != after {
			t.Fatalf("d's recv %+v, want only %d (not %d)", got, after, before)
		}
		if h := into[groupMsgs](t, gcall(t, s, d, "/Message/History", map[string]any{"gid": gid}, 200, 0)); h.Num != 1 || h.Data[0].ID != after {
			t.Fatalf("d's history %+v", h)
		}

		gcall(t, s, b, "/Group/IO/update", map[string]any{"gid": gid, "name": "renamed"}, 200, 0)
		if n := s.Count(t, "groups", "gid = ? AND name = ?", gid, "renamed"); n != 1 {
			t.Fatal("update did not rename")
		}
		gcall(t, s, b, "/Group/IO/update", map[string]any{"gid": gid, "head_img": "https://example.com/g.png"}, 200, 0)
		gcall(t, s, b, "/Group/IO/update", map[string]any{"gid": gid, "head_img": "javascript:alert(1)"}, 400, 1001)
		if n := s.Count(t, "groups", "gid = ? AND name = ? AND head_img = ?", gid, "renamed", "https://example.com/g.png"); n != 1 {
			t.Fatal("update did not set head_img, or a refused one replaced it")
		}
		// An admin removes a member, not the owner (and nothing then).
		gcall(t, s, b, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(c, a)}, 403, 1008)
		if r := gcall(t, s, b, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(c)}, 200, 0); r.Int("num") != 1 {
			t.Fatalf("remove: %s", r.Raw)
		}
		gcall(t, s, b, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(b)}, 400, 1001)
		gone := groupSend(t, s, a, gid, "c is gone")
		gcall(t, s, c, "/Message/History", map[string]any{"gid": gid}, 403, 1008)
		gcall(t, s, c, "/Message/Send", map[string]any{"gid": gid, "data": "still here?"}, 403, 1008)
		for _, m := range recvAll(t, s, c).Data {
			if m.ID == gone {
				t.Fatal("a removed member received a later message")
			}
		}

		// Hand-over: a makes d owner and becomes admin.
		gcall(t, s, a, "/Group/IO/role", map[string]any{"gid": gid, "member": d.UID, "role": "owner"}, 200, 0)
		roles := map[int64]string{}
		for _, m := range gcall(t, s, a, "/Group/info", map[string]any{"gid": gid}, 200, 0).Body["data"].([]any) {
			e := m.(map[string]any)
			roles[int64(e["uid"].(float64))] = e["role"].(string)
		}
		if roles[d.UID] != "owner" || roles[a.UID] != "admin" || roles[b.UID] != "admin" {
			t.Fatalf("roles after hand-over %v", roles)
		}
		// The owner leaves: the longest-standing admin (a) is owner.
		gcall(t, s, d, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		if n := s.Count(t, "group_members", "gid = ? AND uid = ? AND role = 'owner'", gid, a.UID); n != 1 {
			t.Fatal("ownership did not go to the longest-standing admin")
		}
		gcall(t, s, d, "/Group/IO/leave", map[string]any{"gid": gid}, 403, 1008)
		gcall(t, s, a, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		gcall(t, s, b, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		gcall(t, s, b, "/Group/info", map[string]any{"gid": gid}, 404, 1006)
		if n := s.Count(t, "messages", "gid = ?", gid); n != 0 {
			t.Fatalf("%d messages of a deleted group left", n)
		}
	})
}

// TestGroupStream checks a member's stream: being added is an event
// group, and a group message arrives as a message with gid and no uid_to.
func TestGroupStream(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		l.Befriend(t, a, b)
		gid := into[groupCreated](t, gcall(t, l.Server, a, "/Group/create", map[string]any{"name": "g"}, 200, 0)).GID
		parked := l.Hijacked.Load()
		st := openSSE(t, streamPOST(t, l, b, nil))
		awaitHijacked(t, l, parked+1)
		gcall(t, l.Server, a, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(b)}, 200, 0)
		if ev := st.next(t); ev.event != "group" || ev.data != fmt.Sprintf(`{"gid":%d,"what":"added","uid":%d}`, gid, b.UID) {
			t.Fatalf("got %+v, want the group event", ev)
		}
		id := groupSend(t, l.Server, a, gid, "to all")
		ev := st.next(t)
		if ev.event != "message" || ev.id != fmt.Sprint(id) {
			t.Fatalf("got %+v, want message %d", ev, id)
		}
		var m groupMsg
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil || m.GID != gid || m.UIDTo != nil || m.UIDFrom != a.UID || m.Message != "to all" {
			t.Fatalf("message event %s", ev.data)
		}
	})
}

// TestGroupWakesAcrossInstances: a group Send through one instance
// answers members' long polls held on both, a returning member's too.
func TestGroupWakesAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		alice, bob, carol := a.NewUser(t, "alice"), a.NewUser(t, "bob"), a.NewUser(t, "carol")
		a.Befriend(t, alice, bob)
		a.Befriend(t, alice, carol)
		gid := into[groupCreated](t, gcall(t, a, alice, "/Group/create", map[string]any{"name": "g", "data": members(bob, carol)}, 200, 0)).GID
		onA := startCross(t, a, bob, 0, 20*time.Second)
		onB := startCross(t, b, carol, 0, 20*time.Second)
		settleCross()
		id := groupSend(t, b, alice, gid, "everyone")
		for _, polls := range []<-chan pollResult{onA, onB} {
			got := awaitCross(t, polls, time.Second)
			if len(got.Messages) != 1 || got.Messages[0].ID != id {
				t.Fatalf("poll got %+v, want group message %d", got, id)
			}
		}

		// carol, removed and added back through A, is a member again on B
		// too: a Send through A answers her poll there.
		readd(t, a, alice, carol, gid)
		onB = startCross(t, b, carol, id, 20*time.Second)
		settleCross()
		back := groupSend(t, a, alice, gid, "welcome back")
		if got := awaitCross(t, onB, time.Second); len(got.Messages) != 1 || got.Messages[0].ID != back {
			t.Fatalf("carol's poll on B got %+v, want group message %d", got, back)
		}
	})
}

// TestGroupLimitsAndBadInput: past MaxGroupMembers an add is "full",
// past MaxGroupsPerUser a create is 403/1008 and an add "full"; every
// malformed field is 400/1001 naming it, and writes nothing.
func TestGroupLimitsAndBadInput(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.MaxGroupMembers = 3
			c.MaxGroupsPerUser = 2
		}})
		a, b, c, d := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cat"), s.NewUser(t, "dan")
		for _, u := range []chattest.User{b, c, d} {
			s.Befriend(t, a, u)
		}
		cr := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "one", "data": members(b, c, d)}, 200, 0))
		if cr.Num != 2 || cr.Data[2].Status != "full" {
			t.Fatalf("create past MaxGroupMembers: %+v", cr)
		}
		gcall(t, s, a, "/Group/create", map[string]any{"name": "two"}, 200, 0)
		gcall(t, s, a, "/Group/create", map[string]any{"name": "three"}, 403, 1008)
		gid2 := into[groupCreated](t, gcall(t, s, d, "/Group/create", map[string]any{"name": "d's"}, 200, 0)).GID
		s.Befriend(t, d, b)
		gcall(t, s, d, "/Group/create", map[string]any{"name": "d's 2"}, 200, 0)
		if r := into[groupCreated](t, gcall(t, s, d, "/Group/IO/addMembers", map[string]any{"gid": gid2, "data": members(b)}, 200, 0)); r.Data[0].Status != "added" {
			t.Fatalf("add b: %+v", r)
		}
		// a is in two groups now: d cannot add a to a third.
		if r := into[groupCreated](t, gcall(t, s, d, "/Group/IO/addMembers", map[string]any{"gid": gid2, "data": members(a)}, 200, 0)); r.Data[0].Status != "full" {
			t.Fatalf("add a past MaxGroupsPerUser: %+v", r)
		}

		groupsBefore := s.Count(t, "groups", "")
		long := strings.Repeat("x", 65)
		hundredOne := make([]map[string]any, 101)
		for i := range hundredOne {
			hundredOne[i] = map[string]any{"uid": b.UID}
		}
		for _, tc := range []struct {
			path, field string
			body        map[string]any
		}{
			{"/Group/create", "name", map[string]any{}},
			{"/Group/create", "name", map[string]any{"name": long}},
			{"/Group/create", "name", map[string]any{"name": "a\x00b"}},
			{"/Group/create", "data", map[string]any{"name": "n", "data": hundredOne}},
			{"/Group/create", "data[0].uid", map[string]any{"name": "n", "data": []any{map[string]any{"uid": "x"}}}},
			{"/Group/info", "gid", map[string]any{"gid": "abc"}},
			{"/Group/info", "gid", map[string]any{}},
			{"/Group/IO/addMembers", "data", map[string]any{"gid": cr.GID}},
			{"/Group/IO/removeMembers", "gid", map[string]any{"gid": -3, "data": members(b)}},
			{"/Group/IO/update", "head_img", map[string]any{"gid": cr.GID, "head_img": "x\ny"}},
			{"/Group/IO/update", "head_img", map[string]any{"gid": cr.GID, "head_img": "javascript:alert(1)"}},
			{"/Group/IO/update", "head_img", map[string]any{"gid": cr.GID, "head_img": "data:image/png;base64,AAAA"}},
			{"/Group/IO/role", "role", map[string]any{"gid": cr.GID, "member": b.UID, "role": "king"}},
			{"/Group/IO/role", "member", map[string]any{"gid": cr.GID, "role": "admin"}},
			{"/Group/IO/leave", "gid", map[string]any{"gid": 1.5}},
			{"/Message/Send", "gid", map[string]any{"gid": []int{1}, "data": "x"}},
			{"/Message/Read", "gid", map[string]any{"gid": "g", "last_id": 1}},
			{"/Message/Read", "last_id", map[string]any{"gid": cr.GID}},
			{"/Message/History", "gid", map[string]any{"gid": true}},
		} {
			r := gcall(t, s, a, tc.path, tc.body, 400, 1001)
			if !strings.Contains(r.Str("msg"), tc.field) {
				t.Errorf("%s %v: msg %q does not name %s", tc.path, tc.body, r.Str("msg"), tc.field)
			}
		}
		if n := s.Count(t, "groups", ""); n != groupsBefore {
			t.Fatalf("bad input made groups: %d, was %d", n, groupsBefore)
		}
	})
}

// TestGroupEvents: the host hears of every membership change, once,
// after commit, and of each group message with its gid; BeforeSend sees
// the gid and may refuse a group message like any other.
func TestGroupEvents(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rec := &recorder{}
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.OnEvent = rec.handle
			c.BeforeSend = func(_ context.Context, m events.Outgoing) error {
				if m.GID != 0 && strings.Contains(m.Body, "spam") {
					return apierr.Forbidden("not allowed: looks like spam")
				}
				return nil
			}
		}})
		a, b, c := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cat")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		gid := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "g", "data": members(b)}, 200, 0)).GID
		gcall(t, s, a, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(c)}, 200, 0)
		gcall(t, s, a, "/Group/IO/update", map[string]any{"gid": gid, "name": "h"}, 200, 0)
		gcall(t, s, a, "/Group/IO/role", map[string]any{"gid": gid, "member": b.UID, "role": "admin"}, 200, 0)
		gcall(t, s, a, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(c)}, 200, 0)
		gcall(t, s, b, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		id := groupSend(t, s, a, gid, "hello")
		gcall(t, s, a, "/Message/Send", map[string]any{"gid": gid, "data": "spam"}, 403, 1008)

		rec.mu.Lock()
		defer rec.mu.Unlock()
		var got []string
		for _, e := range rec.events {
			switch e := e.(type) {
			case events.GroupChanged:
				if e.GID != gid || e.By == 0 || e.Time == 0 {
					t.Errorf("event %+v", e)
				}
				got = append(got, fmt.Sprintf("%s:%d", e.What, e.UID))
			case events.MessageStored:
				if e.GID != gid || e.ID != id || e.To != 0 {
					t.Errorf("stored %+v", e)
				}
				got = append(got, "stored")
			}
		}
		want := []string{"created:" + fmt.Sprint(a.UID), "added:" + fmt.Sprint(c.UID), "updated:" + fmt.Sprint(a.UID),
			"role:" + fmt.Sprint(b.UID), "removed:" + fmt.Sprint(c.UID), "left:" + fmt.Sprint(b.UID), "stored"}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("events %v, want %v", got, want)
		}
	})
}

// TestNoticesAcrossInstances: a notice caused on one instance (a group
// change, a contact request) reaches the user's stream open on another.
func TestNoticesAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		rs := chattest.StartRedis(t)
		opts := func() chattest.Options {
			cl := rs.Client(t)
			return chattest.Options{Config: func(c *module.Config) { c.Redis = cl }}
		}
		l := chattest.NewLive(t, db, opts())
		b := l.Twin(t, opts())
		chattest.AwaitRedis(t, l.Server, b)
		alice, bob, carol := l.NewUser(t, "alice"), l.NewUser(t, "bob"), l.NewUser(t, "carol")
		l.Befriend(t, alice, bob)
		gid := into[groupCreated](t, gcall(t, b, alice, "/Group/create", map[string]any{"name": "g"}, 200, 0)).GID
		parked := l.Hijacked.Load()
		st := openSSE(t, streamPOST(t, l, bob, nil))
		awaitHijacked(t, l, parked+1)
		gcall(t, b, alice, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(bob)}, 200, 0)
		if ev := st.next(t); ev.event != "group" || ev.data != fmt.Sprintf(`{"gid":%d,"what":"added","uid":%d}`, gid, bob.UID) {
			t.Fatalf("got %+v, want the group event from the other instance", ev)
		}
		gcall(t, b, carol, "/Contacts/IO/addContacts", map[string]any{"data": members(bob)}, 200, 0)
		if ev := st.next(t); ev.event != "contact" || ev.data != fmt.Sprintf(`{"uid":%d,"what":"request"}`, carol.UID) {
			t.Fatalf("got %+v, want the contact request from the other instance", ev)
		}
	})
}

// TestGroupSweepForgetsEndedMemberships: once retention has purged every
// message a former member could still receive, the sweep deletes their
// row, and the earlier span of a member who came back; a current
// member's row stays.
func TestGroupSweepForgetsEndedMemberships(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.MessageRetention = time.Hour }})
		a, b, c := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cat")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		gid := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "g", "data": members(b, c)}, 200, 0)).GID
		groupSend(t, s, a, gid, "old")
		gcall(t, s, a, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(c)}, 200, 0)
		gcall(t, s, a, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(b)}, 200, 0)
		gcall(t, s, a, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(b)}, 200, 0)
		s.Module.SweepNow(context.Background())
		if n := s.Count(t, "group_members", "gid = ?", gid); n != 3 {
			t.Fatalf("%d membership rows before the purge, want 3 (c may still receive \"old\")", n)
		}
		if n := s.Count(t, "group_spans", "gid = ? AND uid = ?", gid, b.UID); n != 1 {
			t.Fatalf("%d earlier spans of bob before the purge, want 1", n)
		}
		s.Clock.Advance(2 * time.Hour)
		groupSend(t, s, a, gid, "new")
		s.Module.SweepNow(context.Background())
		if n := s.Count(t, "group_members", "gid = ?", gid); n != 2 {
			t.Fatalf("%d membership rows after the purge, want 2", n)
		}
		if n := s.Count(t, "group_members", "gid = ? AND uid = ?", gid, c.UID); n != 0 {
			t.Fatal("the former member's row is still there")
		}
		if n := s.Count(t, "group_spans", "gid = ?", gid); n != 0 {
			t.Fatalf("%d earlier spans after the purge, want 0", n)
		}
	})
}

// TestGroupPurgeUncounts: messages retention purged are not counted
// unread any more, in a group as in a 1:1 conversation; a member who had
// read past them keeps their mark.
func TestGroupPurgeUncounts(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.MessageRetention = time.Hour }})
		a, b, c := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cat")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		gid := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "g", "data": members(b, c)}, 200, 0)).GID
		for i := range 3 {
			groupSend(t, s, a, gid, fmt.Sprint("old ", i))
		}
		read := groupSend(t, s, a, gid, "old, read by cat")
		gcall(t, s, c, "/Message/Read", map[string]any{"gid": gid, "last_id": read}, 200, 0)
		s.Clock.Advance(2 * time.Hour)
		fresh := groupSend(t, s, a, gid, "new")
		s.Module.SweepNow(context.Background())
		if n := s.Count(t, "messages", "gid = ?", gid); n != 1 {
			t.Fatalf("%d of the group's messages left after the purge, want 1", n)
		}
		for _, u := range []chattest.User{b, c} {
			un := gcall(t, s, u, "/Message/Unread", nil, 200, 0)
			if want := fmt.Sprintf(`{"num":1,"msg":"success","error":0,"data":[{"gid":%d,"count":1,"last_id":%d}]}`, gid, fresh); string(un.Raw) != want {
				t.Fatalf("%s's unread %s, want %s", u.Name, un.Raw, want)
			}
		}
	})
}

// TestGroupListOrder: /Group/list puts the newest activity first, and a
// group just made or joined counts as active: made after the other's last
// message, it comes first, and the other again once it has a newer one;
// a member added to an old group finds it first too.
func TestGroupListOrder(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "ann"), s.NewUser(t, "bob"), s.NewUser(t, "cid")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		order := func(u chattest.User) []int64 {
			var out []int64
			for _, e := range gcall(t, s, u, "/Group/list", nil, 200, 0).Body["data"].([]any) {
				out = append(out, int64(e.(map[string]any)["gid"].(float64)))
			}
			return out
		}
		team := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "team", "data": members(b)}, 200, 0)).GID
		groupSend(t, s, a, team, "hello team")
		other := into[groupCreated](t, gcall(t, s, a, "/Group/create", map[string]any{"name": "other", "data": members(b, c)}, 200, 0)).GID
		if got := order(b); fmt.Sprint(got) != fmt.Sprint([]int64{other, team}) {
			t.Fatalf("list order %v, want the new group %d first", got, other)
		}
		groupSend(t, s, a, team, "team is active again")
		if got := order(b); fmt.Sprint(got) != fmt.Sprint([]int64{team, other}) {
			t.Fatalf("list order %v, want %d, with the newest message, first", got, team)
		}
		// cid joins team, older than other for the others: first for cid.
		gcall(t, s, a, "/Group/IO/addMembers", map[string]any{"gid": team, "data": members(c)}, 200, 0)
		groupSend(t, s, b, other, "other is newer for ann and bob")
		if got := order(c); fmt.Sprint(got) != fmt.Sprint([]int64{other, team}) {
			t.Fatalf("cid's list order %v, want other (its message after cid joined team) first", got)
		}
		// What cid sees of team starts at the join all the same.
		if h := into[groupMsgs](t, gcall(t, s, c, "/Message/History", map[string]any{"gid": team}, 200, 0)); h.Num != 0 {
			t.Fatalf("cid's team history %+v, want nothing from before the join", h)
		}
		id := groupSend(t, s, a, team, "for cid too")
		if h := into[groupMsgs](t, gcall(t, s, c, "/Message/History", map[string]any{"gid": team}, 200, 0)); h.Num != 1 || h.Data[0].ID != id {
			t.Fatalf("cid's team history %+v, want message %d", h, id)
		}
	})
}

// TestGroupAddLocksUsersInOrder: adding members takes their users' row
// locks in uid order, as a Send batch does. A transaction holding the
// lower uid's lock, as a batch to both would, can then take the higher
// one's while an add of the two in the reverse order waits, where
// memberships written in the request's order would have held the higher
// one's (their foreign key's shared lock) and deadlocked with it.
func TestGroupAddLocksUsersInOrder(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		if db.Name != "mysql" {
			t.Skip("row locks are MariaDB's: SQLite runs one writer at a time")
		}
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, lo, hi := s.NewUser(t, "owner"), s.NewUser(t, "lo"), s.NewUser(t, "hi")
		s.Befriend(t, owner, lo)
		s.Befriend(t, owner, hi)
		gid := into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": "g"}, 200, 0)).GID

		other := s.Module.DB().Begin()
		defer other.Rollback()
		lock := func(uid int64) error {
			var got []int64
			return other.Raw("SELECT uid FROM chat_users WHERE uid = ? FOR UPDATE", uid).Scan(&got).Error
		}
		if err := lock(lo.UID); err != nil {
			t.Fatal(err)
		}
		sdk := s.SDKFor(t, owner)
		added := make(chan error, 1)
		go func() {
			_, err := sdk.AddGroupMembers(context.Background(), gid, hi.UID, lo.UID)
			added <- err
		}()
		// Until the add waits on a lock in this database.
		deadline := time.Now().Add(10 * time.Second)
		for {
			var running int64
			var waits struct {
				Value int64 `gorm:"column:Value"`
			}
			s.Module.DB().Raw("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE DB = DATABASE() AND COMMAND = 'Query' AND ID <> CONNECTION_ID()").Scan(&running)
			s.Module.DB().Raw("SHOW GLOBAL STATUS LIKE 'Innodb_row_lock_current_waits'").Scan(&waits)
			if running > 0 && waits.Value > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the add never waited for the lock held")
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err := lock(hi.UID); err != nil {
			t.Fatalf("locking %d after %d: %v (the add held %d's row out of uid order)", hi.UID, lo.UID, err, hi.UID)
		}
		if err := other.Commit().Error; err != nil {
			t.Fatal(err)
		}
		if err := <-added; err != nil {
			t.Fatalf("add: %v", err)
		}
		if n := s.Count(t, "group_members", "gid = ? AND until_id = 0", gid); n != 3 {
			t.Fatalf("%d members, want 3", n)
		}
	})
}
