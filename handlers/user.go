package handlers

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/avatar"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sync/semaphore"
)

// UserStore is what the user group needs from the database.
type UserStore interface {
	CreateUser(ctx context.Context, u *models.User) error
	UserByID(ctx context.Context, uid int64) (*models.User, error)
	UserByHandle(ctx context.Context, handle string) (*models.User, error)
	SessionUser(ctx context.Context, uid int64) (*models.User, error)
	UserProfile(ctx context.Context, uid int64) (models.UserProfile, error)
	UpdateProfile(ctx context.Context, uid int64, fields map[string]any, now int64) error
	ChangePassword(ctx context.Context, uid int64, hash string, keepToken int64, now int64) error
	OpenSession(ctx context.Context, uid int64, checked string, now time.Time, idle time.Duration, maxSessions int) (models.NewSession, error)
	DeleteToken(ctx context.Context, id int64) error
	// SetAvatar makes name the user's head_img (as url) and its recorded
	// avatar, and returns the avatar recorded before, if any.
	SetAvatar(ctx context.Context, uid int64, name, url string, now int64) (prev string, err error)
}

// Users serves the user group of API.md §3.
type Users struct {
	cfg UsersConfig
	// dummyHash is compared against when the uid does not exist, so a
	// login takes as long for an unknown uid as for a wrong password.
	dummyHash []byte
}

// UsersConfig carries the user group's dependencies and settings.
type UsersConfig struct {
	Store        UserStore
	Decoder      *wire.Decoder
	Now          func() time.Time
	IdleLifetime time.Duration
	MaxSessions  int
	BcryptCost   int
	// UploadDir is where avatars are stored when Avatars is nil.
	UploadDir string
	// Avatars stores avatars. Optional: FileAvatars{UploadDir}.
	Avatars AvatarStore
	Avatar  avatar.Limits
	// Decodes bounds how many uploads decode at once (avatar.Sanitize);
	// DecodeWait, how long an upload waits for one of them before it is
	// answered 503/1503.
	Decodes    *semaphore.Weighted
	DecodeWait time.Duration
	// AvatarURL turns a stored avatar's file name into the URL clients
	// fetch it from.
	AvatarURL func(c *fiber.Ctx, name string) string
	// Sessions is told whenever a user's sessions end, so cached copies
	// die with them. Optional.
	Sessions SessionCache
	// Events receives UserRegistered and LoggedIn after commit.
	Events *events.Emitter
	// Streams is told when a login may have ended one of the user's
	// sessions (MaxSessions evicts the oldest), for the user's open
	// streams to check theirs.
	//
	// Optional. Default: none (there are no streams to tell).
	Streams SessionEnds
	// PresenceShown, when set, is told that a user started (true) or
	// stopped showing their presence, after it is stored, for their
	// contacts to be told at once.
	//
	// Optional. Default: nil.
	PresenceShown func(uid int64, show bool)
	// Logger receives what goes wrong after an answer is settled, such as
	// a replaced avatar that could not be removed.
	Logger *slog.Logger
	// Profiles serves /user/info (a models.ProfileCache, say); it is
	// told of every profile change the group makes.
	Profiles ProfileSource
}

// ProfileSource reads users' public profiles and forgets any copy of one
// when it changes.
type ProfileSource interface {
	UserProfile(ctx context.Context, uid int64) (models.UserProfile, error)
	Forget(uid int64)
}

// SessionCache is a cache of verified sessions that must forget a user's
// sessions when any of them ends.
type SessionCache interface {
	ForgetUser(uid int64)
}

type noCache struct{}

func (noCache) ForgetUser(int64) {}

// uncachedProfiles reads every profile from the store.
type uncachedProfiles struct{ UserStore }

func (uncachedProfiles) Forget(int64) {}

// NewUsers prepares the user group's handlers.
func NewUsers(cfg UsersConfig) (*Users, error) {
	if cfg.Sessions == nil {
		cfg.Sessions = noCache{}
	}
	if cfg.Avatars == nil {
		cfg.Avatars = FileAvatars{Dir: cfg.UploadDir}
	}
	if cfg.Profiles == nil {
		cfg.Profiles = uncachedProfiles{cfg.Store}
	}
	if cfg.Streams == nil {
		cfg.Streams = noStreams{}
	}
	dummy, err := bcrypt.GenerateFromPassword([]byte("fiberchat-timing-equaliser"), cfg.BcryptCost)
	if err != nil {
		return nil, fmt.Errorf("prepare password hashing: %w", err)
	}
	return &Users{cfg: cfg, dummyHash: dummy}, nil
}

type registerRequest struct {
	Name   string `json:"name" validate:"required,min=1,max=32,nocontrol"`
	Passwd string `json:"passwd" validate:"required,passwd"`
	Handle string `json:"handle" validate:"omitempty,handle"`
}

type registerResponse struct {
	Reg   int    `json:"reg"`
	UID   int64  `json:"uid"`
	Msg   string `json:"msg"`
	Error int    `json:"error"`
}

// Register serves /user/reg/ajax_reg.
func (u *Users) Register() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req registerRequest
		if err := u.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(req.Passwd), u.cfg.BcryptCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		now := u.cfg.Now().Unix()
		user := &models.User{Name: req.Name, PasswordHash: string(hash), Handle: handleOf(req.Handle), CreatedAt: now, UpdatedAt: now}
		if err := u.cfg.Store.CreateUser(c.UserContext(), user); err != nil {
			return err
		}
		u.cfg.Events.Emit(c.UserContext(), events.UserRegistered{UID: user.UID, Name: user.Name, Time: now})
		return c.JSON(registerResponse{Reg: 1, UID: user.UID, Msg: "success"})
	}
}

// loginRequest names the account by uid or, when uid is absent, by handle.
type loginRequest struct {
	UID    wire.UID `json:"uid" validate:"required_without=Handle"`
	Handle string   `json:"handle" validate:"omitempty,handle"`
	Passwd string   `json:"passwd" validate:"required"`
}

// boolInt is 1 for true, 0 for false, as the wire carries flags.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// handleOf is a valid handle as stored: lower-cased, nil for none.
func handleOf(h string) *string {
	if h == "" {
		return nil
	}
	h = strings.ToLower(h)
	return &h
}

// account loads the user a login names. A uid and a handle that name no
// one are both models.ErrNotFound, answered alike.
func (u *Users) account(ctx context.Context, req loginRequest) (*models.User, error) {
	if req.UID != 0 {
		return u.cfg.Store.UserByID(ctx, int64(req.UID))
	}
	return u.cfg.Store.UserByHandle(ctx, *handleOf(req.Handle))
}

// loginResponse carries the uid besides the seeds' fields: a client that
// logged in by handle needs it for its credentials (API.md §1b).
type loginResponse struct {
	Login       int    `json:"login"`
	UID         int64  `json:"uid"`
	AccessToken string `json:"access_token"`
	ExpireTime  int64  `json:"expire_time"`
	Msg         string `json:"msg"`
	Error       int    `json:"error"`
}

// Login serves /user/login: each login opens a new session.
func (u *Users) Login() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req loginRequest
		if err := u.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		ctx := c.UserContext()
		user, err := u.account(ctx, req)
		switch {
		case errors.Is(err, models.ErrNotFound):
			_ = bcrypt.CompareHashAndPassword(u.dummyHash, []byte(req.Passwd))
			return apierr.ErrBadLogin
		case err != nil:
			return err
		}
		if bcrypt.CompareHashAndPassword([]byte(user.PasswordHash), []byte(req.Passwd)) != nil {
			return apierr.ErrBadLogin
		}
		now := u.cfg.Now()
		sess, err := u.cfg.Store.OpenSession(ctx, user.UID, user.PasswordHash, now, u.cfg.IdleLifetime, u.cfg.MaxSessions)
		if err != nil {
			return err
		}
		if sess.Evicted {
			// The session cap ended the oldest sessions: their streams
			// say bye "logout". A login that ended none tells no one: a
			// note would only make every instance recheck the user's
			// streams, and one that comes late, after a password change,
			// would give them the wrong reason.
			u.cfg.Sessions.ForgetUser(user.UID)
			u.cfg.Streams.SessionsEnded(user.UID, ByeLogout)
		}
		u.cfg.Events.Emit(ctx, events.LoggedIn{UID: user.UID, Time: now.Unix()})
		return c.JSON(loginResponse{Login: 1, UID: user.UID, AccessToken: sess.Token, ExpireTime: sess.ExpireTime, Msg: "Login successfully"})
	}
}

type infoResponse struct {
	UID     int64  `json:"uid"`
	Name    string `json:"name"`
	HeadImg string `json:"head_img"`
	Handle  string `json:"handle"`
	// Discoverable (0/1) is the user's own setting, shown so that a
	// client can show it.
	Discoverable int    `json:"discoverable"`
	Time         int64  `json:"time"`
	Error        int    `json:"error"`
	Msg          string `json:"msg"`
}

// Info serves /user/info: the caller's own profile.
func (u *Users) Info() fiber.Handler {
	return func(c *fiber.Ctx) error {
		s := middleware.SessionFrom(c)
		p, err := u.cfg.Profiles.UserProfile(c.UserContext(), s.UID)
		if err != nil {
			return err
		}
		return c.JSON(infoResponse{UID: p.UID, Name: p.Name, HeadImg: p.HeadImg, Handle: p.Handle, Discoverable: boolInt(p.Discoverable), Time: p.CreatedAt, Msg: "success"})
	}
}

type updateRequest struct {
	Name    string `json:"name" validate:"omitempty,max=32,nocontrol"`
	HeadImg string `json:"head_img" validate:"omitempty,max=512,nocontrol"`
	Handle  string `json:"handle" validate:"omitempty,handle"`
	// Discoverable is a pointer so that an absent one is told from 0.
	Discoverable *wire.Int `json:"discoverable" validate:"omitempty,oneof=0 1"`
	// ShowPresence, when given, shows (1) or hides (0) my presence, and
	// so everyone's to me (API.md §13).
	ShowPresence *wire.Int `json:"show_presence" validate:"omitempty,oneof=0 1"`
}

type okResponse struct {
	Error int    `json:"error"`
	Msg   string `json:"msg"`
}

var success = okResponse{Msg: "success"}

// Update serves /user/info/update: empty or absent fields stay unchanged.
func (u *Users) Update() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req updateRequest
		if err := u.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		fields := map[string]any{}
		if req.Name != "" {
			fields["name"] = req.Name
		}
		if req.HeadImg != "" {
			if !safeImageURL(req.HeadImg) {
				return apierr.Invalid("invalid head_img: must be an http(s) URL or an absolute path")
			}
			fields["head_img"] = req.HeadImg
		}
		if req.Handle != "" {
			fields["handle"] = *handleOf(req.Handle)
		}
		if req.Discoverable != nil {
			fields["discoverable"] = *req.Discoverable == 1
		}
		if req.ShowPresence != nil {
			fields["show_presence"] = *req.ShowPresence == 1
		}
		s := middleware.SessionFrom(c)
		if err := u.cfg.Store.UpdateProfile(c.UserContext(), s.UID, fields, u.cfg.Now().Unix()); err != nil {
			return err
		}
		u.cfg.Profiles.Forget(s.UID)
		if req.ShowPresence != nil && u.cfg.PresenceShown != nil {
			u.cfg.PresenceShown(s.UID, *req.ShowPresence == 1)
		}
		return c.JSON(success)
	}
}

// safeImageURL keeps head_img to links a chat page can show without
// running anything (no javascript: or data: URLs).
func safeImageURL(s string) bool {
	l := strings.ToLower(s)
	return strings.HasPrefix(l, "https://") || strings.HasPrefix(l, "http://") ||
		(strings.HasPrefix(s, "/") && !strings.HasPrefix(s, "//"))
}

// Logout serves /user/logout: the session's token is dead from then on.
func (u *Users) Logout() fiber.Handler {
	return func(c *fiber.Ctx) error {
		s := middleware.SessionFrom(c)
		if err := u.cfg.Store.DeleteToken(c.UserContext(), s.TokenID); err != nil {
			return err
		}
		u.cfg.Sessions.ForgetUser(s.UID)
		return c.JSON(success)
	}
}

type passwordRequest struct {
	OldPasswd string `json:"old_passwd" validate:"required"`
	NewPasswd string `json:"new_passwd" validate:"required,passwd"`
}

// Password serves /user/info/passwd: every other session of the user ends.
func (u *Users) Password() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req passwordRequest
		if err := u.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		s := middleware.SessionFrom(c)
		ctx := c.UserContext()
		user, err := u.cfg.Store.SessionUser(ctx, s.UID)
		if err != nil {
			return err
		}
		if bcrypt.CompareHashAndPassword([]byte(user.PasswordHash), []byte(req.OldPasswd)) != nil {
			return apierr.New(apierr.CodeBadLogin, fiber.StatusUnauthorized, "wrong old_passwd")
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(req.NewPasswd), u.cfg.BcryptCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		if err := u.cfg.Store.ChangePassword(ctx, s.UID, string(hash), s.TokenID, u.cfg.Now().Unix()); err != nil {
			return err
		}
		u.cfg.Sessions.ForgetUser(s.UID)
		return c.JSON(success)
	}
}

type headImgResponse struct {
	Error int    `json:"error"`
	Image string `json:"image"`
	Msg   string `json:"msg"`
}

// HeadImg serves /user/info/head_img: the upload is checked and
// re-encoded, stored under a random name, and becomes the user's head_img.
func (u *Users) HeadImg() fiber.Handler {
	return func(c *fiber.Ctx) error {
		fh, err := c.FormFile("file")
		if err != nil {
			return apierr.Invalid("invalid file: required (multipart field \"file\")")
		}
		if fh.Size > u.cfg.Avatar.MaxBytes {
			return apierr.TooLarge("file too large")
		}
		f, err := fh.Open()
		if err != nil {
			return fmt.Errorf("open upload: %w", err)
		}
		ctx := c.UserContext()
		wait, cancel := context.WithTimeout(ctx, u.cfg.DecodeWait)
		img, err := avatar.Sanitize(wait, f, u.cfg.Avatar, u.cfg.Decodes)
		cancel()
		_ = f.Close()
		if err != nil {
			return err
		}
		s := middleware.SessionFrom(c)
		name, err := u.storeAvatar(ctx, img)
		if err != nil {
			return err
		}
		url := u.cfg.AvatarURL(c, name)
		prev, err := u.cfg.Store.SetAvatar(ctx, s.UID, name, url, u.cfg.Now().Unix())
		if err != nil {
			return err
		}
		u.cfg.Profiles.Forget(s.UID)
		// The avatar this one replaced is the one the store recorded as
		// this user's upload, never one head_img names: that is a URL any
		// user can set to anyone's avatar. Removing it is housekeeping:
		// failing it leaves an orphan, not a wrong answer.
		if prev != "" {
			if err := u.cfg.Avatars.DeleteAvatar(ctx, prev); err != nil {
				u.cfg.Logger.WarnContext(ctx, "remove replaced avatar", "error", err.Error())
			}
		}
		return c.JSON(headImgResponse{Image: url})
	}
}

func (u *Users) storeAvatar(ctx context.Context, img *avatar.Image) (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	name := hex.EncodeToString(b[:]) + "." + img.Ext
	return name, u.cfg.Avatars.PutAvatar(ctx, name, img.ContentType, img.Data)
}

var avatarName = regexp.MustCompile(`^[0-9a-f]{32}\.(png|jpg|gif)$`)

var avatarTypes = map[string]string{"png": "image/png", "jpg": "image/jpeg", "gif": "image/gif"}

// ServeAvatar serves stored avatars (GET, no credentials). Only names the
// module itself generates are served, so no path can escape a directory.
func (u *Users) ServeAvatar() fiber.Handler {
	return func(c *fiber.Ctx) error {
		name := c.Params("name")
		if !avatarName.MatchString(name) {
			return models.ErrNoAvatar
		}
		// A name is never reused for other bytes, so it is the ETag, and a
		// client revalidating one it holds is answered without a read.
		etag := `"` + name + `"`
		if c.Get(fiber.HeaderIfNoneMatch) == etag {
			c.Set(fiber.HeaderETag, etag)
			c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
			return c.SendStatus(fiber.StatusNotModified)
		}
		data, ctype, err := u.cfg.Avatars.GetAvatar(c.UserContext(), name)
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderContentType, ctype)
		c.Set(fiber.HeaderETag, etag)
		c.Set(fiber.HeaderCacheControl, "public, max-age=31536000, immutable")
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		return c.Send(data)
	}
}
