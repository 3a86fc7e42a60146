package module

import (
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

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
