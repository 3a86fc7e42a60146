package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// live starts a live server on db and returns it with a maker of
// clients signed for it.
func live(t *testing.T, db *chattest.DB, opts chattest.Options) (*chattest.Live, func(opts ...client.Option) *client.Client) {
	t.Helper()
	l := chattest.NewLive(t, db, opts)
	return l, func(opts ...client.Option) *client.Client {
		t.Helper()
		opts = append([]client.Option{client.WithHTTPClient(l.Client), client.WithClock(l.Clock.Now)}, opts...)
		c, err := client.New("http://"+l.Addr+l.Prefix, l.ClientID, l.Secret, opts...)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
}

// user registers name on c and logs in.
func user(t *testing.T, c *client.Client, name string) int64 {
	t.Helper()
	ctx := context.Background()
	uid, err := c.Register(ctx, name, "secret-"+name)
	if err != nil {
		t.Fatalf("Register %s: %v", name, err)
	}
	if _, err := c.Login(ctx, uid, "secret-"+name); err != nil {
		t.Fatalf("Login %s: %v", name, err)
	}
	return uid
}

// befriend makes a and b contacts through the contact routes.
func befriend(t *testing.T, a, b *client.Client) {
	t.Helper()
	ctx := context.Background()
	if _, err := a.AddContacts(ctx, b.Session().UID); err != nil {
		t.Fatal(err)
	}
	if err := b.AnswerRequest(ctx, a.Session().UID, true); err != nil {
		t.Fatal(err)
	}
}

// must returns v, or fails the test given to what it returns with err:
// must(c.Info(ctx))(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func pngBytes(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestRoundTrip(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		l, newClient := live(t, db, chattest.Options{})
		alice, bob, carol := newClient(), newClient(), newClient()
		a, b, c := user(t, alice, "alice"), user(t, bob, "bob"), user(t, carol, "carol")

		// User group.
		info := must(alice.Info(ctx))(t)
		if info.UID != a || info.Name != "alice" || info.Time != l.Clock.Now().Unix() {
			t.Errorf("Info = %+v", info)
		}
		if err := alice.UpdateProfile(ctx, client.ProfileUpdate{Name: "Alice"}); err != nil {
			t.Fatal(err)
		}
		image := must(alice.UploadAvatar(ctx, "me.png", bytes.NewReader(pngBytes(t))))(t)
		info = must(alice.Info(ctx))(t)
		if info.Name != "Alice" || info.HeadImg != image || image == "" {
			t.Errorf("after update and upload: Info = %+v, image %q", info, image)
		}
		resp := must(l.Client.Get(image))(t)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET avatar: %d", resp.StatusCode)
		}

		// Contacts group.
		added := must(alice.AddContacts(ctx, b, c, 99999999, a))(t)
		want := []client.AddResult{{UID: b, Status: client.StatusRequested}, {UID: c, Status: client.StatusRequested}, {UID: 99999999, Status: client.StatusNotFound}, {UID: a, Status: client.StatusSelf}}
		if !reflect.DeepEqual(added, want) {
			t.Errorf("AddContacts = %+v, want %+v", added, want)
		}
		reqs := must(bob.ContactRequests(ctx))(t)
		if len(reqs) != 1 || reqs[0].UID != a || reqs[0].Name != "Alice" || reqs[0].Time == 0 {
			t.Errorf("ContactRequests = %+v", reqs)
		}
		if err := bob.AnswerRequest(ctx, a, true); err != nil {
			t.Fatal(err)
		}
		if err := carol.AnswerRequest(ctx, a, false); err != nil {
			t.Fatal(err)
		}
		if got := must(alice.Contacts(ctx))(t); len(got) != 1 || got[0].UID != b || got[0].Name != "bob" {
			t.Errorf("Contacts = %+v", got)
		}
		if got := must(alice.ContactsInfo(ctx, c, 99999999, b))(t); len(got) != 2 || got[0].UID != c || got[1].UID != b {
			t.Errorf("ContactsInfo = %+v", got)
		}

		// Messages.
		sent := must(alice.Send(ctx, b, "hello", client.ClientMsgID("m1")))(t)
		again := must(alice.Send(ctx, b, "hello", client.ClientMsgID("m1")))(t)
		if sent.ID == 0 || again != sent {
			t.Errorf("Send = %+v, retried = %+v", sent, again)
		}
		second := must(alice.Send(ctx, b, "how are you?"))(t)
		zero := int64(0)
		got := must(bob.Recv(ctx, client.RecvRequest{LastID: &zero, Limit: 1}))(t)
		if len(got.Messages) != 1 || !got.More || got.LastID != sent.ID ||
			got.Messages[0] != (client.Message{ID: sent.ID, UIDFrom: a, UIDTo: b, Message: "hello", Time: sent.Time, Rich: client.Rich{Kind: client.KindText}}) {
			t.Errorf("Recv(limit 1) = %+v", got)
		}
		got = must(bob.Recv(ctx, client.RecvRequest{}))(t) // the session's cursor
		if len(got.Messages) != 2 || got.More || got.LastID != second.ID {
			t.Errorf("Recv(session cursor) = %+v", got)
		}
		got = must(bob.Recv(ctx, client.RecvRequest{Wait: 10 * time.Millisecond}))(t) // rounded up to 1 s
		if len(got.Messages) != 0 {
			t.Errorf("Recv(wait) = %+v, want nothing", got)
		}
		unread := must(bob.Unread(ctx))(t)
		if !reflect.DeepEqual(unread, []client.UnreadCount{{UIDFrom: a, Count: 2, LastID: second.ID}}) {
			t.Errorf("Unread = %+v", unread)
		}
		if n := must(bob.Read(ctx, a, sent.ID))(t); n != 1 {
			t.Errorf("Read = %d, want 1", n)
		}
		page := must(alice.History(ctx, client.HistoryRequest{With: b, Limit: 1}))(t)
		if len(page.Messages) != 1 || !page.More || page.Messages[0].ID != second.ID || page.Messages[0].Read || page.Messages[0].UIDTo != b {
			t.Errorf("History = %+v", page)
		}
		page = must(alice.History(ctx, client.HistoryRequest{With: b, BeforeID: second.ID}))(t)
		if len(page.Messages) != 1 || page.More || page.Messages[0].ID != sent.ID || !page.Messages[0].Read {
			t.Errorf("History(before) = %+v", page)
		}

		// Blocking and deleting.
		if n := must(alice.Block(ctx, c))(t); n != 1 {
			t.Errorf("Block = %d, want 1", n)
		}
		if got := must(alice.Blocked(ctx))(t); len(got) != 1 || got[0].UID != c {
			t.Errorf("Blocked = %+v", got)
		}
		if n := must(alice.Unblock(ctx, c))(t); n != 1 {
			t.Errorf("Unblock = %d, want 1", n)
		}
		if got := must(alice.Blocked(ctx))(t); len(got) != 0 {
			t.Errorf("Blocked after Unblock = %+v", got)
		}
		if n := must(alice.DeleteContacts(ctx, b))(t); n != 1 {
			t.Errorf("DeleteContacts = %d, want 1", n)
		}

		// Password and sessions: the other session ends, this one stays.
		other := newClient()
		must(other.Login(ctx, a, "secret-alice"))(t)
		if err := alice.ChangePassword(ctx, "secret-alice", "new-secret"); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Info(ctx); !client.IsCode(err, client.CodeBadToken) {
			t.Errorf("other session after ChangePassword: %v, want code %d", err, client.CodeBadToken)
		}
		must(alice.Info(ctx))(t)
		must(other.Login(ctx, a, "new-secret"))(t)
		if err := alice.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Info(ctx); !errors.Is(err, client.ErrNoSession) {
			t.Errorf("Info after Logout: %v, want ErrNoSession", err)
		}
		must(other.Info(ctx))(t)
	})
}

func TestErrors(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		l, newClient := live(t, db, chattest.Options{})
		alice, bob := newClient(), newClient()
		a, b := user(t, alice, "alice"), user(t, bob, "bob")
		stale := newClient(client.WithSession(client.Session{UID: a, AccessToken: "0123456789abcdef0123456789abcdef"}))
		badSecret := must(client.New("http://"+l.Addr, l.ClientID, "wrong", client.WithHTTPClient(l.Client), client.WithClock(l.Clock.Now)))(t)
		badSecret.SetSession(alice.Session())
		wrongDay := newClient(client.WithClock(func() time.Time { return l.Clock.Now().AddDate(0, 0, -2) }), client.WithSession(alice.Session()))
		tokens := newClient(client.WithTokenSource(func(path string) string { return "nope" }), client.WithSession(alice.Session()))

		tests := []struct {
			name   string
			call   func() error
			status int
			code   int
		}{
			{"wrong password", func() error { _, err := bob.Login(ctx, b, "wrong-password"); return err }, 401, client.CodeBadLogin},
			{"stranger send", func() error { _, err := alice.Send(ctx, b, "hi"); return err }, 403, client.CodeForbidden},
			{"bad token", func() error { _, err := stale.Info(ctx); return err }, 401, client.CodeBadToken},
			{"bad api secret", func() error { _, err := badSecret.Info(ctx); return err }, 403, client.CodeAccessDeny},
			{"api token of another day", func() error { _, err := wrongDay.Contacts(ctx); return err }, 403, client.CodeAccessDeny},
			{"token source", func() error { _, err := tokens.Contacts(ctx); return err }, 403, client.CodeAccessDeny},
			{"no pending request", func() error { return alice.AnswerRequest(ctx, b, true) }, 404, client.CodeNotFound},
			{"self send", func() error { _, err := alice.Send(ctx, a, "me"); return err }, 400, client.CodeInvalid},
			{"stream with a bad token", func() error { _, err := stale.Stream(ctx, nil); return err }, 401, client.CodeBadToken},
			{"short password", func() error { _, err := alice.Register(ctx, "x", "123"); return err }, 400, client.CodeInvalid},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				err := tt.call()
				var e *client.Error
				if !errors.As(err, &e) {
					t.Fatalf("got %v, want a *client.Error", err)
				}
				if e.Status != tt.status || e.Code != tt.code || e.Msg == "" {
					t.Errorf("got %d/%d %q, want %d/%d", e.Status, e.Code, e.Msg, tt.status, tt.code)
				}
				if !client.IsCode(err, tt.code) {
					t.Errorf("IsCode(%v, %d) = false", err, tt.code)
				}
			})
		}

		// A stale session is dropped by Logout, since the server has none.
		if err := stale.Logout(ctx); !client.IsCode(err, client.CodeBadToken) || stale.Session() != (client.Session{}) {
			t.Errorf("Logout of a stale session: %v, session %+v", err, stale.Session())
		}
		// Without a session nothing is sent.
		if _, err := newClient().Unread(ctx); !errors.Is(err, client.ErrNoSession) {
			t.Errorf("no session: %v", err)
		}
	})
}

func TestTransportError(t *testing.T) {
	t.Parallel()
	// Nothing listens on port 1: the transport's error comes back
	// wrapped, without the query that carries the tokens.
	c := must(client.New("http://127.0.0.1:1/chat", "test", "secret", client.WithSession(client.Session{UID: 10000001, AccessToken: "tok"})))(t)
	_, err := c.Stream(context.Background(), nil)
	var e *client.Error
	if err == nil || errors.As(err, &e) {
		t.Fatalf("got %v, want a transport error", err)
	}
	if msg := err.Error(); bytes.Contains([]byte(msg), []byte("api_token")) || bytes.Contains([]byte(msg), []byte("tok")) {
		t.Errorf("error shows credentials: %s", msg)
	}
}

func TestNew(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ base, id, secret string }{
		{"127.0.0.1:8080", "web", "s"},
		{"ftp://host", "web", "s"},
		{"http://", "web", "s"},
		{"http://host", "", "s"},
		{"http://host", "web", ""},
	} {
		if _, err := client.New(tt.base, tt.id, tt.secret); err == nil {
			t.Errorf("New(%q, %q, %q) = nil error", tt.base, tt.id, tt.secret)
		}
	}
	if _, err := client.New("http://host/chat/", "web", "", client.WithTokenSource(func(string) string { return "" })); err != nil {
		t.Errorf("New with a token source: %v", err)
	}
}

// The contract's codes and the server's are the same numbers (the server
// answers no 1007 conflict, so it has no constant for it).
func TestCodesMatchServer(t *testing.T) {
	t.Parallel()
	pairs := [][2]int{
		{client.CodeInvalid, apierr.CodeInvalid}, {client.CodeAccessDeny, apierr.CodeAccessDeny},
		{client.CodeBadToken, apierr.CodeBadToken}, {client.CodeBadLogin, apierr.CodeBadLogin},
		{client.CodeNotFound, apierr.CodeNotFound},
		{client.CodeForbidden, apierr.CodeForbidden}, {client.CodeTooLarge, apierr.CodeTooLarge},
		{client.CodeRateLimited, apierr.CodeRateLimited}, {client.CodeUnsupported, apierr.CodeUnsupported},
		{client.CodeInternal, apierr.CodeInternal}, {client.CodeUnavailable, apierr.CodeUnavailable},
	}
	for _, p := range pairs {
		if p[0] != p[1] {
			t.Errorf("client code %d, server code %d", p[0], p[1])
		}
	}
}

// collector gathers what Listen hands out.
type collector struct {
	mu   sync.Mutex
	got  []client.Message
	want int
	done chan struct{}
}

func newCollector(want int) *collector { return &collector{want: want, done: make(chan struct{})} }

func (c *collector) handle(m client.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, m)
	if len(c.got) == c.want {
		close(c.done)
	}
	return nil
}

func (c *collector) wait(t *testing.T, d time.Duration) []client.Message {
	t.Helper()
	select {
	case <-c.done:
	case <-time.After(d):
		c.mu.Lock()
		defer c.mu.Unlock()
		t.Fatalf("got %d messages in %v, want %d", len(c.got), d, c.want)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]client.Message{}, c.got...)
}

// checkOnceInOrder fails unless got holds each text of want once, in
// increasing id order, and each sender's texts in the order sent.
func checkOnceInOrder(t *testing.T, got []client.Message, want map[int64][]string) {
	t.Helper()
	per := map[int64][]string{}
	for i, m := range got {
		if i > 0 && m.ID <= got[i-1].ID {
			t.Fatalf("message %d has id %d after %d", i, m.ID, got[i-1].ID)
		}
		per[m.UIDFrom] = append(per[m.UIDFrom], m.Message)
	}
	if !reflect.DeepEqual(per, want) {
		t.Fatalf("per sender:\n got %v\nwant %v", per, want)
	}
}

// TestListen delivers 4 senders × 50 messages exactly once, in order,
// over the stream, and over long polls from a server without the stream
// route (an older server), to which Listen falls back.
func TestListen(t *testing.T) {
	for _, mode := range []string{"stream", "polls"} {
		t.Run(mode, func(t *testing.T) { testListen(t, mode) })
	}
}

func testListen(t *testing.T, mode string) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		var polls atomic.Int64
		opts := chattest.Options{App: func(app *fiber.App) {
			app.Use(func(c *fiber.Ctx) error {
				if strings.EqualFold(c.Path(), "/Message/Recv") {
					polls.Add(1)
				}
				return c.Next()
			})
			if mode == "polls" {
				app.All("/Message/Stream", func(c *fiber.Ctx) error {
					return c.Status(fiber.StatusNotFound).JSON(fiber.Map{"error": client.CodeNotFound, "msg": "no such route"})
				})
			}
		}}
		l, newClient := live(t, db, opts)
		const senders, each = 4, 50
		rcv := newClient()
		me := user(t, rcv, "receiver")
		var from []*client.Client
		for i := range senders {
			s := newClient()
			user(t, s, fmt.Sprint("sender", i))
			befriend(t, s, rcv)
			from = append(from, s)
		}

		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		col := newCollector(senders * each)
		listened := make(chan error, 1)
		go func() { listened <- rcv.Listen(ctx, 0, col.handle) }()

		want := map[int64][]string{}
		var wg sync.WaitGroup
		errs := make(chan error, senders)
		for _, s := range from {
			for j := range each {
				want[s.Session().UID] = append(want[s.Session().UID], fmt.Sprint("m", j))
			}
			wg.Go(func() {
				for j := range each {
					if _, err := s.Send(ctx, me, fmt.Sprint("m", j)); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		got := col.wait(t, time.Minute)
		checkOnceInOrder(t, got, want)
		for _, m := range got {
			if m.UIDTo != me {
				t.Fatalf("message %+v not to %d", m, me)
			}
		}
		if l.Hijacked.Load() == 0 {
			t.Errorf("no stream or long poll was parked")
		}
		if n := polls.Load(); (mode == "polls") != (n > 0) {
			t.Errorf("%s: Listen made %d long polls", mode, n)
		}
		cancel()
		if err := <-listened; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen = %v, want context.Canceled", err)
		}
		col.mu.Lock()
		if len(col.got) != senders*each {
			t.Errorf("after the end: %d messages, want %d", len(col.got), senders*each)
		}
		col.mu.Unlock()
	})
}

func TestListenHandlerErrorAndSessionEnd(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx := context.Background()
		// Polls held for a second, so that the one parked at the logout
		// ends soon.
		_, newClient := live(t, db, chattest.Options{Config: func(c *module.Config) { c.MaxWait = time.Second }})
		alice, bob := newClient(), newClient()
		user(t, alice, "alice")
		b := user(t, bob, "bob")
		befriend(t, alice, bob)
		first := must(alice.Send(ctx, b, "one"))(t)
		must(alice.Send(ctx, b, "two"))(t)

		// handle's error ends Listen with that error.
		stop := errors.New("stop")
		var seen []int64
		err := bob.Listen(ctx, 0, func(m client.Message) error {
			seen = append(seen, m.ID)
			if len(seen) == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || len(seen) != 2 {
			t.Fatalf("Listen = %v after %v, want %v after 2 messages", err, seen, stop)
		}
		// From an id, only what is past it.
		var past []client.Message
		err = bob.Listen(ctx, first.ID, func(m client.Message) error { past = append(past, m); return stop })
		if !errors.Is(err, stop) || len(past) != 1 || past[0].ID <= first.ID || past[0].Message != "two" {
			t.Fatalf("Listen(from %d) = %v, handed %+v", first.ID, err, past)
		}

		// A session that ends ends Listen.
		other := newClient(client.WithSession(bob.Session()))
		done := make(chan error, 1)
		go func() {
			done <- other.Listen(ctx, 1<<40, func(client.Message) error { return nil })
		}()
		time.Sleep(200 * time.Millisecond)
		if err := bob.Logout(ctx); err != nil {
			t.Fatal(err)
		}
		// The stream says bye with reason logout (over long polls, the next
		// poll would find the session gone: 1004).
		select {
		case err := <-done:
			if !errors.Is(err, client.ErrSessionEnded) {
				t.Fatalf("Listen after logout = %v, want ErrSessionEnded", err)
			}
		case <-time.After(20 * time.Second):
			t.Fatal("Listen did not return after logout")
		}
	})
}

func TestListenResumesAfterRestart(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv, err := newServer(db.Gorm, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		if err := srv.start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = srv.stop() })
		tr := &http.Transport{}
		defer tr.CloseIdleConnections()
		newClient := func(opts ...client.Option) *client.Client {
			opts = append([]client.Option{client.WithHTTPClient(&http.Client{Transport: tr})}, opts...)
			return must(client.New(srv.URL(), "test", srv.Secret, opts...))(t)
		}
		alice, bob := newClient(), newClient()
		a := user(t, alice, "alice")
		b := user(t, bob, "bob")
		befriend(t, alice, bob)

		col := newCollector(30)
		listened := make(chan error, 1)
		go func() { listened <- bob.Listen(ctx, 0, col.handle) }()
		var want []string
		send := func(c *client.Client, from, to int) {
			t.Helper()
			for i := from; i < to; i++ {
				want = append(want, fmt.Sprint("m", i))
				must(c.Send(ctx, b, fmt.Sprint("m", i)))(t)
			}
		}
		send(alice, 0, 10)
		// Let the listener take these and park a poll before the server goes.
		time.Sleep(300 * time.Millisecond)
		if err := srv.stop(); err != nil {
			t.Fatal(err)
		}
		if err := srv.build(); err != nil {
			t.Fatal(err)
		}
		// While nothing listens, alice reaches the new module without a socket.
		offline := must(client.New("http://offline", "test", srv.Secret, client.WithHTTPClient(&http.Client{Transport: appTransport{srv.App}}), client.WithSession(alice.Session())))(t)
		send(offline, 10, 20)
		time.Sleep(time.Second) // the listener fails and backs off meanwhile
		if err := srv.start(); err != nil {
			t.Fatal(err)
		}
		send(alice, 20, 30)

		got := col.wait(t, time.Minute)
		checkOnceInOrder(t, got, map[int64][]string{a: want})
		cancel()
		if err := <-listened; !errors.Is(err, context.Canceled) {
			t.Errorf("Listen = %v, want context.Canceled", err)
		}
	})
}

// TestListenReplaced: past a session's four streams the server ends the
// oldest (bye "replaced"); its Listen returns ErrStreamReplaced rather
// than coming back for another's stream, and the four newer ones listen
// on.
func TestListenReplaced(t *testing.T) {
	l, newClient := live(t, chattest.OpenSQLite(t), chattest.Options{})
	bob := newClient()
	user(t, bob, "bob")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 5)
	for i := 0; i < 5; i++ {
		c := newClient(client.WithSession(bob.Session()))
		go func() { done <- c.Listen(ctx, 1<<40, func(client.Message) error { return nil }) }()
		// One at a time, so that the first is the oldest.
		deadline := time.Now().Add(10 * time.Second)
		for l.Hijacked.Load() < int64(i+1) {
			if time.Now().After(deadline) {
				t.Fatalf("stream %d not open after 10 s", i+1)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	select {
	case err := <-done:
		if !errors.Is(err, client.ErrStreamReplaced) {
			t.Fatalf("the replaced Listen = %v, want ErrStreamReplaced", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no Listen returned for its stream being replaced")
	}
	select {
	case err := <-done:
		t.Fatalf("a second Listen returned: %v (the replaced one came back for another's stream)", err)
	case <-time.After(2 * time.Second):
	}
}

// TestRetryAfter: a 429's Retry-After reaches the caller as
// Error.RetryAfter.
func TestRetryAfter(t *testing.T) {
	_, newClient := live(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) { c.LoginFailures = 1 }})
	c := newClient()
	uid := user(t, c, "ann")
	ctx := context.Background()
	var err error
	for range 3 {
		if _, err = c.Login(ctx, uid, "not ann's"); client.IsCode(err, client.CodeRateLimited) {
			break
		}
	}
	var e *client.Error
	if !errors.As(err, &e) || e.Code != client.CodeRateLimited || e.RetryAfter < time.Second {
		t.Fatalf("login past the throttle: %v (%+v), want 429/1010 with a Retry-After", err, e)
	}
}
