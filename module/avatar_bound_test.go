package module_test

import (
	"bytes"
	"compress/zlib"
	"context"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"runtime"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// deepPNG is a valid w×h RGBA PNG of 16 bits a channel, all zeros: a few
// hundred KiB that decode to 8 bytes a pixel, twice what the dimension
// limits were sized for.
func deepPNG(t *testing.T, w, h int) []byte {
	t.Helper()
	var b bytes.Buffer
	b.WriteString("\x89PNG\r\n\x1a\n")
	chunk := func(kind string, data []byte) {
		_ = binary.Write(&b, binary.BigEndian, uint32(len(data)))
		c := append([]byte(kind), data...)
		b.Write(c)
		_ = binary.Write(&b, binary.BigEndian, crc32.ChecksumIEEE(c))
	}
	ihdr := binary.BigEndian.AppendUint32(nil, uint32(w))
	ihdr = binary.BigEndian.AppendUint32(ihdr, uint32(h))
	chunk("IHDR", append(ihdr, 16, 6, 0, 0, 0)) // 16-bit RGBA
	var idat bytes.Buffer
	z, _ := zlib.NewWriterLevel(&idat, zlib.BestCompression)
	row := make([]byte, 1+8*w) // filter byte, then the pixels
	for range h {
		if _, err := z.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := z.Close(); err != nil {
		t.Fatal(err)
	}
	chunk("IDAT", idat.Bytes())
	chunk("IEND", nil)
	return b.Bytes()
}

// TestAvatarDecodeBound uploads a 16-bit 4096×4096 PNG, within every
// limit but the decoded size (128 MiB), and expects it refused as too
// large, head_img unchanged.
func TestAvatarDecodeBound(t *testing.T) {
	img := deepPNG(t, 4096, 4096)
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		s := chattest.NewServer(t, db, chattest.Options{})
		ctx := context.Background()
		c := s.SDKFor(t, s.NewUser(t, "a"))
		_, err := c.UploadAvatar(ctx, "deep.png", bytes.NewReader(img))
		chattest.ExpectErr(t, err, 413, 1009)
		info, err := c.Info(ctx)
		if err != nil || info.HeadImg != "" {
			t.Fatalf("head_img %q (%v) after a refused upload, want none", info.HeadImg, err)
		}

		// Twelve at once, from twelve users (each has its own upload
		// budget), cost far less than one decode would (128 MiB): each
		// is refused from its header.
		var clients []*client.Client
		for i := range 12 {
			clients = append(clients, s.SDKFor(t, s.NewUser(t, fmt.Sprint("u", i))))
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		var wg sync.WaitGroup
		for _, c := range clients {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.UploadAvatar(ctx, "deep.png", bytes.NewReader(img))
				if !client.IsCode(err, client.CodeTooLarge) {
					t.Errorf("one of twelve: %v, want 413/1009", err) // not Fatal: another goroutine
				}
			}()
		}
		wg.Wait()
		runtime.ReadMemStats(&after)
		if used := after.TotalAlloc - before.TotalAlloc; used > 128<<20 {
			t.Fatalf("twelve refused uploads allocated %d MiB, want under 128", used>>20)
		}
	})
}
