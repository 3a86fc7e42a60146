package avatar

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
	"golang.org/x/sync/semaphore"
)

// Fixtures are built in code so that the repository holds no binary test
// files, which could not be reviewed and would themselves be untrusted input.

func testImage(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			m.Set(x, y, color.NRGBA{R: uint8(x * 7), G: uint8(y * 13), B: uint8(x ^ y), A: 255})
		}
	}
	return m
}

func pngBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, testImage(w, h)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func jpegBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := jpeg.Encode(&b, testImage(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gifBytes(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := gif.Encode(&b, testImage(w, h), nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// pngHeaderOnly is a PNG signature and a valid IHDR with no pixel data at
// all: if Sanitize tried to decode it, it would fail with 415, so a 413
// proves the dimensions were refused before decoding.
func pngHeaderOnly(w, h uint32) []byte { return pngHeader(w, h, 8) }

// pngHeader is pngHeaderOnly for an RGBA image of the given bit depth.
func pngHeader(w, h uint32, depth byte) []byte {
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:4], w)
	binary.BigEndian.PutUint32(ihdr[4:8], h)
	ihdr[8] = depth
	ihdr[9] = 6 // RGBA
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	_ = binary.Write(&b, binary.BigEndian, uint32(len(ihdr)))
	chunk := append([]byte("IHDR"), ihdr[:]...)
	b.Write(chunk)
	_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(chunk))
	return b.Bytes()
}

// gifScreen is a GIF header whose logical screen is w×h, with no frames.
func gifScreen(w, h uint16) []byte {
	b := []byte("GIF89a")
	b = binary.LittleEndian.AppendUint16(b, w)
	b = binary.LittleEndian.AppendUint16(b, h)
	return append(b, 0, 0, 0) // no global colour table, background, aspect
}

// withExif inserts an APP1 Exif segment, as cameras write one, right after
// the JPEG's SOI marker.
func withExif(t *testing.T, j []byte) []byte {
	t.Helper()
	payload := append([]byte("Exif\x00\x00"), []byte("MM\x00\x2aGPS 51.5N 0.1W secret-serial-1234")...)
	seg := []byte{0xff, 0xe1}
	seg = binary.BigEndian.AppendUint16(seg, uint16(len(payload)+2))
	seg = append(seg, payload...)
	out := append([]byte{}, j[:2]...)
	out = append(out, seg...)
	return append(out, j[2:]...)
}

// webp1x1 is the well-known smallest lossless WebP (a 1×1 transparent
// pixel), short enough to review byte by byte.
var webp1x1 = []byte{
	'R', 'I', 'F', 'F', 0x1a, 0x00, 0x00, 0x00, 'W', 'E', 'B', 'P',
	'V', 'P', '8', 'L', 0x0d, 0x00, 0x00, 0x00,
	0x2f, 0x00, 0x00, 0x00, 0x10, 0x07, 0x10, 0x11, 0x11, 0x88, 0x88, 0xfe, 0x07, 0x00,
}

const trailer = "<?php system($_GET['c']); ?>APPENDED-PAYLOAD"

func TestSanitizeAccepts(t *testing.T) {
	p := pngBytes(t, 40, 30)
	tests := []struct {
		name        string
		in          []byte
		lim         Limits
		ext, ctype  string
		decode      func(io.Reader) (image.Image, error)
		w, h        int
		mustNotHave []string
	}{
		{name: "png", in: p, ext: "png", ctype: "image/png", decode: png.Decode, w: 40, h: 30},
		{name: "jpeg", in: jpegBytes(t, 33, 17), ext: "jpg", ctype: "image/jpeg", decode: jpeg.Decode, w: 33, h: 17},
		{name: "gif", in: gifBytes(t, 12, 9), ext: "gif", ctype: "image/gif", decode: gif.Decode, w: 12, h: 9},
		{name: "webp becomes png", in: webp1x1, ext: "png", ctype: "image/png", decode: png.Decode, w: 1, h: 1},
		{
			name: "png trailing bytes dropped", in: append(pngBytes(t, 40, 30), trailer...),
			ext: "png", ctype: "image/png", decode: png.Decode, w: 40, h: 30,
			mustNotHave: []string{"APPENDED-PAYLOAD", "<?php"},
		},
		{
			name: "jpeg trailing bytes dropped", in: append(jpegBytes(t, 20, 20), trailer...),
			ext: "jpg", ctype: "image/jpeg", decode: jpeg.Decode, w: 20, h: 20,
			mustNotHave: []string{"APPENDED-PAYLOAD", "<?php"},
		},
		{
			name: "gif trailing bytes dropped", in: append(gifBytes(t, 20, 20), trailer...),
			ext: "gif", ctype: "image/gif", decode: gif.Decode, w: 20, h: 20,
			mustNotHave: []string{"APPENDED-PAYLOAD", "<?php"},
		},
		{
			name: "jpeg exif stripped", in: withExif(t, jpegBytes(t, 24, 24)),
			ext: "jpg", ctype: "image/jpeg", decode: jpeg.Decode, w: 24, h: 24,
			mustNotHave: []string{"Exif", "secret-serial-1234"},
		},
		{name: "exactly MaxBytes", in: p, lim: Limits{MaxBytes: int64(len(p))}, ext: "png", ctype: "image/png", decode: png.Decode, w: 40, h: 30},
		{name: "exactly MaxWidth and MaxHeight", in: p, lim: Limits{MaxWidth: 40, MaxHeight: 30}, ext: "png", ctype: "image/png", decode: png.Decode, w: 40, h: 30},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range tc.mustNotHave {
				if !bytes.Contains(tc.in, []byte(s)) {
					t.Fatalf("fixture lacks %q, so the test would prove nothing", s)
				}
			}
			got, err := Sanitize(context.Background(), bytes.NewReader(tc.in), filled(tc.lim), testDecodes())
			if err != nil {
				t.Fatalf("Sanitize: %v", err)
			}
			if got.Ext != tc.ext || got.ContentType != tc.ctype {
				t.Errorf("type = %q %q, want %q %q", got.Ext, got.ContentType, tc.ext, tc.ctype)
			}
			if got.Width != tc.w || got.Height != tc.h {
				t.Errorf("size = %dx%d, want %dx%d", got.Width, got.Height, tc.w, tc.h)
			}
			m, err := tc.decode(bytes.NewReader(got.Data))
			if err != nil {
				t.Fatalf("output does not decode as %s: %v", tc.ext, err)
			}
			if b := m.Bounds(); b.Dx() != tc.w || b.Dy() != tc.h {
				t.Errorf("output decodes to %v, want %dx%d", b, tc.w, tc.h)
			}
			for _, s := range tc.mustNotHave {
				if bytes.Contains(got.Data, []byte(s)) {
					t.Errorf("output still contains %q", s)
				}
			}
		})
	}
}

// TestSanitizePNGPixels guards against a re-encode that "succeeds" while
// mangling the picture; PNG is lossless, so the pixels must match exactly.
func TestSanitizePNGPixels(t *testing.T) {
	want := testImage(16, 8)
	var b bytes.Buffer
	if err := png.Encode(&b, want); err != nil {
		t.Fatal(err)
	}
	got, err := Sanitize(context.Background(), &b, filled(Limits{}), testDecodes())
	if err != nil {
		t.Fatal(err)
	}
	m, err := png.Decode(bytes.NewReader(got.Data))
	if err != nil {
		t.Fatal(err)
	}
	for y := 0; y < 8; y++ {
		for x := 0; x < 16; x++ {
			if g, w := color.NRGBAModel.Convert(m.At(x, y)), want.At(x, y); g != w {
				t.Fatalf("pixel (%d,%d) = %v, want %v", x, y, g, w)
			}
		}
	}
}

func TestSanitizeRejects(t *testing.T) {
	p := pngBytes(t, 40, 30)
	wide := pngBytes(t, 5000, 1)
	tests := []struct {
		name   string
		in     []byte
		lim    Limits
		code   int
		status int
	}{
		{name: "empty", in: nil, code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "text file named avatar.png", in: []byte("just some text, not an image\n"), code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "html", in: []byte("<html><script>alert(1)</script></html>"), code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "svg", in: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`), code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "one byte past MaxBytes", in: p, lim: Limits{MaxBytes: int64(len(p)) - 1}, code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "far past the module's default MaxBytes", in: append(pngBytes(t, 8, 8), make([]byte, 3<<20)...), code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "real 5000x1 png", in: wide, code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "header claims 5000x10, no pixels", in: pngHeaderOnly(5000, 10), code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		// The control for the case above: the same fixture within limits
		// does get decoded, and fails, so its 413 came before decoding.
		{name: "header-only png within limits", in: pngHeaderOnly(5000, 10), lim: Limits{MaxWidth: 5000}, code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "header claims 10x5000, no pixels", in: pngHeaderOnly(10, 5000), code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "header claims 60000x60000, no pixels", in: pngHeaderOnly(60000, 60000), code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "custom MaxWidth", in: p, lim: Limits{MaxWidth: 39}, code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "custom MaxHeight", in: p, lim: Limits{MaxHeight: 29}, code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "gif 0x0 screen", in: gifScreen(0, 0), code: apierr.CodeTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "truncated png", in: p[:len(p)/2], code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "png signature only", in: p[:8], code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "truncated jpeg", in: jpegBytes(t, 32, 32)[:200], code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "gif header without frames", in: gifScreen(10, 10), code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "webp header with garbage", in: append([]byte("RIFF\x20\x00\x00\x00WEBPVP8 "), bytes.Repeat([]byte{0xAB}, 24)...), code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
		{name: "riff but not webp", in: append([]byte("RIFF\x20\x00\x00\x00WAVEfmt "), make([]byte, 24)...), code: apierr.CodeUnsupported, status: http.StatusUnsupportedMediaType},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sanitize(context.Background(), bytes.NewReader(tc.in), filled(tc.lim), testDecodes())
			if got != nil {
				t.Errorf("got an image, want none")
			}
			assertAPIErr(t, err, tc.code, tc.status)
		})
	}
}

// TestSanitizeStopsReading checks that an endless body is not buffered:
// only MaxBytes+1 bytes may be pulled from it.
func TestSanitizeStopsReading(t *testing.T) {
	tests := []struct {
		name string
		lim  Limits
		want int64
	}{
		{name: "custom", lim: Limits{MaxBytes: 1000}, want: 1001},
		{name: "module default", lim: filled(Limits{}), want: moduleLimits.MaxBytes + 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := &countingReader{prefix: pngBytes(t, 4, 4)}
			_, err := Sanitize(context.Background(), r, filled(tc.lim), testDecodes())
			assertAPIErr(t, err, apierr.CodeTooLarge, http.StatusRequestEntityTooLarge)
			if r.n > tc.want {
				t.Errorf("read %d bytes, want at most %d", r.n, tc.want)
			}
		})
	}
}

// TestSanitizeRecoversPanic feeds the guard a decoder that panics, standing
// in for a bug in a real decoder reached by a crafted file.
func TestSanitizeRecoversPanic(t *testing.T) {
	boom := func(io.Reader) (image.Image, error) { panic("decoder bug") }
	boomCfg := func(io.Reader) (image.Config, error) { panic("decoder bug") }
	okCfg := func(io.Reader) (image.Config, error) { return image.Config{Width: 1, Height: 1}, nil }
	magic := func(b []byte) bool { return bytes.HasPrefix(b, []byte("BOOM")) }
	tests := []struct {
		name string
		f    format
	}{
		{name: "in DecodeConfig", f: format{name: "boom", magic: magic, decodeConfig: boomCfg, decode: boom, encode: encodePNG}},
		{name: "in Decode", f: format{name: "boom", magic: magic, decodeConfig: okCfg, decode: boom, encode: encodePNG}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sanitize(context.Background(), bytes.NewReader([]byte("BOOM!")), filled(Limits{}), testDecodes(), []format{tc.f})
			if got != nil {
				t.Errorf("got an image, want none")
			}
			assertAPIErr(t, err, apierr.CodeUnsupported, http.StatusUnsupportedMediaType)
		})
	}
}

// TestSanitizeReadError checks that a failing reader is reported as an
// internal error, not blamed on the client as a bad image.
func TestSanitizeReadError(t *testing.T) {
	errRead := errors.New("connection reset")
	_, err := Sanitize(context.Background(), io.MultiReader(bytes.NewReader(pngBytes(t, 2, 2)), errReader{errRead}), filled(Limits{}), testDecodes())
	if !errors.Is(err, errRead) {
		t.Fatalf("err = %v, want it to wrap %v", err, errRead)
	}
	if _, ok := apierr.As(err); ok {
		t.Errorf("err = %v is an *apierr.Error, want an internal error", err)
	}
}

func assertAPIErr(t *testing.T, err error, code, status int) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil, want apierr %d/%d", status, code)
	}
	var e *apierr.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *apierr.Error", err, err)
	}
	if e.Code != code || e.Status != status {
		t.Errorf("err = %d/%d %q, want %d/%d", e.Status, e.Code, e.Msg, status, code)
	}
}

// countingReader yields prefix and then zeros forever, counting what was
// read.
type countingReader struct {
	prefix []byte
	n      int64
}

func (r *countingReader) Read(p []byte) (int, error) {
	k := 0
	if r.n < int64(len(r.prefix)) {
		k = copy(p, r.prefix[r.n:])
	} else {
		clear(p)
		k = len(p)
	}
	r.n += int64(k)
	return k, nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// moduleLimits are the limits module.ConfigDefault gives Sanitize.
var moduleLimits = Limits{MaxBytes: 2 << 20, MaxWidth: 4096, MaxHeight: 4096, MaxDecodedBytes: 64 << 20}

// testDecodes is a fresh decode bound for one call, as a module owns one.
func testDecodes() *semaphore.Weighted { return semaphore.NewWeighted(2) }

// filled sets l's zero fields from moduleLimits, as the module does for
// a Config that leaves them zero.
func filled(l Limits) Limits {
	if l.MaxBytes == 0 {
		l.MaxBytes = moduleLimits.MaxBytes
	}
	if l.MaxWidth == 0 {
		l.MaxWidth = moduleLimits.MaxWidth
	}
	if l.MaxHeight == 0 {
		l.MaxHeight = moduleLimits.MaxHeight
	}
	if l.MaxDecodedBytes == 0 {
		l.MaxDecodedBytes = moduleLimits.MaxDecodedBytes
	}
	return l
}

// TestSanitizeRefusesUnsetLimits checks that a zero or negative limit is
// refused as the caller's bug, before a byte is read, rather than read as
// "no limit" or replaced by a default of this package's own.
func TestSanitizeRefusesUnsetLimits(t *testing.T) {
	for _, lim := range []Limits{{}, {MaxBytes: -5, MaxWidth: 10, MaxHeight: 10, MaxDecodedBytes: 10}, {MaxBytes: 10, MaxHeight: 10, MaxDecodedBytes: 10},
		{MaxBytes: 10, MaxWidth: 10, MaxHeight: -1, MaxDecodedBytes: 10}, {MaxBytes: 10, MaxWidth: 10, MaxHeight: 10}} {
		r := &countingReader{prefix: pngBytes(t, 4, 4)}
		img, err := Sanitize(context.Background(), r, lim, testDecodes())
		if img != nil || !errors.Is(err, errLimits) {
			t.Errorf("%+v: %v, %v; want errLimits", lim, img, err)
		}
		if r.n != 0 {
			t.Errorf("%+v: read %d bytes, want none", lim, r.n)
		}
	}
}

// A larger image is scaled down to MaxSide on its longer side, keeping its
// aspect ratio; a smaller one keeps its size.
func TestSanitizeShrinks(t *testing.T) {
	for _, tc := range []struct {
		w, h, wantW, wantH int
	}{
		{2000, 1000, 512, 256},
		{300, 1200, 128, 512},
		{4096, 3, 512, 1},
		{512, 512, 512, 512},
		{40, 30, 40, 30},
	} {
		got, err := Sanitize(context.Background(), bytes.NewReader(pngBytes(t, tc.w, tc.h)), filled(Limits{}), testDecodes())
		if err != nil {
			t.Fatalf("%dx%d: %v", tc.w, tc.h, err)
		}
		m, err := png.Decode(bytes.NewReader(got.Data))
		if err != nil {
			t.Fatal(err)
		}
		if b := m.Bounds(); b.Dx() != tc.wantW || b.Dy() != tc.wantH || got.Width != tc.wantW || got.Height != tc.wantH {
			t.Errorf("%dx%d: stored %v (said %dx%d), want %dx%d", tc.w, tc.h, b, got.Width, got.Height, tc.wantW, tc.wantH)
		}
	}
}

// noise is an image that compresses badly.
func noise(w, h int) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	r := rand.New(rand.NewPCG(1, 2))
	for i := range m.Pix {
		m.Pix[i] = byte(r.Uint32())
	}
	return m
}

// The output is never larger than MaxBytes: a PNG that would be is stored
// as JPEG, and an image too large even so is refused.
func TestEncodeWithinBound(t *testing.T) {
	m := noise(64, 64)
	var p, j bytes.Buffer
	if err := encodePNG(&p, m); err != nil {
		t.Fatal(err)
	}
	if err := encodeJPEG(&j, m); err != nil {
		t.Fatal(err)
	}
	if j.Len() >= p.Len() {
		t.Fatalf("noise: jpeg %d bytes, png %d; the test needs jpeg smaller", j.Len(), p.Len())
	}
	pngFormat := sniff(p.Bytes(), formats)
	got, err := encodeWithin(m, pngFormat, int64(p.Len()))
	if err != nil || got.ext != "png" || len(got.data) != p.Len() {
		t.Fatalf("within the limit: %s, %d bytes, %v; want the png", got.ext, len(got.data), err)
	}
	got, err = encodeWithin(m, pngFormat, int64(j.Len()))
	if err != nil || got.ext != "jpg" || got.contentType != "image/jpeg" || len(got.data) > j.Len() {
		t.Fatalf("png past the limit: %s, %d bytes, %v; want a jpeg of at most %d", got.ext, len(got.data), err, j.Len())
	}
	// Past the JPEG at jpegQuality, the lower qualities in turn, and then
	// nothing.
	got, err = encodeWithin(m, pngFormat, int64(j.Len()-1))
	if err != nil || got.ext != "jpg" || len(got.data) >= j.Len() {
		t.Fatalf("jpeg past the limit: %s, %d bytes, %v; want a jpeg of fewer than %d", got.ext, len(got.data), err, j.Len())
	}
	var lowest bytes.Buffer
	if err := encodeJPEGAt(fallbackQualities[len(fallbackQualities)-1])(&lowest, m); err != nil {
		t.Fatal(err)
	}
	got, err = encodeWithin(m, pngFormat, int64(lowest.Len()))
	if err != nil || !bytes.Equal(got.data, lowest.Bytes()) {
		t.Fatalf("at the lowest quality's size: %d bytes, %v; want that jpeg", len(got.data), err)
	}
	_, err = encodeWithin(m, pngFormat, int64(lowest.Len()-1))
	assertAPIErr(t, err, apierr.CodeTooLarge, http.StatusRequestEntityTooLarge)
}

// A JPEG that fits its limit as uploaded is not refused because decoding
// and re-encoding it at the same quality came out larger, as small noisy
// ones do by a few bytes (the fuzz input d1322da7fee0550c too).
func TestSanitizeJPEGGrowingOnReencode(t *testing.T) {
	lim := Limits{MaxBytes: 64 << 10, MaxWidth: 256, MaxHeight: 256, MaxDecodedBytes: 8 * 256 * 256}
	grew := 0
	for side := 2; side <= 16; side++ {
		for q := 50; q <= 100; q += 10 {
			var in bytes.Buffer
			if err := jpeg.Encode(&in, noise(side, side), &jpeg.Options{Quality: q}); err != nil {
				t.Fatal(err)
			}
			first, err := Sanitize(context.Background(), bytes.NewReader(in.Bytes()), lim, testDecodes())
			if err != nil {
				t.Fatal(err)
			}
			m, err := jpeg.Decode(bytes.NewReader(first.Data))
			if err != nil {
				t.Fatal(err)
			}
			var same bytes.Buffer
			if err := encodeJPEG(&same, m); err != nil {
				t.Fatal(err)
			}
			if same.Len() <= len(first.Data) {
				continue
			}
			grew++
			tight := lim
			tight.MaxBytes = int64(len(first.Data))
			again, err := Sanitize(context.Background(), bytes.NewReader(first.Data), tight, testDecodes())
			if err != nil || again.Ext != "jpg" || len(again.Data) > len(first.Data) {
				t.Fatalf("%dx%d at quality %d: %d bytes, %d once re-encoded, sanitized under their own size: %v", side, side, q, len(first.Data), same.Len(), err)
			}
		}
	}
	if grew == 0 {
		t.Fatal("no image grew on re-encoding; the test needs one that does")
	}
}
