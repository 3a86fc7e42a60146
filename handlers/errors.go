// Package handlers holds fiberchat's route handlers, one file per route
// group, as maker funcs that take their dependencies and return a
// fiber.Handler; module builds them and maps them to URLs in its routes.go.
// Handlers return errors; the Boundary in this file is the one place that
// turns any error into the API.md envelope.
package handlers

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/gofiber/fiber/v2/utils"
)

// Boundary goes first on every module route, after RequestID and the
// access log: it answers any error the rest of the chain returns, and any
// panic, with the envelope,
// so the host's error handler never sees the module's errors. failure
// holds extra fields every failed answer of the route carries, such as
// "reg":0 for register.
func Boundary(logger *slog.Logger, failure map[string]any) fiber.Handler {
	return func(c *fiber.Ctx) (err error) {
		defer func() {
			if r := recover(); r != nil {
				id := RequestIDFrom(c)
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
// and never shown. What is logged is the error as models.Redact leaves
// it: a database error's message quotes the values it refused, and those
// are users' texts, which the log must not hold whatever the route.
func WriteError(c *fiber.Ctx, logger *slog.Logger, err error, failure map[string]any) error {
	e := classify(err)
	id := ""
	if e.Code == apierr.CodeInternal || e.Code == apierr.CodeUnavailable {
		id = RequestIDFrom(c)
		logger.ErrorContext(c.UserContext(), "request failed",
			"request_id", id, "method", c.Method(), "path", c.Path(), "error", models.Redact(err).Error())
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

// requestIDKey is where RequestID keeps the request's id in c.Locals.
type requestIDKey struct{}

// RequestID is the first handler of every module route: Fiber's requestid
// middleware, which takes the client's X-Request-Id or makes one, sets it
// on the response and keeps it for RequestIDFrom. Two things are added:
// a client's id is kept only when it is 1 to 64 characters of
// [A-Za-z0-9_-] (otherwise it is dropped and one is made), so that no
// client writes newlines, quotes or a megabyte into the module's logs
// and answers; and a made id is random (utils.UUIDv4), where the
// middleware's default numbers the requests and so tells anyone how busy
// the server is.
func RequestID() fiber.Handler {
	rid := requestid.New(requestid.Config{
		Header:     fiber.HeaderXRequestID,
		Generator:  utils.UUIDv4,
		ContextKey: requestIDKey{},
	})
	return func(c *fiber.Ctx) error {
		h := &c.Request().Header
		if id := h.Peek(fiber.HeaderXRequestID); len(id) > 0 && !validRequestID(id) {
			h.Del(fiber.HeaderXRequestID)
		}
		return rid(c)
	}
}

// RequestIDFrom returns the id of c's request, the one the error envelope
// and every log line about the request carry: RequestID's. Where RequestID
// did not run (ErrorHandler before any route, HealthHandler on a host's
// route, the answer of a parked poll), it is a well-formed X-Request-Id
// of the response (set by RequestID before the poll parked) or of the
// request, else a new one, kept for the rest of the request.
func RequestIDFrom(c *fiber.Ctx) string {
	if id, ok := c.Locals(requestIDKey{}).(string); ok {
		return id
	}
	id := utils.UUIDv4()
	if v := c.Response().Header.Peek(fiber.HeaderXRequestID); validRequestID(v) {
		id = string(v)
	} else if v := c.Request().Header.Peek(fiber.HeaderXRequestID); validRequestID(v) {
		id = string(v)
	}
	c.Locals(requestIDKey{}, id)
	return id
}

func validRequestID(id []byte) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, ch := range id {
		if !(ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= '0' && ch <= '9' || ch == '-' || ch == '_') {
			return false
		}
	}
	return true
}
