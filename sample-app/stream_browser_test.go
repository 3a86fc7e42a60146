package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// fakeStream is a /Message/Stream that speaks API.md §10's wire format
// with events the test writes, and records how each connection opened:
// it checks fiberchat.js's stream path (resume by Last-Event-ID and by
// last_id, read events, bye) whether or not the module has its stream.
type fakeStream struct {
	events chan string
	mu     sync.Mutex
	opens  []streamOpen // one per connection
}

// streamOpen is what one connection asked for.
type streamOpen struct{ lastEventID, lastID, userID, clientID string }

func (f *fakeStream) handler(c *fiber.Ctx) error {
	if c.Query("client_id") == "" || c.Query("user_id") == "" || c.Query("user_token") == "" {
		return c.Status(fiber.StatusBadRequest).JSON(fiber.Map{"error": 1001, "msg": "credentials missing from the query"})
	}
	f.mu.Lock()
	f.opens = append(f.opens, streamOpen{c.Get("Last-Event-ID"), c.Query("last_id"), c.Query("user_id"), c.Query("client_id")})
	f.mu.Unlock()
	c.Set(fiber.HeaderContentType, "text/event-stream")
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Context().SetBodyStreamWriter(func(w *bufio.Writer) {
		// retry: keeps the browser's reconnect short for the test.
		fmt.Fprint(w, "retry: 300\n: ping\n\n")
		if w.Flush() != nil {
			return
		}
		for {
			select {
			case ev := <-f.events:
				if ev == "" { // drop the connection
					return
				}
				fmt.Fprint(w, ev)
			case <-time.After(time.Second):
				fmt.Fprint(w, ": ping\n\n")
			}
			if w.Flush() != nil {
				return
			}
		}
	})
	return nil
}

func (f *fakeStream) opened() []streamOpen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]streamOpen(nil), f.opens...)
}

func event(id int64, typ string, data any) string {
	b, _ := json.Marshal(data)
	if id > 0 {
		return fmt.Sprintf("id: %d\nevent: %s\ndata: %s\n\n", id, typ, b)
	}
	return fmt.Sprintf("event: %s\ndata: %s\n\n", typ, b)
}

func TestBrowserStream(t *testing.T) {
	chromium := findChromium(t)
	ctx := context.Background()
	gdb, err := database.Open(ctx, "sqlite:"+filepath.Join(t.TempDir(), "chat.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { database.Close(gdb) })
	chat, err := module.New(module.Config{DB: gdb, UploadDir: t.TempDir(), BcryptCost: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = chat.Close() })
	if err := chat.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	secret, err := chat.CreateClient(ctx, webClientID, "", "Demo client")
	if err != nil {
		t.Fatal(err)
	}
	fake := &fakeStream{events: make(chan string)}
	app := fiber.New(chat.AppConfig("stream test"))
	mountWebApp(app, chat, webClientID)
	app.Get("/Message/Stream", fake.handler) // before Mount, so it wins over the module's
	// A proxy's page where an envelope should be, 200 and all.
	app.Post("/Contacts/blocked", func(c *fiber.Ctx) error {
		c.Set(fiber.HeaderContentType, fiber.MIMETextHTMLCharsetUTF8)
		return c.SendString("<html>a proxy's page</html>")
	})
	chat.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.ShutdownWithTimeout(time.Second) })
	base := "http://" + ln.Addr().String()

	alice := apiUser(t, base, secret, "Alice")
	bob := apiUser(t, base, secret, "Bob")
	befriend(t, base, secret, alice, bob)

	b := newBrowser(t, chromium, "alice")
	session, _ := json.Marshal(map[string]any{"uid": alice.uid, "access_token": alice.tok})
	b.do(t, "open the page logged in, on Bob", chromedp.Navigate(base+"/app/"))
	b.eval(t, fmt.Sprintf(`localStorage.setItem("fiberchat:demo::session", %q); localStorage.setItem("fiberchat:demo::open", "%d"); true`, session, bob.uid))
	b.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible("#composer"))
	b.waitFor(t, "the stream open", `document.body.dataset.mode === "stream" && document.body.dataset.connection === "live"`)

	// An answer that is no envelope rejects, 200 or not.
	rejected, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(async () => {
  const { configure, ChatError } = await import("/static/fiberchat.js");
  const cfg = await (await fetch("/app/config.json")).json();
  const c = configure({ clientId: cfg.client_id, tokens: cfg.tokens, session: { uid: %d, access_token: %q } });
  return c.call("/Contacts/blocked").then(() => false, (e) => e instanceof ChatError && e.status === 200 && e.code === 0 && e.message.includes("not the chat's JSON"));
})()`, alice.uid, alice.tok), chromedp.EvalAwaitPromise))
	if err != nil || !rejected {
		t.Fatalf("a 200 that is no envelope: rejected %v, %v; want a ChatError", rejected, err)
	}

	push := func(ev string) {
		t.Helper()
		select {
		case fake.events <- ev:
		case <-time.After(10 * time.Second):
			t.Fatalf("no stream connection took the event %q", ev)
		}
	}
	push(event(1000, "message", map[string]any{"id": 1000, "uid_from": bob.uid, "uid_to": alice.uid, "message": "pushed over the stream", "time": time.Now().Unix()}))
	b.waitFor(t, "the pushed message", hasMessage("theirs", "pushed over the stream"))

	// A dropped connection: the notice, the browser's reconnect with
	// Last-Event-ID, then "Reconnected.".
	push("")
	b.waitFor(t, "the reconnected notice", `document.getElementById("banner").textContent === "Reconnected."`)
	if opens := fake.opened(); len(opens) < 2 || opens[len(opens)-1].lastEventID != "1000" {
		t.Fatalf("reconnect after a drop: %+v, want Last-Event-ID 1000", opens)
	}

	// A read event turns the ticks of what Alice sent.
	b.do(t, "send", chromedp.SendKeys("#text", "did you read this?"), chromedp.Click("#composer button[type=submit]"))
	b.waitFor(t, "sent", `!!document.querySelector("#messages .mine[data-id]")`)
	sentID, err := chromedp.Run(b.ctx, chromedp.Evaluate[int64](`Number(document.querySelector("#messages .mine[data-id]").dataset.id)`))
	if err != nil || sentID == 0 {
		t.Fatalf("sent message id %d: %v", sentID, err)
	}
	push(event(0, "read", map[string]any{"uid": bob.uid, "last_id": sentID}))
	b.waitFor(t, "the read tick", `document.querySelector("#messages .mine[data-id]").classList.contains("read")`)

	// bye: the client opens a new stream itself, from its last id.
	n := len(fake.opened())
	push(event(0, "bye", map[string]any{"reason": "shutdown"}))
	b.waitFor(t, "a live stream after bye", `document.body.dataset.connection === "live"`)
	deadline := time.Now().Add(20 * time.Second)
	for len(fake.opened()) == n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	opens := fake.opened()
	if len(opens) == n || opens[len(opens)-1].lastID != "1000" || opens[len(opens)-1].clientID != "demo" || !strings.EqualFold(opens[len(opens)-1].userID, fmt.Sprint(alice.uid)) {
		t.Fatalf("reopen after bye: %+v, want last_id 1000", opens)
	}

	// bye "replaced": the page says so and opens no stream again, which
	// would replace another of the session's in turn.
	// The connection the first bye ended serves on until its next ping
	// fails, and may take an event meant for the live one: pushed until
	// the live one has it.
	n = len(fake.opened())
	replaced := `document.body.dataset.connection === "replaced" && document.getElementById("banner").textContent.includes("Reload")`
	for i := 0; ; i++ {
		push(event(0, "bye", map[string]any{"reason": "replaced"}))
		time.Sleep(500 * time.Millisecond)
		if ok, err := chromedp.Run(b.ctx, chromedp.Evaluate[bool](replaced)); err == nil && ok {
			break
		}
		if i == 20 {
			b.waitFor(t, "the replaced notice", replaced)
		}
	}
	time.Sleep(2 * time.Second)
	if opens := fake.opened(); len(opens) != n {
		t.Fatalf("streams opened after bye replaced: %+v", opens[n:])
	}
}
