package module_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/color"
	"image/png"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

func TestBadInputNeverWrites(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		u := s.NewUser(t, "a")
		reg := "/user/reg/ajax_reg"
		raw := func(path, ctype, body string) chattest.Req {
			return chattest.Req{Path: path, Body: []byte(body), ContentType: ctype}
		}
		cases := []struct {
			name   string
			req    chattest.Req
			status int
			code   int64
			field  string // the msg must name it
		}{
			{"malformed json", raw(reg, "application/json", `{"name":"x",`), 400, 1001, "JSON"},
			{"json array", raw(reg, "application/json", `[{"name":"x","passwd":"secret1"}]`), 400, 1001, "object"},
			{"xml", raw(reg, "application/xml", `<reg><name>x</name></reg>`), 400, 1001, "content type"},
			{"xml without type", raw(reg, "", `<reg><name>x</name></reg>`), 400, 1001, "JSON"},
			{"name missing", chattest.Req{Path: reg, JSON: map[string]any{"passwd": "secret1"}}, 400, 1001, "name"},
			{"name empty", chattest.Req{Path: reg, JSON: map[string]any{"name": "", "passwd": "secret1"}}, 400, 1001, "name"},
			{"name too long", chattest.Req{Path: reg, JSON: map[string]any{"name": strings.Repeat("x", 33), "passwd": "secret1"}}, 400, 1001, "name"},
			{"name NUL", chattest.Req{Path: reg, JSON: map[string]any{"name": "a\x00b", "passwd": "secret1"}}, 400, 1001, "name"},
			{"name newline", chattest.Req{Path: reg, JSON: map[string]any{"name": "a\nb", "passwd": "secret1"}}, 400, 1001, "name"},
			{"name number", chattest.Req{Path: reg, JSON: map[string]any{"name": 12, "passwd": "secret1"}}, 400, 1001, "name"},
			{"passwd short", chattest.Req{Path: reg, JSON: map[string]any{"name": "x", "passwd": "12345"}}, 400, 1001, "passwd"},
			{"passwd 73 bytes", chattest.Req{Path: reg, JSON: map[string]any{"name": "x", "passwd": strings.Repeat("p", 73)}}, 400, 1001, "passwd"},
			{"9 MiB body", raw(reg, "application/json", `{"name":"`+strings.Repeat("x", 9<<20)+`"}`), 413, 1009, ""},
			{"gzip body", chattest.Req{Path: reg, Body: []byte("\x1f\x8b"), ContentType: "application/json", Header: map[string]string{"Content-Encoding": "gzip"}}, 400, 1001, "Content-Encoding"},
			{"login uid object", chattest.Req{Path: "/user/login", JSON: map[string]any{"uid": map[string]any{}, "passwd": "secret1"}}, 400, 1001, "uid"},
			{"login uid negative", chattest.Req{Path: "/user/login", JSON: map[string]any{"uid": -1, "passwd": "secret1"}}, 400, 1001, "uid"},
			{"login uid zero", chattest.Req{Path: "/user/login", JSON: map[string]any{"uid": 0, "passwd": "secret1"}}, 400, 1001, "uid"},
			{"login uid too large", raw("/user/login", "application/json", `{"uid":99999999999999999999,"passwd":"secret1"}`), 400, 1001, "uid"},
			{"login uid exponent", raw("/user/login", "application/json", `{"uid":1e7,"passwd":"secret1"}`), 400, 1001, "uid"},
			{"login wrong password", chattest.Req{Path: "/user/login", JSON: map[string]any{"uid": u.UID, "passwd": "wrong-pw"}}, 401, 1005, ""},
			{"login unknown uid", chattest.Req{Path: "/user/login", JSON: map[string]any{"uid": 99999999, "passwd": "secret1"}}, 401, 1005, ""},
			{"update name NUL", chattest.Req{Path: "/user/info/update", JSON: u.Creds(map[string]any{"name": "a\x00"})}, 400, 1001, "name"},
			{"update head_img javascript", chattest.Req{Path: "/user/info/update", JSON: u.Creds(map[string]any{"head_img": "javascript:alert(1)"})}, 400, 1001, "head_img"},
			{"passwd wrong old", chattest.Req{Path: "/user/info/passwd", JSON: u.Creds(map[string]any{"old_passwd": "nope-nope", "new_passwd": "newpass1"})}, 401, 1005, ""},
			{"passwd new short", chattest.Req{Path: "/user/info/passwd", JSON: u.Creds(map[string]any{"old_passwd": u.Password, "new_passwd": "x"})}, 400, 1001, "new_passwd"},
			{"unknown route", chattest.Req{Path: "/user/nosuch", JSON: map[string]any{}}, 404, 1006, ""},
			{"GET on a POST route", chattest.Req{Path: "/user/login", Method: http.MethodGet}, 404, 1006, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				r := s.Do(t, tc.req)
				chattest.Expect(t, r, tc.status, tc.code)
				if !strings.Contains(r.Str("msg"), tc.field) {
					t.Fatalf("msg %q does not name %q", r.Str("msg"), tc.field)
				}
				if strings.Contains(string(r.Raw), ".go") || strings.Contains(string(r.Raw), "SELECT") {
					t.Fatalf("answer leaks internals: %s", r.Raw)
				}
			})
		}
		if n := s.Count(t, "users", ""); n != 1 {
			t.Fatalf("%d users, want only the fixture's", n)
		}
		// Register failures carry reg:0, login failures login:0.
		r := s.Post(t, reg, map[string]any{"name": ""})
		if v, ok := r.Body["reg"]; !ok || v.(float64) != 0 {
			t.Fatalf("failed register without reg:0: %s", r.Raw)
		}
		r = s.Post(t, "/user/login", map[string]any{"uid": u.UID, "passwd": "wrong-pw"})
		if v, ok := r.Body["login"]; !ok || v.(float64) != 0 {
			t.Fatalf("failed login without login:0: %s", r.Raw)
		}
		// The server goes on serving.
		chattest.Expect(t, s.Post(t, "/user/info", u.Creds(nil)), 200, 0)
	})
}

func TestUpdateAndPassword(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		u := s.NewUser(t, "a")
		c := s.SDKFor(t, u)
		info := func(c *client.Client) client.UserInfo {
			t.Helper()
			got, err := c.Info(ctx)
			if err != nil {
				t.Fatalf("info: %v", err)
			}
			return got
		}
		if err := c.UpdateProfile(ctx, client.ProfileUpdate{Name: "Zhang 张", HeadImg: "https://example.com/a.png"}); err != nil {
			t.Fatalf("update: %v", err)
		}
		if got := info(c); got.Name != "Zhang 张" || got.HeadImg != "https://example.com/a.png" || got.UID != u.UID {
			t.Fatalf("after update: %+v", got)
		}
		// Empty or absent fields leave the profile as it is: empty ones
		// sent by hand, as the SDK leaves them out.
		chattest.Expect(t, s.Post(t, "/user/info/update", u.Creds(map[string]any{"name": "", "head_img": ""})), 200, 0)
		if got := info(c); got.Name != "Zhang 张" || got.HeadImg == "" {
			t.Fatalf("empty update changed the profile: %+v", got)
		}
		if err := c.UpdateProfile(ctx, client.ProfileUpdate{}); err != nil {
			t.Fatalf("update with nothing: %v", err)
		}
		if got := info(c); got.Name != "Zhang 张" || got.HeadImg == "" {
			t.Fatalf("absent fields changed the profile: %+v", got)
		}
		// A 32-character name (counted in characters, not bytes) fits.
		if err := c.UpdateProfile(ctx, client.ProfileUpdate{Name: strings.Repeat("张", 32)}); err != nil {
			t.Fatalf("update with a 32-character name: %v", err)
		}

		// Password change ends the other sessions, keeps this one.
		other := s.SDK(t)
		if _, err := other.Login(ctx, u.UID, u.Password); err != nil {
			t.Fatalf("login: %v", err)
		}
		if err := c.ChangePassword(ctx, u.Password, "brand-new-pw"); err != nil {
			t.Fatalf("change password: %v", err)
		}
		_, err := other.Info(ctx)
		chattest.ExpectErr(t, err, 401, 1004)
		info(c)
		_, err = s.SDK(t).Login(ctx, u.UID, u.Password)
		chattest.ExpectErr(t, err, 401, 1005)
		if _, err := s.SDK(t).Login(ctx, u.UID, "brand-new-pw"); err != nil {
			t.Fatalf("login with the new password: %v", err)
		}
	})
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	img.Set(0, 0, color.NRGBA{R: 255, A: 255})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// upload is a hand-built avatar upload, for the rate-limit bursts that
// look only at statuses.
func upload(t *testing.T, s *chattest.Server, u chattest.User, filename string, data []byte) *chattest.Response {
	t.Helper()
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	_ = mw.WriteField("uid", itoa(u.UID))
	_ = mw.WriteField("access_token", u.Token)
	fw, err := mw.CreateFormFile("file", filename)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = fw.Write(data)
	_ = mw.Close()
	return s.Do(t, chattest.Req{Path: "/user/info/head_img", Body: b.Bytes(), ContentType: mw.FormDataContentType()})
}

func TestAvatar(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{Prefix: "/chat"})
		ctx := context.Background()
		u := s.NewUser(t, "a")
		c := s.SDKFor(t, u)
		headImg := func() string {
			t.Helper()
			info, err := c.Info(ctx)
			if err != nil {
				t.Fatalf("info: %v", err)
			}
			return info.HeadImg
		}
		img := append(pngBytes(t, 40, 30), []byte("<?php system($_GET['c']); ?>")...)
		url, err := c.UploadAvatar(ctx, "me.png", bytes.NewReader(img))
		if err != nil {
			t.Fatalf("upload: %v", err)
		}
		if !strings.Contains(url, "/chat/avatar/") || !strings.HasSuffix(url, ".png") || strings.Contains(url, "me.png") {
			t.Fatalf("image url %q", url)
		}
		if got := headImg(); got != url {
			t.Fatalf("head_img %q, want %q", got, url)
		}
		path := url[strings.Index(url, "/chat/"):]
		got := s.Do(t, chattest.Req{Path: strings.TrimPrefix(path, "/chat"), Method: http.MethodGet, Unsigned: true})
		if got.Status != 200 || got.Header.Get("Content-Type") != "image/png" {
			t.Fatalf("GET avatar: %d %s", got.Status, got.Header.Get("Content-Type"))
		}
		if bytes.Contains(got.Raw, []byte("<?php")) {
			t.Fatal("bytes smuggled behind the image survived")
		}
		if cfg, err := png.DecodeConfig(bytes.NewReader(got.Raw)); err != nil || cfg.Width != 40 || cfg.Height != 30 {
			t.Fatalf("served avatar: %v %v", cfg, err)
		}

		// Refusals leave head_img as it was.
		_, err = c.UploadAvatar(ctx, "evil.png", strings.NewReader("#!/bin/sh\necho not an image\n"))
		chattest.ExpectErr(t, err, 415, 1011)
		_, err = c.UploadAvatar(ctx, "wide.png", bytes.NewReader(pngBytes(t, 5000, 1)))
		chattest.ExpectErr(t, err, 413, 1009)
		_, err = c.UploadAvatar(ctx, "big.png", bytes.NewReader(bytes.Repeat([]byte{0x89}, 3<<20)))
		chattest.ExpectErr(t, err, 413, 1009)
		chattest.Expect(t, s.Do(t, chattest.Req{Path: "/user/info/head_img", JSON: u.Creds(nil)}), 400, 1001)
		if got := headImg(); got != url {
			t.Fatalf("a refused upload changed head_img to %q", got)
		}
		// The name is the ETag: a revalidation is answered 304, unread.
		etag := got.Header.Get("ETag")
		if etag == "" || !strings.Contains(etag, path[strings.LastIndex(path, "/")+1:]) {
			t.Fatalf("ETag %q", etag)
		}
		again := s.Do(t, chattest.Req{Path: strings.TrimPrefix(path, "/chat"), Method: http.MethodGet, Unsigned: true, Header: map[string]string{"If-None-Match": etag}})
		if again.Status != 304 || len(again.Raw) != 0 {
			t.Fatalf("revalidation: %d %d bytes", again.Status, len(again.Raw))
		}

		// A new avatar replaces the old, whose file goes.
		next, err := c.UploadAvatar(ctx, "next.png", bytes.NewReader(pngBytes(t, 20, 20)))
		if err != nil {
			t.Fatalf("second upload: %v", err)
		}
		if got := headImg(); got != next {
			t.Fatalf("head_img %q after the second upload, want %q", got, next)
		}
		gone := s.Do(t, chattest.Req{Path: strings.TrimPrefix(path, "/chat"), Method: http.MethodGet, Unsigned: true})
		chattest.Expect(t, gone, 404, 1006)
		if n := s.Do(t, chattest.Req{Path: strings.TrimPrefix(next[strings.Index(next, "/chat/"):], "/chat"), Method: http.MethodGet, Unsigned: true}); n.Status != 200 {
			t.Fatalf("new avatar: %d", n.Status)
		}

		// Only generated names are served.
		for _, p := range []string{"/avatar/..%2f..%2fetc%2fpasswd", "/avatar/0123456789abcdef0123456789abcdef.png", "/avatar/x.png"} {
			r := s.Do(t, chattest.Req{Path: p, Method: http.MethodGet, Unsigned: true})
			chattest.Expect(t, r, 404, 1006)
		}
	})
}

// TestAvatarDeletesOnlyItsOwnersUpload proves an upload deletes only the
// avatar its uploader stored before, not whatever head_img names: a user
// may point head_img at anyone's avatar through /user/info/update.
func TestAvatarDeletesOnlyItsOwnersUpload(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		a, b := s.NewUser(t, "a"), s.NewUser(t, "b")
		ca, cb := s.SDKFor(t, a), s.SDKFor(t, b)
		served := func(url string) int {
			t.Helper()
			return s.Do(t, chattest.Req{Path: url[strings.Index(url, "/avatar/"):], Method: http.MethodGet, Unsigned: true}).Status
		}
		urlA, err := ca.UploadAvatar(ctx, "a.png", bytes.NewReader(pngBytes(t, 10, 10)))
		if err != nil {
			t.Fatalf("a's upload: %v", err)
		}
		// b takes a's URL as its head_img, then uploads its own.
		if err := cb.UpdateProfile(ctx, client.ProfileUpdate{HeadImg: urlA}); err != nil {
			t.Fatalf("b's update: %v", err)
		}
		urlB, err := cb.UploadAvatar(ctx, "b.png", bytes.NewReader(pngBytes(t, 12, 12)))
		if err != nil {
			t.Fatalf("b's upload: %v", err)
		}
		if got := served(urlA); got != 200 {
			t.Fatalf("a's avatar after b's upload: %d, want 200", got)
		}
		// b's own earlier upload still goes when b replaces it, whatever
		// head_img says in between.
		if err := cb.UpdateProfile(ctx, client.ProfileUpdate{HeadImg: "https://example.com/b.png"}); err != nil {
			t.Fatalf("b's update: %v", err)
		}
		if _, err := cb.UploadAvatar(ctx, "b2.png", bytes.NewReader(pngBytes(t, 14, 14))); err != nil {
			t.Fatalf("b's second upload: %v", err)
		}
		if got := served(urlB); got != 404 {
			t.Fatalf("b's replaced avatar: %d, want 404", got)
		}
		if got := served(urlA); got != 200 {
			t.Fatalf("a's avatar after b's second upload: %d, want 200", got)
		}
		// a's own previous avatar stays while another user shows it
		// (API.md §3).
		if err := cb.UpdateProfile(ctx, client.ProfileUpdate{HeadImg: urlA}); err != nil {
			t.Fatalf("b's update: %v", err)
		}
		if _, err := ca.UploadAvatar(ctx, "a2.png", bytes.NewReader(pngBytes(t, 16, 16))); err != nil {
			t.Fatalf("a's second upload: %v", err)
		}
		if got := served(urlA); got != 200 {
			t.Fatalf("a's first avatar, b's head_img, after a's second upload: %d, want 200", got)
		}
	})
}

func TestMountedBesideHostRoutes(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{
		Prefix: "/chat",
		App: func(app *fiber.App) {
			app.Get("/", func(c *fiber.Ctx) error { return c.SendString("host home") })
			app.Post("/user/login", func(c *fiber.Ctx) error { return c.SendString("host login") })
		},
	})
	u := s.NewUser(t, "a") // signed for /user/login, sent to /chat/user/login
	if info, err := s.SDKFor(t, u).Info(context.Background()); err != nil || info.UID != u.UID {
		t.Fatalf("info under /chat: %+v, %v", info, err)
	}
	// Outside the prefix, the host's routes and its own 404 (Fiber's plain
	// text) stand.
	s.Prefix = ""
	host := s.Do(t, chattest.Req{Path: "/user/login", Unsigned: true})
	if host.Status != 200 || string(host.Raw) != "host login" {
		t.Fatalf("host route: %d %q", host.Status, host.Raw)
	}
	r := s.Do(t, chattest.Req{Path: "/nosuch", Unsigned: true, Method: http.MethodGet})
	if r.Status != 404 || r.Body != nil {
		t.Fatalf("host 404 changed: %d %s", r.Status, r.Raw)
	}
	s.Prefix = "/chat"
	chattest.Expect(t, s.Do(t, chattest.Req{Path: "/nosuch", Unsigned: true}), 404, 1006)
	// Paths match case-insensitively.
	chattest.Expect(t, s.Do(t, chattest.Req{Path: "/USER/Info", JSON: u.Creds(nil)}), 200, 0)
}

func TestDatabaseDown(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		u := s.NewUser(t, "a")
		if err := database.Close(db.Gorm); err != nil {
			t.Fatal(err)
		}
		r := s.Post(t, "/user/info", u.Creds(nil))
		chattest.Expect(t, r, 503, 1503)
		if strings.Contains(string(r.Raw), "sql") {
			t.Fatalf("answer leaks the cause: %s", r.Raw)
		}
		if !strings.Contains(s.Logs.String(), "request_id") {
			t.Fatal("the failure was not logged with a request id")
		}
	})
}

// undeletableAvatars keeps avatars in memory and fails every delete, as a
// store whose backend went read-only would.
type undeletableAvatars struct {
	mu   sync.Mutex
	data map[string][]byte
}

func (a *undeletableAvatars) PutAvatar(_ context.Context, name, _ string, data []byte) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.data[name] = data
	return nil
}

func (a *undeletableAvatars) GetAvatar(_ context.Context, name string) ([]byte, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if d, ok := a.data[name]; ok {
		return d, "image/png", nil
	}
	return nil, "", models.ErrNoAvatar
}

func (a *undeletableAvatars) DeleteAvatar(context.Context, string) error {
	return errors.New("store is read-only")
}

// A replaced avatar that cannot be removed leaves an orphan and a warning
// in the module's log; the upload itself succeeds.
func TestAvatarReplacedButNotRemoved(t *testing.T) {
	s := chattest.NewServer(t, chattest.OpenSQLite(t), chattest.Options{Config: func(c *module.Config) {
		c.Avatars = &undeletableAvatars{data: map[string][]byte{}}
	}})
	ctx := context.Background()
	sdk := s.SDKFor(t, s.NewUser(t, "a"))
	if _, err := sdk.UploadAvatar(ctx, "a.png", bytes.NewReader(pngBytes(t, 10, 10))); err != nil {
		t.Fatalf("first upload: %v", err)
	}
	if _, err := sdk.UploadAvatar(ctx, "b.png", bytes.NewReader(pngBytes(t, 12, 12))); err != nil {
		t.Fatalf("second upload: %v", err)
	}
	if logs := s.Logs.String(); !strings.Contains(logs, "remove replaced avatar") || !strings.Contains(logs, "read-only") {
		t.Fatalf("log lacks the failed removal:\n%s", logs)
	}
}
