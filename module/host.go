package module

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// ErrInvalidArgument is returned by the host API for an argument outside
// the contract's limits (an empty host ref, a name too long).
var ErrInvalidArgument = errors.New("fiberchat: invalid argument")

// ErrNoSuchUser is returned for a uid that does not exist.
var ErrNoSuchUser = errors.New("fiberchat: no such user")

// ProvisionUser returns the chat uid tied to the host's own account id
// hostRef (1 to 64 characters), creating that chat user with name (1 to
// 32 characters) on the first call. It is idempotent: later calls, also
// concurrent ones, return the same uid and leave the profile as it is.
// A provisioned user has no chat password; the host opens its sessions
// with IssueToken.
func (m *Module) ProvisionUser(ctx context.Context, hostRef, name string) (int64, error) {
	if hostRef == "" || len(hostRef) > 64 || !wire.NoControl(hostRef) {
		return 0, fmt.Errorf("%w: host ref must be 1 to 64 characters", ErrInvalidArgument)
	}
	if n := utf8.RuneCountInString(name); n == 0 || n > 32 || !wire.NoControl(name) {
		return 0, fmt.Errorf("%w: name must be 1 to 32 characters", ErrInvalidArgument)
	}
	now := m.cfg.Now().Unix()
	u, created, err := m.store.ProvisionUser(ctx, hostRef, name, now)
	if err != nil {
		return 0, err
	}
	if created {
		m.events.Emit(ctx, events.UserRegistered{UID: u.UID, Name: u.Name, Provisioned: true, Time: now})
	}
	return u.UID, nil
}

// Session is a chat session issued to a host's signed-in user: the
// credentials a client sends as uid and access_token.
type Session struct {
	UID         int64  `json:"uid"`
	AccessToken string `json:"access_token"`
	ExpireTime  int64  `json:"expire_time"`
}

// IssueToken opens a chat session for uid without a password, as
// /user/login would: for a host whose own login has already vouched for
// the user. The session cap and idle lifetime apply as for any login.
func (m *Module) IssueToken(ctx context.Context, uid int64) (Session, error) {
	if _, err := m.store.UserByID(ctx, uid); err != nil {
		if errors.Is(err, models.ErrNotFound) {
			return Session{}, ErrNoSuchUser
		}
		return Session{}, err
	}
	now := m.cfg.Now()
	sess, err := m.store.OpenSession(ctx, uid, "", now, m.cfg.TokenIdleLifetime, m.cfg.MaxSessions)
	if err != nil {
		return Session{}, err
	}
	if sess.Evicted {
		// The session cap ended the oldest sessions: their streams say
		// bye "logout" (see /user/login).
		if m.sessions != nil {
			m.sessions.ForgetUser(uid)
		}
		m.sessionsEnded(uid, handlers.ByeLogout)
	}
	m.events.Emit(ctx, events.LoggedIn{UID: uid, ByHost: true, Time: now.Unix()})
	return Session{UID: uid, AccessToken: sess.Token, ExpireTime: sess.ExpireTime}, nil
}

// ClientSecret returns the secret of an API client, for a host that signs
// chat requests on its own server (see APIToken) and created its client
// with a generated secret on an earlier start. ErrNoSuchClient if none.
func (m *Module) ClientSecret(ctx context.Context, clientID string) (string, error) {
	c, err := m.store.ClientByID(ctx, clientID)
	if errors.Is(err, models.ErrNotFound) {
		return "", ErrNoSuchClient
	}
	if err != nil {
		return "", err
	}
	return c.Secret, nil
}

// APIToken computes the api_token a client signs a request for path
// (relative to the mount prefix, e.g. "/Message/Send") with at time t, in
// the module's configured Location, so a host can hand a web page the
// day's tokens without handing it the secret. It is the package's
// APIToken with t moved into that Location.
func (m *Module) APIToken(path, secret string, t time.Time) string {
	return APIToken(path, secret, t.In(m.cfg.Location))
}

// APIToken computes the api_token (API.md §1a) for a request to path
// (relative to the mount prefix, e.g. "/Message/Send") on t's calendar day
// in t's own location. It is for a client that holds no *Module, such as a
// load generator or a test: give it t in the server's Config.Location
// (time.Now().UTC() for the default). With a *Module at hand, its
// APIToken method does that conversion.
func APIToken(path, secret string, t time.Time) string {
	return middleware.Token(middleware.RouteName(path), t.Format(time.DateOnly), secret)
}

// TableName is the name of one of the module's tables given its base name
// ("users" → "chat_users" with the default prefix), for a host struct that
// extends a module model and must name its table.
func (m *Module) TableName(base string) string { return m.cfg.TablePrefix + base }

// Serve serves app on ln until ctx ends, then shuts down in the order the
// chat needs: the module first, so held and parked long polls are answered
// at once (a parked poll is invisible to the server's own shutdown), then
// the server, which waits up to timeout for open requests
// (Config.ShutdownTimeout when timeout is zero or less). It returns within
// ShutdownTimeout plus timeout of ctx ending, a stuck database or not. It
// returns the listener's error if the server stopped by itself; trouble
// during the shutdown is logged.
func (m *Module) Serve(ctx context.Context, app *fiber.App, ln net.Listener, timeout time.Duration) error {
	if timeout <= 0 {
		timeout = m.cfg.ShutdownTimeout
	}
	served := make(chan error, 1)
	go func() { served <- app.Listener(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	m.cfg.Logger.Info("shutting down")
	_ = m.Close()
	if err := app.ShutdownWithTimeout(timeout); err != nil {
		m.cfg.Logger.Warn("shutdown", "error", err.Error())
	}
	if err := <-served; err != nil {
		m.cfg.Logger.Warn("serve", "error", err.Error())
	}
	return nil
}
