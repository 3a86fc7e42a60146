package module_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
)

// b64 is the base64 of n bytes of fill.
func b64(n int, fill byte) string {
	return base64.StdEncoding.EncodeToString([]byte(strings.Repeat(string(fill), n)))
}

// TestDeviceKeys: /user/keys/publish checks the device id and the key's
// length and spelling, /user/keys/get returns every device key of the users asked, and
// a new or changed key (not a republished one) is event: keys on the
// streams of the publisher's contacts.
func TestDeviceKeys(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		s := l.Server
		a, b, c := l.NewUser(t, "a"), l.NewUser(t, "b"), l.NewUser(t, "c")
		s.Befriend(t, a, b)
		st := openSSE(t, streamPOST(t, l, b, nil))
		publish := func(u chattest.User, device, key string) *chattest.Response {
			return s.Post(t, "/user/keys/publish", u.Creds(map[string]any{"device_id": device, "key": key}))
		}
		for _, bad := range []struct{ device, key, field string }{
			{"", b64(32, 1), "device_id"},
			{strings.Repeat("d", 65), b64(32, 1), "device_id"},
			{"phone", "", "key"},
			{"phone", b64(31, 1), "key"},
			{"phone", b64(33, 1), "key"},
			{"phone", "not base64!", "key"},
			// The same 32 bytes, spelled otherwise: with line breaks, which
			// Go's decoder skips, and with padding bits set.
			{"phone", b64(32, 1)[:10] + "\r\n" + b64(32, 1)[10:] + strings.Repeat("\n", 100), "key"},
			{"phone", b64(32, 1)[:42] + "F=", "key"},
		} {
			r := publish(a, bad.device, bad.key)
			chattest.Expect(t, r, 400, 1001)
			if !strings.Contains(r.Str("msg"), bad.field) {
				t.Errorf("%q %q: %s does not name %s", bad.device, bad.key, r.Raw, bad.field)
			}
		}
		chattest.Expect(t, publish(a, "phone", b64(32, 1)), 200, 0)
		keysEvent := fmt.Sprintf(`{"uid":%d}`, a.UID)
		if ev := st.next(t); ev.event != "keys" || ev.data != keysEvent {
			t.Fatalf("got %+v, want keys %s", ev, keysEvent)
		}
		// The same key again tells no one; a changed key and a new device
		// do. The next event b sees is the change's.
		chattest.Expect(t, publish(a, "phone", b64(32, 1)), 200, 0)
		s.Clock.Advance(1e9)
		chattest.Expect(t, publish(a, "phone", b64(32, 2)), 200, 0)
		chattest.Expect(t, publish(a, "laptop", b64(32, 3)), 200, 0)
		for range 2 {
			if ev := st.next(t); ev.event != "keys" || ev.data != keysEvent {
				t.Fatalf("got %+v, want keys %s", ev, keysEvent)
			}
		}

		r := s.Post(t, "/user/keys/get", c.Creds(map[string]any{"data": []map[string]any{{"uid": a.UID}, {"uid": b.UID}}}))
		chattest.Expect(t, r, 200, 0)
		now := s.Clock.Now().Unix()
		want := fmt.Sprintf(`{"num":2,"msg":"success","error":0,"data":[`+
			`{"uid":%d,"device_id":"laptop","key":%q,"time":%d},`+
			`{"uid":%d,"device_id":"phone","key":%q,"time":%d}]}`,
			a.UID, b64(32, 3), now, a.UID, b64(32, 2), now)
		if string(r.Raw) != want {
			t.Fatalf("got %s\nwant %s", r.Raw, want)
		}
		many := make([]map[string]any, 101)
		for i := range many {
			many[i] = map[string]any{"uid": a.UID}
		}
		chattest.Expect(t, s.Post(t, "/user/keys/get", c.Creds(map[string]any{"data": many})), 400, 1001)
		chattest.Expect(t, s.Post(t, "/user/keys/get", c.Creds(map[string]any{"data": []any{}})), 400, 1001)
	})
}

// TestDeviceKeysCapped: a user keeps keys for models.MaxDeviceKeys
// devices; a new one past them takes the place of the one whose key is
// oldest, and a changed key counts as new.
func TestDeviceKeysCapped(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		a, c := s.NewUser(t, "a"), s.NewUser(t, "c")
		publish := func(device string, key byte) {
			t.Helper()
			s.Clock.Advance(time.Second)
			chattest.Expect(t, s.Post(t, "/user/keys/publish", a.Creds(map[string]any{"device_id": device, "key": b64(32, key)})), 200, 0)
		}
		for i := range models.MaxDeviceKeys {
			publish(fmt.Sprintf("d%02d", i), byte(i+1))
		}
		publish("d00", 100) // d00 changes its key: now the newest
		publish("new1", 101)
		publish("new2", 102)
		r := s.Post(t, "/user/keys/get", c.Creds(map[string]any{"data": []map[string]any{{"uid": a.UID}}}))
		chattest.Expect(t, r, 200, 0)
		var got []string // d00 changed its key: d01 and d02 are the oldest
		for _, d := range r.Body["data"].([]any) {
			got = append(got, d.(map[string]any)["device_id"].(string))
		}
		if len(got) != models.MaxDeviceKeys || slices.Contains(got, "d01") || slices.Contains(got, "d02") ||
			!slices.Contains(got, "d00") || !slices.Contains(got, "new1") || !slices.Contains(got, "new2") {
			t.Fatalf("devices kept: %v, want %d without d01 and d02", got, models.MaxDeviceKeys)
		}
	})
}

// testEnc is a well-formed enc: the server checks its shape only.
func testEnc(to int64) string {
	return fmt.Sprintf(`{"v":1,"from":"phone","nonce":%q,"ct":%q,"keys":[{"uid":%d,"device_id":"tab","wrapped":%q}]}`,
		b64(12, 7), b64(40, 8), to, b64(60, 9))
}

// TestEncryptedSend: a Send with enc stores it and Recv, History and the
// stream return it as sent, with no message; the host's hook and event
// see it marked as encrypted; a malformed, oversized or misplaced enc is
// 400/1001 naming enc.
func TestEncryptedSend(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		var mu sync.Mutex
		var hooked []bool
		l := chattest.NewLive(t, db, chattest.Options{Config: func(c *module.Config) {
			c.MessageMaxChars = 100
			c.BeforeSend = func(_ context.Context, o events.Outgoing) error {
				mu.Lock()
				defer mu.Unlock()
				hooked = append(hooked, o.Encrypted && o.Body == testEnc(o.To))
				return nil
			}
			c.OnEvent = func(_ context.Context, e events.Event) error {
				if m, ok := e.(events.MessageStored); ok {
					mu.Lock()
					defer mu.Unlock()
					hooked = append(hooked, m.Encrypted && m.Body == testEnc(m.To))
				}
				return nil
			}
		}})
		s := l.Server
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		s.Befriend(t, a, b)
		st := openSSE(t, streamPOST(t, l, b, nil))
		enc := testEnc(b.UID)
		send := func(fields string) *chattest.Response {
			body := fmt.Sprintf(`{"uid":%d,"access_token":%q,"uid_to":%d%s}`, a.UID, a.Token, b.UID, fields)
			return s.Do(t, chattest.Req{Path: "/Message/Send", Body: []byte(body), ContentType: "application/json"})
		}
		r := send(`,"enc":` + enc)
		chattest.Expect(t, r, 200, 0)
		id := r.Int("id")

		want := fmt.Sprintf(`{"id":%d,"uid_from":%d,"uid_to":%d,"enc":%s,"time":%d,"kind":"text"}`, id, a.UID, b.UID, enc, s.Clock.Now().Unix())
		if ev := st.next(t); ev.event != "message" || ev.data != want {
			t.Fatalf("stream: got %+v, want %s", ev, want)
		}
		rv := s.Post(t, "/Message/Recv", b.Creds(map[string]any{"last_id": 0}))
		if !strings.Contains(string(rv.Raw), fmt.Sprintf(`{"id":%d,"uid_from":%d,"enc":%s,"time":`, id, a.UID, enc)) {
			t.Fatalf("recv: %s", rv.Raw)
		}
		h := s.Post(t, "/Message/History", b.Creds(map[string]any{"uid_with": a.UID}))
		if !strings.Contains(string(h.Raw), fmt.Sprintf(`{"id":%d,"uid_from":%d,"uid_to":%d,"enc":%s,"time":`, id, a.UID, b.UID, enc)) {
			t.Fatalf("history: %s", h.Raw)
		}
		mu.Lock()
		if len(hooked) != 2 || !hooked[0] || !hooked[1] {
			t.Errorf("hook and event saw %v, want the enc marked encrypted twice", hooked)
		}
		mu.Unlock()

		long := fmt.Sprintf(`{"v":1,"from":"phone","nonce":%q,"ct":%q,"keys":[{"uid":%d,"device_id":"tab","wrapped":%q}]}`,
			b64(12, 7), b64(300+8<<10, 8), b.UID, b64(60, 9))
		for _, bad := range []struct{ fields, field string }{
			{`,"enc":` + strings.Replace(enc, `"v":1,`, ``, 1), "enc"},
			{`,"enc":` + strings.Replace(enc, `"v":1`, `"v":2`, 1), "enc"},
			{`,"enc":` + strings.Replace(enc, b64(12, 7), b64(11, 7), 1), "enc"},
			{`,"enc":` + strings.Replace(enc, b64(12, 7), b64(12, 7)[:4]+`\n`+b64(12, 7)[4:], 1), "enc"},
			{`,"enc":` + strings.Replace(enc, `"ct":`, `"ctx":`, 1), "enc"},
			{`,"enc":` + strings.Replace(enc, `"wrapped":`, `"w":`, 1), "enc"},
			{`,"enc":` + strings.Replace(enc, `"device_id":"tab",`, ``, 1), "enc"},
			{`,"enc":"text"`, "enc"},
			{`,"enc":` + long, "enc"},
			{`,"enc":` + enc + `,"data":"hi"`, "enc"},
			{``, "data"},
			{`,"gid":5,"enc":` + enc, "gid"},
		} {
			r := send(bad.fields)
			chattest.Expect(t, r, 400, 1001)
			if !strings.Contains(r.Str("msg"), bad.field) {
				t.Errorf("%s: %s does not name %s", bad.fields, r.Raw, bad.field)
			}
		}
		toGroup := fmt.Sprintf(`{"uid":%d,"access_token":%q,"gid":5,"enc":%s}`, a.UID, a.Token, enc)
		r = s.Do(t, chattest.Req{Path: "/Message/Send", Body: []byte(toGroup), ContentType: "application/json"})
		chattest.Expect(t, r, 400, 1001)
		if !strings.HasPrefix(r.Str("msg"), "invalid enc") {
			t.Errorf("enc to a group: %s", r.Raw)
		}
		// Nothing was stored by the refused Sends.
		if n := s.Count(t, "messages", "enc <> 0"); n != 1 {
			t.Fatalf("%d encrypted messages stored, want 1", n)
		}
		var stored string
		if err := s.Module.DB().Table("chat_messages").Where("id = ?", id).Pluck("body", &stored).Error; err != nil || !json.Valid([]byte(stored)) {
			t.Fatalf("stored %q (%v)", stored, err)
		}
	})
}
