package handlers

import (
	"context"
	"encoding/json"
	"time"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// UpdateStore is what replies, edits, deletes and reactions (API.md §13)
// need from the database: see models/update.go.
type UpdateStore interface {
	EditMessage(ctx context.Context, u models.Update, body string, enc bool, window time.Duration) (models.Updated, error)
	DeleteMessage(ctx context.Context, u models.Update) (models.Updated, error)
	ReactMessage(ctx context.Context, u models.Update, emoji string, on bool) (models.Updated, error)
	CheckReplyTo(ctx context.Context, from, to, gid, id int64) error
	MessageHead(ctx context.Context, id int64) (*models.Message, error)
}

// richFields are what API.md §13 adds to every record of Recv, Stream
// and History: the kind, and what the kind carries. A message shows its
// current state (reply_to, edited_time, deleted, reactions); an update
// entry the message it changes (ref_id), and a reaction's emoji and
// whether it was put on or taken off.
type richFields struct {
	Kind       string          `json:"kind"`
	RefID      int64           `json:"ref_id,omitempty"`
	ReplyTo    int64           `json:"reply_to,omitempty"`
	Emoji      string          `json:"emoji,omitempty"`
	On         *bool           `json:"on,omitempty"`
	EditedTime int64           `json:"edited_time,omitempty"`
	Deleted    bool            `json:"deleted,omitempty"`
	Reactions  json.RawMessage `json:"reactions,omitempty"`
	// File is a file record's upload, with fresh URLs; nil for another
	// kind, or once the file is gone (the message deleted meanwhile).
	File *FileRecord `json:"file,omitempty"`
}

// richOf returns m's richFields, its file's record taken from links
// (Files.Links).
func richOf(m *models.Message, links map[int64]*FileRecord) richFields {
	r := richFields{Kind: m.Kind.String(), RefID: m.RefID, ReplyTo: m.ReplyTo, EditedTime: m.EditedAt, Deleted: m.Deleted}
	if m.FileID != 0 {
		r.File = links[m.FileID]
	}
	if m.Reactions != nil {
		r.Reactions = json.RawMessage(*m.Reactions)
	}
	if m.Kind == models.KindReaction && m.Body != "" {
		on := m.Body[0] == '+'
		r.Emoji, r.On = m.Body[1:], &on
	}
	return r
}

// updateResponse answers Edit, Delete and React: id is the update entry
// stored, 0 when nothing changed.
type updateResponse struct {
	ID    int64  `json:"id"`
	Msg   string `json:"msg"`
	Error int    `json:"error"`
}

type editRequest struct {
	ID wire.Int `json:"id" validate:"required"`
	// Exactly one of Data and Enc, as the message was sent (see
	// models.Store.EditMessage).
	Data string          `json:"data"`
	Enc  json.RawMessage `json:"enc"`
}

// Edit serves /Message/Edit: the sender replaces a message's text,
// within EditWindow of sending it.
func (h *Messages) Edit() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req editRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		if utf8.RuneCountInString(req.Data) > h.cfg.MaxChars {
			return apierr.Invalid("invalid data: max length %d characters", h.cfg.MaxChars)
		}
		body, enc, err := h.sendBody(&sendRequest{Data: req.Data, Enc: req.Enc})
		if err != nil {
			return err
		}
		u := h.update(c, int64(req.ID))
		if err := h.beforeEdit(c.UserContext(), u, body, enc); err != nil {
			return err
		}
		done, err := h.cfg.Updates.EditMessage(c.UserContext(), u, body, enc, h.cfg.EditWindow)
		return h.updated(c, done, err)
	}
}

// beforeEdit asks the host's BeforeSend about an edit's new text, as a
// Send's, when the message is the caller's (any other edit the store
// refuses anyway). Its deadline is a query's, as a Send's is.
func (h *Messages) beforeEdit(ctx context.Context, u models.Update, body string, enc bool) error {
	if h.cfg.BeforeSend == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Store.QueryTimeout())
	defer cancel()
	m, err := h.cfg.Updates.MessageHead(ctx, u.ID)
	if err != nil || m.FromUID != u.Actor || m.Kind.IsUpdate() {
		return nil // the edit's own transaction says what is wrong
	}
	return h.cfg.BeforeSend(ctx, events.Outgoing{From: u.Actor, To: m.ToUID, GID: m.GID, Body: body, Encrypted: enc, EditOf: u.ID})
}

type deleteRequest struct {
	ID wire.Int `json:"id" validate:"required"`
}

// Delete serves /Message/Delete: a message is deleted for everyone, its
// text erased.
func (h *Messages) Delete() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req deleteRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		done, err := h.cfg.Updates.DeleteMessage(c.UserContext(), h.update(c, int64(req.ID)))
		if err == nil && done.Doomed != 0 && h.cfg.Files != nil {
			h.eraseDoomed(c.UserContext(), done.Doomed)
		}
		return h.updated(c, done, err)
	}
}

// eraseDoomed erases the file a Delete doomed now, not at the next
// sweep, and only that file: a Delete does not pay for, nor touch, any
// other doomed file. One that fails here stays doomed for the sweep to
// erase, and the Delete, committed, still succeeds.
func (h *Messages) eraseDoomed(ctx context.Context, id int64) {
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Store.QueryTimeout())
	defer cancel()
	if err := h.cfg.Files.EraseFile(ctx, id); err != nil {
		h.cfg.Logger.WarnContext(ctx, "erase a deleted message's file", "file_id", id, "error", err.Error())
	}
}

type reactRequest struct {
	ID    wire.Int  `json:"id" validate:"required"`
	Emoji string    `json:"emoji" validate:"required"`
	On    *wire.Int `json:"on" validate:"required,max=1"`
}

// React serves /Message/React: an emoji put on a message, or taken off.
func (h *Messages) React() fiber.Handler {
	return func(c *fiber.Ctx) error {
		var req reactRequest
		if err := h.cfg.Decoder.Decode(c, &req); err != nil {
			return err
		}
		// Taking one off takes any a reaction may hold: one put on under
		// an earlier, looser rule must not stay for good.
		if on := *req.On == 1; on && !oneEmoji(req.Emoji) || !on && !storedEmoji(req.Emoji) {
			return apierr.Invalid("invalid emoji: one emoji of at most %d bytes", maxEmojiBytes)
		}
		u := h.update(c, int64(req.ID))
		done, err := h.cfg.Updates.ReactMessage(c.UserContext(), u, req.Emoji, *req.On == 1)
		return h.updated(c, done, err)
	}
}

// update names the caller's change to message id.
func (h *Messages) update(c *fiber.Ctx, id int64) models.Update {
	return models.Update{Actor: middleware.SessionFrom(c).UID, ID: id, Now: h.cfg.Now().Unix(), ContactsOnly: !h.cfg.AllowStrangers}
}

// updated answers an update once it committed, after waking the users
// its entry goes to and telling the host, as Send does for a message.
func (h *Messages) updated(c *fiber.Ctx, done models.Updated, err error) error {
	if err != nil {
		return err
	}
	e := done.Entry
	if e == nil {
		return c.JSON(updateResponse{Msg: "success"})
	}
	ctx := c.UserContext()
	for _, uid := range done.Wake {
		if err := h.cfg.Notifier.Publish(ctx, uid); err != nil {
			h.cfg.Logger.WarnContext(ctx, "wake long polls", "uid", uid, "error", err.Error())
		}
	}
	ev := events.MessageUpdated{ID: e.ID, RefID: e.RefID, What: e.Kind.String(), By: e.FromUID, To: e.ToUID, GID: e.GID, Body: e.Body, Encrypted: e.Enc, Time: e.CreatedAt}
	if e.Kind == models.KindReaction {
		r := richOf(e, nil)
		ev.Body, ev.On = r.Emoji, *r.On
	}
	h.cfg.Events.Emit(ctx, ev)
	return c.JSON(updateResponse{ID: e.ID, Msg: "success"})
}

// maxEmojiBytes bounds a reaction's emoji (API.md §13).
const maxEmojiBytes = 32

// oneEmoji reports whether s is one emoji of at most maxEmojiBytes: a
// flag (two regional indicators), a keycap (0-9, # or * with U+20E3), or
// pictographs (Unicode's Extended_Pictographic) joined by ZWJ, each with
// at most one variation selector and one skin tone, or a subdivision
// flag's tags. It keeps text (letters, digits, spaces, controls, math
// and other symbols that are no emoji) and several emoji in one out of
// reactions.
func oneEmoji(s string) bool {
	if s == "" || len(s) > maxEmojiBytes || !utf8.ValidString(s) {
		return false
	}
	if s[0] < utf8.RuneSelf {
		return keycap(s)
	}
	rs := []rune(s)
	if regionalIndicator(rs[0]) {
		return len(rs) == 2 && regionalIndicator(rs[1])
	}
	for i := 0; ; {
		n := emojiElement(rs[i:])
		if n == 0 {
			return false
		}
		if i += n; i == len(rs) {
			return true
		}
		// Only a ZWJ and another pictograph may follow.
		if rs[i] != 0x200D || i+1 == len(rs) {
			return false
		}
		i++
	}
}

// emojiElement returns how many runes of rs make one pictograph with
// what may modify it, 0 if rs does not start with a pictograph.
func emojiElement(rs []rune) int {
	if !pictograph(rs[0]) {
		return 0
	}
	i := 1
	if rs[0] == 0x1F3F4 && i < len(rs) && rs[i] >= 0xE0020 && rs[i] <= 0xE007E {
		// A subdivision flag: the black flag, tags, and CANCEL TAG.
		for i < len(rs) && rs[i] >= 0xE0020 && rs[i] <= 0xE007E {
			i++
		}
		if i < len(rs) && rs[i] == 0xE007F {
			return i + 1
		}
		return 0
	}
	if i < len(rs) && (rs[i] == 0xFE0E || rs[i] == 0xFE0F) {
		i++
	}
	if i < len(rs) && rs[i] >= 0x1F3FB && rs[i] <= 0x1F3FF { // skin tones
		i++
	}
	return i
}

// regionalIndicator reports whether r is one of the letters two of
// which make a flag.
func regionalIndicator(r rune) bool { return r >= 0x1F1E6 && r <= 0x1F1FF }

// pictograph reports whether r is Extended_Pictographic.
func pictograph(r rune) bool {
	lo, hi := 0, len(extendedPictographic)
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		switch rg := extendedPictographic[m]; {
		case r < rg[0]:
			hi = m
		case r > rg[1]:
			lo = m + 1
		default:
			return true
		}
	}
	return false
}

// storedEmoji reports whether s may be a reaction already stored: text of
// at most maxEmojiBytes, whatever it is.
func storedEmoji(s string) bool {
	return s != "" && len(s) <= maxEmojiBytes && utf8.ValidString(s)
}

// keycap reports whether s is a keycap emoji: 0-9, # or *, an optional
// U+FE0F, and U+20E3.
func keycap(s string) bool {
	c := s[0]
	if !(c >= '0' && c <= '9' || c == '#' || c == '*') {
		return false
	}
	rest := s[1:]
	return rest == "\u20e3" || rest == "\ufe0f\u20e3"
}
