package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"
)

// sessionCookie is the host's own login cookie. fiberchat never sees it:
// the chat API has its own credentials, which /chat-token hands out.
const sessionCookie = "host_session"

// sessions signs and checks session cookies: "<user id>.<expiry>.<mac>",
// where mac is an HMAC-SHA256 of the first two parts. Nothing is stored
// server-side, so a session ends when it expires or the key changes.
type sessions struct {
	key    []byte
	ttl    time.Duration
	secure bool
	now    func() time.Time
}

func (s *sessions) mac(payload string) string {
	h := hmac.New(sha256.New, s.key)
	h.Write([]byte(payload))
	return base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// start sets the cookie for user id.
func (s *sessions) start(c *fiber.Ctx, id int64) {
	expires := s.now().Add(s.ttl)
	payload := strconv.FormatInt(id, 10) + "." + strconv.FormatInt(expires.Unix(), 10)
	c.Cookie(&fiber.Cookie{
		Name:     sessionCookie,
		Value:    payload + "." + s.mac(payload),
		Path:     "/",
		Expires:  expires,
		HTTPOnly: true,
		Secure:   s.secure,
		SameSite: fiber.CookieSameSiteLaxMode,
	})
}

// end clears the cookie.
func (s *sessions) end(c *fiber.Ctx) {
	c.Cookie(&fiber.Cookie{Name: sessionCookie, Value: "", Path: "/", Expires: time.Unix(1, 0), HTTPOnly: true, Secure: s.secure, SameSite: fiber.CookieSameSiteLaxMode})
}

// userID returns the user id of a valid, unexpired cookie.
func (s *sessions) userID(c *fiber.Ctx) (int64, bool) {
	payload, mac, ok := cutLast(c.Cookies(sessionCookie), ".")
	if !ok || !hmac.Equal([]byte(mac), []byte(s.mac(payload))) {
		return 0, false
	}
	idPart, expPart, ok := strings.Cut(payload, ".")
	if !ok {
		return 0, false
	}
	id, err1 := strconv.ParseInt(idPart, 10, 64)
	exp, err2 := strconv.ParseInt(expPart, 10, 64)
	if err1 != nil || err2 != nil || s.now().Unix() >= exp {
		return 0, false
	}
	return id, true
}

func cutLast(s, sep string) (before, after string, ok bool) {
	i := strings.LastIndex(s, sep)
	if i < 0 {
		return "", "", false
	}
	return s[:i], s[i+len(sep):], true
}

// userKey is the Locals key of the signed-in *User; an unexported type so
// no other package's key can clash with it.
type userKey struct{}

// loadUser puts the signed-in user, if any, in the request's Locals.
// A cookie whose account is gone counts as no session.
func loadUser(s *sessions, gdb *gorm.DB) fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, ok := s.userID(c)
		if !ok {
			return c.Next()
		}
		var u User
		err := gdb.WithContext(c.UserContext()).Take(&u, id).Error
		switch {
		case err == nil:
			c.Locals(userKey{}, &u)
		case !errors.Is(err, gorm.ErrRecordNotFound):
			return err
		}
		return c.Next()
	}
}

// currentUser is the signed-in user, or nil.
func currentUser(c *fiber.Ctx) *User {
	u, _ := c.Locals(userKey{}).(*User)
	return u
}

// requireUser answers 401 (the host's page) without a signed-in user.
func requireUser(c *fiber.Ctx) error {
	if currentUser(c) == nil {
		return fiber.ErrUnauthorized
	}
	return c.Next()
}
