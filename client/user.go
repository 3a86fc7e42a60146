package client

import (
	"bytes"
	"context"
	"encoding/json"
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
}

// UserInfo is the logged-in user's own profile.
type UserInfo struct {
	Profile
	// Time is when the user registered (unix seconds).
	Time int64 `json:"time"`
}

// Register creates a user (/user/reg/ajax_reg) and returns its uid; name is
// 1–32 characters, passwd 6–72 bytes. It does not log in.
func (c *Client) Register(ctx context.Context, name, passwd string) (int64, error) {
	var out struct {
		UID int64 `json:"uid"`
	}
	err := c.call(ctx, "/user/reg/ajax_reg", false, struct {
		Name   string `json:"name"`
		Passwd string `json:"passwd"`
	}{name, passwd}, &out)
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
	Name    string `json:"name,omitempty"`
	HeadImg string `json:"head_img,omitempty"`
	// ShowPresence, when set, shows (true) or hides (false) my presence
	// from my contacts, and theirs from me (API.md §13); nil leaves it.
	ShowPresence *bool `json:"-"`
}

// MarshalJSON sends ShowPresence as the 0 or 1 the server takes.
func (u ProfileUpdate) MarshalJSON() ([]byte, error) {
	type plain ProfileUpdate
	out := struct {
		plain
		ShowPresence *int `json:"show_presence,omitempty"`
	}{plain: plain(u)}
	if u.ShowPresence != nil {
		v := 0
		if *u.ShowPresence {
			v = 1
		}
		out.ShowPresence = &v
	}
	return json.Marshal(out)
}

// UpdateProfile changes the user's name or avatar URL (/user/info/update).
func (c *Client) UpdateProfile(ctx context.Context, u ProfileUpdate) error {
	return c.call(ctx, "/user/info/update", true, u, nil)
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
