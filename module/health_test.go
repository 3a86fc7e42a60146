package module_test

import (
	"encoding/json"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/gofiber/fiber/v2"
)

// TestHealthHandler checks both answers of GET /healthz, the failure in
// the same envelope (and log line) as any route's.
func TestHealthHandler(t *testing.T) {
	db := chattest.OpenSQLite(t)
	s := chattest.NewServer(t, db, chattest.Options{})
	app := fiber.New()
	app.Get("/healthz", s.Module.HealthHandler())
	get := func() (int, map[string]any) {
		t.Helper()
		resp, err := app.Test(httptest.NewRequest("GET", "/healthz", nil), -1)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		var body map[string]any
		if err := json.Unmarshal(raw, &body); err != nil {
			t.Fatalf("body %q: %v", raw, err)
		}
		return resp.StatusCode, body
	}
	if status, body := get(); status != 200 || body["error"] != 0.0 || body["msg"] != "ok" || len(body) != 2 {
		t.Fatalf("healthy: %d %v, want 200 {error:0 msg:ok}", status, body)
	}
	if err := database.Close(db.Gorm); err != nil {
		t.Fatal(err)
	}
	status, body := get()
	if status != 503 || body["error"] != 1503.0 || body["msg"] != "database unavailable, retry later" || body["request_id"] == "" {
		t.Fatalf("database closed: %d %v, want 503 {error:1503 msg:database unavailable, retry later request_id}", status, body)
	}
	if logs := s.Logs.String(); !strings.Contains(logs, "health check") || !strings.Contains(logs, body["request_id"].(string)) {
		t.Fatalf("logs do not name the failed check and its request id:\n%s", logs)
	}
}
