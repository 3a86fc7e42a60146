package chattest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/fiberchat/fiberchat/models"
)

// Befriend makes a and b contacts by inserting both directions of the
// contact directly, so message tests do not depend on the contacts routes.
func (s *Server) Befriend(t testing.TB, a, b User) {
	t.Helper()
	now := s.Clock.Now().Unix()
	rows := []models.Contact{{UID: a.UID, PeerUID: b.UID, CreatedAt: now}, {UID: b.UID, PeerUID: a.UID, CreatedAt: now}}
	if err := s.Module.DB().Create(&rows).Error; err != nil {
		t.Fatalf("befriend %d and %d: %v", a.UID, b.UID, err)
	}
}

// TryPost sends a signed JSON request like Post but returns failures
// instead of failing the test, for goroutines other than the test's own
// (which must not call t.Fatal).
func (s *Server) TryPost(path string, body any) (*Response, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, err
	}
	q := url.Values{"client_id": {s.ClientID}, "api_token": {s.Sign(path)}}
	req := httptest.NewRequest(http.MethodPost, s.Prefix+path+"?"+q.Encode(), bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.App.Test(req, -1)
	if err != nil {
		return nil, fmt.Errorf("POST %s: %w", path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	out := &Response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &out.Body); err != nil {
		return nil, fmt.Errorf("POST %s: answer is not a JSON object: %w: %q", path, err, raw)
	}
	return out, nil
}
