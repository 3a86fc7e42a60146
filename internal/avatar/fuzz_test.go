package avatar

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/fiberchat/fiberchat/apierr"
)

// FuzzSanitize feeds Sanitize any bytes under small limits and checks
// that it never panics, refuses with the client's 413 or 415 only, keeps
// its memory and its output bounded by the limits, and that what it
// returns is an image of the size it reports which sanitizes again to
// the same.
func FuzzSanitize(f *testing.F) {
	seedT := &testing.T{}
	for _, seed := range [][]byte{
		pngBytes(seedT, 3, 2), jpegBytes(seedT, 5, 4), gifBytes(seedT, 2, 2),
		pngHeaderOnly(100000, 100000), gifScreen(60000, 1), []byte("GIF89a"), []byte("\x89PNG\r\n\x1a\n"),
		[]byte("\xff\xd8\xff"), {}, []byte("not an image"),
	} {
		f.Add(seed)
	}
	lim := Limits{MaxBytes: 64 << 10, MaxWidth: 256, MaxHeight: 256, MaxDecodedBytes: 8 * 256 * 256}
	// What one upload may cost: its bytes a few times over, the largest
	// decoded image at 8 bytes a pixel (16-bit RGBA) a few times over, and
	// the encoders' fixed buffers.
	maxAlloc := uint64(8*lim.MaxBytes) + uint64(4*8*lim.MaxWidth*lim.MaxHeight) + 8<<20
	f.Fuzz(func(t *testing.T, data []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		img, err := Sanitize(context.Background(), bytes.NewReader(data), lim, testDecodes())
		runtime.ReadMemStats(&after)
		if used := after.TotalAlloc - before.TotalAlloc; used > maxAlloc {
			t.Fatalf("%d input bytes cost %d bytes of memory, want at most %d", len(data), used, maxAlloc)
		}
		if err != nil {
			var e *apierr.Error
			if !errors.As(err, &e) || (e.Status != 413 && e.Status != 415) {
				t.Fatalf("%d input bytes: %v, want a 413 or 415", len(data), err)
			}
			return
		}
		if img.Width < 1 || img.Height < 1 || img.Width > lim.MaxWidth || img.Height > lim.MaxHeight {
			t.Fatalf("output %dx%d outside the limits", img.Width, img.Height)
		}
		// The worst an encoder does: 16-bit PNG rows of incompressible
		// pixels, or GIF's 12-bit codes for 8-bit ones, plus tables.
		if max := 12*img.Width*img.Height + 8<<10; len(img.Data) > max {
			t.Fatalf("a %dx%d image became %d bytes, want at most %d", img.Width, img.Height, len(img.Data), max)
		}
		again, err := Sanitize(context.Background(), bytes.NewReader(img.Data), Limits{MaxBytes: int64(len(img.Data)), MaxWidth: lim.MaxWidth, MaxHeight: lim.MaxHeight, MaxDecodedBytes: lim.MaxDecodedBytes}, testDecodes())
		if err != nil {
			t.Fatalf("the output does not sanitize again: %v", err)
		}
		if again.Width != img.Width || again.Height != img.Height || again.Ext != img.Ext || again.ContentType != img.ContentType {
			t.Fatalf("output %dx%d %s sanitizes to %dx%d %s", img.Width, img.Height, img.Ext, again.Width, again.Height, again.Ext)
		}
	})
}
