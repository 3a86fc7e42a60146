package client_test

import (
	"context"
	"fmt"

	"github.com/fiberchat/fiberchat/client"
)

// Alice makes a group of her contact Bob and writes to it: a group's
// messages come through the same Recv (and stream, and Listen) as 1:1
// ones, with GID set.
func ExampleClient_CreateGroup() {
	srv, stop, err := startExample()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	alice, _ := client.New(srv.URL(), "test", srv.Secret)
	bob, _ := client.New(srv.URL(), "test", srv.Secret)
	a, _ := alice.Register(ctx, "Alice", "alice-password")
	b, _ := bob.Register(ctx, "Bob", "bob-password")
	_, _ = alice.Login(ctx, a, "alice-password")
	_, _ = bob.Login(ctx, b, "bob-password")
	_, _ = alice.AddContacts(ctx, b)
	_ = bob.AnswerRequest(ctx, a, true)

	g, err := alice.CreateGroup(ctx, "Team", b)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("bob:", g.Results[0].Status)
	if _, err := alice.SendToGroup(ctx, g.GID, "Hi all!"); err != nil {
		fmt.Println(err)
		return
	}
	from := int64(0)
	got, err := bob.Recv(ctx, client.RecvRequest{LastID: &from})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, m := range got.Messages {
		fmt.Printf("bob got %q from %d in group %d\n", m.Message, m.UIDFrom, m.GID)
	}
	info, _ := bob.GroupInfo(ctx, g.GID)
	for _, m := range info.Members {
		fmt.Println(m.Name, m.Role)
	}
	// Output:
	// bob: added
	// bob got "Hi all!" from 10000001 in group 20000001
	// Alice owner
	// Bob member
}
