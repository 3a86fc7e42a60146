package client_test

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/gofiber/fiber/v2"
)

// TestFilesSDK: Upload streams a file with its credentials as form
// fields, SendFile sends it, the recipient's Recv, History and stream
// carry it with URLs OpenFile reads; a file_id not mine is CodeInvalid.
func TestFilesSDK(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		_, newClient := live(t, db, chattest.Options{App: func(app *fiber.App) {
			app.Server().StreamRequestBody = true
			app.Server().DisablePreParseMultipartForm = true
		}})
		ctx := context.Background()
		alice, bob := newClient(), newClient()
		user(t, alice, "alice")
		bobUID := user(t, bob, "bob")
		befriend(t, alice, bob)

		got := newCollector(2)
		done := make(chan error, 1)
		sctx, stop := context.WithCancel(ctx)
		defer func() { stop(); <-done }()
		go func() { done <- bob.Listen(sctx, 0, got.handle) }()

		doc := bytes.Repeat([]byte("0123456789"), 50000)
		f := must(alice.Upload(ctx, "notes.txt", bytes.NewReader(doc)))(t)
		if f.FileID == 0 || f.Size != int64(len(doc)) || f.ThumbURL != "" {
			t.Fatalf("Upload: %+v", f)
		}
		img := must(alice.Upload(ctx, "dot.png", bytes.NewReader(pngBytes(t))))(t)
		if img.ThumbURL == "" || img.Mime != "image/png" {
			t.Fatalf("Upload of an image: %+v", img)
		}
		must(alice.SendFile(ctx, bobUID, f, "the notes"))(t)
		must(alice.SendFile(ctx, bobUID, img, ""))(t)
		_, err := bob.SendFile(ctx, alice.Session().UID, f, "")
		chattest.ExpectErr(t, err, 400, client.CodeInvalid)

		ms := got.wait(t, 10*time.Second)
		if ms[0].Kind != "file" || ms[0].File == nil || ms[0].Message != "the notes" || ms[1].File.ThumbURL == "" {
			t.Fatalf("streamed %+v", ms)
		}
		r := must(bob.OpenFile(ctx, ms[0].File.URL))(t)
		body, err := io.ReadAll(r)
		_ = r.Close()
		if err != nil || !bytes.Equal(body, doc) {
			t.Fatalf("OpenFile: %d bytes, %v", len(body), err)
		}
		page := must(alice.History(ctx, client.HistoryRequest{With: bobUID}))(t)
		if len(page.Messages) != 2 || page.Messages[1].File == nil || page.Messages[1].File.Name != "notes.txt" {
			t.Fatalf("History %+v", page.Messages)
		}
		_, err = bob.OpenFile(ctx, ms[0].File.URL+"0")
		chattest.ExpectErr(t, err, 403, client.CodeForbidden)
	})
}
