package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"
)

// AuditEntry is one line of the host's own audit log of chat events, in
// its own table. It records who and when, not what was said: message
// bodies stay in the chat's tables, under its retention.
type AuditEntry struct {
	ID   int64  `gorm:"primaryKey"`
	Kind string `gorm:"size:32;not null;index"`
	UID  int64  `gorm:"not null"`
	Peer int64  `gorm:"not null"`
	Time int64  `gorm:"not null"`
}

// TableName is the host's audit table.
func (AuditEntry) TableName() string { return "audit_log" }

// auditor is the module's OnEvent hook. It runs after the change has
// committed, in the request, before the answer is sent: its error is
// logged by the module and changes nothing for the client.
func auditor(gdb *gorm.DB) events.Handler {
	return func(ctx context.Context, e events.Event) error {
		entry := AuditEntry{Kind: e.Kind()}
		switch e := e.(type) {
		case events.MessageStored:
			entry.UID, entry.Peer, entry.Time = e.From, e.To, e.Time
		case events.ContactAdded:
			entry.UID, entry.Peer, entry.Time = e.UID, e.PeerUID, e.Time
		default:
			return nil // the rest is not worth an audit line here
		}
		return gdb.WithContext(ctx).Create(&entry).Error
	}
}

// spamFilter is the module's BeforeSend hook: a message containing any of
// words (case-insensitively) is refused with 403/1008 and not stored.
func spamFilter(words []string) events.BeforeSend {
	lower := make([]string, len(words))
	for i, w := range words {
		lower[i] = strings.ToLower(w)
	}
	return func(_ context.Context, m events.Outgoing) error {
		body := strings.ToLower(m.Body)
		for _, w := range lower {
			if w != "" && strings.Contains(body, w) {
				return apierr.Forbidden("message refused: looks like spam")
			}
		}
		return nil
	}
}

// ensureClient creates the API client of the host's web page on first
// start and returns the secret in use. On later starts the client exists
// and its stored secret is read back. A configured secret that differs
// from the stored one is refused rather than silently ignored.
func ensureClient(ctx context.Context, chat *module.Module, clientID, secret string) (string, error) {
	got, err := chat.CreateClient(ctx, clientID, secret, "Host web page")
	if err == nil {
		return got, nil
	}
	if !errors.Is(err, module.ErrClientExists) {
		return "", fmt.Errorf("create chat client: %w", err)
	}
	stored, err := chat.ClientSecret(ctx, clientID)
	if err != nil {
		return "", fmt.Errorf("read chat client: %w", err)
	}
	if secret != "" && stored != secret {
		return "", fmt.Errorf("chat client %q exists with another secret", clientID)
	}
	return stored, nil
}

// hostRef is the chat's key for a host account: stable and never reused,
// unlike an email.
func hostRef(u *User) string { return "host-user-" + strconv.FormatInt(u.ID, 10) }

// chatName fits a display name to the chat's 1 to 32 characters.
func chatName(u *User) string {
	name := strings.TrimSpace(u.DisplayName)
	if utf8.RuneCountInString(name) > 32 {
		name = string([]rune(name)[:32])
	}
	if name == "" {
		name = "user " + strconv.FormatInt(u.ID, 10)
	}
	return name
}

// webRoutes are the chat routes the host's web page calls; /chat-token
// hands out their api_tokens for the day.
var webRoutes = []string{
	"/user/info", "/user/info/update", "/user/logout",
	"/Contacts/list", "/Contacts/Info", "/Contacts/IO/addContacts", "/Contacts/IO/delContacts",
	"/Contacts/list/add", "/Contacts/IO/acceptContacts",
	"/Message/Send", "/Message/Recv",
}

// tokenHint is what a browser needs to sign chat requests without holding
// the client secret: each route's api_token for one day (in the module's
// Location, UTC by default). The page fetches /chat-token again when the
// day changes or a request is refused with 1002.
type tokenHint struct {
	Day    string            `json:"day"`
	Tokens map[string]string `json:"tokens"`
}

func newTokenHint(chat *module.Module, secret string, now time.Time) tokenHint {
	h := tokenHint{Day: now.UTC().Format(time.DateOnly), Tokens: make(map[string]string, len(webRoutes))}
	for _, r := range webRoutes {
		h.Tokens[r] = chat.APIToken(r, secret, now)
	}
	return h
}

type chatTokenResponse struct {
	UID          int64     `json:"uid"`
	AccessToken  string    `json:"access_token"`
	ExpireTime   int64     `json:"expire_time"`
	ClientID     string    `json:"client_id"`
	APITokenHint tokenHint `json:"api_token_hint"`
}

// chatToken answers GET /chat-token for a signed-in host user: it maps the
// account to its chat user (created on first use, no second registration),
// copies the host's columns into it, and opens a chat session.
//
// It is a GET that writes, which is safe here because its answer is the
// only thing of value and another site's page cannot read it: the host
// enables no CORS, and the cookie is SameSite=Lax.
func chatToken(chat *module.Module, gdb *gorm.DB, clientID, secret string, now func() time.Time, log *slog.Logger) fiber.Handler {
	return func(c *fiber.Ctx) error {
		u := currentUser(c)
		ctx := c.UserContext()
		uid, err := chat.ProvisionUser(ctx, hostRef(u), chatName(u))
		if err != nil {
			return fmt.Errorf("provision chat user: %w", err)
		}
		// Ordinary GORM on the host's struct, touching only the host's
		// columns: the module never writes them, so they stay as set.
		err = gdb.WithContext(ctx).Model(&ChatUser{}).Where("uid = ?", uid).
			Updates(map[string]any{"email": u.Email, "level": u.Level}).Error
		if err != nil {
			return fmt.Errorf("copy host columns to chat user %d: %w", uid, err)
		}
		sess, err := chat.IssueToken(ctx, uid)
		if err != nil {
			return fmt.Errorf("issue chat token: %w", err)
		}
		log.InfoContext(ctx, "chat session issued", "host_user", u.ID, "uid", uid)
		c.Set(fiber.HeaderCacheControl, "no-store")
		return c.JSON(chatTokenResponse{
			UID:          sess.UID,
			AccessToken:  sess.AccessToken,
			ExpireTime:   sess.ExpireTime,
			ClientID:     clientID,
			APITokenHint: newTokenHint(chat, secret, now()),
		})
	}
}
