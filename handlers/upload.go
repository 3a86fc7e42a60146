package handlers

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/fiberchat/fiberchat/apierr"
	"github.com/fiberchat/fiberchat/internal/avatar"
	"github.com/fiberchat/fiberchat/internal/wire"
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/fiberchat/fiberchat/models"
	"github.com/gofiber/fiber/v2"
)

// uploadPart is the file part of an upload, as UploadForm found it.
type uploadPart struct {
	r           io.Reader
	name, ctype string
}

type uploadPartKey struct{}

// maxFormFields bounds the fields (credentials) a streamed upload may
// send before its file part, and maxFormBytes everything it sends before
// the file's contents: the fields, their names and headers, the file
// part's own head. Both are read before the session is checked.
const (
	maxFormFields = 16 << 10
	maxFormBytes  = 64 << 10
)

// errFormPastLimit is formLimit's: more than maxFormBytes came before
// the file part's contents.
var errFormPastLimit = errors.New("form before the file past its limit")

// formLimit reads the body, at most maxFormBytes of it until lifted: the
// multipart reader would otherwise take up to 10 MiB of headers a part,
// any number of parts, before anyone is known to be logged in. What it
// reads ahead of the file part's head (its buffer) counts too, which the
// limit leaves room for.
type formLimit struct {
	r      io.Reader
	left   int64
	lifted bool
}

func (l *formLimit) Read(p []byte) (int, error) {
	if l.lifted {
		return l.r.Read(p)
	}
	if l.left <= 0 {
		return 0, errFormPastLimit
	}
	if int64(len(p)) > l.left {
		p = p[:l.left]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	return n, err
}

var errFormTooLarge = apierr.TooLarge("form fields too large")

var errNoFilePart = apierr.Invalid("invalid file: required (multipart field \"file\")")

// UploadForm reads a streamed upload (fasthttp's StreamRequestBody) up
// to its file part: the fields before it become the request's body
// fields, so the session gate finds credentials sent there, and the part
// is left for Upload to stream. On a host that buffers bodies it does
// nothing: Upload then reads the parsed form. After the route it reads
// what is left past the file part and, when that is all, marks the body
// read to its end (BodyRead); a route that finds it unmarked must close
// the connection, as fasthttp 1.51 would read the rest of the body as
// the next request.
func UploadForm() fiber.Handler {
	return func(c *fiber.Ctx) error {
		if !c.Request().IsBodyStream() {
			return c.Next()
		}
		_, params, err := mime.ParseMediaType(c.Get(fiber.HeaderContentType))
		if err != nil || params["boundary"] == "" {
			return apierr.Invalid("malformed body: not a multipart form")
		}
		body := &formLimit{r: c.Context().RequestBodyStream(), left: maxFormBytes}
		mr := multipart.NewReader(body, params["boundary"])
		fields := map[string]json.RawMessage{}
		part, err := formUntilFile(mr, fields)
		wire.SetFields(c, fields)
		if err != nil {
			return err
		}
		body.lifted = true
		if part != nil {
			c.Locals(uploadPartKey{}, &uploadPart{r: part, name: part.FileName(), ctype: part.Header.Get(fiber.HeaderContentType)})
		}
		err = c.Next()
		if err == nil && part != nil && drained(c, mr) {
			c.Locals(bodyReadKey{}, true)
		}
		return err
	}
}

type bodyReadKey struct{}

// BodyRead reports whether UploadForm read a streamed body to its end.
func BodyRead(c *fiber.Ctx) bool {
	done, _ := c.Locals(bodyReadKey{}).(bool)
	return done
}

// drained reads what is left of a streamed upload after its file part:
// the closing boundary and, for a chunked body, its last chunk. False
// when more than a little is left, which is then not read.
func drained(c *fiber.Ctx, mr *multipart.Reader) bool {
	if _, err := mr.NextPart(); !errors.Is(err, io.EOF) {
		return false
	}
	n, err := io.Copy(io.Discard, io.LimitReader(c.Context().RequestBodyStream(), 4<<10))
	return err == nil && n < 4<<10
}

// formUntilFile reads mr's parts into fields up to the part named file,
// which it returns (nil when there is none).
func formUntilFile(mr *multipart.Reader, fields map[string]json.RawMessage) (*multipart.Part, error) {
	left := int64(maxFormFields)
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		if errors.Is(err, errFormPastLimit) {
			return nil, errFormTooLarge
		}
		if err != nil {
			return nil, apierr.Invalid("malformed body: invalid multipart form")
		}
		if p.FormName() == "file" {
			return p, nil
		}
		v, err := io.ReadAll(io.LimitReader(p, left+1))
		if errors.Is(err, errFormPastLimit) {
			return nil, errFormTooLarge
		}
		if err != nil {
			return nil, apierr.Invalid("malformed body: invalid multipart form")
		}
		if left -= int64(len(v)); left < 0 {
			return nil, errFormTooLarge
		}
		wire.FormValue(fields, p.FormName(), string(v))
	}
}

// filePart returns the upload's file: the part UploadForm left, or, on a
// host that buffers bodies, the parsed form's.
func filePart(c *fiber.Ctx) (*uploadPart, func(), error) {
	if p, ok := c.Locals(uploadPartKey{}).(*uploadPart); ok {
		return p, func() {}, nil
	}
	if c.Request().IsBodyStream() {
		return nil, nil, errNoFilePart
	}
	fh, err := c.FormFile("file")
	if err != nil {
		return nil, nil, errNoFilePart
	}
	f, err := fh.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("open upload: %w", err)
	}
	return &uploadPart{r: f, name: fh.Filename, ctype: fh.Header.Get(fiber.HeaderContentType)}, func() { _ = f.Close() }, nil
}

// Upload serves /Message/Upload (API.md §13): the file is streamed into
// the file store, never held whole, unless it is an image (sniffed from
// its first bytes), which is read (within MaxBytes) to be decoded and
// re-encoded with a thumbnail. An image the decoder refuses or that is
// past the decode limits is kept as a file, as any other.
func (h *Files) Upload() fiber.Handler {
	return func(c *fiber.Ctx) error {
		p, done, err := filePart(c)
		if err != nil {
			return err
		}
		defer done()
		ctx := c.UserContext()
		uid := middleware.SessionFrom(c).UID
		if err := h.startUpload(ctx, uid); err != nil {
			return err
		}
		defer h.endUpload(uid)
		used, err := h.cfg.Rows.FileBytes(ctx, uid)
		if err != nil {
			return err
		}
		room := min(h.cfg.MaxBytes, h.cfg.Quota-used)
		if room <= 0 {
			return errQuota
		}
		f := &models.File{UID: uid, Name: fileName(p.name), CreatedAt: h.cfg.Now().Unix()}
		if err := h.store(ctx, f, bufio.NewReaderSize(p.r, 512), room); err != nil {
			return err
		}
		if err := h.cfg.Rows.CreateFile(ctx, f); err != nil {
			h.deleteBlobs(f)
			return err
		}
		rec, err := h.Record(ctx, f)
		if err != nil {
			return err
		}
		return c.JSON(uploadResponse{FileRecord: rec, Msg: "success"})
	}
}

var errQuota = apierr.TooLarge("file quota exceeded")

// maxUploadsAtOnce bounds a user's uploads under way in one process; more
// wait for their turn, their file not yet read. The quota is checked
// against the files stored when each starts, so uploads racing pass it
// by one file each but the first, and each holds up to MaxFileBytes in
// memory while an image is decoded.
const maxUploadsAtOnce = 2

// uploadTurns is one user's turns to upload (a slot of the channel each)
// and how many uploads hold or wait for one.
type uploadTurns struct {
	turns chan struct{}
	users int
}

// startUpload waits for one of uid's turns to upload, or for ctx to end.
func (h *Files) startUpload(ctx context.Context, uid int64) error {
	h.mu.Lock()
	u := h.uploading[uid]
	if u == nil {
		u = &uploadTurns{turns: make(chan struct{}, maxUploadsAtOnce)}
		h.uploading[uid] = u
	}
	u.users++
	h.mu.Unlock()
	select {
	case u.turns <- struct{}{}:
		return nil
	case <-ctx.Done():
		h.leave(uid, u)
		return ctx.Err()
	}
}

// endUpload gives back the turn startUpload took.
func (h *Files) endUpload(uid int64) {
	h.mu.Lock()
	u := h.uploading[uid]
	h.mu.Unlock()
	<-u.turns
	h.leave(uid, u)
}

// leave drops an upload from u's count, and u once none is left.
func (h *Files) leave(uid int64, u *uploadTurns) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if u.users--; u.users == 0 {
		delete(h.uploading, uid)
	}
}

type uploadResponse struct {
	*FileRecord
	Error int    `json:"error"`
	Msg   string `json:"msg"`
}

// store puts the upload's contents (and thumbnail) in the file store and
// fills f's keys, type and sizes. room is what the file may take.
func (h *Files) store(ctx context.Context, f *models.File, r *bufio.Reader, room int64) error {
	head, _ := r.Peek(512)
	if len(head) == 0 {
		return apierr.Invalid("invalid file: empty")
	}
	lim := &limited{r: r, left: room}
	if avatar.Sniff(head) != "" {
		data, err := io.ReadAll(lim)
		if err != nil {
			return h.tooLarge(err, room)
		}
		stored, err := h.storeImage(ctx, f, data)
		if stored || err != nil {
			return err
		}
		r = bufio.NewReader(bytes.NewReader(data))
		lim = &limited{r: r, left: room}
		// It starts as an image but was not decoded (it does not decode,
		// or is past the decode bounds): kept and served as a plain file,
		// it must not be labelled as what a client would show as one.
		head = nil
	}
	f.Mime = "application/octet-stream"
	if head != nil {
		f.Mime = http.DetectContentType(head)
	}
	key, err := blobKey()
	if err != nil {
		return err
	}
	n, err := h.cfg.Blobs.Put(ctx, key, lim)
	if err != nil {
		return h.tooLarge(err, room)
	}
	f.BlobKey, f.Size = key, n
	return nil
}

// tooLarge turns limited's error into the contract's 413, naming the
// quota when that was the smaller bound.
func (h *Files) tooLarge(err error, room int64) error {
	if !errors.Is(err, errPastLimit) {
		return err
	}
	if room < h.cfg.MaxBytes {
		return errQuota
	}
	return apierr.TooLarge("file too large")
}

// storeImage re-encodes an image and stores it with its thumbnail; false
// (and no error) when the image is to be kept as a plain file instead.
func (h *Files) storeImage(ctx context.Context, f *models.File, data []byte) (bool, error) {
	wait, cancel := context.WithTimeout(ctx, h.cfg.DecodeWait)
	full, thumb, err := avatar.Reencode(wait, data, h.cfg.Image, h.cfg.Decodes, ThumbSide)
	cancel()
	var ae *apierr.Error
	if errors.As(err, &ae) && (ae.Status == http.StatusUnsupportedMediaType || ae.Status == http.StatusRequestEntityTooLarge) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	fkey, err := blobKey()
	if err != nil {
		return false, err
	}
	tkey := fkey + ".t"
	if f.Size, err = h.cfg.Blobs.Put(ctx, fkey, bytes.NewReader(full.Data)); err != nil {
		return false, err
	}
	f.BlobKey = fkey
	if f.ThumbSize, err = h.cfg.Blobs.Put(ctx, tkey, bytes.NewReader(thumb.Data)); err != nil {
		h.deleteBlobs(f)
		return false, err
	}
	f.ThumbKey, f.Mime = tkey, full.ContentType
	if ext := "." + full.Ext; !strings.HasSuffix(strings.ToLower(f.Name), ext) {
		f.Name = strings.TrimSuffix(f.Name, path.Ext(f.Name)) + ext
	}
	return true, nil
}

// errPastLimit is limited's: the upload is larger than it may be.
var errPastLimit = errors.New("upload past its limit")

// limited reads r up to left bytes, and fails with errPastLimit if r
// holds more.
type limited struct {
	r    io.Reader
	left int64
}

func (l *limited) Read(p []byte) (int, error) {
	if l.left < 0 {
		return 0, errPastLimit
	}
	if int64(len(p)) > l.left+1 {
		p = p[:l.left+1]
	}
	n, err := l.r.Read(p)
	l.left -= int64(n)
	if l.left < 0 {
		return 0, errPastLimit
	}
	return n, err
}

// blobKey is a new random key for the file store.
func blobKey() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return hex.EncodeToString(b[:]), nil
}

// fileName keeps what a client may show of an uploaded file's name: its
// last path element, valid UTF-8 without control characters, at most 255
// bytes; "file" when nothing is left.
func fileName(name string) string {
	name = strings.ToValidUTF8(name, "")
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.TrimSpace(name))
	for len(name) > 255 {
		_, size := utf8.DecodeLastRuneInString(name)
		name = name[:len(name)-size]
	}
	if name == "" || name == "." || name == ".." {
		return "file"
	}
	return name
}

// deleteBlobs removes a file's contents, logging what fails: a blob left
// behind is an orphan, never a wrong answer.
func (h *Files) deleteBlobs(f *models.File) {
	ctx := context.Background()
	for _, key := range []string{f.BlobKey, f.ThumbKey} {
		if key == "" {
			continue
		}
		if err := h.cfg.Blobs.Delete(ctx, key); err != nil {
			h.cfg.Logger.Warn("delete file contents", "file_id", f.ID, "error", err.Error())
		}
	}
}

// DeleteFilesOf erases the files of the messages ids carry, contents and
// rows, at once: what deleting a message does to its file (API.md §13).
func (h *Files) DeleteFilesOf(ctx context.Context, messageIDs []int64) error {
	fs, err := h.cfg.Rows.DoomFilesOf(ctx, messageIDs)
	if err != nil {
		return err
	}
	for i := range fs {
		fs[i].State = models.FileDoomed
		if err := h.erase(ctx, &fs[i]); err != nil {
			return err
		}
	}
	return nil
}

// Sweep erases up to limit files that are to go (uploads never sent for
// UnsentLifetime, files of purged messages) and reports how many it
// found, for the module's sweep.
func (h *Files) Sweep(ctx context.Context, limit int) (int64, error) {
	cutoff := h.cfg.Now().Add(-UnsentLifetime).Unix()
	fs, err := h.cfg.Rows.FilesToSweep(ctx, cutoff, limit)
	if err != nil {
		return 0, err
	}
	for i := range fs {
		if err := h.erase(ctx, &fs[i]); err != nil {
			return int64(i), err
		}
	}
	return int64(len(fs)), nil
}

// EraseFile erases the doomed file id, contents and row: what deleting
// its message does at once (API.md §13). It touches no other file; a
// file that is no longer there (erased meanwhile, by the sweep say) is
// not an error, and one it fails to erase stays doomed for the sweep.
func (h *Files) EraseFile(ctx context.Context, id int64) error {
	f, err := h.cfg.Rows.DoomedFile(ctx, id)
	if errors.Is(err, models.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return h.erase(ctx, f)
}

// erase deletes a file's contents, then its row: a failure in between
// leaves the row, for the next sweep to try again.
func (h *Files) erase(ctx context.Context, f *models.File) error {
	for _, key := range []string{f.BlobKey, f.ThumbKey} {
		if key == "" {
			continue
		}
		if err := h.cfg.Blobs.Delete(ctx, key); err != nil {
			return err
		}
	}
	return h.cfg.Rows.DeleteFileRow(ctx, f)
}
