package avatar

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
	"golang.org/x/sync/semaphore"
)

// TestSanitizeBoundsDecodedBytes checks that the decoded size counts the
// bit depth, before any pixel is decoded: a 16-bit RGBA PNG within the
// dimension limits decodes to twice the bytes of an 8-bit one.
func TestSanitizeBoundsDecodedBytes(t *testing.T) {
	for _, tc := range []struct {
		name         string
		in           []byte
		code, status int
	}{
		// Past the decode bound: refused as too large, not read further.
		{"16-bit 4096x4096", pngHeader(4096, 4096, 16), apierr.CodeTooLarge, http.StatusRequestEntityTooLarge},
		{"16-bit 2897x2897", pngHeader(2897, 2897, 16), apierr.CodeTooLarge, http.StatusRequestEntityTooLarge},
		// Within it: decoded, and refused only for having no pixels.
		{"8-bit 4096x4096", pngHeader(4096, 4096, 8), apierr.CodeUnsupported, http.StatusUnsupportedMediaType},
		{"16-bit 2896x2896", pngHeader(2896, 2896, 16), apierr.CodeUnsupported, http.StatusUnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Sanitize(context.Background(), bytes.NewReader(tc.in), filled(Limits{}), testDecodes())
			assertAPIErr(t, err, tc.code, tc.status)
		})
	}
}

// fakeFormat is an image type whose header says cfg and whose decoder is
// decode, for watching what Sanitize decodes.
func fakeFormat(cfg image.Config, decode func(io.Reader) (image.Image, error)) []format {
	return []format{{
		name:         "fake",
		magic:        func(b []byte) bool { return bytes.HasPrefix(b, []byte("FAKE")) },
		decodeConfig: func(io.Reader) (image.Config, error) { return cfg, nil },
		decode:       decode,
		ext:          "png", contentType: "image/png", encode: encodePNG,
	}}
}

func TestSanitizeRefusesBeforeDecoding(t *testing.T) {
	cfg := image.Config{ColorModel: color.RGBA64Model, Width: 4096, Height: 4096}
	decode := func(io.Reader) (image.Image, error) {
		t.Error("decoded an image past the decode bound")
		return image.NewRGBA(image.Rect(0, 0, 1, 1)), nil
	}
	_, err := sanitize(context.Background(), bytes.NewReader([]byte("FAKE")), filled(Limits{}), testDecodes(), fakeFormat(cfg, decode))
	assertAPIErr(t, err, apierr.CodeTooLarge, http.StatusRequestEntityTooLarge)
}

// TestSanitizeBoundsConcurrentDecodes holds two decodes in their decoder
// and checks that a third upload, finding both slots taken, waits for its
// context and is answered 503/1503 without decoding, and that no more
// than two ever decode at once.
func TestSanitizeBoundsConcurrentDecodes(t *testing.T) {
	var in, most atomic.Int32
	// entered has room for every upload, so none blocks telling of it.
	entered, release := make(chan struct{}, 4), make(chan struct{})
	decode := func(io.Reader) (image.Image, error) {
		n := in.Add(1)
		defer in.Add(-1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		entered <- struct{}{}
		<-release
		return image.NewRGBA(image.Rect(0, 0, 1, 1)), nil
	}
	fs := fakeFormat(image.Config{ColorModel: color.RGBAModel, Width: 1, Height: 1}, decode)
	decodes := semaphore.NewWeighted(2)
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := sanitize(context.Background(), bytes.NewReader([]byte("FAKE")), filled(Limits{}), decodes, fs); err != nil {
				t.Errorf("held upload: %v", err)
			}
		}()
	}
	<-entered
	<-entered
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	third := fakeFormat(image.Config{ColorModel: color.RGBAModel, Width: 1, Height: 1}, func(io.Reader) (image.Image, error) {
		t.Error("a third upload decoded while two held every slot")
		return image.NewRGBA(image.Rect(0, 0, 1, 1)), nil
	})
	_, err := sanitize(ctx, bytes.NewReader([]byte("FAKE")), filled(Limits{}), decodes, third)
	assertAPIErr(t, err, apierr.CodeUnavailable, http.StatusServiceUnavailable)
	close(release)
	wg.Wait()
	if m := most.Load(); m > 2 {
		t.Fatalf("%d decodes at once, want at most 2", m)
	}
}

func TestProgressiveJPEG(t *testing.T) {
	segment := func(marker byte, payload ...byte) []byte {
		return append([]byte{0xff, marker, 0, byte(len(payload) + 2)}, payload...)
	}
	soi := []byte{0xff, 0xd8}
	app0 := segment(0xe0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")...)
	dht := segment(0xc4, 0, 1, 2, 3) // a DHT, whose marker lies among the SOFs
	frame := []byte{8, 0, 16, 0, 16, 1, 1, 0x11, 0}
	join := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	for _, tc := range []struct {
		name string
		in   []byte
		want bool
	}{
		{"baseline", join(soi, app0, dht, segment(0xc0, frame...)), false},
		{"progressive", join(soi, app0, dht, segment(0xc2, frame...)), true},
		{"progressive after fill bytes", join(soi, app0, []byte{0xff}, segment(0xc2, frame...)), true},
		{"arithmetic progressive", join(soi, segment(0xca, frame...)), true},
		{"lossless", join(soi, segment(0xc3, frame...)), false},
		{"a real encoder's", jpegBytes(t, 8, 8), false},
		{"truncated", join(soi, app0[:3]), false},
	} {
		if got := progressiveJPEG(tc.in); got != tc.want {
			t.Errorf("%s: progressive %v, want %v", tc.name, got, tc.want)
		}
	}
}
