package module

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/web"
	"github.com/gofiber/fiber/v2"
)

// ErrClientDisabled is returned by BrowserTokens for a disabled API client:
// tokens for it would be refused anyway.
var ErrClientDisabled = errors.New("fiberchat: client is disabled")

// BrowserTokens returns the api_tokens a web page of clientID signs its
// requests with, so that the client secret stays on the server: day
// (YYYY-MM-DD in Config.Location) → route name (module+controller+action,
// e.g. "messagesendindex") → token, for every route Mount has put on a
// router. It holds today's tokens, and the neighbouring day's as well
// within Config.SignatureSkew of midnight, which is when the server
// accepts both. A page that keeps them is worth one day to whoever copies
// it (see README, "Chat in a browser"); fiberchat.js takes this map as its
// tokens option. Call it after Mount: before, it knows no routes.
// ErrNoSuchClient or ErrClientDisabled when clientID cannot sign.
func (m *Module) BrowserTokens(ctx context.Context, clientID string) (map[string]map[string]string, error) {
	c, err := m.store.ClientByID(ctx, clientID)
	if errors.Is(err, models.ErrNotFound) {
		return nil, ErrNoSuchClient
	}
	if err != nil {
		return nil, fmt.Errorf("browser tokens: %w", err)
	}
	if c.Disabled {
		return nil, ErrClientDisabled
	}
	return m.signature.Tokens(c.Secret), nil
}

// clientScriptETag is fiberchat.js's ETag, computed once: the file is
// embedded, so it changes only with the binary.
var clientScriptETag = func() string {
	sum := sha256.Sum256(web.ClientJS)
	return `"` + hex.EncodeToString(sum[:8]) + `"`
}()

// serveClientScript answers GET /static/fiberchat.js with the embedded
// JavaScript client, for host pages that import it from the module rather
// than copying it. Browsers revalidate it on each load (no-cache with an
// ETag), so an upgraded server is picked up at once.
func serveClientScript(c *fiber.Ctx) error {
	c.Set(fiber.HeaderCacheControl, "no-cache")
	c.Set(fiber.HeaderETag, clientScriptETag)
	c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
	if c.Get(fiber.HeaderIfNoneMatch) == clientScriptETag {
		return c.SendStatus(fiber.StatusNotModified)
	}
	c.Set(fiber.HeaderContentType, "text/javascript; charset=utf-8")
	return c.Send(web.ClientJS)
}
