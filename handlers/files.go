package handlers

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/filestore"
	"github.com/fiberchat/fiberchat/internal/avatar"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// FileRows is what the files of API.md §13 need from the database.
type FileRows interface {
	CreateFile(ctx context.Context, f *models.File) error
	FileByID(ctx context.Context, id int64) (*models.File, error)
	FilesByID(ctx context.Context, ids []int64) (map[int64]models.File, error)
	FileBytes(ctx context.Context, uid int64) (int64, error)
	DoomFilesOf(ctx context.Context, messageIDs []int64) ([]models.File, error)
	FilesToSweep(ctx context.Context, cutoff int64, limit int) ([]models.File, error)
	DoomedFile(ctx context.Context, id int64) (*models.File, error)
	DeleteFileRow(ctx context.Context, f *models.File) error
}

// FilesConfig carries the files' dependencies and limits; the module
// fills every field from its Config, which owns the defaults.
type FilesConfig struct {
	Rows  FileRows
	Blobs filestore.Store
	// Key returns the key file URLs are signed with, which every
	// instance must share (the module keeps it in the database); it is
	// asked until it answers, then kept.
	Key func(ctx context.Context) ([]byte, error)
	// URLLifetime is how long a URL handed out stays good (at least).
	URLLifetime time.Duration
	// Base returns what file URLs start with: PublicURL or the mount
	// prefix, without the trailing slash.
	Base func() string
	// MaxBytes bounds one file; Quota what one user's files take.
	MaxBytes, Quota int64
	// Image bounds decoding (its MaxBytes is MaxBytes); Decodes is the
	// module's decode semaphore, shared with avatars; DecodeWait how long
	// an upload waits for it.
	Image      avatar.Limits
	Decodes    *semaphore.Weighted
	DecodeWait time.Duration
	Now        func() time.Time
	Logger     *slog.Logger
}

// Files serves uploads and downloads of message files (API.md §13), and
// turns the files messages carry into records with fresh URLs.
type Files struct {
	cfg FilesConfig
	key atomic.Pointer[[]byte]

	// uploading counts each user's uploads under way in this process
	// (see Upload).
	mu        sync.Mutex
	uploading map[int64]*uploadTurns
}

// NewFiles prepares the files' handlers.
func NewFiles(cfg FilesConfig) *Files { return &Files{cfg: cfg, uploading: map[int64]*uploadTurns{}} }

// signingKey returns the URL key, asking Key until it once answered.
func (h *Files) signingKey(ctx context.Context) ([]byte, error) {
	if k := h.key.Load(); k != nil {
		return *k, nil
	}
	k, err := h.cfg.Key(ctx)
	if err != nil {
		return nil, fmt.Errorf("file URL key: %w", err)
	}
	h.key.Store(&k)
	return k, nil
}

// ThumbSide is the longest side of a thumbnail (API.md §13).
const ThumbSide = 320

// UnsentLifetime is how long an upload no message has taken is kept.
const UnsentLifetime = 24 * time.Hour

// FileRecord is a file as records and Upload carry it.
type FileRecord struct {
	FileID   int64  `json:"file_id"`
	Name     string `json:"name"`
	Size     int64  `json:"size"`
	Mime     string `json:"mime"`
	URL      string `json:"url"`
	ThumbURL string `json:"thumb_url"`
}

// Record describes f with URLs good from now for at least URLLifetime.
func (h *Files) Record(ctx context.Context, f *models.File) (*FileRecord, error) {
	key, err := h.signingKey(ctx)
	if err != nil {
		return nil, err
	}
	r := &FileRecord{FileID: f.ID, Name: f.Name, Size: f.Size, Mime: f.Mime, URL: h.url(key, f.ID, "f")}
	if f.IsImage() {
		r.ThumbURL = h.url(key, f.ID, "t")
	}
	return r, nil
}

// Links returns the records of the files ms carry, by file id: one read
// when any message of the page has a file, none otherwise. A nil Files
// (a module without files) links nothing.
func (h *Files) Links(ctx context.Context, ms []models.Message) (map[int64]*FileRecord, error) {
	var ids []int64
	for i := range ms {
		if ms[i].FileID != 0 {
			ids = append(ids, ms[i].FileID)
		}
	}
	if h == nil || len(ids) == 0 {
		return nil, nil
	}
	fs, err := h.cfg.Rows.FilesByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]*FileRecord, len(fs))
	for id, f := range fs {
		if out[id], err = h.Record(ctx, &f); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// urlStep rounds expiries up, so that the URL of one file stays the same
// for a while and a browser's cache can serve it again.
const urlStep = 10 * time.Minute

// url is the signed URL of file id's variant ("f" the file, "t" its
// thumbnail), expiring at least URLLifetime from now.
func (h *Files) url(key []byte, id int64, variant string) string {
	exp := h.cfg.Now().Add(h.cfg.URLLifetime + urlStep).Truncate(urlStep).Unix()
	return fmt.Sprintf("%s/file/%d/%s?exp=%d&sig=%s", h.cfg.Base(), id, variant, exp, sign(key, id, variant, exp))
}

// sign is the URL's HMAC-SHA256 over what it grants, truncated to 128
// bits: the file, the variant and the expiry.
func sign(key []byte, id int64, variant string, exp int64) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "fiberchat file\x00%d\x00%s\x00%d", id, variant, exp)
	return hex.EncodeToString(mac.Sum(nil)[:16])
}

// errBadURL answers a file URL that is malformed, wrongly signed or
// expired, alike: which it was tells an attacker nothing useful.
var errBadURL = apierr.New(apierr.CodeForbidden, http.StatusForbidden, "access deny: invalid or expired file URL")

// checkURL returns the file id a URL names once its signature and
// expiry hold; the signature is compared in constant time.
func (h *Files) checkURL(c *fiber.Ctx) (int64, string, error) {
	id, err := strconv.ParseInt(c.Params("id"), 10, 64)
	variant := c.Params("variant")
	exp, experr := strconv.ParseInt(c.Query("exp"), 10, 64)
	if err != nil || experr != nil || id <= 0 || (variant != "f" && variant != "t") {
		return 0, "", errBadURL
	}
	key, err := h.signingKey(c.UserContext())
	if err != nil {
		return 0, "", err
	}
	want := sign(key, id, variant, exp)
	if !hmac.Equal([]byte(c.Query("sig")), []byte(want)) || h.cfg.Now().Unix() > exp {
		return 0, "", errBadURL
	}
	return id, variant, nil
}

// Serve serves GET /file/:id/:variant, a signed URL of Record. An image
// is the module's own re-encoding, served as such; anything else is sent
// as an attachment that no browser renders (nosniff, a sandboxing CSP),
// so a file cannot run script on the site's origin.
func (h *Files) Serve() fiber.Handler {
	return func(c *fiber.Ctx) error {
		id, variant, err := h.checkURL(c)
		if err != nil {
			return err
		}
		f, err := h.cfg.Rows.FileByID(c.UserContext(), id)
		if err != nil {
			return err
		}
		key, size, ctype := f.BlobKey, f.Size, f.Mime
		if variant == "t" {
			if !f.IsImage() {
				return models.ErrNotFound.WithMsg("no such file")
			}
			key, size = f.ThumbKey, f.ThumbSize
		}
		r, err := h.cfg.Blobs.Open(c.UserContext(), key)
		if errors.Is(err, filestore.ErrNotFound) {
			return models.ErrNotFound.WithMsg("no such file")
		}
		if err != nil {
			return err
		}
		c.Set(fiber.HeaderXContentTypeOptions, "nosniff")
		c.Set(fiber.HeaderContentSecurityPolicy, "default-src 'none'; sandbox")
		c.Set(fiber.HeaderCacheControl, "private, max-age=3600")
		if !f.IsImage() {
			ctype = "application/octet-stream"
			c.Set(fiber.HeaderContentDisposition, mime.FormatMediaType("attachment", map[string]string{"filename": f.Name}))
		}
		c.Set(fiber.HeaderContentType, ctype)
		// Streamed: fasthttp reads r as it writes, and closes it.
		c.Context().SetBodyStream(r, int(size))
		return nil
	}
}
