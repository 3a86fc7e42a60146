package client_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/database"
)

// startExample serves a fresh chat on a temporary SQLite database, as a
// host would, and returns it with a function that stops it.
func startExample() (srv *server, stop func(), err error) {
	ctx := context.Background()
	dir, cleanup := tempDir()
	gdb, err := database.Open(ctx, "sqlite:"+filepath.Join(dir, "chat.db"))
	if err != nil {
		cleanup()
		return nil, nil, err
	}
	srv, err = newServer(gdb, filepath.Join(dir, "uploads"))
	if err == nil {
		err = srv.start()
	}
	stop = func() {
		_ = srv.stop()
		_ = database.Close(gdb)
		cleanup()
	}
	if err != nil {
		stop()
		return nil, nil, err
	}
	return srv, stop, nil
}

// Two users register, become contacts and exchange a message. Every call
// is signed with the API client's secret; after Login the session goes
// with each call by itself.
func Example() {
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
	if _, err := alice.Login(ctx, a, "alice-password"); err != nil {
		fmt.Println(err)
		return
	}
	if _, err := bob.Login(ctx, b, "bob-password"); err != nil {
		fmt.Println(err)
		return
	}

	added, _ := alice.AddContacts(ctx, b)
	fmt.Println("alice asks bob:", added[0].Status)
	_ = bob.AnswerRequest(ctx, a, true)
	contacts, _ := bob.Contacts(ctx)
	fmt.Println("bob's contacts:", contacts[0].Name)

	if _, err := alice.Send(ctx, b, "Hi Bob!"); err != nil {
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
		fmt.Printf("bob got %q from %d\n", m.Message, m.UIDFrom)
	}
	// Output:
	// alice asks bob: requested
	// bob's contacts: Alice
	// bob got "Hi Bob!" from 10000001
}

// Failures the server answers are *client.Error values carrying the HTTP
// status and the contract's code.
func ExampleIsCode() {
	srv, stop, err := startExample()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx := context.Background()

	c, _ := client.New(srv.URL(), "test", srv.Secret)
	uid, _ := c.Register(ctx, "Carol", "carol-password")
	_, err = c.Login(ctx, uid, "not-her-password")
	fmt.Println("wrong password:", client.IsCode(err, client.CodeBadLogin))
	var e *client.Error
	if errors.As(err, &e) {
		fmt.Println(e.Status, e.Code, e.Msg)
	}

	wrong, _ := client.New(srv.URL(), "test", "not-the-secret")
	_, err = wrong.Register(ctx, "Dave", "dave-password")
	fmt.Println("wrong secret:", client.IsCode(err, client.CodeAccessDeny))
	// Output:
	// wrong password: true
	// 401 1005 wrong uid or password
	// wrong secret: true
}

// A bot listens for its messages from where it left off: Listen hands
// each one to the handler once, in order, over the push stream or, on a
// server without one, long polls, and reconnects by itself.
func ExampleClient_Listen() {
	srv, stop, err := startExample()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	alice, _ := client.New(srv.URL(), "test", srv.Secret)
	bot, _ := client.New(srv.URL(), "test", srv.Secret)
	a, _ := alice.Register(ctx, "Alice", "alice-password")
	b, _ := bot.Register(ctx, "Bot", "bot-password")
	_, _ = alice.Login(ctx, a, "alice-password")
	_, _ = bot.Login(ctx, b, "bot-password")
	_, _ = alice.AddContacts(ctx, b)
	_ = bot.AnswerRequest(ctx, a, true)

	go func() {
		for _, text := range []string{"one", "two", "three"} {
			_, _ = alice.Send(ctx, b, text)
		}
	}()
	var cursor int64 // a real bot keeps this across restarts
	err = bot.Listen(ctx, cursor, func(m client.Message) error {
		fmt.Println("bot got", m.Message)
		cursor = m.ID
		if m.Message == "three" {
			cancel() // stop listening
		}
		return nil
	})
	fmt.Println("stopped:", errors.Is(err, context.Canceled))
	// Output:
	// bot got one
	// bot got two
	// bot got three
	// stopped: true
}
