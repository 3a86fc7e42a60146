package module

import (
	"context"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/handlers"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

// streamEvents is the module's events.Handler: every event goes to the
// open streams it concerns (read receipts, contact changes, logins that
// may have evicted a session), then to the host's handler, if any. The waiters are made after the emitter (they
// need the notifier), and no event comes before New returns.
func (m *Module) streamEvents(host events.Handler) events.Handler {
	return func(ctx context.Context, e events.Event) error {
		handlers.StreamNotice(m.waiters, e)
		if e, ok := e.(events.LoggedIn); ok {
			// The new session may have evicted the user's oldest
			// (MaxSessions): the user's streams check theirs now, and the
			// evicted one's says bye "logout".
			m.waiters.SessionsEnded(e.UID, handlers.ByeLogout)
		}
		if host == nil {
			return nil
		}
		return host(ctx, e)
	}
}

// endsSessions wraps a route that ends sessions of its caller's user
// (logout, password change): once it has succeeded, the user's open
// streams check their sessions and the ended ones say bye with reason.
func (m *Module) endsSessions(reason string, h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := h(c); err != nil {
			return err
		}
		if c.Response().StatusCode() == fiber.StatusOK {
			m.waiters.SessionsEnded(middleware.SessionFrom(c).UID, reason)
		}
		return nil
	}
}
