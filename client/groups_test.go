package client_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// noGID is a gid no group has: gids start at 20000001 and tests make few.
const noGID = 29999999

// TestGroups drives every group call of the SDK against the module: the
// group routes, then a group's messages through Send, Recv, Unread, Read
// and History.
func TestGroups(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		l, newClient := live(t, db, chattest.Options{})
		alice, bob, carol, dave := newClient(), newClient(), newClient(), newClient()
		a, b, c, d := user(t, alice, "alice"), user(t, bob, "bob"), user(t, carol, "carol"), user(t, dave, "dave")
		befriend(t, alice, bob)
		befriend(t, alice, carol)

		g := must(alice.CreateGroup(ctx, "team", b, d))(t)
		if g.GID < 20000001 || g.Added != 1 || !reflect.DeepEqual(g.Results, []client.AddResult{
			{UID: b, Status: client.StatusAdded}, {UID: d, Status: client.StatusNotFound}, // dave is no contact of alice's
		}) {
			t.Fatalf("CreateGroup = %+v", g)
		}
		gid := g.GID
		if got := must(bob.Groups(ctx))(t); !reflect.DeepEqual(got, []client.Group{
			{GID: gid, Name: "team", Role: client.RoleMember, MembersNum: 2},
		}) {
			t.Errorf("bob's Groups = %+v", got)
		}
		info := must(bob.GroupInfo(ctx, gid))(t)
		if want := (client.GroupInfo{GID: gid, Name: "team", Time: l.Clock.Now().Unix(), MembersNum: 2, Members: []client.GroupMember{
			{Profile: client.Profile{UID: a, Name: "alice"}, Role: client.RoleOwner},
			{Profile: client.Profile{UID: b, Name: "bob"}, Role: client.RoleMember},
		}}); !reflect.DeepEqual(info, want) {
			t.Errorf("GroupInfo = %+v\nwant %+v", info, want)
		}

		added := must(alice.AddGroupMembers(ctx, gid, c, b))(t)
		if !reflect.DeepEqual(added, []client.AddResult{{UID: c, Status: client.StatusAdded}, {UID: b, Status: client.StatusAlreadyMember}}) {
			t.Errorf("AddGroupMembers = %+v", added)
		}
		if err := alice.SetGroupRole(ctx, gid, b, client.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		if err := bob.UpdateGroup(ctx, gid, client.GroupUpdate{Name: "crew"}); err != nil {
			t.Fatal(err)
		}
		if got := must(alice.Groups(ctx))(t); len(got) != 1 || got[0].Name != "crew" || got[0].Role != client.RoleOwner || got[0].MembersNum != 3 {
			t.Errorf("alice's Groups after the update = %+v", got)
		}
		if got := must(bob.Groups(ctx))(t); len(got) != 1 || got[0].Role != client.RoleAdmin {
			t.Errorf("bob's Groups after SetGroupRole = %+v", got)
		}

		testGroupMessages(t, alice, bob, carol, gid)

		// bob, an admin, removes carol, a member; then leaves.
		if n := must(bob.RemoveGroupMembers(ctx, gid, c))(t); n != 1 {
			t.Errorf("RemoveGroupMembers = %d, want 1", n)
		}
		if _, err := carol.History(ctx, client.HistoryRequest{GID: gid}); !client.IsCode(err, client.CodeForbidden) {
			t.Errorf("History of a removed member: %v, want code %d", err, client.CodeForbidden)
		}
		if err := bob.LeaveGroup(ctx, gid); err != nil {
			t.Fatal(err)
		}
		if got := must(bob.Groups(ctx))(t); len(got) != 0 {
			t.Errorf("bob's Groups after LeaveGroup = %+v", got)
		}
		if got := must(alice.GroupInfo(ctx, gid))(t); got.MembersNum != 1 || len(got.Members) != 1 || got.Members[0].UID != a {
			t.Errorf("GroupInfo after remove and leave = %+v", got)
		}
		// The last member leaving deletes the group.
		if err := alice.LeaveGroup(ctx, gid); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.GroupInfo(ctx, gid); !client.IsCode(err, client.CodeNotFound) {
			t.Errorf("GroupInfo of a deleted group: %v, want code %d", err, client.CodeNotFound)
		}

		// A group of one: CreateGroup without uids.
		solo := must(alice.CreateGroup(ctx, "solo"))(t)
		if solo.GID <= gid || solo.Added != 0 || len(solo.Results) != 0 {
			t.Errorf("CreateGroup without uids = %+v", solo)
		}
		if got := must(alice.Groups(ctx))(t); !reflect.DeepEqual(got, []client.Group{{GID: solo.GID, Name: "solo", Role: client.RoleOwner, MembersNum: 1}}) {
			t.Errorf("Groups = %+v, want solo alone", got)
		}
	})
}

// testGroupMessages sends to gid, of which alice (owner), bob and carol
// are members, and reads what arrives.
func testGroupMessages(t *testing.T, alice, bob, carol *client.Client, gid int64) {
	t.Helper()
	ctx := context.Background()
	a := alice.Session().UID
	sent := must(alice.SendToGroup(ctx, gid, "hi all", client.ClientMsgID("g1")))(t)
	if again := must(alice.SendToGroup(ctx, gid, "hi all", client.ClientMsgID("g1")))(t); again != sent || sent.ID == 0 {
		t.Errorf("SendToGroup = %+v, retried = %+v", sent, again)
	}
	want := client.Message{ID: sent.ID, UIDFrom: a, GID: gid, Message: "hi all", Time: sent.Time, Kind: "text"}
	zero := int64(0)
	for _, to := range []*client.Client{bob, carol} {
		got := must(to.Recv(ctx, client.RecvRequest{LastID: &zero}))(t)
		if len(got.Messages) != 1 || got.Messages[0] != want || got.LastID != sent.ID {
			t.Errorf("Recv of %d = %+v, want %+v", to.Session().UID, got, want)
		}
	}
	if got := must(alice.Recv(ctx, client.RecvRequest{LastID: &zero}))(t); len(got.Messages) != 0 {
		t.Errorf("the sender's Recv = %+v, want nothing", got)
	}
	if got := must(bob.Unread(ctx))(t); !reflect.DeepEqual(got, []client.UnreadCount{{GID: gid, Count: 1, LastID: sent.ID}}) {
		t.Errorf("Unread = %+v", got)
	}
	if n := must(bob.ReadGroup(ctx, gid, sent.ID))(t); n != 1 {
		t.Errorf("ReadGroup = %d, want 1", n)
	}
	if n := must(bob.ReadGroup(ctx, gid, sent.ID))(t); n != 0 {
		t.Errorf("ReadGroup again = %d, want 0", n)
	}
	if got := must(bob.Unread(ctx))(t); len(got) != 0 {
		t.Errorf("Unread after ReadGroup = %+v", got)
	}

	second := must(carol.SendToGroup(ctx, gid, "second"))(t)
	page := must(alice.History(ctx, client.HistoryRequest{GID: gid, Limit: 1}))(t)
	if len(page.Messages) != 1 || !page.More || page.Messages[0].Message != (client.Message{ID: second.ID, UIDFrom: carol.Session().UID, GID: gid, Message: "second", Time: second.Time, Kind: "text"}) {
		t.Errorf("History(gid, limit 1) = %+v", page)
	}
	page = must(alice.History(ctx, client.HistoryRequest{GID: gid, BeforeID: second.ID}))(t)
	// bob read it, and carol's send moved her read mark past it.
	if len(page.Messages) != 1 || page.More || page.Messages[0].Message != want || page.Messages[0].ReadBy != 2 {
		t.Errorf("History(gid, before) = %+v, want %+v read by 2", page, want)
	}
}

// TestGroupCallErrors checks the errors of the group calls, as the SDK maps
// them.
func TestGroupCallErrors(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		_, newClient := live(t, db, chattest.Options{})
		alice, bob, carol := newClient(), newClient(), newClient()
		a, b, c := user(t, alice, "alice"), user(t, bob, "bob"), user(t, carol, "carol")
		befriend(t, alice, bob)
		befriend(t, bob, carol)
		gid := must(alice.CreateGroup(ctx, "team", b))(t).GID

		tests := []struct {
			name   string
			call   func() error
			status int
			code   int
		}{
			{"empty name", func() error { _, err := alice.CreateGroup(ctx, ""); return err }, 400, client.CodeInvalid},
			{"no such group", func() error { _, err := alice.GroupInfo(ctx, noGID); return err }, 404, client.CodeNotFound},
			{"info of a stranger", func() error { _, err := carol.GroupInfo(ctx, gid); return err }, 403, client.CodeForbidden},
			{"member adds", func() error { _, err := bob.AddGroupMembers(ctx, gid, c); return err }, 403, client.CodeForbidden},
			{"member renames", func() error { return bob.UpdateGroup(ctx, gid, client.GroupUpdate{Name: "x"}) }, 403, client.CodeForbidden},
			{"member sets a role", func() error { return bob.SetGroupRole(ctx, gid, a, client.RoleMember) }, 403, client.CodeForbidden},
			{"stranger sends", func() error { _, err := carol.SendToGroup(ctx, gid, "hi"); return err }, 403, client.CodeForbidden},
			{"send to no group", func() error { _, err := alice.SendToGroup(ctx, noGID, "hi"); return err }, 404, client.CodeNotFound},
			{"stranger leaves", func() error { return carol.LeaveGroup(ctx, gid) }, 403, client.CodeForbidden},
			{"stranger reads", func() error { _, err := carol.ReadGroup(ctx, gid, 1); return err }, 403, client.CodeForbidden},
			{"bad role", func() error { return alice.SetGroupRole(ctx, gid, b, "king") }, 400, client.CodeInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				chattest.ExpectErr(t, tt.call(), tt.status, tt.code)
			})
		}
	})
}

// TestGroupStream checks that the stream hands out a group's messages, as
// Messages with GID, and its membership changes, as GroupEvents; and that
// Listen hands out group messages with the 1:1 ones.
func TestGroupStream(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, newClient := live(t, db, chattest.Options{})
		alice, bob, carol := newClient(), newClient(), newClient()
		a, b, c := user(t, alice, "alice"), user(t, bob, "bob"), user(t, carol, "carol")
		befriend(t, alice, bob)
		befriend(t, alice, carol)

		st := must(bob.Stream(ctx, nil))(t)
		defer st.Close()
		gid := must(alice.CreateGroup(ctx, "team", b))(t).GID
		sent := must(alice.SendToGroup(ctx, gid, "hi"))(t)
		must(alice.AddGroupMembers(ctx, gid, c))(t)
		if err := alice.SetGroupRole(ctx, gid, b, client.RoleAdmin); err != nil {
			t.Fatal(err)
		}
		// Notices and messages travel apart: each kind keeps its order,
		// not the two together.
		var notices, messages []client.Event
		for len(notices) < 3 || len(messages) < 1 {
			ev, err := st.Next()
			if err != nil {
				t.Fatalf("Next: %v (after %+v and %+v)", err, notices, messages)
			}
			if _, ok := ev.(client.Message); ok {
				messages = append(messages, ev)
			} else {
				notices = append(notices, ev)
			}
		}
		wantNotices := []client.Event{
			client.GroupEvent{GID: gid, What: client.GroupCreated, UID: a}, // by alice
			client.GroupEvent{GID: gid, What: client.GroupAdded, UID: c},
			client.GroupEvent{GID: gid, What: client.GroupRole, UID: b},
		}
		want := []client.Event{client.Message{ID: sent.ID, UIDFrom: a, GID: gid, Message: "hi", Time: sent.Time, Kind: "text"}}
		if !reflect.DeepEqual(notices, wantNotices) || !reflect.DeepEqual(messages, want) {
			t.Errorf("bob's stream: %+v and %+v\nwant %+v and %+v", notices, messages, wantNotices, want)
		}

		col := newCollector(2)
		listened := make(chan error, 1)
		go func() { listened <- bob.Listen(ctx, 0, col.handle) }()
		one := must(alice.Send(ctx, b, "one to one"))(t)
		got := col.wait(t, time.Minute)
		if len(got) != 2 || got[0] != want[0] || got[1] != (client.Message{ID: one.ID, UIDFrom: a, UIDTo: b, Message: "one to one", Time: one.Time, Kind: "text"}) {
			t.Errorf("Listen handed out %+v", got)
		}
		cancel()
		<-listened
	})
}
