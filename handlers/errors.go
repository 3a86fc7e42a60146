// Package handlers holds fiberchat's route handlers, one file per route
// group, as maker funcs that take their dependencies and return a
// fiber.Handler; module builds them and maps them to URLs in its routes.go.
// Handlers return errors; the Boundary in this file is the one place that
// turns any error into the API.md envelope.
package handlers

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// Boundary is the first handler of every module route: it answers any
// error the rest of the chain returns, and any panic, with the envelope,
// so the host's error handler never sees the module's errors. failure
// holds extra fields every failed answer of the route carries, such as
// "reg":0 for register.
func Boundary(logger *slog.Logger, failure map[string]any) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				id := requestID(c)
				logger.ErrorContext(c.UserContext(), "panic serving request",
					"request_id", id, "method", c.Method(), "path", c.Path(),
					"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				err = write(c, apierr.ErrInternal, failure, id)
			}
		}()
		if err := c.Next(); err != nil {
			return WriteError(c, logger, err, failure)
		}
		return nil
	}
}

// ErrorHandler is a fiber.ErrorHandler giving the envelope, for an app
// that is fiberchat alone (the sample app): it answers what fails before
// any route runs, such as a body past the server's own limit.
func ErrorHandler(logger *slog.Logger) fiber.ErrorHandler {
	return func(c *fiber.Ctx, err error) error {
		return WriteError(c, logger, err, nil)
	}
}

// WriteError answers err as the envelope: an *apierr.Error (the module's
// own failures, models' sentinels among them) as it says, Fiber's own
// errors by their status, an unreachable database (models.Unavailable)
// as 503/1503, and anything else as 500/1500, logged with a request id
// and never shown.
func WriteError(c *fiber.Ctx, logger *slog.Logger, err error, failure map[string]any) error {
	e := classify(err)
	id := ""
	if e.Code == apierr.CodeInternal || e.Code == apierr.CodeUnavailable {
		id = requestID(c)
		logger.ErrorContext(c.UserContext(), "request failed",
			"request_id", id, "method", c.Method(), "path", c.Path(), "error", err.Error())
	}
	return write(c, e, failure, id)
}

func classify(err error) *apierr.Error {
	if e, ok := apierr.As(err); ok {
		return e
	}
	var fe *fiber.Error
	if errors.As(err, &fe) {
		switch fe.Code {
		case fiber.StatusRequestEntityTooLarge:
			return apierr.ErrTooLarge
		case fiber.StatusNotFound, fiber.StatusMethodNotAllowed:
			return apierr.NotFound("no such route")
		case fiber.StatusBadRequest, fiber.StatusRequestHeaderFieldsTooLarge, fiber.StatusRequestTimeout:
			return apierr.Invalid("malformed request")
		case fiber.StatusUnsupportedMediaType:
			return apierr.Invalid("malformed body: unsupported content type")
		}
		return apierr.ErrInternal
	}
	if models.Unavailable(err) {
		// A driver's error, which only models can read.
		return apierr.ErrUnavailable
	}
	return apierr.ErrInternal
}

func write(c *fiber.Ctx, e *apierr.Error, failure map[string]any, requestID string) error {
	body := make(map[string]any, 2+len(failure))
	for k, v := range failure {
		body[k] = v
	}
	body["error"] = e.Code
	body["msg"] = e.Msg
	if requestID != "" {
		body["request_id"] = requestID
		c.Set("X-Request-Id", requestID)
	}
	return c.Status(e.Status).JSON(body)
}

func requestID(c *fiber.Ctx) string {
	if id := c.Get("X-Request-Id"); id != "" && len(id) <= 64 && isToken(id) {
		return strings.Clone(id)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func isToken(s string) bool {
	for i := 0; i < len(s); i++ {
		ch := s[i]
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}
