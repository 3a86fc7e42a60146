package client

import (
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// File is a file as Upload answers and a message of kind "file" carries
// it (API.md §13). URL and ThumbURL are signed and expire (within about
// an hour by default); every answer that carries a file carries fresh
// ones. They are paths on the server unless it has a public URL set:
// OpenFile resolves either.
type File struct {
	FileID int64  `json:"file_id"`
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	Mime   string `json:"mime"`
	URL    string `json:"url"`
	// ThumbURL is an image's thumbnail (at most 320 px), empty for
	// other files.
	ThumbURL string `json:"thumb_url"`
}

// uploadTimeout bounds an upload that has no deadline of its own: a
// 25 MiB file over a slow link takes longer than a call.
const uploadTimeout = 10 * time.Minute

// Upload streams what r yields to the server as a file named name
// (/Message/Upload), never holding it whole, and returns the stored
// file, for SendFile. Images are re-encoded by the server (File.Mime
// says what they became); a file past the server's limit or the user's
// quota is an *Error with CodeTooLarge.
func (c *Client) Upload(ctx context.Context, name string, r io.Reader) (File, error) {
	const path = "/Message/Upload"
	s, err := c.session()
	if err != nil {
		return File{}, err
	}
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		// The credentials come first, as fields: a server that streams
		// the file reads them before it.
		_ = mw.WriteField("uid", strconv.FormatInt(s.UID, 10))
		_ = mw.WriteField("access_token", s.AccessToken)
		part, err := mw.CreateFormFile("file", name)
		if err == nil {
			_, err = io.Copy(part, r)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	defer pr.Close()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, uploadTimeout)
		defer cancel()
	}
	var out struct {
		envelope
		File
	}
	err = c.postReader(ctx, path, mw.FormDataContentType(), pr, 0, &out)
	return out.File, err
}

// SendFile sends an uploaded file to the user to (/Message/Send with
// file_id), with caption as its text (may be empty). A file_id that is
// not an upload of mine not sent yet is an *Error with CodeInvalid.
func (c *Client) SendFile(ctx context.Context, to int64, f File, caption string, opts ...SendOption) (Sent, error) {
	return c.sendMessage(ctx, sendBody{UIDTo: to, FileID: f.FileID, Data: caption}, opts)
}

// SendFileToGroup is SendFile to the group gid.
func (c *Client) SendFileToGroup(ctx context.Context, gid int64, f File, caption string, opts ...SendOption) (Sent, error) {
	return c.sendMessage(ctx, sendBody{GID: gid, FileID: f.FileID, Data: caption}, opts)
}

// OpenFile GETs a file URL of a File (URL or ThumbURL), resolved against
// the client's base URL when it is a path, and returns its body, which
// the caller closes. An expired or wrongly signed URL is an *Error with
// CodeForbidden.
func (c *Client) OpenFile(ctx context.Context, fileURL string) (io.ReadCloser, error) {
	ref, err := url.Parse(fileURL)
	if err != nil {
		return nil, fmt.Errorf("fiberchat file: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.ResolveReference(ref).String(), nil)
	if err != nil {
		return nil, fmt.Errorf("fiberchat file: %w", err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, transportError("file", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		raw, _ := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
		return nil, fmt.Errorf("fiberchat file: %w", envelopeError(resp, raw))
	}
	return resp.Body, nil
}
