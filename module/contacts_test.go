package module_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"gorm.io/gorm"
)

const (
	pathList    = "/Contacts/list"
	pathInfo    = "/Contacts/Info"
	pathAdd     = "/Contacts/IO/addContacts"
	pathDel     = "/Contacts/IO/delContacts"
	pathPending = "/Contacts/list/add"
	pathAnswer  = "/Contacts/IO/acceptContacts"
)

// noSuchUID is a uid no test registers.
const noSuchUID = 99999999

// uidList is a data list of {"uid":…} entries.
func uidList(uids ...int64) []map[string]any {
	out := make([]map[string]any, len(uids))
	for i, u := range uids {
		out[i] = map[string]any{"uid": u}
	}
	return out
}

// call posts fields with u's credentials to path.
func call(t *testing.T, s *chattest.Server, u chattest.User, path string, fields map[string]any) *chattest.Response {
	t.Helper()
	return s.Post(t, path, u.Creds(fields))
}

func addContacts(t *testing.T, s *chattest.Server, u chattest.User, uids ...int64) *chattest.Response {
	t.Helper()
	r := call(t, s, u, pathAdd, map[string]any{"data": uidList(uids...)})
	chattest.Expect(t, r, 200, 0)
	return r
}

// ask has u ask each of uids to be a contact, through the SDK.
func ask(t *testing.T, s *chattest.Server, u chattest.User, uids ...int64) []client.AddResult {
	t.Helper()
	res, err := s.SDKFor(t, u).AddContacts(context.Background(), uids...)
	if err != nil {
		t.Fatalf("addContacts: %v", err)
	}
	return res
}

// answer has u accept or refuse from's request through the SDK and
// returns the SDK's error.
func answer(t *testing.T, s *chattest.Server, u chattest.User, from int64, accept bool) error {
	t.Helper()
	return s.SDKFor(t, u).AnswerRequest(context.Background(), from, accept)
}

// mustAnswer is answer that must succeed.
func mustAnswer(t *testing.T, s *chattest.Server, u chattest.User, from int64, accept bool) {
	t.Helper()
	if err := answer(t, s, u, from, accept); err != nil {
		t.Fatalf("acceptContacts: %v", err)
	}
}

// contactsOf lists u's contacts through the SDK and checks their uids.
func contactsOf(t *testing.T, s *chattest.Server, u chattest.User, want ...int64) []client.Contact {
	t.Helper()
	got, err := s.SDKFor(t, u).Contacts(context.Background())
	if err != nil {
		t.Fatalf("contacts: %v", err)
	}
	uids := []int64{}
	for _, p := range got {
		uids = append(uids, p.UID)
	}
	if got == nil || !slices.Equal(uids, append([]int64{}, want...)) {
		t.Fatalf("contacts of %d: %v, want %v", u.UID, uids, want)
	}
	return got
}

// pendingOf lists the requests to u through the SDK and checks their uids.
func pendingOf(t *testing.T, s *chattest.Server, u chattest.User, want ...int64) []client.ContactRequest {
	t.Helper()
	got, err := s.SDKFor(t, u).ContactRequests(context.Background())
	if err != nil {
		t.Fatalf("list/add: %v", err)
	}
	uids := []int64{}
	for _, p := range got {
		uids = append(uids, p.UID)
	}
	if got == nil || !slices.Equal(uids, append([]int64{}, want...)) {
		t.Fatalf("requests to %d: %v, want %v", u.UID, uids, want)
	}
	return got
}

// data returns the body's data list.
func data(t *testing.T, r *chattest.Response) []map[string]any {
	t.Helper()
	raw, ok := r.Body["data"].([]any)
	if !ok {
		t.Fatalf("data is not a list: %s", r)
	}
	out := make([]map[string]any, len(raw))
	for i, e := range raw {
		m, ok := e.(map[string]any)
		if !ok {
			t.Fatalf("data[%d] is not an object: %s", i, r)
		}
		out[i] = m
	}
	return out
}

func intOf(v any) int64 {
	f, _ := v.(float64)
	return int64(f)
}

// statuses returns addContacts' answer as "uid:status" strings.
func statuses(t *testing.T, r *chattest.Response) []string {
	t.Helper()
	var out []string
	for _, e := range data(t, r) {
		out = append(out, fmt.Sprintf("%d:%s", intOf(e["uid"]), e["status"]))
	}
	return out
}

// uidsOf returns the uids of a data list, in order.
func uidsOf(t *testing.T, r *chattest.Response) []int64 {
	t.Helper()
	var out []int64
	for _, e := range data(t, r) {
		out = append(out, intOf(e["uid"]))
	}
	return out
}

func expectUIDs(t *testing.T, r *chattest.Response, want ...int64) {
	t.Helper()
	chattest.Expect(t, r, 200, 0)
	got := uidsOf(t, r)
	if !slices.Equal(got, want) || r.Int("num") != int64(len(want)) || r.Str("msg") != "success" {
		t.Fatalf("got uids %v num %d (%s), want %v", got, r.Int("num"), r, want)
	}
}

// pairRows counts the contact rows and request rows between a and b.
func pairRows(t *testing.T, s *chattest.Server, a, b int64) (contacts, requests int64) {
	t.Helper()
	contacts = s.Count(t, "contacts", "(uid = ? AND peer_uid = ?) OR (uid = ? AND peer_uid = ?)", a, b, b, a)
	requests = s.Count(t, "contact_requests", "(from_uid = ? AND to_uid = ?) OR (from_uid = ? AND to_uid = ?)", a, b, b, a)
	return contacts, requests
}

func expectPair(t *testing.T, s *chattest.Server, a, b int64, contacts, requests int64) {
	t.Helper()
	c, r := pairRows(t, s, a, b)
	if c != contacts || r != requests {
		t.Fatalf("between %d and %d: %d contact rows and %d request rows, want %d and %d", a, b, c, r, contacts, requests)
	}
}

func TestAddContactsStatuses(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c, d, e := s.NewUser(t, "A"), s.NewUser(t, "B"), s.NewUser(t, "C"), s.NewUser(t, "D"), s.NewUser(t, "E")
		// B has asked A; A and C are contacts; A has asked D.
		ask(t, s, b, a.UID)
		ask(t, s, a, c.UID)
		mustAnswer(t, s, c, a.UID, true)
		ask(t, s, a, d.UID)

		r := call(t, s, a, pathAdd, map[string]any{"data": []map[string]any{
			{"uid": a.UID}, {"uid": fmt.Sprint(noSuchUID)}, {"uid": c.UID}, {"uid": b.UID},
			{"uid": d.UID}, {"uid": fmt.Sprint(e.UID)}, {"uid": e.UID}, {"uid": b.UID}, {"uid": noSuchUID},
		}})
		chattest.Expect(t, r, 200, 0)
		want := []string{
			fmt.Sprintf("%d:self", a.UID),
			fmt.Sprintf("%d:not_found", noSuchUID),
			fmt.Sprintf("%d:already_contact", c.UID),
			fmt.Sprintf("%d:accepted", b.UID),
			fmt.Sprintf("%d:pending", d.UID),
			fmt.Sprintf("%d:requested", e.UID),
			// Repeats read as if sent one request after another.
			fmt.Sprintf("%d:pending", e.UID),
			fmt.Sprintf("%d:already_contact", b.UID),
			fmt.Sprintf("%d:not_found", noSuchUID),
		}
		if got := statuses(t, r); !slices.Equal(got, want) {
			t.Fatalf("statuses\n got %v\nwant %v", got, want)
		}
		if r.Int("num") != 2 || r.Str("msg") != "success" {
			t.Fatalf("num %d msg %q, want 2 success", r.Int("num"), r.Str("msg"))
		}
		expectPair(t, s, a.UID, b.UID, 2, 0)
		expectPair(t, s, a.UID, c.UID, 2, 0)
		expectPair(t, s, a.UID, d.UID, 0, 1)
		expectPair(t, s, a.UID, e.UID, 0, 1)
		if n := s.Count(t, "contact_requests", "from_uid = ? AND to_uid = ?", a.UID, e.UID); n != 1 {
			t.Fatalf("request A→E: %d rows", n)
		}
		if n := s.Count(t, "contacts", ""); n != 4 {
			t.Fatalf("%d contact rows, want 4", n)
		}
		if n := s.Count(t, "contact_requests", ""); n != 2 {
			t.Fatalf("%d request rows, want 2", n)
		}
	})
}

func TestContactRequestAcceptFlow(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "Alice"), s.NewUser(t, "Bob"), s.NewUser(t, "Carol")
		if err := s.SDKFor(t, c).UpdateProfile(context.Background(), client.ProfileUpdate{HeadImg: "https://img.example/c.png"}); err != nil {
			t.Fatal(err)
		}

		// C asks first, A a minute later: list/add is oldest first.
		t0 := s.Clock.Now().Unix()
		if res := ask(t, s, c, b.UID); len(res) != 1 || res[0] != (client.AddResult{UID: b.UID, Status: client.StatusRequested}) {
			t.Fatalf("addContacts: %+v", res)
		}
		s.Clock.Advance(time.Minute)
		// A form body, as seed-era clients send it, with data as JSON text.
		form := url.Values{"uid": {fmt.Sprint(a.UID)}, "access_token": {a.Token}, "data": {fmt.Sprintf(`[{"uid":"%d"}]`, b.UID)}}
		r := s.Do(t, chattest.Req{Path: pathAdd, Body: []byte(form.Encode()), ContentType: "application/x-www-form-urlencoded"})
		chattest.Expect(t, r, 200, 0)
		if got := statuses(t, r); !slices.Equal(got, []string{fmt.Sprintf("%d:requested", b.UID)}) {
			t.Fatalf("form addContacts: %v", got)
		}

		pending := call(t, s, b, pathPending, nil)
		expectUIDs(t, pending, c.UID, a.UID)
		got := data(t, pending)
		if got[0]["name"] != "Carol" || got[0]["head_img"] != "https://img.example/c.png" || intOf(got[0]["time"]) != t0 {
			t.Fatalf("list/add[0] = %v", got[0])
		}
		if got[1]["name"] != "Alice" || got[1]["head_img"] != "" || intOf(got[1]["time"]) != t0+60 {
			t.Fatalf("list/add[1] = %v", got[1])
		}
		// The same through the SDK's typed answer.
		if got := pendingOf(t, s, b, c.UID, a.UID); got[0].Name != "Carol" || got[0].HeadImg != "https://img.example/c.png" || got[0].Time != t0 ||
			got[1].Name != "Alice" || got[1].HeadImg != "" || got[1].Time != t0+60 {
			t.Fatalf("list/add: %+v", got)
		}
		// Requests I made are not mine to answer.
		pendingOf(t, s, a)

		// Accept A first, then C: both lists come ordered by uid anyway.
		r = call(t, s, b, pathAnswer, map[string]any{"uid_from": fmt.Sprint(a.UID), "type": "1"})
		chattest.Expect(t, r, 200, 0)
		if r.Str("msg") != "success" {
			t.Fatalf("accept: %s", r)
		}
		mustAnswer(t, s, b, c.UID, true)
		expectPair(t, s, a.UID, b.UID, 2, 0)
		expectPair(t, s, b.UID, c.UID, 2, 0)

		expectUIDs(t, call(t, s, b, pathList, nil), a.UID, c.UID) // hand-built once, for the envelope
		contactsOf(t, s, a, b.UID)
		if e := contactsOf(t, s, c, b.UID)[0]; e.Name != "Bob" || e.HeadImg != "" {
			t.Fatalf("C's list: %+v", e)
		}
		if e := contactsOf(t, s, b, a.UID, c.UID)[1]; e.HeadImg != "https://img.example/c.png" {
			t.Fatalf("B's list shows C as %+v", e)
		}
		pendingOf(t, s, b)
		// Accepting twice finds nothing pending.
		chattest.ExpectErr(t, answer(t, s, b, a.UID, true), 404, client.CodeNotFound)
	})
}

func TestRefusedRequesterMayAskAgain(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
		ask(t, s, a, b.UID)
		mustAnswer(t, s, b, a.UID, false)
		expectPair(t, s, a.UID, b.UID, 0, 0)
		expectUIDs(t, call(t, s, b, pathPending, nil)) // hand-built once, for the empty envelope
		contactsOf(t, s, a)
		contactsOf(t, s, b)

		// Hand-built for its num, which the SDK does not return.
		r := addContacts(t, s, a, b.UID)
		if got := statuses(t, r); !slices.Equal(got, []string{fmt.Sprintf("%d:requested", b.UID)}) || r.Int("num") != 1 {
			t.Fatalf("asking again: %s", r)
		}
		expectPair(t, s, a.UID, b.UID, 0, 1)
		// Refusing twice finds nothing pending.
		mustAnswer(t, s, b, a.UID, false)
		chattest.ExpectErr(t, answer(t, s, b, a.UID, false), 404, client.CodeNotFound)
	})
}

func TestDelContacts(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c, d := s.NewUser(t, "A"), s.NewUser(t, "B"), s.NewUser(t, "C"), s.NewUser(t, "D")
		for _, p := range []chattest.User{b, c, d} {
			ask(t, s, a, p.UID)
			mustAnswer(t, s, p, a.UID, true)
		}
		// B and C are contacts of each other too, which must survive.
		ask(t, s, b, c.UID)
		mustAnswer(t, s, c, b.UID, true)

		r := call(t, s, a, pathDel, map[string]any{"data": uidList(b.UID, noSuchUID, a.UID, c.UID, b.UID)})
		chattest.Expect(t, r, 200, 0)
		if r.Int("num") != 2 || r.Str("msg") != "success" {
			t.Fatalf("delContacts: %s, want num 2", r)
		}
		if _, ok := r.Body["data"]; ok {
			t.Fatalf("delContacts answers data: %s", r)
		}
		expectPair(t, s, a.UID, b.UID, 0, 0)
		expectPair(t, s, a.UID, c.UID, 0, 0)
		expectPair(t, s, a.UID, d.UID, 2, 0)
		expectPair(t, s, b.UID, c.UID, 2, 0)
		contactsOf(t, s, a, d.UID)
		contactsOf(t, s, b, c.UID)

		// Removed by the other side this time; nothing left to remove after.
		if n, err := s.SDKFor(t, d).DeleteContacts(context.Background(), a.UID); err != nil || n != 1 {
			t.Fatalf("delContacts by D: %d, %v", n, err)
		}
		if n, err := s.SDKFor(t, a).DeleteContacts(context.Background(), d.UID, b.UID); err != nil || n != 0 {
			t.Fatalf("delContacts again: %d, %v", n, err)
		}
		if n := s.Count(t, "contacts", ""); n != 2 {
			t.Fatalf("%d contact rows, want B↔C only", n)
		}
		// A deleted contact may be asked again.
		if res := ask(t, s, a, b.UID); len(res) != 1 || res[0] != (client.AddResult{UID: b.UID, Status: client.StatusRequested}) {
			t.Fatalf("asking a former contact: %+v", res)
		}
	})
}

func TestContactsInfo(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b, c := s.NewUser(t, "A"), s.NewUser(t, "B"), s.NewUser(t, "C")
		// Any user's profile may be looked up, contact or not; a repeated
		// uid is shown once, at its first place.
		r := call(t, s, a, pathInfo, map[string]any{"data": uidList(c.UID, noSuchUID, a.UID, c.UID, b.UID)})
		expectUIDs(t, r, c.UID, a.UID, b.UID)
		if e := data(t, r)[0]; e["name"] != "C" || e["head_img"] != "" || e["handle"] != "" || len(e) != 4 {
			t.Fatalf("Info[0] = %v", e)
		}
		got, err := s.SDKFor(t, a).ContactsInfo(context.Background(), c.UID, noSuchUID, a.UID, c.UID, b.UID)
		if err != nil || len(got) != 3 || got[0] != (client.Profile{UID: c.UID, Name: "C"}) || got[1].UID != a.UID || got[2] != (client.Profile{UID: b.UID, Name: "B"}) {
			t.Fatalf("Info: %+v, %v", got, err)
		}
		expectUIDs(t, call(t, s, a, pathInfo, map[string]any{"data": uidList(noSuchUID)}))
	})
}

func TestAcceptContactsNotFound(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
		// A's request to B is not B's request to A.
		ask(t, s, a, b.UID)
		for _, tc := range []struct {
			name   string
			who    chattest.User
			from   int64
			accept bool
		}{
			{"reverse direction", a, b.UID, true},
			{"no such user", b, noSuchUID, true},
			{"refuse no such user", b, noSuchUID, false},
			{"from self", b, b.UID, true},
		} {
			t.Run(tc.name, func(t *testing.T) {
				chattest.ExpectErr(t, answer(t, s, tc.who, tc.from, tc.accept), 404, client.CodeNotFound)
			})
		}
		expectPair(t, s, a.UID, b.UID, 0, 1)
	})
}

func TestContactsBadInput(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
		ask(t, s, b, a.UID) // a request A could wrongly answer
		before := s.Count(t, "contact_requests", "")

		tooMany := make([]map[string]any, 101)
		for i := range tooMany {
			tooMany[i] = map[string]any{"uid": b.UID}
		}
		dataCases := []struct {
			name  string
			field string
			body  map[string]any
		}{
			{"missing", "data", map[string]any{}},
			{"null", "data", map[string]any{"data": nil}},
			{"string", "data", map[string]any{"data": "10000002"}},
			{"number", "data", map[string]any{"data": b.UID}},
			{"object", "data", map[string]any{"data": map[string]any{"uid": b.UID}}},
			{"empty", "data", map[string]any{"data": []any{}}},
			{"101 entries", "data", map[string]any{"data": tooMany}},
			{"entries not objects", "data", map[string]any{"data": []any{b.UID}}},
			{"entry null", "data", map[string]any{"data": []any{map[string]any{"uid": b.UID}, nil}}},
			{"entry without uid", "data", map[string]any{"data": []any{map[string]any{"uid": b.UID}, map[string]any{}}}},
			{"uid zero", "data", map[string]any{"data": uidList(b.UID, 0)}},
			{"uid negative", "data", map[string]any{"data": uidList(b.UID, -5)}},
			{"uid fraction", "data", map[string]any{"data": []any{map[string]any{"uid": 1.5}}}},
			{"uid text", "data", map[string]any{"data": []any{map[string]any{"uid": b.UID}, map[string]any{"uid": "abc"}}}},
			{"uid bool", "data", map[string]any{"data": []any{map[string]any{"uid": true}}}},
			{"uid too large", "data", map[string]any{"data": []any{map[string]any{"uid": "99999999999999999999"}}}},
		}
		for _, path := range []string{pathAdd, pathDel, pathInfo} {
			for _, tc := range dataCases {
				t.Run(strings.TrimPrefix(path, "/Contacts/")+"/"+tc.name, func(t *testing.T) {
					r := call(t, s, a, path, tc.body)
					chattest.Expect(t, r, 400, 1001)
					if !strings.Contains(r.Str("msg"), tc.field) {
						t.Fatalf("msg %q does not name %s", r.Str("msg"), tc.field)
					}
				})
			}
		}

		answerCases := []struct {
			name  string
			field string
			body  map[string]any
		}{
			{"uid_from missing", "uid_from", map[string]any{"type": 1}},
			{"uid_from zero", "uid_from", map[string]any{"uid_from": 0, "type": 1}},
			{"uid_from text", "uid_from", map[string]any{"uid_from": "B", "type": 1}},
			{"uid_from negative", "uid_from", map[string]any{"uid_from": -1, "type": 1}},
			{"uid_from list", "uid_from", map[string]any{"uid_from": []any{b.UID}, "type": 1}},
			{"type missing", "type", map[string]any{"uid_from": b.UID}},
			{"type null", "type", map[string]any{"uid_from": b.UID, "type": nil}},
			{"type 2", "type", map[string]any{"uid_from": b.UID, "type": 2}},
			{"type text", "type", map[string]any{"uid_from": b.UID, "type": "accept"}},
			{"type negative", "type", map[string]any{"uid_from": b.UID, "type": -1}},
			{"type bool", "type", map[string]any{"uid_from": b.UID, "type": true}},
		}
		for _, tc := range answerCases {
			t.Run("acceptContacts/"+tc.name, func(t *testing.T) {
				r := call(t, s, a, pathAnswer, tc.body)
				chattest.Expect(t, r, 400, 1001)
				if !strings.Contains(r.Str("msg"), tc.field) {
					t.Fatalf("msg %q does not name %s", r.Str("msg"), tc.field)
				}
			})
		}

		if n := s.Count(t, "contacts", ""); n != 0 {
			t.Fatalf("bad input wrote %d contact rows", n)
		}
		if n := s.Count(t, "contact_requests", ""); n != before {
			t.Fatalf("bad input changed the requests: %d rows, want %d", n, before)
		}
	})
}

func TestContactsNeedAccessToken(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, b := s.NewUser(t, "A"), s.NewUser(t, "B")
		body := map[string]any{"data": uidList(b.UID), "uid_from": b.UID, "type": 1}
		for _, path := range []string{pathList, pathInfo, pathAdd, pathDel, pathPending, pathAnswer} {
			t.Run(path, func(t *testing.T) {
				chattest.Expect(t, s.Post(t, path, body), 401, 1004)
				wrong := map[string]any{"uid": a.UID, "access_token": b.Token}
				for k, v := range body {
					wrong[k] = v
				}
				chattest.Expect(t, s.Post(t, path, wrong), 401, 1004)
			})
		}
		if n := s.Count(t, "contact_requests", ""); n != 0 {
			t.Fatalf("unauthenticated requests wrote %d rows", n)
		}
	})
}

// answerOf is one answer to a request sent from a goroutine other than the
// test's, where t.Fatal may not be called.
type answerOf struct {
	status int
	body   map[string]any
	err    error
}

// postConcurrently sends each body (with its user's credentials) to its
// path from its own goroutine, released together, and returns the answers.
func postConcurrently(s *chattest.Server, reqs ...func() (string, map[string]any)) []answerOf {
	out := make([]answerOf, len(reqs))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i, mk := range reqs {
		path, body := mk()
		raw, err := json.Marshal(body)
		if err != nil {
			out[i].err = err
			continue
		}
		target := s.Prefix + path + "?" + url.Values{"client_id": {s.ClientID}, "api_token": {s.Sign(path)}}.Encode()
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := httptest.NewRequest("POST", target, bytes.NewReader(raw))
			req.Header.Set("Content-Type", "application/json")
			<-start
			resp, err := s.App.Test(req, -1)
			if err != nil {
				out[i].err = err
				return
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err == nil {
				err = json.Unmarshal(b, &out[i].body)
			}
			out[i].status, out[i].err = resp.StatusCode, err
		}()
	}
	close(start)
	wg.Wait()
	return out
}

func request(u chattest.User, path string, fields map[string]any) func() (string, map[string]any) {
	return func() (string, map[string]any) { return path, u.Creds(fields) }
}

// raceRounds is how many fresh pairs each race test tries: enough for the
// two requests to overlap often on a pooled database.
const raceRounds = 30

// TestMutualAddRace: A adds B while B adds A. Whichever runs second must
// see the first's request and accept it, leaving one mutual contact and
// no request, never two crossed requests.
func TestMutualAddRace(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		for round := range raceRounds {
			a, b := s.NewUser(t, fmt.Sprintf("a%d", round)), s.NewUser(t, fmt.Sprintf("b%d", round))
			got := postConcurrently(s,
				request(a, pathAdd, map[string]any{"data": uidList(b.UID)}),
				request(b, pathAdd, map[string]any{"data": uidList(a.UID)}),
			)
			var sts []string
			var num int64
			for _, g := range got {
				if g.err != nil || g.status != 200 || intOf(g.body["error"]) != 0 {
					t.Fatalf("round %d: %d %v (%v)", round, g.status, g.body, g.err)
				}
				entries, _ := g.body["data"].([]any)
				if len(entries) != 1 {
					t.Fatalf("round %d: data %v", round, g.body["data"])
				}
				sts = append(sts, fmt.Sprint(entries[0].(map[string]any)["status"]))
				num += intOf(g.body["num"])
			}
			slices.Sort(sts)
			if !slices.Equal(sts, []string{"accepted", "requested"}) || num != 2 {
				t.Fatalf("round %d: statuses %v num %d, want one requested and one accepted", round, sts, num)
			}
			expectPair(t, s, a.UID, b.UID, 2, 0)
		}
	})
}

// TestConcurrentAcceptRace: two devices of B accept A's request at once.
// One wins; the other finds nothing pending (or, were it idempotent, both
// succeed), and the pair ends with exactly one contact and no request.
func TestConcurrentAcceptRace(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		for round := range raceRounds {
			a, b := s.NewUser(t, fmt.Sprintf("a%d", round)), s.NewUser(t, fmt.Sprintf("b%d", round))
			login := s.Post(t, "/user/login", map[string]any{"uid": b.UID, "passwd": b.Password})
			chattest.Expect(t, login, 200, 0)
			b2 := b
			b2.Token = login.Str("access_token")
			addContacts(t, s, a, b.UID)

			accept := map[string]any{"uid_from": a.UID, "type": 1}
			got := postConcurrently(s, request(b, pathAnswer, accept), request(b2, pathAnswer, accept))
			var codes []string
			for _, g := range got {
				if g.err != nil {
					t.Fatalf("round %d: %v", round, g.err)
				}
				codes = append(codes, fmt.Sprintf("%d/%d", g.status, intOf(g.body["error"])))
			}
			slices.Sort(codes)
			if !slices.Equal(codes, []string{"200/0", "404/1006"}) && !slices.Equal(codes, []string{"200/0", "200/0"}) {
				t.Fatalf("round %d: answers %v, want one 200 and one 404 (or two 200)", round, codes)
			}
			expectPair(t, s, a.UID, b.UID, 2, 0)
		}
	})
}

// TestMixedContactRace throws adds, accepts and deletes among four users
// at once, to show concurrent transactions on overlapping users neither
// fail nor leave a pair half-made: each pair ends either as contacts (both
// rows, no request) or not (no contact row, at most one request).
func TestMixedContactRace(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		for round := range raceRounds / 3 {
			us := make([]chattest.User, 4)
			uids := make([]int64, 4)
			for i := range us {
				us[i] = s.NewUser(t, fmt.Sprintf("u%d-%d", round, i))
				uids[i] = us[i].UID
			}
			var reqs []func() (string, map[string]any)
			for i, u := range us {
				// Everyone asks everyone (in a different order each), answers
				// and deletes: every pair is fought over from both ends.
				order := append(slices.Clone(uids[i:]), uids[:i]...)
				reqs = append(reqs,
					request(u, pathAdd, map[string]any{"data": uidList(order...)}),
					request(u, pathAnswer, map[string]any{"uid_from": uids[(i+1)%4], "type": 1}),
					request(u, pathDel, map[string]any{"data": uidList(uids[(i+2)%4])}),
				)
			}
			for _, g := range postConcurrently(s, reqs...) {
				if g.err != nil || (g.status != 200 && g.status != 404) {
					t.Fatalf("round %d: %d %v (%v)", round, g.status, g.body, g.err)
				}
			}
			for i := range uids {
				for j := i + 1; j < len(uids); j++ {
					c, r := pairRows(t, s, uids[i], uids[j])
					if !(c == 2 && r == 0) && !(c == 0 && r <= 1) {
						t.Fatalf("round %d: %d and %d have %d contact rows and %d request rows", round, uids[i], uids[j], c, r)
					}
				}
			}
		}
	})
}

// countStatements counts every statement GORM sends on the module's
// database from now on.
func countStatements(t *testing.T, s *chattest.Server) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	inc := func(*gorm.DB) { n.Add(1) }
	cb := s.Module.DB().Callback()
	for _, err := range []error{
		cb.Create().Register("contacts_test:count", inc),
		cb.Query().Register("contacts_test:count", inc),
		cb.Update().Register("contacts_test:count", inc),
		cb.Delete().Register("contacts_test:count", inc),
		cb.Row().Register("contacts_test:count", inc),
		cb.Raw().Register("contacts_test:count", inc),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return &n
}

// newUsers inserts n users straight into the database: they only need to
// exist, not to log in.
func newUsers(t *testing.T, s *chattest.Server, n int) []int64 {
	t.Helper()
	now := s.Clock.Now().Unix()
	rows := make([]models.User, n)
	for i := range rows {
		rows[i] = models.User{Name: fmt.Sprintf("peer%d", i), PasswordHash: "x", CreatedAt: now, UpdatedAt: now}
	}
	if err := s.Module.DB().Create(&rows).Error; err != nil {
		t.Fatal(err)
	}
	uids := make([]int64, n)
	for i, r := range rows {
		uids[i] = r.UID
	}
	return uids
}

// TestContactsQueryCount proves no contacts route costs a query per uid:
// each is measured, over one whole HTTP request (auth included), with 1
// and with 100 uids, and the counts must be equal.
func TestContactsQueryCount(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		counter := countStatements(t, s)
		steps := []string{"addContacts requested", "list/add", "addContacts accepted", "list", "Info", "delContacts"}
		measure := func(n int) []int64 {
			me := s.NewUser(t, fmt.Sprintf("me%d", n))
			fresh, asking := newUsers(t, s, n), newUsers(t, s, n)
			now := s.Clock.Now().Unix()
			reqs := make([]models.ContactRequest, n)
			for i, p := range asking {
				reqs[i] = models.ContactRequest{FromUID: p, ToUID: me.UID, CreatedAt: now}
			}
			if err := s.Module.DB().Create(&reqs).Error; err != nil {
				t.Fatal(err)
			}
			var counts []int64
			step := func(name, path string, fields map[string]any, wantNum int) {
				t.Helper()
				counter.Store(0)
				r := call(t, s, me, path, fields)
				counts = append(counts, counter.Load())
				chattest.Expect(t, r, 200, 0)
				if r.Int("num") != int64(wantNum) {
					t.Fatalf("%s with %d uids: num %d (%s)", name, n, r.Int("num"), r)
				}
			}
			step(steps[0], pathAdd, map[string]any{"data": uidList(fresh...)}, n)
			step(steps[1], pathPending, nil, n)
			step(steps[2], pathAdd, map[string]any{"data": uidList(asking...)}, n)
			step(steps[3], pathList, nil, n)
			step(steps[4], pathInfo, map[string]any{"data": uidList(fresh...)}, n)
			step(steps[5], pathDel, map[string]any{"data": uidList(asking...)}, n)
			return counts
		}
		one, hundred := measure(1), measure(100)
		for i, name := range steps {
			t.Logf("%-22s 1 uid: %d statements, 100 uids: %d", name, one[i], hundred[i])
			if hundred[i] != one[i] {
				t.Errorf("%s: %d statements for 1 uid but %d for 100", name, one[i], hundred[i])
			}
		}
	})
}
