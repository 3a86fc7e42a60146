package chattest_test

import (
	"context"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// TestSDKReachesTheApp sends through both SDK clients, in-process and over
// the socket, to a module mounted under a prefix: the request target,
// signature and body must arrive as a real client sends them.
func TestSDKReachesTheApp(t *testing.T) {
	db := chattest.OpenSQLite(t)
	ctx := context.Background()
	s := chattest.NewLive(t, db, chattest.Options{Prefix: "/chat"})
	a, b := s.NewUser(t, "ann"), s.NewUser(t, "bob")
	s.Befriend(t, a, b)
	for name, c := range map[string]*client.Client{"app": s.Server.SDKFor(t, a), "socket": s.SDKFor(t, a)} {
		if _, err := c.Send(ctx, b.UID, "hi from "+name); err != nil {
			t.Fatalf("%s: Send: %v", name, err)
		}
	}
	got, err := s.SDKFor(t, b).Recv(ctx, client.RecvRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got.Messages) != 2 || got.Messages[0].UIDFrom != a.UID {
		t.Fatalf("Recv: %+v", got)
	}
	_, err = s.SDK(t).Login(ctx, a.UID, "wrong-password")
	chattest.ExpectErr(t, err, 401, client.CodeBadLogin)
}
