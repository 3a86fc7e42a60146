package module_test

import (
	"encoding/json"
	"log/slog"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/module"
)

// TestRequestIDs checks that every answer of a module route carries the
// request's id in X-Request-Id, the one its access log line carries: the
// client's when well-formed, else a fresh one, so that a forged id with
// quotes and newlines never reaches the log.
func TestRequestIDs(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		buf := &chattest.SyncBuffer{}
		logger := slog.New(slog.NewJSONHandler(buf, nil))
		s := chattest.NewServer(t, db, chattest.Options{Config: func(c *module.Config) { c.AccessLog = logger }})
		u := s.NewUser(t, "a")
		cases := []struct {
			name, sent string
			kept       bool
		}{
			{"none", "", false},
			{"well-formed", "trace-42", true},
			{"forged", "x\"\r\n{\"msg\":\"forged\"}", false},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				req := chattest.Req{Path: "/user/info", JSON: u.Creds(nil)}
				if tc.sent != "" {
					req.Header = map[string]string{"X-Request-Id": tc.sent}
				}
				r := s.Do(t, req)
				chattest.Expect(t, r, 200, 0)
				id := r.Header.Get("X-Request-Id")
				if tc.kept && id != tc.sent || !tc.kept && len(id) != 36 {
					t.Fatalf("sent %q, answered X-Request-Id %q; want it kept: %v (else a fresh UUID)", tc.sent, id, tc.kept)
				}
				var line struct {
					RequestID string `json:"request_id"`
				}
				lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
				raw := lines[len(lines)-1]
				if err := json.Unmarshal([]byte(raw), &line); err != nil || line.RequestID != id || strings.Contains(raw, "forged") {
					t.Fatalf("access log %q (%v), want one line with request_id %q and nothing forged", raw, err, id)
				}
			})
		}
	})
}
