package module_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// The tests in this file run the module on a live listener with
// ParkLongPolls on, as the sample app runs it, so that idle long polls
// park; each checks through chattest.Live.Hijacked that they did.

func TestLongPollParked(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		testLongPoll(t, l.Server, l)
		// Eight of its polls wait: two pairs woken, one timed out, two
		// devices, one answered by Close.
		if n := l.Hijacked.Load(); n < 8 {
			t.Fatalf("%d polls parked, want at least 8", n)
		}
	})
}

func TestConcurrentReadersMissNothingParked(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		testConcurrentReaders(t, l.Server, l)
		if l.Hijacked.Load() == 0 {
			t.Fatal("no poll parked")
		}
	})
}

// awaitHijacked waits until the server has handed over n connections in
// all, that is until that many polls have parked.
func awaitHijacked(t *testing.T, l *chattest.Live, n int64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Hijacked.Load() < n {
		if time.Now().After(deadline) {
			t.Fatalf("%d polls parked, want %d", l.Hijacked.Load(), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// rawClient speaks HTTP/1.1 on one connection it dials itself, so that a
// test knows which connection each request took.
type rawClient struct {
	l    *chattest.Live
	conn net.Conn
	br   *bufio.Reader
}

func dialRaw(t *testing.T, l *chattest.Live) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &rawClient{l: l, conn: conn, br: bufio.NewReader(conn)}
}

// write sends a signed JSON request without reading the answer.
func (c *rawClient) write(t *testing.T, path string, body any, header ...string) *http.Request {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, c.l.URL(path), bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if err := req.Write(c.conn); err != nil {
		t.Fatal(err)
	}
	return req
}

// read reads one answer.
func (c *rawClient) read(t *testing.T, req *http.Request) (*http.Response, []byte) {
	t.Helper()
	_ = c.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(c.br, req)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	body, err := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	return resp, body
}

func (c *rawClient) recv(t *testing.T, req *http.Request) (*http.Response, recvAnswer) {
	t.Helper()
	resp, body := c.read(t, req)
	if ct := resp.Header.Get("Content-Type"); ct != fiber.MIMEApplicationJSON {
		t.Fatalf("Content-Type %q, want %q", ct, fiber.MIMEApplicationJSON)
	}
	a, err := decodeRecv(&chattest.Response{Status: resp.StatusCode, Raw: body, Body: map[string]any{"error": 0.0}})
	if err != nil {
		t.Fatal(err)
	}
	return resp, a
}

func TestParkedPollKeepsConnection(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		l.Befriend(t, a, b)

		t.Run("one connection, request after request", func(t *testing.T) {
			c := dialRaw(t, l)
			start := time.Now()
			resp, ans := c.recv(t, c.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 1})))
			if took := time.Since(start); ans.Num != 0 || ans.More || took < 900*time.Millisecond || took > 5*time.Second {
				t.Fatalf("timed-out poll: %+v after %v", ans, took)
			}
			if resp.Close {
				t.Fatal("a timed-out parked poll closed its connection")
			}
			parked := l.Hijacked.Load()

			// Parked again on the same connection, then woken.
			req := c.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 10, "last_id": ans.LastID}))
			awaitHijacked(t, l, parked+1)
			id := mustSend(t, l.Server, a, b, "same connection")
			if _, ans := c.recv(t, req); ans.Num != 1 || ans.Data[0].ID != id || ans.LastID != id {
				t.Fatalf("woken poll: %+v", ans)
			}

			// And an ordinary request after it.
			resp, body := c.read(t, c.write(t, "/user/info", b.Creds(nil)))
			if resp.StatusCode != 200 || !bytes.Contains(body, []byte(`"error":0`)) {
				t.Fatalf("info after parked polls: %d %s", resp.StatusCode, body)
			}
		})

		t.Run("an HTTP client reuses the connection", func(t *testing.T) {
			cursor := recv(t, l.Server, b, client.RecvRequest{LastID: last(0), Limit: 500}).LastID
			res := awaitPoll(t, poll(t, l, b, client.RecvRequest{Wait: time.Second, LastID: last(cursor)}))
			if res.took < 900*time.Millisecond {
				t.Fatalf("wait=1 answered after %v", res.took)
			}
			var reused bool
			trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { reused = info.Reused }}
			body, _ := json.Marshal(b.Creds(map[string]any{"last_id": 0}))
			req, _ := http.NewRequest(http.MethodPost, l.URL("/Message/Recv"), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req = req.WithContext(httptrace.WithClientTrace(req.Context(), trace))
			if _, err := l.Send(req); err != nil {
				t.Fatal(err)
			}
			if !reused {
				t.Fatal("the request after a parked poll opened a new connection")
			}
		})

		t.Run("Connection: close is honoured", func(t *testing.T) {
			c := dialRaw(t, l)
			cursor := recv(t, l.Server, b, client.RecvRequest{LastID: last(0), Limit: 500}).LastID
			parked := l.Hijacked.Load()
			resp, _ := c.recv(t, c.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 1, "last_id": cursor}), "Connection", "close"))
			if l.Hijacked.Load() != parked+1 {
				t.Fatal("the poll did not park")
			}
			if !resp.Close {
				t.Fatal("answer lacks Connection: close")
			}
			_ = c.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
			if n, err := c.br.ReadByte(); err != io.EOF {
				t.Fatalf("connection still open after Connection: close: %v %v", n, err)
			}
		})
	})
}

func TestParkedPollHeaders(t *testing.T) {
	// A header the host's middleware sets before the route runs (CORS,
	// say) reaches a parked poll's answer.
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{App: func(app *fiber.App) {
		app.Use(func(c *fiber.Ctx) error {
			c.Set("Access-Control-Allow-Origin", "https://example.com")
			return c.Next()
		})
	}})
	b := l.NewUser(t, "b")
	c := dialRaw(t, l)
	resp, _ := c.recv(t, c.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 1})))
	if got := resp.Header.Get("Access-Control-Allow-Origin"); got != "https://example.com" {
		t.Fatalf("Access-Control-Allow-Origin %q after parking", got)
	}
	if l.Hijacked.Load() != 1 {
		t.Fatal("the poll did not park")
	}
}

func TestParkedSessionCursor(t *testing.T) {
	// Two parked polls of one session race for one message: at least one
	// gets it (both may: each read the cursor before either answer was
	// written, API.md §5), and once both have answered the session's
	// cursor is past it. Another device, a session of its own, gets it
	// too.
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		reg := prometheus.NewRegistry()
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) { c.Metrics = reg }})
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		l.Befriend(t, a, b)
		laptop := login(t, l.Server, b)
		for round := range 3 {
			parked := l.Hijacked.Load()
			p1, p2 := poll(t, l, b, client.RecvRequest{Wait: 2 * time.Second}), poll(t, l, b, client.RecvRequest{Wait: 2 * time.Second})
			p3 := poll(t, l, laptop, client.RecvRequest{Wait: 10 * time.Second})
			awaitHijacked(t, l, parked+3)
			id := mustSend(t, l.Server, a, b, fmt.Sprintf("once %d", round))
			if res := awaitPoll(t, p3); len(res.ans.Messages) != 1 || res.ans.Messages[0].ID != id {
				t.Fatalf("other device: %+v", res.ans)
			}
			got := 0
			for _, p := range []<-chan pollResult{p1, p2} {
				res := awaitPoll(t, p)
				got += len(res.ans.Messages)
				if len(res.ans.Messages) == 1 && res.ans.Messages[0].ID != id {
					t.Fatalf("session poll: %+v", res.ans)
				}
			}
			if got == 0 {
				t.Fatalf("round %d: neither of one session's two polls got the message", round)
			}
			// A parked poll counts until its answer is written and the
			// cursor moved.
			awaitValue(t, reg, "fiberchat_long_polls", 0)
			if again := recv(t, l.Server, b, client.RecvRequest{}); len(again.Messages) != 0 {
				t.Fatalf("round %d: the session's cursor stayed behind its answers: %+v", round, again)
			}
		}
	})
}

func TestParkedPollClientGone(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		l.Befriend(t, a, b)
		// One gone client is woken, one runs out its wait; neither may
		// disturb the server.
		woken, expired := dialRaw(t, l), dialRaw(t, l)
		woken.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 10, "last_id": 0}))
		expired.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 1, "last_id": 0}))
		awaitHijacked(t, l, 2)
		_ = woken.conn.Close()
		_ = expired.conn.Close()
		id := mustSend(t, l.Server, a, b, "nobody listening")
		time.Sleep(1500 * time.Millisecond) // past the second one's wait
		res := awaitPoll(t, poll(t, l, b, client.RecvRequest{Wait: 5 * time.Second, LastID: last(0)}))
		if len(res.ans.Messages) != 1 || res.ans.Messages[0].ID != id {
			t.Fatalf("poll after gone clients: %+v", res.ans)
		}
		if logs := l.Logs.String(); strings.Contains(logs, "level=ERROR") {
			t.Fatalf("errors logged:\n%s", logs)
		}
	})
}

func TestSessionCursorClientGone(t *testing.T) {
	// A server-cursor poll whose client left before its message came
	// consumes nothing: the session's next Recv gets the message. Parked
	// and held (a server without KeepHijackedConns holds its polls on the
	// socket) alike.
	for _, parks := range []bool{true, false} {
		t.Run(map[bool]string{true: "parked", false: "held"}[parks], func(t *testing.T) {
			chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
				reg := prometheus.NewRegistry()
				l := chattest.NewLive(t, db, chattest.Options{
					Config: func(c *module.Config) { c.Metrics = reg },
					App:    func(app *fiber.App) { app.Server().KeepHijackedConns = parks },
				})
				a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
				l.Befriend(t, a, b)
				gone := dialRaw(t, l)
				gone.write(t, "/Message/Recv", b.Creds(map[string]any{"wait": 20}))
				awaitValue(t, reg, "fiberchat_long_polls", 1)
				_ = gone.conn.Close()
				id := mustSend(t, l.Server, a, b, "for whoever asks next")
				// The poll has answered, or found it had no one to answer.
				awaitValue(t, reg, "fiberchat_long_polls", 0)
				if got := recv(t, l.Server, b, client.RecvRequest{}); len(got.Messages) != 1 || got.Messages[0].ID != id {
					t.Fatalf("next Recv of the session: %+v, want message %d", got, id)
				}
				if parked := l.Hijacked.Load() == 1; parked != parks {
					t.Fatalf("%d polls parked", l.Hijacked.Load())
				}
			})
		})
	}
}

func TestParkingNeedsKeepHijackedConns(t *testing.T) {
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{App: func(app *fiber.App) {
		app.Server().KeepHijackedConns = false
	}})
	b := l.NewUser(t, "b")
	for range 2 {
		if res := awaitPoll(t, poll(t, l, b, client.RecvRequest{Wait: time.Second})); res.took < 900*time.Millisecond {
			t.Fatalf("wait=1 answered after %v", res.took)
		}
	}
	if n := l.Hijacked.Load(); n != 0 {
		t.Fatalf("%d polls parked without KeepHijackedConns", n)
	}
	if n := strings.Count(l.Logs.String(), "KeepHijackedConns"); n != 1 {
		t.Fatalf("warned %d times about KeepHijackedConns, want once:\n%s", n, l.Logs)
	}
}

func TestParkingOnAppTestHolds(t *testing.T) {
	// app.Test's in-memory connection cannot be parked: with parking on,
	// its polls are held, as a host's own tests would need.
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{})
	a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
	l.Befriend(t, a, b)
	held := poll(t, l.Server, b, client.RecvRequest{Wait: 10 * time.Second})
	time.Sleep(200 * time.Millisecond)
	id := mustSend(t, l.Server, a, b, "held")
	if res := awaitPoll(t, held); len(res.ans.Messages) != 1 || res.ans.Messages[0].ID != id {
		t.Fatalf("held poll: %+v", res.ans)
	}
	if n := l.Hijacked.Load(); n != 0 {
		t.Fatalf("%d app.Test polls parked", n)
	}
}
