package module

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/web"
	"github.com/gofiber/fiber/v2"
)

// ErrClientDisabled is returned by BrowserTokens for a disabled API client:
// tokens for it would be refused anyway.
var ErrClientDisabled = errors.New("fiberchat: client is disabled")

// ErrNoSuchRoute is returned by BrowserTokens for a route path Mount has
// not mounted.
var ErrNoSuchRoute = errors.New("fiberchat: no such route")

// BrowserTokens returns the api_tokens a web page of clientID signs its
// requests with, so that the client secret stays on the server: day
// (YYYY-MM-DD in Config.Location) → route name (module+controller+action,
// e.g. "messagesendindex") → token, for the routes given by their paths
// as mounted (e.g. "/Message/Send"), or, given none, for every route
// Mount has put on a router. A page holds a token for what it may call
// only: a host whose users come from its own site leaves out register
// and login (or sets Config.HostAccounts, which mounts neither). It holds
// today's tokens, and the neighbouring day's as well within
// Config.SignatureSkew of midnight, which is when the server accepts
// both. A page that keeps them is worth one day to whoever copies it (see
// README, "Chat in a browser"); fiberchat.js takes this map as its tokens
// option. Call it after Mount: before, it knows no routes.
// ErrNoSuchClient or ErrClientDisabled when clientID cannot sign,
// ErrNoSuchRoute for a path that is not mounted.
func (m *Module) BrowserTokens(ctx context.Context, clientID string, routes ...string) (map[string]map[string]string, error) {
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
	all := m.signature.Tokens(c.Secret)
	if len(routes) == 0 {
		return all, nil
	}
	return chosenTokens(all, routes)
}

// chosenTokens keeps, of each day's tokens, those of routes (paths).
func chosenTokens(all map[string]map[string]string, routes []string) (map[string]map[string]string, error) {
	out := make(map[string]map[string]string, len(all))
	for day, byRoute := range all {
		chosen := make(map[string]string, len(routes))
		for _, path := range routes {
			name := middleware.RouteName(path)
			tok, ok := byRoute[name]
			if !ok {
				return nil, fmt.Errorf("%w: %q", ErrNoSuchRoute, path)
			}
			chosen[name] = tok
		}
		out[day] = chosen
	}
	return out, nil
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
