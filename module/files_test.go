package module_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/events"
	"github.com/fiberchat/fiberchat/filestore"
	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
)

// streaming makes a Live server's app stream bodies, as AppConfig does.
func streaming(app *fiber.App) {
	app.Server().StreamRequestBody = true
	app.Server().DisablePreParseMultipartForm = true
}

// uploadReq is a signed multipart upload of body as the part "file",
// with the user's credentials in headers.
func uploadReq(t testing.TB, l *chattest.Live, u chattest.User, name string, body io.Reader) *http.Request {
	t.Helper()
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		part, err := mw.CreateFormFile("file", name)
		if err == nil {
			_, err = io.Copy(part, body)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequest(http.MethodPost, l.URL("/Message/Upload"), pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("X-Uid", fmt.Sprint(u.UID))
	req.Header.Set("X-Access-Token", u.Token)
	return req
}

func uploadFile(t testing.TB, l *chattest.Live, u chattest.User, name string, data []byte) *chattest.Response {
	t.Helper()
	r, err := l.Send(uploadReq(t, l, u, name, bytes.NewReader(data)))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fetch GETs a file URL from the record on l.
func fetch(t testing.TB, l *chattest.Live, url string) (*http.Response, []byte) {
	t.Helper()
	resp, err := l.Client.Get("http://" + l.Addr + url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func testPNG(t testing.TB, w, h int) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := range m.Pix {
		m.Pix[i] = byte(i * 7)
	}
	m.Set(0, 0, color.NRGBA{255, 0, 0, 255})
	var b bytes.Buffer
	if err := png.Encode(&b, m); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func recordFile(t testing.TB, rec map[string]any) map[string]any {
	t.Helper()
	if rec["kind"] != "file" {
		t.Fatalf("record kind %v, want file: %v", rec["kind"], rec)
	}
	f, ok := rec["file"].(map[string]any)
	if !ok {
		t.Fatalf("file record without file: %v", rec)
	}
	return f
}

// TestFiles: a file and an image uploaded, sent and fetched by the
// recipient on the other instance, through real HTTP, with the headers
// that keep a file from running on the site; with bodies streamed and
// buffered alike.
func TestFiles(t *testing.T) {
	for _, mode := range []struct {
		name string
		app  func(*fiber.App)
	}{{"streamed", streaming}, {"buffered", nil}} {
		t.Run(mode.name, func(t *testing.T) {
			chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
				a := chattest.NewLive(t, db, chattest.Options{App: mode.app})
				b := a.LiveTwin(t, chattest.Options{App: mode.app})
				alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
				a.Befriend(t, alice, bob)

				doc := []byte("<html><script>alert(1)</script></html>")
				up := uploadFile(t, a, alice, "../../evil.html", doc)
				chattest.Expect(t, up, 200, 0)
				if up.Str("name") != "evil.html" || up.Int("size") != int64(len(doc)) || up.Str("thumb_url") != "" {
					t.Fatalf("upload answer %s", up.Raw)
				}
				img := uploadFile(t, a, alice, "photo.webp", testPNG(t, 1000, 500))
				chattest.Expect(t, img, 200, 0)
				if img.Str("mime") != "image/png" || img.Str("thumb_url") == "" || img.Str("name") != "photo.png" {
					t.Fatalf("image answer %s", img.Raw)
				}
				// An image cut short is kept as a plain file, and labelled one.
				cut := uploadFile(t, a, alice, "cut.png", testPNG(t, 100, 100)[:100])
				chattest.Expect(t, cut, 200, 0)
				if cut.Str("mime") != "application/octet-stream" || cut.Str("thumb_url") != "" || cut.Int("size") != 100 {
					t.Fatalf("answer for an image cut short %s", cut.Raw)
				}

				for _, id := range []int64{up.Int("file_id"), img.Int("file_id")} {
					r := a.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": id, "data": "look"}))
					chattest.Expect(t, r, 200, 0)
				}
				// Not twice, and not bob's to send.
				r := a.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id")}))
				chattest.Expect(t, r, 400, 1001)
				if !strings.Contains(r.Str("msg"), "file_id") {
					t.Fatalf("msg does not name file_id: %s", r.Raw)
				}
				other := uploadFile(t, a, alice, "x.txt", []byte("mine"))
				r = a.Post(t, "/Message/Send", bob.Creds(map[string]any{"uid_to": alice.UID, "file_id": other.Int("file_id")}))
				chattest.Expect(t, r, 400, 1001)

				recv := b.Post(t, "/Message/Recv", bob.Creds(map[string]any{"last_id": 0}))
				chattest.Expect(t, recv, 200, 0)
				data := recv.Body["data"].([]any)
				if len(data) != 2 {
					t.Fatalf("recv %s", recv.Raw)
				}
				f := recordFile(t, data[0].(map[string]any))
				resp, got := fetch(t, b, f["url"].(string))
				if resp.StatusCode != 200 || !bytes.Equal(got, doc) {
					t.Fatalf("fetch on the other instance: %d %q", resp.StatusCode, got)
				}
				for h, want := range map[string]string{
					"Content-Type": "application/octet-stream", "X-Content-Type-Options": "nosniff",
					"Content-Security-Policy": "default-src 'none'; sandbox", "Content-Disposition": `attachment; filename=evil.html`,
				} {
					if got := resp.Header.Get(h); got != want {
						t.Errorf("%s: %q, want %q", h, got, want)
					}
				}
				fi := recordFile(t, data[1].(map[string]any))
				resp, thumb := fetch(t, b, fi["thumb_url"].(string))
				cfg, err := png.DecodeConfig(bytes.NewReader(thumb))
				if resp.StatusCode != 200 || err != nil || cfg.Width != 320 || cfg.Height != 160 {
					t.Fatalf("thumbnail: %d %v %dx%d", resp.StatusCode, err, cfg.Width, cfg.Height)
				}
				resp, full := fetch(t, b, fi["url"].(string))
				cfg, err = png.DecodeConfig(bytes.NewReader(full))
				if resp.StatusCode != 200 || err != nil || cfg.Width != 1000 || resp.Header.Get("Content-Type") != "image/png" {
					t.Fatalf("image: %d %v %dx%d %s", resp.StatusCode, err, cfg.Width, cfg.Height, resp.Header.Get("Content-Type"))
				}

				hist := a.Post(t, "/Message/History", alice.Creds(map[string]any{"uid_with": bob.UID}))
				chattest.Expect(t, hist, 200, 0)
				if hf := recordFile(t, hist.Body["data"].([]any)[0].(map[string]any)); hf["thumb_url"] == "" {
					t.Fatalf("history record %v", hf)
				}
			})
		})
	}
}

// TestFileBadInput: every bad upload or URL is the contract's error,
// never a 500.
func TestFileBadInput(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{App: streaming, Config: func(c *module.Config) {
			c.MaxFileBytes = 1000
			c.FileQuota = 1500
		}})
		alice := l.NewUser(t, "alice")

		r := l.Post(t, "/Message/Upload", alice.Creds(nil))
		chattest.Expect(t, r, 400, 1001)
		chattest.Expect(t, uploadFile(t, l, alice, "big", make([]byte, 1001)), 413, 1009)
		chattest.Expect(t, uploadFile(t, l, alice, "empty", nil), 400, 1001)
		ok := uploadFile(t, l, alice, "a", bytes.Repeat([]byte("a"), 1000))
		chattest.Expect(t, ok, 200, 0)
		chattest.Expect(t, uploadFile(t, l, alice, "b", bytes.Repeat([]byte("b"), 600)), 413, 1009) // quota
		// Fields before the file part are read before the session is
		// checked: past a bound (names and headers too), 413 at once. Over
		// a socket of the test's own: the server answers and closes with
		// the body unread, which an HTTP client still writing it may report
		// as a reset instead of the answer.
		var form bytes.Buffer
		mw := multipart.NewWriter(&form)
		for i := range 40 {
			if _, err := mw.CreateFormField(strings.Repeat("n", 64<<10) + fmt.Sprint(i)); err != nil {
				t.Fatal(err)
			}
		}
		_ = mw.Close()
		req, err := http.NewRequest(http.MethodPost, l.URL("/Message/Upload"), io.NopCloser(&form)) // no length: chunked
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", mw.FormDataContentType())
		conn := dialRaw(t, l).conn
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		go func() { _ = req.Write(conn) }() // cut short by the answer
		head, _ := io.ReadAll(conn)         // up to the close, or the reset after it
		if !bytes.HasPrefix(head, []byte("HTTP/1.1 413")) || !bytes.Contains(head, []byte(`"error":1009`)) {
			t.Fatalf("form fields past the bound: %q, want 413/1009", head)
		}

		req = uploadReq(t, l, alice, "c", strings.NewReader("c"))
		req.Header.Set("X-Access-Token", strings.Repeat("0", 32))
		r, err = l.Send(req)
		if err != nil {
			t.Fatal(err)
		}
		chattest.Expect(t, r, 401, 1004)

		url := ok.Str("url")
		for _, bad := range []string{
			strings.Replace(url, "sig=", "sig=0", 1),
			strings.Replace(url, "/f?", "/t?", 1),
			strings.Replace(url, "/file/", "/file/9", 1),
			"/file/x/f?exp=1&sig=00",
		} {
			resp, body := fetch(t, l, bad)
			if resp.StatusCode != 403 || !bytes.Contains(body, []byte(`"error":1008`)) {
				t.Errorf("%s: %d %s", bad, resp.StatusCode, body)
			}
		}
		if resp, _ := fetch(t, l, url); resp.StatusCode != 200 {
			t.Fatalf("good URL: %d", resp.StatusCode)
		}
		l.Clock.Advance(2 * time.Hour)
		if resp, _ := fetch(t, l, url); resp.StatusCode != 403 {
			t.Fatalf("expired URL: %d", resp.StatusCode)
		}

		// An upload never sent is gone a day later, contents and all.
		l.Clock.Advance(24 * time.Hour)
		l.Module.SweepNow(t.Context())
		if n := l.Count(t, "files", ""); n != 0 {
			t.Fatalf("%d file rows after the sweep", n)
		}
		if n := l.Count(t, "file_chunks", ""); n != 0 {
			t.Fatalf("%d chunks after the sweep", n)
		}
	})
}

// TestUploadsAtOnce: a user's uploads at once all go through, those past
// the turns (handlers' TestUploadTurns) once one ends: none is refused.
func TestUploadsAtOnce(t *testing.T) {
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{App: streaming})
	alice := l.NewUser(t, "alice")
	var held []*io.PipeWriter
	var done []chan *chattest.Response
	for i := range 4 {
		pr, pw := io.Pipe()
		req := uploadReq(t, l, alice, fmt.Sprintf("file%d", i), pr)
		answer := make(chan *chattest.Response, 1)
		go func() {
			r, err := l.Send(req)
			if err != nil {
				t.Error(err)
			}
			answer <- r
		}()
		if _, err := pw.Write([]byte("started")); err != nil {
			t.Fatal(err)
		}
		held, done = append(held, pw), append(done, answer)
	}
	// Which two have turns is the server's to say: every file ends
	// before any answer is awaited.
	for _, pw := range held {
		_ = pw.Close()
	}
	for _, answer := range done {
		chattest.Expect(t, <-answer, 200, 0)
	}
	if n := l.Count(t, "files", ""); n != 4 {
		t.Fatalf("%d files stored, want 4", n)
	}
}

// TestFileStreamsWithinBoundedHeap: a 25 MiB upload and its download
// never take the heap anywhere near 25 MiB.
func TestFileStreamsWithinBoundedHeap(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 50 MiB")
	}
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{App: streaming})
	alice := l.NewUser(t, "alice")
	const size = 25 << 20
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	peak := watchHeap(t)

	r, err := l.Send(uploadReq(t, l, alice, "big.bin", io.LimitReader(pattern{}, size)))
	if err != nil {
		t.Fatal(err)
	}
	chattest.Expect(t, r, 200, 0)
	resp, err := l.Client.Get("http://" + l.Addr + r.Str("url"))
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if err != nil || n != size {
		t.Fatalf("downloaded %d bytes (%v), want %d", n, err, size)
	}
	if grew := peak(); grew > 10<<20 {
		t.Fatalf("the heap grew by %d MiB while 25 MiB went up and down", grew>>20)
	}
}

// watchHeap samples the live heap until the returned func is called,
// which reports how far it rose above where it started.
func watchHeap(t *testing.T) func() uint64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, top := ms.HeapAlloc, ms.HeapAlloc
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		var ms runtime.MemStats
		for {
			select {
			case <-stop:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			top = max(top, ms.HeapAlloc)
		}
	}()
	return func() uint64 {
		close(stop)
		<-done
		return top - base
	}
}

// pattern is an endless reader of bytes that do not compress to nothing.
type pattern struct{}

func (pattern) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(i*31 + i>>8)
	}
	return len(p), nil
}

// TestFilePurgedWithItsMessage: the retention purge takes a message's
// file with it, contents and row.
func TestFilePurgedWithItsMessage(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{App: streaming})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		up := uploadFile(t, l, alice, "a.bin", bytes.Repeat([]byte("x"), 300<<10))
		chattest.Expect(t, up, 200, 0)
		chattest.Expect(t, l.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id")})), 200, 0)
		l.Clock.Advance(2 * 24 * time.Hour)
		l.Module.SweepNow(t.Context())
		if n := l.Count(t, "file_chunks", ""); n != 2 {
			t.Fatalf("%d chunks of a sent file after a sweep, want 2", n)
		}
		l.Clock.Advance(31 * 24 * time.Hour)
		l.Module.SweepNow(t.Context())
		if n := l.Count(t, "messages", ""); n != 0 {
			t.Fatalf("%d messages past retention", n)
		}
		if n, c := l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 0 || c != 0 {
			t.Fatalf("%d file rows and %d chunks of a purged message", n, c)
		}
	})
}

// TestStreamedBodyLeftNothingBehind: on a streaming server, what an
// upload leaves after its file part (the closing boundary, a chunked
// body's last chunk) is read before the connection's next request, and
// a body refused unread closes the connection: fasthttp would otherwise
// read the rest as a request of its own.
func TestStreamedBodyLeftNothingBehind(t *testing.T) {
	l := chattest.NewLive(t, chattest.OpenSQLite(t), chattest.Options{App: streaming})
	alice := l.NewUser(t, "alice")
	conn, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	body := "--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\nhello\r\n--b--\r\n"
	url := strings.TrimPrefix(l.URL("/Message/Upload"), "http://"+l.Addr)
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nX-Uid: %d\r\nX-Access-Token: %s\r\nContent-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n",
		url, alice.UID, alice.Token, len(body), body)
	fmt.Fprintf(conn, "GET /file/1/f?exp=1&sig=00 HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(conn)
	for i, want := range []int{200, 403} {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("answer %d: %v", i+1, err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != want || !bytes.HasPrefix(b, []byte("{")) {
			t.Fatalf("answer %d: %d %s, want %d in the envelope", i+1, resp.StatusCode, b, want)
		}
	}

	// A JSON body past its limit, refused before it is read: the answer
	// closes the connection.
	conn2, err := net.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close()
	_ = conn2.SetDeadline(time.Now().Add(20 * time.Second))
	url = strings.TrimPrefix(l.URL("/Message/Send"), "http://"+l.Addr)
	fmt.Fprintf(conn2, "POST %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", url, 2<<20, strings.Repeat(" ", 16<<10))
	resp, err := http.ReadResponse(bufio.NewReader(conn2), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 413 || !resp.Close {
		t.Fatalf("a body past the limit: %d, close %v; want 413 closing the connection", resp.StatusCode, resp.Close)
	}

	// An upload refused before its body is read (not signed, no file
	// part), and a body sent to a route that reads none: the same.
	for _, req := range []string{
		fmt.Sprintf("POST /Message/Upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
		fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nX-Uid: %d\r\nX-Access-Token: %s\r\nContent-Type: multipart/form-data; boundary=b\r\nContent-Length: 7\r\n\r\n--b--\r\n", strings.TrimPrefix(l.URL("/Message/Upload"), "http://"+l.Addr), alice.UID, alice.Token),
		fmt.Sprintf("POST /no/such/route HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n%s", len(body), body),
	} {
		c, err := net.Dial("tcp", l.Addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		fmt.Fprint(c, req)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		_ = c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode < 400 || resp.StatusCode >= 500 || !resp.Close {
			t.Errorf("%.40q: %d, close %v; want a 4xx closing the connection", req, resp.StatusCode, resp.Close)
		}
	}
}

// TestFileDeletedWithItsMessage: deleting a file message for everyone
// erases its file at once, contents and row, and its URL stops working;
// the record stays a deleted file record, without file or caption.
func TestFileDeletedWithItsMessage(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{App: streaming})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		up := uploadFile(t, l, alice, "a.bin", bytes.Repeat([]byte("secret file "), 30<<10))
		chattest.Expect(t, up, 200, 0)
		sent := l.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id"), "data": "a caption"}))
		chattest.Expect(t, sent, 200, 0)
		hist := l.Post(t, "/Message/History", bob.Creds(map[string]any{"uid_with": alice.UID}))
		url := recordFile(t, hist.Body["data"].([]any)[0].(map[string]any))["url"].(string)

		chattest.Expect(t, l.Post(t, "/Message/Delete", alice.Creds(map[string]any{"id": sent.Int("id")})), 200, 0)
		if n, c := l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 0 || c != 0 {
			t.Fatalf("%d file rows and %d chunks left of a deleted message", n, c)
		}
		if resp, _ := fetch(t, l, url); resp.StatusCode != 404 {
			t.Fatalf("the deleted file's URL answered %d, want 404", resp.StatusCode)
		}
		hist = l.Post(t, "/Message/History", bob.Creds(map[string]any{"uid_with": alice.UID}))
		rec := hist.Body["data"].([]any)[0].(map[string]any)
		if rec["kind"] != "file" || rec["deleted"] != true || rec["file"] != nil || rec["message"] != nil {
			t.Fatalf("the deleted file message reads %v", rec)
		}
	})
}

// TestFileDeleteErasesOnlyItsOwn: a Delete erases its message's file and
// no other file the sweep has to erase (here an upload never sent, a day
// old): that one waits for the sweep.
func TestFileDeleteErasesOnlyItsOwn(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{App: streaming})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		unsent := uploadFile(t, l, bob, "unsent.bin", bytes.Repeat([]byte("u"), 300<<10))
		chattest.Expect(t, unsent, 200, 0)
		l.Clock.Advance(2 * 24 * time.Hour)
		up := uploadFile(t, l, alice, "a.bin", []byte("to be deleted"))
		chattest.Expect(t, up, 200, 0)
		sent := l.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id")}))
		chattest.Expect(t, sent, 200, 0)

		chattest.Expect(t, l.Post(t, "/Message/Delete", alice.Creds(map[string]any{"id": sent.Int("id")})), 200, 0)
		if n, all, c := l.Count(t, "files", "id = ?", unsent.Int("file_id")), l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 1 || all != 1 || c != 2 {
			t.Fatalf("after the Delete: the unsent upload's row %d (want 1), %d rows (want 1), %d chunks (want its 2)", n, all, c)
		}
		l.Module.SweepNow(t.Context())
		if n, c := l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 0 || c != 0 {
			t.Fatalf("after the sweep: %d file rows and %d chunks, want none", n, c)
		}
	})
}

// failingDeletes is a file store whose Delete fails while fail is set.
type failingDeletes struct {
	filestore.Store
	fail atomic.Bool
}

func (f *failingDeletes) Delete(ctx context.Context, key string) error {
	if f.fail.Load() {
		return errors.New("file store down")
	}
	return f.Store.Delete(ctx, key)
}

// TestFileDeleteEraseFails: a Delete whose file cannot be erased at once
// still succeeds; the file stays doomed, out of every answer, and the
// sweep erases it once the store works again.
func TestFileDeleteEraseFails(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		blobs := &failingDeletes{Store: filestore.NewDB(db.Gorm, "chat_file_chunks", 5*time.Second)}
		l := chattest.NewLive(t, db, chattest.Options{App: streaming, Config: func(c *module.Config) { c.Files = blobs }})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		up := uploadFile(t, l, alice, "a.bin", []byte("to be deleted"))
		chattest.Expect(t, up, 200, 0)
		sent := l.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id")}))
		chattest.Expect(t, sent, 200, 0)

		blobs.fail.Store(true)
		chattest.Expect(t, l.Post(t, "/Message/Delete", alice.Creds(map[string]any{"id": sent.Int("id")})), 200, 0)
		if n := l.Count(t, "files", "state = 2"); n != 1 {
			t.Fatalf("%d doomed file rows after a failed erase, want 1", n)
		}
		blobs.fail.Store(false)
		l.Module.SweepNow(t.Context())
		if n, c := l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 0 || c != 0 {
			t.Fatalf("after the sweep: %d file rows and %d chunks, want none", n, c)
		}
	})
}

// TestFileOfDeletedGroup: the files of a group's messages go with the
// group when its last member leaves (its messages go then), at the
// sweep, as a deleted message's file does: sent files no message
// carries would stay for good, on their uploader's quota.
func TestFileOfDeletedGroup(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{App: streaming})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		gid := into[groupCreated](t, gcall(t, l.Server, alice, "/Group/create", map[string]any{"name": "g", "data": members(bob)}, 200, 0)).GID
		up := uploadFile(t, l, alice, "a.bin", bytes.Repeat([]byte("x"), 300<<10))
		chattest.Expect(t, up, 200, 0)
		chattest.Expect(t, l.Post(t, "/Message/Send", alice.Creds(map[string]any{"gid": gid, "file_id": up.Int("file_id")})), 200, 0)
		gcall(t, l.Server, bob, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		gcall(t, l.Server, alice, "/Group/IO/leave", map[string]any{"gid": gid}, 200, 0)
		if n := l.Count(t, "messages", ""); n != 0 {
			t.Fatalf("%d messages after the group went", n)
		}
		l.Module.SweepNow(t.Context())
		if n, c := l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 0 || c != 0 {
			t.Fatalf("after the sweep: %d file rows and %d chunks, want none", n, c)
		}
	})
}

// heldDeletes is a file store whose Delete waits, once hold is set,
// until release is closed, having said so on held.
type heldDeletes struct {
	filestore.Store
	hold          atomic.Bool
	held, release chan struct{}
	once          sync.Once
}

func (h *heldDeletes) Delete(ctx context.Context, key string) error {
	if h.hold.Load() {
		h.once.Do(func() { close(h.held) })
		<-h.release
	}
	return h.Store.Delete(ctx, key)
}

// TestFileSweepTakesUploadFirst: an upload the sweep is erasing is no
// longer one a Send can take. Once the sweep has read it, a Send naming
// it is 400/1001 naming file_id and stores nothing: sent, its message
// would carry a file whose contents the sweep then deletes.
func TestFileSweepTakesUploadFirst(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		blobs := &heldDeletes{Store: filestore.NewDB(db.Gorm, "chat_file_chunks", 5*time.Second),
			held: make(chan struct{}), release: make(chan struct{})}
		l := chattest.NewLive(t, db, chattest.Options{App: streaming, Config: func(c *module.Config) { c.Files = blobs }})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		up := uploadFile(t, l, alice, "late.bin", []byte("sent a day late"))
		chattest.Expect(t, up, 200, 0)
		l.Clock.Advance(2 * 24 * time.Hour)

		blobs.hold.Store(true)
		swept := make(chan struct{})
		go func() {
			defer close(swept)
			l.Module.SweepNow(context.Background())
		}()
		select {
		case <-blobs.held:
		case <-time.After(10 * time.Second):
			t.Fatal("the sweep did not come to the upload")
		}
		r := l.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id")}))
		close(blobs.release)
		<-swept
		chattest.Expect(t, r, 400, 1001)
		if !strings.Contains(r.Str("msg"), "file_id") {
			t.Fatalf("msg does not name file_id: %s", r.Raw)
		}
		if n, f, c := l.Count(t, "messages", ""), l.Count(t, "files", ""), l.Count(t, "file_chunks", ""); n != 0 || f != 0 || c != 0 {
			t.Fatalf("after the sweep: %d messages, %d file rows, %d chunks; want none", n, f, c)
		}
	})
}

// TestFilesOnS3: the module with Config.Files an S3 bucket (on a server
// the test starts: SeaweedFS given a weed binary, gofakes3 without):
// upload, send, fetch on another instance, and a file past the limit
// refused, nothing left stored.
func TestFilesOnS3(t *testing.T) {
	st := chattest.StartS3(t)
	opts := chattest.Options{App: streaming, Config: func(c *module.Config) { c.Files = st; c.MaxFileBytes = 8 << 20 }}
	a := chattest.NewLive(t, chattest.OpenSQLite(t), opts)
	b := a.LiveTwin(t, opts)
	alice, bob := a.NewUser(t, "alice"), a.NewUser(t, "bob")
	a.Befriend(t, alice, bob)
	data := bytes.Repeat([]byte("s3 "), 3<<20) // 9 MiB: two parts
	chattest.Expect(t, uploadFile(t, a, alice, "big", data), 413, 1009)
	data = data[:7<<20]
	up := uploadFile(t, a, alice, "doc.bin", data)
	chattest.Expect(t, up, 200, 0)
	chattest.Expect(t, a.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id")})), 200, 0)
	recv := b.Post(t, "/Message/Recv", bob.Creds(map[string]any{"last_id": 0}))
	f := recordFile(t, recv.Body["data"].([]any)[0].(map[string]any))
	resp, got := fetch(t, b, f["url"].(string))
	if resp.StatusCode != 200 || !bytes.Equal(got, data) {
		t.Fatalf("fetch from S3 on the other instance: %d, %d bytes", resp.StatusCode, len(got))
	}
}

// retryGate holds a Send's first try in BeforeSend until its retry has
// passed its client_msg_id lookup, then holds the retry until the first
// try has answered: the retry then finds the file taken by a message it
// did not see, as one sent after a lost answer can.
type retryGate struct {
	calls                     atomic.Int32
	firstIn, release, settled chan struct{}
}

func newRetryGate() *retryGate {
	return &retryGate{firstIn: make(chan struct{}), release: make(chan struct{}), settled: make(chan struct{})}
}

func (g *retryGate) beforeSend(ctx context.Context, _ events.Outgoing) error {
	wait := g.release
	switch g.calls.Add(1) {
	case 1:
		close(g.firstIn)
	case 2:
		close(g.release)
		wait = g.settled
	default:
		return nil
	}
	select {
	case <-wait:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestFileSendRetried: a Send with a file_id retried with the same
// client_msg_id is answered as any retry, with the first message's id and
// time, even when it finds the file already taken by that first try;
// one with another file_id too, and the stored message keeps its file.
func TestFileSendRetried(t *testing.T) {
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprint("group=", group), func(t *testing.T) {
			chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
				gate := newRetryGate()
				l := chattest.NewLive(t, db, chattest.Options{App: streaming, Config: func(c *module.Config) { c.BeforeSend = gate.beforeSend }})
				alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
				l.Befriend(t, alice, bob)
				to := map[string]any{"uid_to": bob.UID}
				if group {
					cr := l.Post(t, "/Group/create", alice.Creds(map[string]any{"name": "g", "data": []map[string]any{{"uid": bob.UID}}}))
					chattest.Expect(t, cr, 200, 0)
					to = map[string]any{"gid": cr.Int("gid")}
				}
				up := uploadFile(t, l, alice, "first.txt", []byte("first"))
				send := func(fileID int64) map[string]any {
					b := alice.Creds(map[string]any{"file_id": fileID, "client_msg_id": "k1"})
					for k, v := range to {
						b[k] = v
					}
					return b
				}
				first, retry := racedRetry(t, l, gate, send(up.Int("file_id")))
				chattest.Expect(t, first, 200, 0)
				chattest.Expect(t, retry, 200, 0)
				if retry.Int("id") != first.Int("id") || retry.Int("time") != first.Int("time") {
					t.Fatalf("retry answered %s, first %s", retry.Raw, first.Raw)
				}

				other := uploadFile(t, l, alice, "other.txt", []byte("other"))
				again := l.Post(t, "/Message/Send", send(other.Int("file_id")))
				chattest.Expect(t, again, 200, 0)
				if again.Int("id") != first.Int("id") {
					t.Fatalf("retry with another file_id answered %s, first %s", again.Raw, first.Raw)
				}
				if n := l.Count(t, "messages", "client_msg_id = ?", "k1"); n != 1 {
					t.Fatalf("%d messages stored under the key, want 1", n)
				}
				recv := l.Post(t, "/Message/Recv", bob.Creds(map[string]any{"last_id": 0}))
				data := recv.Body["data"].([]any)
				if f := recordFile(t, data[len(data)-1].(map[string]any)); f["name"] != "first.txt" {
					t.Fatalf("the stored message carries %v, want first.txt", f)
				}
				// The other upload was not taken: it can still be sent.
				chattest.Expect(t, l.Post(t, "/Message/Send", alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": other.Int("file_id")})), 200, 0)
			})
		})
	}
}

// racedRetry posts body as a Send twice through gate: the first try, and
// its retry arriving while the first is still on its way.
func racedRetry(t *testing.T, l *chattest.Live, gate *retryGate, body map[string]any) (first, retry *chattest.Response) {
	t.Helper()
	type answer struct {
		r   *chattest.Response
		err error
	}
	firstc := make(chan answer, 1)
	go func() {
		r, err := l.TryPost("/Message/Send", body)
		firstc <- answer{r, err}
	}()
	select {
	case <-gate.firstIn:
	case <-time.After(10 * time.Second):
		t.Fatal("the first try never reached BeforeSend")
	}
	retryc := make(chan answer, 1)
	go func() {
		r, err := l.TryPost("/Message/Send", body)
		retryc <- answer{r, err}
	}()
	a := <-firstc
	close(gate.settled)
	b := <-retryc
	if a.err != nil || b.err != nil {
		t.Fatalf("first: %v; retry: %v", a.err, b.err)
	}
	return a.r, b.r
}

// TestFileSendRetriedInFlight (MariaDB): a retry that comes while its
// first try is still being written (held here by a lock on the
// recipient's row, as a slow transaction would be) waits for that try and
// is answered as its replay, and the file is taken once, by the first.
func TestFileSendRetriedInFlight(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		if db.Name != "mysql" {
			t.Skip("holds a row lock: MariaDB only")
		}
		passed := make(chan struct{}, 2)
		l := chattest.NewLive(t, db, chattest.Options{App: streaming, Config: func(c *module.Config) {
			c.BeforeSend = func(context.Context, events.Outgoing) error { passed <- struct{}{}; return nil }
		}})
		alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
		l.Befriend(t, alice, bob)
		up := uploadFile(t, l, alice, "first.txt", []byte("first"))
		body := alice.Creds(map[string]any{"uid_to": bob.UID, "file_id": up.Int("file_id"), "client_msg_id": "k1"})

		hold := db.Gorm.Begin()
		t.Cleanup(func() { hold.Rollback() })
		var uid int64
		if err := hold.Raw("SELECT uid FROM chat_users WHERE uid = ? FOR UPDATE", bob.UID).Scan(&uid).Error; err != nil {
			t.Fatal(err)
		}
		// Both tries wait for the lock in turn, the retry past its lookup.
		firstc := trySend(l, body, passed)
		awaitLockWaits(t, db, 1)
		retryc := trySend(l, body, passed)
		awaitLockWaits(t, db, 2)
		hold.Rollback()
		first, retry := <-firstc, <-retryc
		chattest.Expect(t, first, 200, 0)
		chattest.Expect(t, retry, 200, 0)
		if retry.Int("id") != first.Int("id") || retry.Int("time") != first.Int("time") {
			t.Fatalf("retry answered %s, first %s", retry.Raw, first.Raw)
		}
		if n := l.Count(t, "messages", ""); n != 1 {
			t.Fatalf("%d messages stored, want 1", n)
		}
		if n := l.Count(t, "files", "state = 1"); n != 1 {
			t.Fatalf("%d files sent, want 1", n)
		}
	})
}

// awaitLockWaits waits until n statements of db's user are locking a
// user's row: the hold's is done, so they wait for its lock. (The
// processes of one's own user need no privilege to be seen.)
func awaitLockWaits(t *testing.T, db *chattest.DB, n int) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		var waits int
		if err := db.Gorm.Raw("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE '%chat_users%FOR UPDATE%' AND ID <> CONNECTION_ID()").Scan(&waits).Error; err != nil {
			t.Fatal(err)
		}
		if waits >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d transactions wait for a lock, want %d", waits, n)
		}
	}
}

// trySend posts body as a Send on a goroutine of its own and returns
// where its answer comes (a 599 when the request itself failed), once the
// Send is past BeforeSend (which sends on passed).
func trySend(l *chattest.Live, body map[string]any, passed <-chan struct{}) chan *chattest.Response {
	c := make(chan *chattest.Response, 1)
	go func() {
		r, err := l.TryPost("/Message/Send", body)
		if err != nil {
			r = &chattest.Response{Status: 599, Raw: []byte(err.Error())}
		}
		c <- r
	}()
	<-passed
	return c
}

// TestFileSendAmbiguousCommitKeepsFile (MariaDB): a Send of a file whose
// COMMIT committed but whose answer came too late (1:1: after the Send's
// deadline) or not at all (a group's) is answered 503, and its file
// stays taken: the stored message names it, so it must not go back to
// the uploads, to be swept or sent again.
func TestFileSendAmbiguousCommitKeepsFile(t *testing.T) {
	for _, group := range []bool{false, true} {
		t.Run(fmt.Sprint("group=", group), func(t *testing.T) {
			lossy := &lossyConnector{late: !group}
			const queryTimeout = time.Second
			l := chattest.NewLive(t, lossyDB(t, lossy, 0), chattest.Options{App: streaming, Config: func(c *module.Config) {
				c.AllowStrangers = true
				c.QueryTimeout = queryTimeout
			}})
			alice, bob := l.NewUser(t, "alice"), l.NewUser(t, "bob")
			up := uploadFile(t, l, alice, "a.txt", []byte("a"))
			chattest.Expect(t, up, 200, 0)
			fileID := up.Int("file_id")
			body := alice.Creds(map[string]any{"file_id": fileID, "uid_to": bob.UID})
			if group {
				cr := l.Post(t, "/Group/create", alice.Creds(map[string]any{"name": "g", "data": []map[string]any{{"uid": bob.UID}}}))
				chattest.Expect(t, cr, 200, 0)
				body = alice.Creds(map[string]any{"file_id": fileID, "gid": cr.Int("gid")})
			}

			lossy.armed.Store(true)
			start := time.Now()
			r := l.Post(t, "/Message/Send", body)
			chattest.Expect(t, r, 503, 1503)
			if took := time.Since(start); took > queryTimeout+time.Second {
				t.Fatalf("the Send answered after %v", took)
			}
			if lossy.lost.Load() != 1 {
				t.Fatalf("%d COMMITs lost their answer, want 1", lossy.lost.Load())
			}
			if n := l.Count(t, "messages", "file_id = ?", fileID); n != 1 {
				t.Fatalf("%d messages name the file, want 1 (its COMMIT committed)", n)
			}
			if n := l.Count(t, "files", "id = ? AND state = ?", fileID, models.FileSent); n != 1 {
				t.Fatal("the file of the stored message went back to the uploads")
			}
			// It is sent: naming it again is refused.
			chattest.Expect(t, l.Post(t, "/Message/Send", body), 400, 1001)
		})
	}
}
