package handlers

import (
	"context"

	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// UserSearcher finds users for /Contacts/search.
type UserSearcher interface {
	SearchUsers(ctx context.Context, q models.SearchQuery) ([]models.Profile, error)
}

type searchRequest struct {
	Q string `json:"q" validate:"required,min=2,max=64,nocontrol"`
}

// Search serves /Contacts/search (API.md §14): up to 20 discoverable
// users whose handle starts with q or whose name contains it, shaped like
// /Contacts/list. nameScan bounds the name match (models.SearchQuery).
// The route's rate limit, per user, is the module's.
func Search(store UserSearcher, dec *wire.Decoder, nameScan int) fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req searchRequest
		if err := dec.Decode(c, &req); err != nil {
			return err
		}
		ps, err := store.SearchUsers(c.UserContext(), models.SearchQuery{
			Me: middleware.SessionFrom(c).UID, Q: req.Q, NameScan: nameScan,
		})
		if err != nil {
			return err
		}
		return c.JSON(profilesOf(ps))
	}
}
