package client_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"testing"

	"github.com/fiberchat/fiberchat/client"
)

// TestGroupWire checks, against a server playing API.md §12, the body
// each group call sends and what it makes of the answer: the exact
// shapes, which the tests against the real module (groups_test.go) take
// for granted.
func TestGroupWire(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tests := []struct {
		name   string
		path   string
		body   string // what the call sends, credentials aside
		answer string
		call   func(c *client.Client) (any, error)
		want   any
	}{
		{
			"create", "/Group/create", `{"name":"team","data":[{"uid":10000003},{"uid":10000004}]}`,
			`{"gid":20000001,"num":1,"data":[{"uid":10000003,"status":"added"},{"uid":10000004,"status":"full"}],"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.CreateGroup(ctx, "team", 10000003, 10000004) },
			client.NewGroup{GID: 20000001, Added: 1, Results: []client.AddResult{{UID: 10000003, Status: client.StatusAdded}, {UID: 10000004, Status: client.StatusFull}}},
		},
		{
			"create alone", "/Group/create", `{"name":"me","data":[]}`,
			`{"gid":20000002,"num":0,"data":[],"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.CreateGroup(ctx, "me") },
			client.NewGroup{GID: 20000002, Results: []client.AddResult{}},
		},
		{
			"list", "/Group/list", `{}`,
			`{"num":1,"data":[{"gid":20000001,"name":"team","head_img":"h","role":"admin","members_num":3,"last_id":9}],"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.Groups(ctx) },
			[]client.Group{{GID: 20000001, Name: "team", HeadImg: "h", Role: client.RoleAdmin, MembersNum: 3, LastID: 9}},
		},
		{
			"info", "/Group/info", `{"gid":20000001}`,
			`{"gid":20000001,"name":"team","head_img":"","time":1700000000,"members_num":2,"data":[{"uid":10000002,"name":"bob","head_img":"b","role":"owner"},{"uid":10000003,"name":"carol","head_img":"","role":"member"}],"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.GroupInfo(ctx, 20000001) },
			client.GroupInfo{GID: 20000001, Name: "team", Time: 1700000000, MembersNum: 2, Members: []client.GroupMember{
				{Profile: client.Profile{UID: 10000002, Name: "bob", HeadImg: "b"}, Role: client.RoleOwner},
				{Profile: client.Profile{UID: 10000003, Name: "carol"}, Role: client.RoleMember},
			}},
		},
		{
			"add members", "/Group/IO/addMembers", `{"gid":20000001,"data":[{"uid":10000003},{"uid":10000009}]}`,
			`{"num":1,"data":[{"uid":10000003,"status":"already_member"},{"uid":10000009,"status":"not_found"}],"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.AddGroupMembers(ctx, 20000001, 10000003, 10000009) },
			[]client.AddResult{{UID: 10000003, Status: client.StatusAlreadyMember}, {UID: 10000009, Status: client.StatusNotFound}},
		},
		{
			"remove members", "/Group/IO/removeMembers", `{"gid":20000001,"data":[{"uid":10000003}]}`,
			`{"num":1,"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.RemoveGroupMembers(ctx, 20000001, 10000003) },
			1,
		},
		{
			"leave", "/Group/IO/leave", `{"gid":20000001}`, `{"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return nil, c.LeaveGroup(ctx, 20000001) }, nil,
		},
		{
			"update", "/Group/IO/update", `{"gid":20000001,"name":"crew"}`, `{"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) {
				return nil, c.UpdateGroup(ctx, 20000001, client.GroupUpdate{Name: "crew"})
			}, nil,
		},
		{
			"role", "/Group/IO/role", `{"gid":20000001,"member":10000003,"role":"admin"}`, `{"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) {
				return nil, c.SetGroupRole(ctx, 20000001, 10000003, client.RoleAdmin)
			}, nil,
		},
		{
			"send", "/Message/Send", `{"gid":20000001,"data":"hi all","client_msg_id":"m1"}`,
			`{"num":1,"msg":"success","error":0,"id":12,"time":1700000001}`,
			func(c *client.Client) (any, error) {
				return c.SendToGroup(ctx, 20000001, "hi all", client.ClientMsgID("m1"))
			},
			client.Sent{ID: 12, Time: 1700000001},
		},
		{
			"send 1:1 names no group", "/Message/Send", `{"uid_to":10000003,"data":"hi"}`,
			`{"num":1,"msg":"success","error":0,"id":13,"time":1700000001}`,
			func(c *client.Client) (any, error) { return c.Send(ctx, 10000003, "hi") },
			client.Sent{ID: 13, Time: 1700000001},
		},
		{
			"history", "/Message/History", `{"gid":20000001,"before_id":30,"limit":2}`,
			`{"num":2,"data":[{"id":12,"uid_from":10000002,"gid":20000001,"message":"b","time":5,"read_by":2},{"id":11,"uid_from":10000003,"gid":20000001,"message":"a","time":4,"read_by":0}],"more":true,"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) {
				return c.History(ctx, client.HistoryRequest{GID: 20000001, BeforeID: 30, Limit: 2})
			},
			client.HistoryPage{More: true, Messages: []client.HistoryMessage{
				{Message: client.Message{ID: 12, UIDFrom: 10000002, GID: 20000001, Message: "b", Time: 5}, ReadBy: 2},
				{Message: client.Message{ID: 11, UIDFrom: 10000003, GID: 20000001, Message: "a", Time: 4}},
			}},
		},
		{
			"read", "/Message/Read", `{"gid":20000001,"last_id":12}`, `{"error":0,"msg":"success","num":2}`,
			func(c *client.Client) (any, error) { return c.ReadGroup(ctx, 20000001, 12) }, 2,
		},
		{
			"unread", "/Message/Unread", `{}`,
			`{"num":2,"data":[{"uid_from":10000003,"count":1,"last_id":10},{"gid":20000001,"count":2,"last_id":12}],"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) { return c.Unread(ctx) },
			[]client.UnreadCount{{UIDFrom: 10000003, Count: 1, LastID: 10}, {GID: 20000001, Count: 2, LastID: 12}},
		},
		{
			"recv", "/Message/Recv", `{"last_id":0}`,
			`{"num":2,"data":[{"id":12,"uid_from":10000003,"gid":20000001,"message":"g","time":5},{"id":13,"uid_from":10000003,"message":"p","time":6}],"last_id":13,"more":false,"error":0,"msg":"success"}`,
			func(c *client.Client) (any, error) {
				zero := int64(0)
				return c.Recv(ctx, client.RecvRequest{LastID: &zero})
			},
			client.RecvResult{LastID: 13, Messages: []client.Message{
				{ID: 12, UIDFrom: 10000003, GID: 20000001, Message: "g", Time: 5}, // no uid_to for a group's
				{ID: 13, UIDFrom: 10000003, UIDTo: 10000002, Message: "p", Time: 6},
			}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := fake(t, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path != "/chat"+tt.path {
					t.Errorf("path %s, want /chat%s", r.URL.Path, tt.path)
				}
				checkBody(t, r, tt.body)
				w.Header().Set("Content-Type", "application/json")
				_, _ = io.WriteString(w, tt.answer)
			})
			got, err := tt.call(c)
			if err != nil {
				t.Fatal(err)
			}
			if tt.want != nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v\nwant %#v", got, tt.want)
			}
		})
	}
}

// checkBody compares the JSON body of r, less the credentials fake's
// session adds, with want.
func checkBody(t *testing.T, r *http.Request, want string) {
	t.Helper()
	var got, wantV map[string]any
	if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
		t.Fatalf("body: %v", err)
	}
	if got["uid"] != float64(10000002) || got["access_token"] != "tok" {
		t.Errorf("body %v: no credentials", got)
	}
	delete(got, "uid")
	delete(got, "access_token")
	if err := json.Unmarshal([]byte(want), &wantV); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, wantV) {
		t.Errorf("body %v, want %v", got, wantV)
	}
}

// TestGroupErrorAnswer checks that a group call's refusal comes back as the
// *Error the rest of the package returns, with no data.
func TestGroupErrorAnswer(t *testing.T) {
	t.Parallel()
	c := fake(t, func(t *testing.T, w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":1008,"msg":"not allowed: not a member","gid":20000001,"data":[{"uid":1,"name":"x","role":"owner"}]}`)
	})
	info, err := c.GroupInfo(context.Background(), 20000001)
	if !client.IsCode(err, client.CodeForbidden) || !reflect.DeepEqual(info, client.GroupInfo{}) {
		t.Errorf("GroupInfo = %+v, %v; want nothing and code %d", info, err, client.CodeForbidden)
	}
}
