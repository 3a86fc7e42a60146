package client

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"strconv"
)

// Profile is a user as the contact routes show one.
type Profile struct {
	UID     int64  `json:"uid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"` // avatar URL; empty for none
	Handle  string `json:"handle"`   // lower-cased; empty for none
}

// UserInfo is the logged-in user's own profile.
type UserInfo struct {
	Profile
	// Time is when the user registered (unix seconds).
	Time int64 `json:"time"`
	// Discoverable is 1 when Search may find the user, 0 when not.
	Discoverable int `json:"discoverable"`
}

// RegisterOption adds an optional field to Register.
type RegisterOption func(*registration)

type registration struct {
	Name   string `json:"name"`
	Passwd string `json:"passwd"`
	Handle string `json:"handle,omitempty"`
}

// WithHandle registers the user with a handle: 3–32 characters of
// [a-z0-9_.], unique whatever its case. One taken is an *Error with
// CodeConflict.
func WithHandle(handle string) RegisterOption {
	return func(r *registration) { r.Handle = handle }
}

// Register creates a user (/user/reg/ajax_reg) and returns its uid; name is
// 1–32 characters, passwd 6–72 bytes. It does not log in.
func (c *Client) Register(ctx context.Context, name, passwd string, opts ...RegisterOption) (int64, error) {
	var out struct {
		UID int64 `json:"uid"`
	}
	body := registration{Name: name, Passwd: passwd}
	for _, o := range opts {
		o(&body)
	}
	err := c.call(ctx, "/user/reg/ajax_reg", false, body, &out)
	return out.UID, err
}

// Login opens a session for uid (/user/login), keeps it in the client for
// the calls that follow, and returns it. A wrong uid or password is an
// *Error with CodeBadLogin.
func (c *Client) Login(ctx context.Context, uid int64, passwd string) (Session, error) {
	var out struct {
		AccessToken string `json:"access_token"`
		ExpireTime  int64  `json:"expire_time"`
	}
	err := c.call(ctx, "/user/login", false, struct {
		UID    int64  `json:"uid"`
		Passwd string `json:"passwd"`
	}{uid, passwd}, &out)
	if err != nil {
		return Session{}, err
	}
	s := Session{UID: uid, AccessToken: out.AccessToken, ExpireTime: out.ExpireTime}
	c.SetSession(s)
	return s, nil
}

// LoginHandle is Login naming the user by handle (any case) instead of
// uid; the session carries the uid the server answers with. A handle no
// one has is an *Error with CodeBadLogin, as a wrong password is.
func (c *Client) LoginHandle(ctx context.Context, handle, passwd string) (Session, error) {
	var out struct {
		UID         int64  `json:"uid"`
		AccessToken string `json:"access_token"`
		ExpireTime  int64  `json:"expire_time"`
	}
	err := c.call(ctx, "/user/login", false, struct {
		Handle string `json:"handle"`
		Passwd string `json:"passwd"`
	}{handle, passwd}, &out)
	if err != nil {
		return Session{}, err
	}
	s := Session{UID: out.UID, AccessToken: out.AccessToken, ExpireTime: out.ExpireTime}
	c.SetSession(s)
	return s, nil
}

// Logout ends the session (/user/logout) and drops it from the client.
// The session is dropped too when the server says it had already ended.
func (c *Client) Logout(ctx context.Context) error {
	err := c.call(ctx, "/user/logout", true, nil, nil)
	if err == nil || IsCode(err, CodeBadToken) {
		c.SetSession(Session{})
	}
	return err
}

// Info returns the logged-in user's profile (/user/info).
func (c *Client) Info(ctx context.Context) (UserInfo, error) {
	var out struct {
		envelope
		UserInfo
	}
	err := c.call(ctx, "/user/info", true, nil, &out)
	return out.UserInfo, err
}

// ProfileUpdate is what UpdateProfile changes; an empty field is left as
// it is.
type ProfileUpdate struct {
	Name    string
	HeadImg string
	// Handle becomes the user's handle (3–32 characters of [a-z0-9_.]);
	// one taken is an *Error with CodeConflict.
	Handle string
	// Discoverable, when set, says whether Search may find the user.
	Discoverable *bool
	// ShowPresence, when set, shows (true) or hides (false) my presence
	// from my contacts, and theirs from me (API.md §13); nil leaves it.
	ShowPresence *bool
}

// UpdateProfile changes the user's name, avatar URL, handle or
// discoverability (/user/info/update).
func (c *Client) UpdateProfile(ctx context.Context, u ProfileUpdate) error {
	body := struct {
		Name         string `json:"name,omitempty"`
		HeadImg      string `json:"head_img,omitempty"`
		Handle       string `json:"handle,omitempty"`
		Discoverable *int   `json:"discoverable,omitempty"`
		ShowPresence *int   `json:"show_presence,omitempty"`
	}{Name: u.Name, HeadImg: u.HeadImg, Handle: u.Handle, Discoverable: zeroOne(u.Discoverable), ShowPresence: zeroOne(u.ShowPresence)}
	return c.call(ctx, "/user/info/update", true, body, nil)
}

// zeroOne is an optional flag as the 0 or 1 the server takes; nil stays
// nil (left out).
func zeroOne(b *bool) *int {
	if b == nil {
		return nil
	}
	v := 0
	if *b {
		v = 1
	}
	return &v
}

// ChangePassword changes the user's password (/user/info/passwd). The
// server ends every other session of the user; this one stays.
func (c *Client) ChangePassword(ctx context.Context, oldPasswd, newPasswd string) error {
	return c.call(ctx, "/user/info/passwd", true, struct {
		Old string `json:"old_passwd"`
		New string `json:"new_passwd"`
	}{oldPasswd, newPasswd}, nil)
}

// UploadAvatar uploads an image read from r as the user's avatar
// (/user/info/head_img, multipart field "file") and returns the URL the
// profile now points at. filename is only a name for the part: the
// server sniffs the type from the bytes. An image that is too large is an
// *Error with CodeTooLarge, one of another type CodeUnsupported.
func (c *Client) UploadAvatar(ctx context.Context, filename string, r io.Reader) (string, error) {
	const path = "/user/info/head_img"
	s, err := c.session()
	if err != nil {
		return "", err
	}
	// Buffered rather than streamed: the server takes at most a few MiB,
	// and a body with a length is one every proxy passes on.
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	_ = mw.WriteField("uid", strconv.FormatInt(s.UID, 10))
	_ = mw.WriteField("access_token", s.AccessToken)
	part, err := mw.CreateFormFile("file", filename)
	if err != nil {
		return "", fmt.Errorf("fiberchat %s: %w", path, err)
	}
	if _, err := io.Copy(part, r); err != nil {
		return "", fmt.Errorf("fiberchat %s: read image: %w", path, err)
	}
	if err := mw.Close(); err != nil {
		return "", fmt.Errorf("fiberchat %s: %w", path, err)
	}
	var out struct {
		Image string `json:"image"`
	}
	err = c.post(ctx, path, mw.FormDataContentType(), buf.Bytes(), 0, &out)
	return out.Image, err
}
