package handlers_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/models"
	gomysql "github.com/go-sql-driver/mysql"
	"github.com/gofiber/fiber/v2"
)

func TestBoundary(t *testing.T) {
	cases := []struct {
		name    string
		handler fiber.Handler
		status  int
		code    float64
		logged  bool
	}{
		{"api error", func(*fiber.Ctx) error { return apierr.Invalid("invalid name") }, 400, 1001, false},
		{"wrapped api error", func(*fiber.Ctx) error { return fmt.Errorf("ctx: %w", apierr.ErrNotFound) }, 404, 1006, false},
		{"plain error", func(*fiber.Ctx) error { return errors.New("SELECT * FROM secret at /srv/x.go:12") }, 500, 1500, true},
		{"panic", func(*fiber.Ctx) error { panic("boom at /srv/x.go:12") }, 500, 1500, true},
		{"fiber 413", func(*fiber.Ctx) error { return fiber.ErrRequestEntityTooLarge }, 413, 1009, false},
		{"db gone", func(*fiber.Ctx) error { return fmt.Errorf("query: %w", errors.New("sql: database is closed")) }, 503, 1503, true},
		{"session user gone", func(*fiber.Ctx) error { return fmt.Errorf("add contacts: %w", models.ErrUserGone) }, 401, 1004, false},
		{"store's sentinel", func(*fiber.Ctx) error { return fmt.Errorf("send: %w", models.ErrBlocked) }, 403, 1008, false},
		{"store's missing row", func(*fiber.Ctx) error { return models.ErrNoAvatar }, 404, 1006, false},
		{"store's duplicate", func(*fiber.Ctx) error { return models.ErrDuplicate }, 409, 1007, false},
		{"db busy", func(*fiber.Ctx) error {
			return fmt.Errorf("query: %w", &gomysql.MySQLError{Number: 1040, Message: "Too many connections"})
		}, 503, 1503, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			app := fiber.New()
			app.Post("/x", handlers.Boundary(slog.New(slog.NewTextHandler(&logs, nil)), map[string]any{"reg": 0}), tc.handler)
			resp, err := app.Test(httptest.NewRequest("POST", "/x", nil), -1)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			var body map[string]any
			if err := json.Unmarshal(raw, &body); err != nil {
				t.Fatalf("not JSON: %q", raw)
			}
			if resp.StatusCode != tc.status || body["error"] != tc.code || body["reg"] != float64(0) {
				t.Fatalf("got %d %s, want %d error=%v with reg:0", resp.StatusCode, raw, tc.status, tc.code)
			}
			if strings.Contains(string(raw), ".go") || strings.Contains(string(raw), "SELECT") {
				t.Fatalf("answer leaks internals: %s", raw)
			}
			id, _ := body["request_id"].(string)
			if tc.logged != (id != "") || (tc.logged && !strings.Contains(logs.String(), id)) {
				t.Fatalf("request id %q, logs %q", id, logs.String())
			}
			if tc.name == "panic" && !strings.Contains(logs.String(), "goroutine") {
				t.Fatal("the panic's stack was not logged server-side")
			}
		})
	}
}

// TestRequestID checks that a request's id is chosen once, by RequestID,
// and is the same in the response header, the envelope and the log line;
// that a client's well-formed X-Request-Id is kept; and that any other is
// replaced by a random one, so that it reaches neither the log nor the
// answer.
func TestRequestID(t *testing.T) {
	forged := `x" level=ERROR msg="forged`
	cases := []struct {
		name, sent string
		kept       bool
	}{
		{"none", "", false},
		{"well-formed", "trace-42_A", true},
		{"quotes and spaces", forged, false},
		{"a newline, as a space once sent", "a\nb", false},
		{"not ASCII", "trace-é", false},
		{"too long", strings.Repeat("x", 65), false},
		{"64 characters", strings.Repeat("x", 64), true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			app := fiber.New()
			seen := ""
			app.Post("/x", handlers.RequestID(), handlers.Boundary(slog.New(slog.NewTextHandler(&logs, nil)), nil),
				func(c *fiber.Ctx) error {
					seen = handlers.RequestIDFrom(c)
					return errors.New("boom")
				})
			req := httptest.NewRequest("POST", "/x", nil)
			if tc.sent != "" {
				req.Header.Set("X-Request-Id", tc.sent)
			}
			resp, err := app.Test(req, -1)
			if err != nil {
				t.Fatal(err)
			}
			var body map[string]any
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				t.Fatal(err)
			}
			id, header := body["request_id"], resp.Header.Get("X-Request-Id")
			if id != header || id != seen {
				t.Fatalf("request id: body %q, header %q, handler %q; want one id", id, header, seen)
			}
			if tc.kept && seen != tc.sent || !tc.kept && len(seen) != 36 {
				t.Fatalf("sent %q, got id %q; want it kept: %v (else a fresh UUID)", tc.sent, seen, tc.kept)
			}
			if !strings.Contains(logs.String(), "request_id="+seen) || strings.Contains(logs.String(), "forged") {
				t.Fatalf("log %q, want request_id=%s and nothing the client forged", logs.String(), seen)
			}
		})
	}
}

// TestRequestIDWithoutTheMiddleware checks the envelope's id where
// RequestID did not run (ErrorHandler, a host's HealthHandler route): a
// client's well-formed X-Request-Id, else a fresh one, never a forged one.
func TestRequestIDWithoutTheMiddleware(t *testing.T) {
	for sent, kept := range map[string]bool{"trace-7": true, "x y\"z": false, "": false} {
		var logs bytes.Buffer
		app := fiber.New(fiber.Config{ErrorHandler: handlers.ErrorHandler(slog.New(slog.NewTextHandler(&logs, nil)))})
		app.Post("/x", func(*fiber.Ctx) error { return errors.New("boom") })
		req := httptest.NewRequest("POST", "/x", nil)
		if sent != "" {
			req.Header.Set("X-Request-Id", sent)
		}
		resp, err := app.Test(req, -1)
		if err != nil {
			t.Fatal(err)
		}
		var body map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			t.Fatal(err)
		}
		id, _ := body["request_id"].(string)
		if kept && id != sent || !kept && len(id) != 36 || resp.Header.Get("X-Request-Id") != id {
			t.Errorf("sent %q: body id %q, header %q; want it kept: %v (else a fresh UUID)", sent, id, resp.Header.Get("X-Request-Id"), kept)
		}
		if !strings.Contains(logs.String(), "request_id="+id) {
			t.Errorf("sent %q: log %q lacks request_id=%s", sent, logs.String(), id)
		}
	}
}
