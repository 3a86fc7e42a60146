package module_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// Requests without a valid api_token cost an attacker nothing to send:
// they are refused before any limit counts them, so that a flood of them
// cannot spend a real client's budget.
func TestUnsignedFloodSpendsNoBudget(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.LoginRateLimit = 3
		c.RegisterRateLimit = 3
	}})
	u := s.NewUser(t, "a")
	for i := 0; i < 10; i++ {
		chattest.Expect(t, s.Do(t, chattest.Req{Path: "/user/login", JSON: map[string]any{"uid": u.UID, "passwd": u.Password}, Unsigned: true}), 403, 1002)
		chattest.Expect(t, s.Do(t, chattest.Req{Path: "/user/reg/ajax_reg", JSON: map[string]any{"name": "n", "passwd": "secret1"}, Unsigned: true}), 403, 1002)
	}
	// The budget is whole: a real client's login and register get in.
	ctx := context.Background()
	if _, err := s.SDK(t).Login(ctx, u.UID, u.Password); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := s.SDK(t).Register(ctx, "n", "secret1"); err != nil {
		t.Fatalf("register: %v", err)
	}
}

// Failed logins are counted per uid, whatever address they come from:
// past LoginFailures each attempt waits, twice as long after each further
// failure, up to LoginBackoffMax; a successful login clears the run.
func TestLoginThrottlePerAccount(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.LoginRateLimit = -1 // the per-IP limit is not what is tested here
		c.LoginFailures = 3
		c.LoginBackoffMax = 10 * time.Second
	}})
	u, other := s.NewUser(t, "a"), s.NewUser(t, "b")
	wrong := map[string]any{"uid": u.UID, "passwd": "wrong-pw"}
	right := map[string]any{"uid": u.UID, "passwd": u.Password}
	for i := 0; i < 3; i++ {
		chattest.Expect(t, s.Post(t, "/user/login", wrong), 401, 1005)
	}
	// The fourth failure still checks the password; then the waits begin.
	chattest.Expect(t, s.Post(t, "/user/login", wrong), 401, 1005)
	retryAfter := func(r *chattest.Response) int {
		t.Helper()
		chattest.Expect(t, r, 429, 1010)
		n, err := strconv.Atoi(r.Header.Get("Retry-After"))
		if err != nil || n < 1 {
			t.Fatalf("Retry-After %q", r.Header.Get("Retry-After"))
		}
		return n
	}
	// Waiting, even the right password is refused unchecked.
	if got := retryAfter(s.Post(t, "/user/login", right)); got != 1 {
		t.Fatalf("first wait %ds, want 1", got)
	}
	// Another user is not affected.
	chattest.Expect(t, s.Post(t, "/user/login", map[string]any{"uid": other.UID, "passwd": other.Password}), 200, 0)
	// Each failure after a wait doubles it, up to the cap.
	for _, want := range []int{2, 4, 8, 10, 10} {
		s.Clock.Advance(time.Duration(want) * time.Second) // past the previous wait
		chattest.Expect(t, s.Post(t, "/user/login", wrong), 401, 1005)
		if got := retryAfter(s.Post(t, "/user/login", right)); got != want {
			t.Fatalf("wait %ds, want %d", got, want)
		}
	}
	// Never locked out for longer than the cap: the right password then
	// gets in, and clears the run.
	s.Clock.Advance(10 * time.Second)
	chattest.Expect(t, s.Post(t, "/user/login", right), 200, 0)
	for i := 0; i < 3; i++ {
		chattest.Expect(t, s.Post(t, "/user/login", wrong), 401, 1005)
	}
	chattest.Expect(t, s.Post(t, "/user/login", right), 200, 0)
}

// A password change and an avatar upload are limited per user, whatever
// session or address they come from.
func TestAccountRateLimit(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.AccountRateLimit = 2
		c.RateLimitWindow = time.Hour
	}})
	u, other := s.NewUser(t, "a"), s.NewUser(t, "b")
	for i := 0; i < 2; i++ {
		chattest.Expect(t, s.Post(t, "/user/info/passwd", u.Creds(map[string]any{"old_passwd": "wrong-pw", "new_passwd": "brand-new-pw"})), 401, 1005)
		chattest.Expect(t, upload(t, s, u, "a.png", pngBytes(t, 8, 8)), 200, 0)
	}
	chattest.Expect(t, s.Post(t, "/user/info/passwd", u.Creds(map[string]any{"old_passwd": u.Password, "new_passwd": "brand-new-pw"})), 429, 1010)
	chattest.Expect(t, upload(t, s, u, "a.png", pngBytes(t, 8, 8)), 429, 1010)
	// Another session of the same user shares the budget.
	u = login(t, s, u)
	chattest.Expect(t, upload(t, s, u, "a.png", pngBytes(t, 8, 8)), 429, 1010)
	// Another user has a budget of its own.
	chattest.Expect(t, upload(t, s, other, "a.png", pngBytes(t, 8, 8)), 200, 0)
	chattest.Expect(t, s.Post(t, "/user/info/passwd", other.Creds(map[string]any{"old_passwd": other.Password, "new_passwd": "brand-new-pw"})), 200, 0)
}

// The server's own body limit is the module's largest; a larger body is
// refused before it is read, in the module's envelope.
func TestMaxBodySize(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.BodyLimit = 64 << 10
		c.AvatarMaxBytes = 256 << 10
		c.MaxFileBytes = 128 << 10
	}})
	m := s.Module
	if got, want := m.MaxBodySize(), 256<<10+64<<10; got != want {
		t.Fatalf("MaxBodySize %d, want %d (the avatar's limit plus framing)", got, want)
	}
	cfg := m.AppConfig("t")
	if cfg.BodyLimit != m.MaxBodySize() {
		t.Fatalf("AppConfig BodyLimit %d, want MaxBodySize %d", cfg.BodyLimit, m.MaxBodySize())
	}
	app := fiber.New(cfg)
	m.Mount(app)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = app.Listener(ln) }()
	t.Cleanup(func() { _ = app.Shutdown() })
	// The length is declared, not sent: the server answers without
	// reading a body past its limit.
	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(conn, "POST /user/info/head_img HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", m.MaxBodySize()+1); err != nil {
		t.Fatal(err)
	}
	// AppConfig streams bodies (uploads do): fasthttp then reads up to
	// 8 KiB of a body (more than that sent here) before the handler runs, and the module's limit
	// answers from the declared length, reading no more.
	if _, err := conn.Write(make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 413 || !strings.Contains(string(body), `"error":1009`) {
		t.Fatalf("answer %d %s, want 413 with error 1009", resp.StatusCode, body)
	}
}

// pollRunner starts Recv long polls through the SDK and waits until the
// n-th started is waiting.
type pollRunner struct {
	sdk   sdker
	await func(t *testing.T, n int)
}

// start sends a 30-second Recv for u and returns where its answer comes.
func (p pollRunner) start(t *testing.T, u chattest.User) <-chan pollResult {
	t.Helper()
	return poll(t, p.sdk, u, client.RecvRequest{Wait: 30 * time.Second})
}

// Waiting long polls are capped per session and per user, parked or held:
// past a cap the oldest is answered at once, empty, and the others wait on.
func TestPollCap(t *testing.T) {
	for _, mode := range []string{"parked", "held"} {
		t.Run(mode, func(t *testing.T) {
			var (
				s *chattest.Server
				p pollRunner
			)
			if mode == "parked" {
				l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{})
				s = l.Server
				p = pollRunner{sdk: l, await: func(t *testing.T, n int) { awaitHijacked(t, l, int64(n)) }}
			} else {
				s = chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{})
				// A held poll shows no sign of waiting: give it time to.
				p = pollRunner{sdk: s, await: func(*testing.T, int) { time.Sleep(150 * time.Millisecond) }}
			}
			u := s.NewUser(t, "u")
			sessions := []chattest.User{u}
			for range 4 {
				sessions = append(sessions, login(t, s, u))
			}
			var polls []<-chan pollResult
			waiting := 0
			startOn := func(v chattest.User) {
				polls = append(polls, p.start(t, v))
				waiting++
				p.await(t, waiting)
			}
			expectAnswered := func(i int) {
				t.Helper()
				select {
				case r := <-polls[i]:
					if r.err != nil {
						t.Fatalf("poll %d: %v", i, r.err)
					}
					if r.ans.Messages == nil || len(r.ans.Messages) != 0 {
						t.Fatalf("poll %d answered %+v, want empty", i, r.ans)
					}
				case <-time.After(5 * time.Second):
					t.Fatalf("poll %d not answered past the cap", i)
				}
			}
			expectWaiting := func(from int) {
				t.Helper()
				time.Sleep(100 * time.Millisecond)
				for i := from; i < len(polls); i++ {
					select {
					case r := <-polls[i]:
						t.Fatalf("poll %d answered while within the caps: %+v %v", i, r.ans, r.err)
					default:
					}
				}
			}
			// A fifth poll of one session ends its first.
			for range 5 {
				startOn(sessions[0])
			}
			expectAnswered(0)
			expectWaiting(1)
			// Four sessions of four make the user's sixteen; the
			// seventeenth, on a fifth session, ends the user's oldest.
			for _, v := range sessions[1:4] {
				for range 4 {
					startOn(v)
				}
			}
			expectWaiting(1)
			startOn(sessions[4])
			expectAnswered(1)
			expectWaiting(2)
		})
	}
}

// Parallel guesses at one account are counted before their passwords are
// checked: of 40 wrong passwords sent at once, LoginFailures are checked
// and then one more, alone; the rest are refused unchecked.
func TestLoginThrottleParallel(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) {
			c.LoginRateLimit = -1 // the per-IP limit is not what is tested here
			c.LoginFailures = 5
		}})
		u := s.NewUser(t, "a")
		checked := parallelWrongLogins(t, 40, u, s)
		if checked > 6 {
			t.Fatalf("%d of 40 parallel wrong passwords were checked, want at most 5 + 1", checked)
		}
	})
}

// parallelWrongLogins sends n logins with a wrong password for u at once,
// spread over servers, and returns how many had their password checked
// (401/1005); every other must be 429/1010.
func parallelWrongLogins(t *testing.T, n int, u chattest.User, servers ...*chattest.Server) int {
	t.Helper()
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := range n {
		c := servers[i%len(servers)].SDK(t)
		go func() {
			<-start
			_, err := c.Login(context.Background(), u.UID, "wrong-pw")
			errs <- err
		}()
	}
	close(start)
	checked := 0
	for range n {
		var e *client.Error
		switch err := <-errs; {
		case errors.As(err, &e) && e.Status == 401 && e.Code == 1005:
			checked++
		case errors.As(err, &e) && e.Status == 429 && e.Code == 1010:
		default:
			t.Fatalf("wrong login answered %v, want 401/1005 or 429/1010", err)
		}
	}
	return checked
}
