package module_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
)

// The tests of API.md §13's replies, edits, deletes and reactions, through
// the wire as a client written from API.md sees them.

type richReaction struct {
	Emoji string  `json:"emoji"`
	UIDs  []int64 `json:"uids"`
}

// richMsg is a record of Recv, Stream or History with §13's fields.
type richMsg struct {
	ID         int64           `json:"id"`
	UIDFrom    int64           `json:"uid_from"`
	GID        int64           `json:"gid"`
	Message    *string         `json:"message"`
	Enc        json.RawMessage `json:"enc"`
	Time       int64           `json:"time"`
	Kind       string          `json:"kind"`
	RefID      int64           `json:"ref_id"`
	ReplyTo    int64           `json:"reply_to"`
	Emoji      string          `json:"emoji"`
	On         *bool           `json:"on"`
	EditedTime int64           `json:"edited_time"`
	Deleted    bool            `json:"deleted"`
	Reactions  []richReaction  `json:"reactions"`
}

type richPage struct {
	Num    int       `json:"num"`
	Data   []richMsg `json:"data"`
	LastID int64     `json:"last_id"`
}

// recvPast reads u's records past lastID.
func recvPast(t *testing.T, s *chattest.Server, u chattest.User, lastID int64) richPage {
	t.Helper()
	return into[richPage](t, gcall(t, s, u, "/Message/Recv", map[string]any{"last_id": lastID, "limit": 500}, 200, 0))
}

// historyWith reads u's History page with a uid (uid_with) or a group.
func historyWith(t *testing.T, s *chattest.Server, u chattest.User, key string, with int64) richPage {
	t.Helper()
	return into[richPage](t, gcall(t, s, u, "/Message/History", map[string]any{key: with}, 200, 0))
}

func text(m richMsg) string {
	if m.Message == nil {
		return ""
	}
	return *m.Message
}

// update posts an update and returns the update entry's id.
func update(t *testing.T, s *chattest.Server, u chattest.User, path string, fields map[string]any) int64 {
	t.Helper()
	return gcall(t, s, u, path, fields, 200, 0).Int("id")
}

// expectField checks a refusal is 400/1001 naming field.
func expectField(t *testing.T, s *chattest.Server, u chattest.User, path string, fields map[string]any, field string) {
	t.Helper()
	r := gcall(t, s, u, path, fields, 400, 1001)
	if !strings.HasPrefix(r.Str("msg"), "invalid "+field) {
		t.Errorf("%s %v: %s does not name %s", path, fields, r.Raw, field)
	}
}

// TestDirectUpdates walks replies, edits, reactions and deletes through a
// 1:1 conversation: each update reaches the other user (never its
// maker) as an entry past their cursor, History shows the current state
// without the entries, and the refusals are API.md's.
func TestDirectUpdates(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		var mu sync.Mutex
		var hooked []events.MessageUpdated
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.OnEvent = func(_ context.Context, e events.Event) error {
				if u, ok := e.(events.MessageUpdated); ok {
					mu.Lock()
					defer mu.Unlock()
					hooked = append(hooked, u)
				}
				return nil
			}
		}})
		a, b, c := s.NewUser(t, "a"), s.NewUser(t, "b"), s.NewUser(t, "c")
		s.Befriend(t, a, b)
		s.Befriend(t, a, c)
		first := mustSend(t, s, a, b, "first text")
		elsewhere := mustSend(t, s, a, c, "to c")
		reply := gcall(t, s, b, "/Message/Send", map[string]any{"uid_to": a.UID, "data": "a reply", "reply_to": first}, 200, 0).Int("id")
		for _, bad := range []int64{elsewhere, 999999} {
			expectField(t, s, b, "/Message/Send", map[string]any{"uid_to": a.UID, "data": "x", "reply_to": bad}, "reply_to")
		}
		expectField(t, s, b, "/Message/Send", map[string]any{"uid_to": a.UID, "data": "x", "reply_to": -1}, "reply_to")

		edit := update(t, s, a, "/Message/Edit", map[string]any{"id": first, "data": "second text"})
		s.Clock.Advance(time.Second)
		edit2 := update(t, s, a, "/Message/Edit", map[string]any{"id": first, "data": "third text"})
		react := update(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": "👍", "on": 1})
		if again := update(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": "👍", "on": 1}); again != 0 {
			t.Errorf("a repeated reaction stored entry %d", again)
		}
		update(t, s, a, "/Message/React", map[string]any{"id": first, "emoji": "❤️", "on": 1})
		expectField(t, s, b, "/Message/Send", map[string]any{"uid_to": a.UID, "data": "x", "reply_to": edit2}, "reply_to")

		// b gets a's edits (the latest only: an edit replaces the one
		// before) and a's reaction, not its own; a gets b's reply and
		// reaction.
		got := recvPast(t, s, b, first)
		if got.Num != 2 || got.Data[0].Kind != "edit" || got.Data[0].RefID != first || text(got.Data[0]) != "third text" || got.Data[0].ID != edit2 {
			t.Fatalf("b's recv: %+v (edit %d replaced by %d)", got, edit, edit2)
		}
		if r := got.Data[1]; r.Kind != "reaction" || r.RefID != first || r.Emoji != "❤️" || r.On == nil || !*r.On || r.Message != nil {
			t.Fatalf("b's reaction record: %+v", r)
		}
		got = recvPast(t, s, a, 0)
		if got.Num != 2 || got.Data[0].ID != reply || got.Data[0].ReplyTo != first || got.Data[0].Kind != "text" ||
			got.Data[1].ID != react || got.Data[1].Kind != "reaction" || got.Data[1].Emoji != "👍" {
			t.Fatalf("a's recv: %+v", got)
		}

		h := historyWith(t, s, b, "uid_with", a.UID)
		if h.Num != 2 || h.Data[0].ID != reply || h.Data[0].ReplyTo != first || h.Data[1].ID != first {
			t.Fatalf("history: %+v", h)
		}
		m := h.Data[1]
		wantReactions := []richReaction{{"👍", []int64{b.UID}}, {"❤️", []int64{a.UID}}}
		if text(m) != "third text" || m.EditedTime != s.Clock.Now().Unix() || m.Kind != "text" || fmt.Sprint(m.Reactions) != fmt.Sprint(wantReactions) {
			t.Fatalf("history record %+v, want the edited text and reactions %v", m, wantReactions)
		}

		// Taking a reaction off.
		off := update(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": "👍", "on": "0"})
		if got := recvPast(t, s, a, react); got.Num != 1 || got.Data[0].ID != off || *got.Data[0].On {
			t.Fatalf("a's recv of the reaction taken off: %+v", got)
		}
		if n := s.Count(t, "messages", "ref_id = ? AND kind = 4 AND from_uid = ?", first, b.UID); n != 1 {
			t.Errorf("%d reaction entries of b kept, want the latest only", n)
		}

		// The refusals.
		gcall(t, s, b, "/Message/Edit", map[string]any{"id": first, "data": "not mine"}, 403, 1008)
		gcall(t, s, c, "/Message/Edit", map[string]any{"id": first, "data": "not mine"}, 404, 1006)
		gcall(t, s, c, "/Message/React", map[string]any{"id": first, "emoji": "👍", "on": 1}, 404, 1006)
		gcall(t, s, b, "/Message/Delete", map[string]any{"id": first}, 403, 1008)
		gcall(t, s, a, "/Message/Edit", map[string]any{"id": 999999, "data": "x"}, 404, 1006)
		gcall(t, s, a, "/Message/Edit", map[string]any{"id": edit2, "data": "an entry"}, 404, 1006)
		expectField(t, s, a, "/Message/Edit", map[string]any{"id": first}, "data")
		expectField(t, s, a, "/Message/Edit", map[string]any{"data": "x"}, "id")
		expectField(t, s, a, "/Message/Edit", map[string]any{"id": first, "enc": json.RawMessage(testEnc(b.UID))}, "enc")
		expectField(t, s, a, "/Message/Edit", map[string]any{"id": first, "data": strings.Repeat("x", 4001)}, "data")
		for _, bad := range []string{"", "ab", "👍👍", "😀 ", "1", strings.Repeat("👍", 9), "\u200d", "∑", "°", "👍🏽🏽"} {
			expectField(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": bad, "on": 1}, "emoji")
		}
		// Taken off, any reaction an earlier, looser check let on goes.
		gcall(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": "∑", "on": 0}, 200, 0)
		expectField(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": strings.Repeat("x", 33), "on": 0}, "emoji")
		for _, good := range []string{"👍🏽", "👨‍👩‍👧", "🇫🇷", "1️⃣", "❤️"} {
			update(t, s, c, "/Message/React", map[string]any{"id": elsewhere, "emoji": good, "on": 1})
		}
		expectField(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": "👍", "on": 2}, "on")
		expectField(t, s, b, "/Message/React", map[string]any{"id": first, "emoji": "👍"}, "on")

		s.Clock.Advance(48*time.Hour + time.Minute)
		a, b = login(t, s, a), login(t, s, b)
		gcall(t, s, a, "/Message/Edit", map[string]any{"id": reply, "data": "not mine, late"}, 403, 1008)
		gcall(t, s, a, "/Message/Edit", map[string]any{"id": first, "data": "too late"}, 403, 1008)

		// Delete erases, any time: the record stays, deleted, its text
		// and its edits' text gone from every table.
		del := update(t, s, a, "/Message/Delete", map[string]any{"id": first})
		if again := update(t, s, a, "/Message/Delete", map[string]any{"id": first}); again != 0 {
			t.Errorf("a second delete stored entry %d", again)
		}
		if got := recvPast(t, s, b, off); got.Num != 1 || got.Data[0].Kind != "delete" || got.Data[0].RefID != first || got.Data[0].ID != del {
			t.Fatalf("b's recv of the delete: %+v", got)
		}
		h = historyWith(t, s, b, "uid_with", a.UID)
		if m := h.Data[1]; m.ID != first || !m.Deleted || m.Message != nil || m.Reactions != nil || m.EditedTime != 0 {
			t.Fatalf("deleted message in history: %+v", m)
		}
		for _, gone := range []string{"first text", "second text", "third text"} {
			if where := searchEverywhere(t, s, gone); len(where) > 0 {
				t.Errorf("%q, deleted, is still in %v", gone, where)
			}
		}
		gcall(t, s, a, "/Message/React", map[string]any{"id": first, "emoji": "👍", "on": 1}, 409, 1007)
		gcall(t, s, a, "/Message/Edit", map[string]any{"id": first, "data": "back"}, 409, 1007)

		// Unread counts only messages: b has a's first and nothing of
		// the entries.
		if u := unreadRaw(t, s, b); u[a.UID][0] != 1 {
			t.Errorf("b's unread %v, want 1 from a", u)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(hooked) < 3 || hooked[0].What != "edit" || hooked[0].Body != "second text" || hooked[0].RefID != first || hooked[0].To != b.UID {
			t.Errorf("events: %+v", hooked)
		}
	})
}

// TestReactionLimit: twenty distinct emoji per message per user, and no
// more; taking one off makes room.
func TestReactionLimit(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		id := mustSend(t, s, a, b, "react to me")
		emoji := []rune("😀😁😂😃😄😅😆😇😈😉😊😋😌😍😎😏😐😑😒😓😔")
		for _, e := range emoji[:20] {
			update(t, s, b, "/Message/React", map[string]any{"id": id, "emoji": string(e), "on": 1})
		}
		gcall(t, s, b, "/Message/React", map[string]any{"id": id, "emoji": string(emoji[20]), "on": 1}, 403, 1008)
		update(t, s, a, "/Message/React", map[string]any{"id": id, "emoji": string(emoji[20]), "on": 1})
		update(t, s, b, "/Message/React", map[string]any{"id": id, "emoji": string(emoji[0]), "on": 0})
		update(t, s, b, "/Message/React", map[string]any{"id": id, "emoji": string(emoji[20]), "on": 1})
		h := historyWith(t, s, a, "uid_with", b.UID)
		if len(h.Data[0].Reactions) != 20 {
			t.Fatalf("%d emoji on the message, want 20: %+v", len(h.Data[0].Reactions), h.Data[0].Reactions)
		}
	})
}

// TestGroupUpdates: in a group an update reaches every member but its
// maker; an owner or admin may delete another's message, a member may
// not; a reply names a message of the group.
func TestGroupUpdates(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, admin, m1, m2, out := s.NewUser(t, "owner"), s.NewUser(t, "admin"), s.NewUser(t, "m1"), s.NewUser(t, "m2"), s.NewUser(t, "out")
		for _, u := range []chattest.User{admin, m1, m2, out} {
			s.Befriend(t, owner, u)
		}
		gid := into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": "g", "data": members(admin, m1, m2)}, 200, 0)).GID
		gcall(t, s, owner, "/Group/IO/role", map[string]any{"gid": gid, "member": admin.UID, "role": "admin"}, 200, 0)
		direct := mustSend(t, s, owner, m1, "direct")
		msg := groupSend(t, s, m1, gid, "group text")
		other := groupSend(t, s, m2, gid, "m2's text")
		gcall(t, s, m2, "/Message/Send", map[string]any{"gid": gid, "data": "re", "reply_to": msg}, 200, 0)
		expectField(t, s, m2, "/Message/Send", map[string]any{"gid": gid, "data": "re", "reply_to": direct}, "reply_to")
		gcall(t, s, out, "/Message/Send", map[string]any{"gid": gid, "data": "re", "reply_to": msg}, 403, 1008)
		// A gid that names no group is that, whatever the reply_to
		// (API.md §12: 404/1006).
		gcall(t, s, m2, "/Message/Send", map[string]any{"gid": gid + 1000, "data": "re", "reply_to": msg}, 404, 1006)
		gcall(t, s, m2, "/Message/Send", map[string]any{"gid": gid + 1000, "data": "re", "reply_to": 99999999}, 404, 1006)
		// So is a non-member's Send (403/1008), and a uid_to that names no
		// user (404/1006).
		gcall(t, s, out, "/Message/Send", map[string]any{"gid": gid, "data": "re", "reply_to": direct}, 403, 1008)
		gcall(t, s, out, "/Message/Send", map[string]any{"gid": gid, "data": "re", "reply_to": 99999999}, 403, 1008)
		gcall(t, s, m2, "/Message/Send", map[string]any{"uid_to": 99999999, "data": "re", "reply_to": msg}, 404, 1006)

		edit := update(t, s, m1, "/Message/Edit", map[string]any{"id": msg, "data": "group text, edited"})
		react := update(t, s, m2, "/Message/React", map[string]any{"id": msg, "emoji": "🎉", "on": 1})
		for _, u := range []chattest.User{owner, admin, m2} {
			got := recvPast(t, s, u, other)
			var kinds []string
			for _, r := range got.Data {
				if r.RefID == msg {
					kinds = append(kinds, r.Kind)
				}
				if r.Kind != "text" && r.GID != gid {
					t.Errorf("%s: entry %+v lacks the gid", u.Name, r)
				}
			}
			want := "[edit reaction]"
			if u.UID == m2.UID {
				want = "[edit]"
			}
			if fmt.Sprint(kinds) != want {
				t.Errorf("%s's recv: %v, want %s", u.Name, kinds, want)
			}
		}
		if got := recvPast(t, s, m1, edit); got.Num != 1 || got.Data[0].ID != react {
			t.Errorf("m1's recv past its edit: %+v", got)
		}
		gcall(t, s, out, "/Message/React", map[string]any{"id": msg, "emoji": "🎉", "on": 1}, 403, 1008)
		gcall(t, s, m2, "/Message/Delete", map[string]any{"id": msg}, 403, 1008)
		update(t, s, admin, "/Message/Delete", map[string]any{"id": other})
		update(t, s, owner, "/Message/Delete", map[string]any{"id": msg})
		h := historyWith(t, s, m2, "gid", gid)
		var deleted int
		for _, r := range h.Data {
			if r.Kind != "text" {
				t.Errorf("history has an update entry: %+v", r)
			}
			if r.Deleted {
				deleted++
				if r.Message != nil || r.Reactions != nil {
					t.Errorf("deleted record keeps its text (or an empty one, unlike a 1:1 record): %+v", r)
				}
			}
		}
		if deleted != 2 || h.Num != 3 {
			t.Fatalf("group history: %+v", h)
		}
		if where := searchEverywhere(t, s, "group text"); len(where) > 0 {
			t.Errorf("deleted group text in %v", where)
		}
		// Reading up to an entry marks the messages before it read.
		gcall(t, s, admin, "/Message/Read", map[string]any{"gid": gid, "last_id": recvPast(t, s, admin, 0).LastID}, 200, 0)
		if u := unreadRaw(t, s, admin); len(u) != 0 {
			t.Errorf("admin's unread after reading to the last entry: %v", u)
		}
	})
}

// TestGroupUpdatesOfUnseenMessages: an update goes to the users its
// message went to (API.md §13), so a member who joined after a message
// gets none of its edits, reactions or its delete, and gets those of the
// messages sent since.
func TestGroupUpdatesOfUnseenMessages(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, m1, late := s.NewUser(t, "owner"), s.NewUser(t, "m1"), s.NewUser(t, "late")
		s.Befriend(t, owner, m1)
		s.Befriend(t, owner, late)
		gid := into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": "g", "data": members(m1)}, 200, 0)).GID
		before := groupSend(t, s, m1, gid, "before late joined")
		gcall(t, s, owner, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(late)}, 200, 0)
		after := groupSend(t, s, m1, gid, "after late joined")
		update(t, s, m1, "/Message/Edit", map[string]any{"id": before, "data": "before, edited"})
		update(t, s, owner, "/Message/React", map[string]any{"id": before, "emoji": "🎉", "on": 1})
		update(t, s, m1, "/Message/Edit", map[string]any{"id": after, "data": "after, edited"})
		react := update(t, s, owner, "/Message/React", map[string]any{"id": after, "emoji": "🎉", "on": 1})

		entries := func(u chattest.User, past int64) []string {
			var got []string
			for _, r := range recvPast(t, s, u, past).Data {
				got = append(got, fmt.Sprintf("%s:%d", r.Kind, r.RefID))
			}
			return got
		}
		want := fmt.Sprint([]string{"text:0", fmt.Sprintf("edit:%d", after), fmt.Sprintf("reaction:%d", after)})
		if got := entries(late, 0); fmt.Sprint(got) != want {
			t.Errorf("late's recv: %v, want %v", got, want)
		}
		// The others get every update but their own.
		want = fmt.Sprint([]string{fmt.Sprintf("reaction:%d", before), fmt.Sprintf("reaction:%d", after)})
		if got := entries(m1, after); fmt.Sprint(got) != want {
			t.Errorf("m1's recv past %d: %v, want %v", after, got, want)
		}
		want = fmt.Sprint([]string{fmt.Sprintf("edit:%d", before), fmt.Sprintf("edit:%d", after)})
		if got := entries(owner, after); fmt.Sprint(got) != want {
			t.Errorf("owner's recv past %d: %v, want %v", after, got, want)
		}

		update(t, s, m1, "/Message/Delete", map[string]any{"id": before})
		if got := entries(late, react); len(got) != 0 {
			t.Errorf("late's recv past %d: %v, want nothing (the delete of a message sent before they joined)", react, got)
		}
		if got, want := entries(owner, react), fmt.Sprintf("[delete:%d]", before); fmt.Sprint(got) != want {
			t.Errorf("owner's recv past %d: %v, want %s", react, got, want)
		}
	})
}

// groupOfThree makes a group of owner with m1 and m2, owner's contacts.
func groupOfThree(t *testing.T, s *chattest.Server) (owner, m1, m2 chattest.User, gid int64) {
	t.Helper()
	owner, m1, m2 = s.NewUser(t, "owner"), s.NewUser(t, "m1"), s.NewUser(t, "m2")
	s.Befriend(t, owner, m1)
	s.Befriend(t, owner, m2)
	gid = into[groupCreated](t, gcall(t, s, owner, "/Group/create", map[string]any{"name": "g", "data": members(m1, m2)}, 200, 0)).GID
	return owner, m1, m2, gid
}

// readd has owner remove u from gid and add them back.
func readd(t *testing.T, s *chattest.Server, owner, u chattest.User, gid int64) {
	t.Helper()
	gcall(t, s, owner, "/Group/IO/removeMembers", map[string]any{"gid": gid, "data": members(u)}, 200, 0)
	gcall(t, s, owner, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(u)}, 200, 0)
}

// TestGroupDeleteBySenderWhoLeft: the sender may delete their message
// at any time (API.md §13), after leaving the group too, or after being
// removed and added back; the members it reached get the delete. Edits
// and reactions stay for members.
func TestGroupDeleteBySenderWhoLeft(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, m1, m2, gid := groupOfThree(t, s)
		first := groupSend(t, s, m1, gid, "first")
		second := groupSend(t, s, m2, gid, "second")
		gcall(t, s, m1, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)

		gcall(t, s, m1, "/Message/Edit", map[string]any{"id": first, "data": "edited"}, 403, 1008)
		gcall(t, s, m1, "/Message/React", map[string]any{"id": first, "emoji": "🎉", "on": 1}, 403, 1008)
		gcall(t, s, m1, "/Message/Delete", map[string]any{"id": second}, 403, 1008)
		del := update(t, s, m1, "/Message/Delete", map[string]any{"id": first})
		if got := recvPast(t, s, owner, second).Data; len(got) != 1 || got[0].Kind != "delete" || got[0].RefID != first || got[0].ID != del {
			t.Fatalf("owner's recv past %d: %+v, want the delete of %d", second, got, first)
		}
		if s.Count(t, "messages", "id = ? AND deleted = ? AND body = ''", first, true) != 1 {
			t.Fatalf("message %d is not deleted with its text erased", first)
		}

		// Removed, then added back: their own message of the span before
		// is still theirs to delete.
		readd(t, s, owner, m2, gid)
		update(t, s, m2, "/Message/Delete", map[string]any{"id": second})
		if s.Count(t, "messages", "id = ? AND deleted = ?", second, true) != 1 {
			t.Fatalf("message %d is not deleted", second)
		}
	})
}

// TestGroupRejoin: a member who left and was added again sees what was
// sent while they were in, both times, and nothing of the time between
// (API.md §12): in History, in Recv from a cursor before they left,
// in the updates of those messages, and as messages to react and reply
// to.
func TestGroupRejoin(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, m1, m2, gid := groupOfThree(t, s)
		a := groupSend(t, s, m1, gid, "a")
		gcall(t, s, m2, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		b := groupSend(t, s, m1, gid, "b")
		gcall(t, s, owner, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(m2)}, 200, 0)
		c := groupSend(t, s, m1, gid, "c")

		ids := func(p richPage) []int64 {
			var out []int64
			for _, r := range p.Data {
				out = append(out, r.ID)
			}
			return out
		}
		if got, want := fmt.Sprint(ids(historyWith(t, s, m2, "gid", gid))), fmt.Sprint([]int64{c, a}); got != want {
			t.Errorf("m2's history: %s, want %s (not %d, sent while they were out)", got, want, b)
		}
		page := into[richPage](t, gcall(t, s, m2, "/Message/History", map[string]any{"gid": gid, "limit": 1, "before_id": c}, 200, 0))
		if got := ids(page); len(got) != 1 || got[0] != a {
			t.Errorf("m2's history below %d: %v, want [%d]", c, got, a)
		}
		if got, want := fmt.Sprint(ids(recvPast(t, s, m2, 0))), fmt.Sprint([]int64{a, c}); got != want {
			t.Errorf("m2's recv from 0: %s, want %s", got, want)
		}

		update(t, s, m2, "/Message/React", map[string]any{"id": a, "emoji": "🎉", "on": 1})
		gcall(t, s, m2, "/Message/React", map[string]any{"id": b, "emoji": "🎉", "on": 1}, 404, 1006)
		gcall(t, s, m2, "/Message/Send", map[string]any{"gid": gid, "data": "re a", "reply_to": a}, 200, 0)
		expectField(t, s, m2, "/Message/Send", map[string]any{"gid": gid, "data": "re b", "reply_to": b}, "reply_to")
		edit := update(t, s, m1, "/Message/Edit", map[string]any{"id": a, "data": "a, edited"})
		update(t, s, m1, "/Message/Edit", map[string]any{"id": b, "data": "b, edited"})
		var got []string
		for _, r := range recvPast(t, s, m2, c).Data {
			if r.Kind != "text" {
				got = append(got, fmt.Sprintf("%s:%d", r.Kind, r.RefID))
			}
		}
		if want := fmt.Sprintf("[edit:%d]", a); fmt.Sprint(got) != want {
			t.Errorf("m2's updates past %d: %v, want %s (entry %d)", c, got, want, edit)
		}

		// An edit of a made in m2's second span, which m2 had not yet
		// received when removed and added once more, still reaches them.
		again := update(t, s, m1, "/Message/Edit", map[string]any{"id": a, "data": "a, edited again"})
		readd(t, s, owner, m2, gid)
		late := recvPast(t, s, m2, edit).Data
		if len(late) != 1 || late[0].ID != again || late[0].Kind != "edit" || late[0].RefID != a {
			t.Errorf("m2's recv past %d: %+v, want the edit %d of %d", edit, late, again, a)
		}
	})
}

// TestGroupReadByReturningMember: History's read_by counts a member
// added back as a reader of an earlier span's message they had read
// before it ended, not of one they had not (although their read mark,
// moved to the group's newest when they came back, is past both), nor of
// what was sent while they were out; in the new span, as any member.
func TestGroupReadByReturningMember(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, m1, m2, gid := groupOfThree(t, s)
		read := groupSend(t, s, m1, gid, "read")
		unread := groupSend(t, s, m1, gid, "unread")
		gcall(t, s, m2, "/Message/Read", map[string]any{"gid": gid, "last_id": read}, 200, 0)
		gcall(t, s, m2, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		out := groupSend(t, s, m1, gid, "while m2 was out")
		gcall(t, s, owner, "/Group/IO/addMembers", map[string]any{"gid": gid, "data": members(m2)}, 200, 0)
		after := groupSend(t, s, m1, gid, "after")

		readBy := func() string {
			t.Helper()
			got := map[int64]int{}
			for _, r := range into[groupMsgs](t, gcall(t, s, owner, "/Message/History", map[string]any{"gid": gid}, 200, 0)).Data {
				got[r.ID] = *r.ReadBy
			}
			return fmt.Sprint(got)
		}
		if got, want := readBy(), fmt.Sprint(map[int64]int{read: 1, unread: 0, out: 0, after: 0}); got != want {
			t.Errorf("read_by by id: %s, want %s", got, want)
		}
		gcall(t, s, m2, "/Message/Read", map[string]any{"gid": gid, "last_id": after}, 200, 0)
		if got, want := readBy(), fmt.Sprint(map[int64]int{read: 1, unread: 0, out: 0, after: 1}); got != want {
			t.Errorf("read_by by id, m2 read up to %d: %s, want %s", after, got, want)
		}
	})
}

// TestGroupSpansCapped: a member removed and added back again and again
// keeps only the newest models.MaxGroupSpans earlier spans.
func TestGroupSpansCapped(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		owner, m1, m2, gid := groupOfThree(t, s)
		var sent []int64
		for i := range models.MaxGroupSpans + 2 {
			sent = append(sent, groupSend(t, s, m1, gid, fmt.Sprint(i)))
			readd(t, s, owner, m2, gid)
		}
		if n := s.Count(t, "group_spans", "gid = ? AND uid = ?", gid, m2.UID); n != models.MaxGroupSpans {
			t.Fatalf("%d spans kept, want %d", n, models.MaxGroupSpans)
		}
		var got []int64
		for _, r := range into[richPage](t, gcall(t, s, m2, "/Message/History", map[string]any{"gid": gid, "limit": 100}, 200, 0)).Data {
			got = append([]int64{r.ID}, got...)
		}
		if want := sent[2:]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("m2's history: %v, want %v", got, want)
		}
	})
}

// TestEncryptedEdit: an encrypted message is edited with enc (and a
// delete erases it like any other); a plain edit of it is refused.
func TestEncryptedEdit(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		enc := json.RawMessage(testEnc(b.UID))
		id := gcall(t, s, a, "/Message/Send", map[string]any{"uid_to": b.UID, "enc": enc}, 200, 0).Int("id")
		expectField(t, s, a, "/Message/Edit", map[string]any{"id": id, "data": "plain"}, "enc")
		edited := json.RawMessage(strings.Replace(testEnc(b.UID), `"phone"`, `"laptop"`, 1))
		update(t, s, a, "/Message/Edit", map[string]any{"id": id, "enc": edited})
		got := recvPast(t, s, b, id)
		if got.Num != 1 || got.Data[0].Kind != "edit" || string(got.Data[0].Enc) != string(edited) || got.Data[0].Message != nil {
			t.Fatalf("b's recv: %+v", got)
		}
		if h := historyWith(t, s, b, "uid_with", a.UID); string(h.Data[0].Enc) != string(edited) || h.Data[0].EditedTime == 0 {
			t.Fatalf("history: %+v", h)
		}
		update(t, s, a, "/Message/Delete", map[string]any{"id": id})
		if where := searchEverywhere(t, s, `"laptop"`); len(where) > 0 {
			t.Errorf("deleted enc in %v", where)
		}
	})
}

// TestUpdatesOnStream: an update is an event of the stream, in id order
// after the message it changes.
func TestUpdatesOnStream(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		s := l.Server
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		s.Befriend(t, a, b)
		st := openSSE(t, streamPOST(t, l, b, nil))
		id := mustSend(t, s, a, b, "on the stream")
		if ev := st.next(t); ev.event != "message" || !strings.Contains(ev.data, `"kind":"text"`) {
			t.Fatalf("stream: %+v", ev)
		}
		edit := update(t, s, a, "/Message/Edit", map[string]any{"id": id, "data": "edited on the stream"})
		ev := st.next(t)
		var m richMsg
		if err := json.Unmarshal([]byte(ev.data), &m); err != nil || ev.id != fmt.Sprint(edit) || m.Kind != "edit" || m.RefID != id || text(m) != "edited on the stream" {
			t.Fatalf("stream: %+v (%v)", ev, err)
		}
	})
}

// TestUpdateAcrossInstances: an edit made through instance B answers a
// long poll held on instance A at once.
func TestUpdateAcrossInstances(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, a, b := redisPair(t, db, nil)
		alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
		a.Befriend(t, alice, bob)
		id := mustSend(t, a, alice, bob, "before the edit")
		polls := make(chan *chattest.Response, 1)
		go func() {
			polls <- a.Post(t, "/Message/Recv", bob.Creds(map[string]any{"last_id": id, "wait": 20}))
		}()
		settleCross()
		edit := update(t, b, alice, "/Message/Edit", map[string]any{"id": id, "data": "after the edit"})
		select {
		case r := <-polls:
			got := into[richPage](t, r)
			if got.Num != 1 || got.Data[0].ID != edit || got.Data[0].Kind != "edit" || text(got.Data[0]) != "after the edit" {
				t.Fatalf("poll on A: %s", r.Raw)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the poll on A was not answered by the edit made through B")
		}
	})
}

// TestRetentionPurgesUpdates: the purge of a message takes its update
// entries with it, however new they are, and its reactions.
func TestRetentionPurgesUpdates(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.EditWindow = -1 }})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		old := mustSend(t, s, a, b, "old message")
		s.Clock.Advance(29 * 24 * time.Hour)
		a, b = login(t, s, a), login(t, s, b)
		update(t, s, a, "/Message/Edit", map[string]any{"id": old, "data": "old message, edited late"})
		update(t, s, b, "/Message/React", map[string]any{"id": old, "emoji": "👍", "on": 1})
		kept := mustSend(t, s, a, b, "new message")
		update(t, s, b, "/Message/React", map[string]any{"id": kept, "emoji": "👍", "on": 1})
		s.Clock.Advance(2 * 24 * time.Hour)
		s.Module.SweepNow(t.Context())
		if n := s.Count(t, "messages", "id = ? OR ref_id = ?", old, old); n != 0 {
			t.Fatalf("%d rows of the purged message left", n)
		}
		if n := s.Count(t, "messages", ""); n != 2 {
			t.Fatalf("%d rows left, want the new message and its reaction", n)
		}
		b = login(t, s, b)
		if u := unreadRaw(t, s, b); u[a.UID][0] != 1 {
			t.Errorf("unread after the purge: %v", u)
		}
	})
}

// TestEditPassesBeforeSend: an edit's new text passes the host's
// BeforeSend as a message's does, so an edit cannot carry what a Send
// could not.
func TestEditPassesBeforeSend(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		var mu sync.Mutex
		var seen []events.Outgoing
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.BeforeSend = func(_ context.Context, o events.Outgoing) error {
				mu.Lock()
				defer mu.Unlock()
				seen = append(seen, o)
				if strings.Contains(o.Body, "spam") {
					return apierr.Forbidden("not allowed: spam")
				}
				return nil
			}
		}})
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		s.Befriend(t, a, b)
		id := mustSend(t, s, a, b, "fine words")
		gcall(t, s, a, "/Message/Edit", map[string]any{"id": id, "data": "now spam"}, 403, 1008)
		update(t, s, a, "/Message/Edit", map[string]any{"id": id, "data": "fine words, edited"})
		if h := historyWith(t, s, b, "uid_with", a.UID); text(h.Data[0]) != "fine words, edited" {
			t.Fatalf("history: %+v", h)
		}
		mu.Lock()
		defer mu.Unlock()
		if len(seen) != 3 || seen[1].EditOf != id || seen[1].To != b.UID || seen[1].From != a.UID || seen[0].EditOf != 0 {
			t.Fatalf("BeforeSend saw %+v", seen)
		}
	})
}
