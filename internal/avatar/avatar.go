// Package avatar turns an untrusted uploaded file into a safe, re-encoded
// image, for the head_img upload handler; its limits come from module's
// Config.
//
// It is its own package because handling untrusted images is
// security-sensitive: the file's type is decided from its bytes alone, its
// declared dimensions are checked before any pixel is decoded (so a
// decompression bomb is never expanded), decoder panics are contained, and
// the pixels are re-encoded so that metadata (EXIF, GPS, comments) and any
// bytes smuggled after the image never reach storage. Keeping that apart
// from HTTP lets it be tested in isolation, with hostile inputs built in
// code, and keeps transport concerns from weakening it.
package avatar

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"
	"math"
	"net/http"

	"golang.org/x/image/draw"
	"golang.org/x/image/webp"
	"golang.org/x/sync/semaphore"

	"github.com/fiberchat/fiberchat/apierr"
)

// MaxSide is the longest side of a stored avatar: a larger image is
// scaled down to it, keeping its aspect ratio. An avatar is shown small,
// and the bound keeps what is stored and served small too.
const MaxSide = 512

// jpegQuality is high enough that re-encoding a photo is not visibly worse,
// yet still drops the original encoder's tables and metadata.
const jpegQuality = 90

// fallbackQualities are what an image is re-encoded as JPEG at, in turn,
// when it does not fit its limit at jpegQuality: decoding and re-encoding
// a JPEG does not keep its size (its coefficients move), so a file that
// fits as uploaded can come out a few bytes larger at the same quality,
// and must not be refused for that.
var fallbackQualities = [...]int{75, 60}

// Limits bounds what Sanitize accepts. Every field must be positive: the
// module fills them from its Config (module.ConfigDefault), and this
// package keeps no defaults of its own, so that a limit has one home.
type Limits struct {
	MaxBytes  int64 // the file's size limit
	MaxWidth  int
	MaxHeight int
	// MaxDecodedBytes bounds the memory the decoded pixels take, which
	// the dimensions alone do not: a 16-bit RGBA PNG takes 8 bytes a
	// pixel, twice what an 8-bit one of the same size does.
	MaxDecodedBytes int64
}

// errLimits is a caller's bug, so it is internal (500) rather than blamed
// on the upload; failing open to "no limit" would be the worst reading.
var errLimits = errors.New("avatar: Limits must all be positive, and decodes set")

func (l Limits) valid() bool {
	return l.MaxBytes > 0 && l.MaxWidth > 0 && l.MaxHeight > 0 && l.MaxDecodedBytes > 0
}

// errBusy answers an upload that found every decode slot taken until its
// context ended: the server is not out of order, only busy, so the client
// is told to retry later.
var errBusy = apierr.New(apierr.CodeUnavailable, http.StatusServiceUnavailable, "too many images being decoded; retry later")

// Image is a re-encoded image ready to store.
type Image struct {
	Data          []byte
	Ext           string // "png", "jpg" or "gif" (without dot)
	ContentType   string // "image/png", "image/jpeg", "image/gif"
	Width, Height int
}

// format ties a magic number to explicit decoder and encoder calls. The
// decoders are called directly rather than through image.Decode so that
// the accepted set is exactly this list, whatever other packages in the
// binary register with image.RegisterFormat.
type format struct {
	name         string
	magic        func([]byte) bool
	decodeConfig func(io.Reader) (image.Config, error)
	decode       func(io.Reader) (image.Image, error)
	// The output type, which differs from the input for WebP because Go
	// has no WebP encoder.
	ext, contentType string
	encode           func(io.Writer, image.Image) error
}

func encodePNG(w io.Writer, m image.Image) error { return png.Encode(w, m) }

func encodeJPEG(w io.Writer, m image.Image) error {
	return jpeg.Encode(w, m, &jpeg.Options{Quality: jpegQuality})
}

func encodeJPEGAt(quality int) func(io.Writer, image.Image) error {
	return func(w io.Writer, m image.Image) error {
		return jpeg.Encode(w, m, &jpeg.Options{Quality: quality})
	}
}

// encodeGIF writes a single frame: animations are not needed for an avatar,
// and each extra frame is more untrusted data to carry along.
func encodeGIF(w io.Writer, m image.Image) error { return gif.Encode(w, m, nil) }

// formats is the allow-list of input types.
var formats = []format{
	{
		name:         "png",
		magic:        func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) },
		decodeConfig: png.DecodeConfig,
		decode:       png.Decode,
		ext:          "png", contentType: "image/png", encode: encodePNG,
	},
	{
		name:         "jpeg",
		magic:        func(b []byte) bool { return bytes.HasPrefix(b, []byte("\xff\xd8\xff")) },
		decodeConfig: jpeg.DecodeConfig,
		decode:       jpeg.Decode,
		ext:          "jpg", contentType: "image/jpeg", encode: encodeJPEG,
	},
	{
		name: "gif",
		magic: func(b []byte) bool {
			return bytes.HasPrefix(b, []byte("GIF87a")) || bytes.HasPrefix(b, []byte("GIF89a"))
		},
		decodeConfig: gif.DecodeConfig,
		// gif.Decode stops after the first frame, so later frames are
		// neither decoded nor kept.
		decode: gif.Decode,
		ext:    "gif", contentType: "image/gif", encode: encodeGIF,
	},
	{
		name: "webp",
		magic: func(b []byte) bool {
			return len(b) >= 12 && string(b[0:4]) == "RIFF" && string(b[8:12]) == "WEBP"
		},
		decodeConfig: webp.DecodeConfig,
		decode:       webp.Decode,
		ext:          "png", contentType: "image/png", encode: encodePNG,
	},
}

// sniff decides the type from the bytes alone: a file name or a
// Content-Type header is chosen by the uploader and proves nothing.
func sniff(data []byte, fs []format) *format {
	for i := range fs {
		if fs[i].magic(data) {
			return &fs[i]
		}
	}
	return nil
}

// Sanitize reads an uploaded file from r and returns it decoded, scaled
// down to at most MaxSide on its longer side, and re-encoded, or an
// *apierr.Error: 413 (code 1009) when the file, its dimensions or its
// decoded size exceed lim, 415 (code 1011) when it is empty, not a PNG,
// JPEG, GIF or WebP, or cannot be decoded, 503 (code 1503) when ctx ends
// while every slot of decodes is taken. Any other error comes from
// reading r and is internal. WebP input is returned as PNG. The output is
// never larger than lim.MaxBytes: one that would be is re-encoded as JPEG
// (which drops transparency), at lower qualities as needed, and refused
// with 413 if even that is too large.
//
// Each decode holds one unit of decodes from the decode to the encode, so
// the memory all uploads take at once is bounded by its size times
// lim.MaxDecodedBytes; the caller owns it (one per module), and a nil one
// is refused like an unset limit.
func Sanitize(ctx context.Context, r io.Reader, lim Limits, decodes *semaphore.Weighted) (*Image, error) {
	return sanitize(ctx, r, lim, decodes, formats)
}

// sanitize takes the format list as a parameter so tests can exercise the
// panic guard with a decoder that panics, without touching package state.
func sanitize(ctx context.Context, r io.Reader, lim Limits, decodes *semaphore.Weighted, fs []format) (img *Image, err error) {
	if !lim.valid() || decodes == nil {
		return nil, errLimits
	}
	data, err := readUpload(r, lim.MaxBytes)
	if err != nil {
		return nil, err
	}
	f := sniff(data, fs)
	if f == nil {
		return nil, apierr.Unsupported("unsupported image type")
	}

	// The decoders parse attacker-controlled bytes; a bug in one must cost
	// this upload, not the process.
	defer func() {
		if p := recover(); p != nil {
			img, err = nil, apierr.Unsupported("invalid image")
		}
	}()

	if err := checkHeader(f, data, lim); err != nil {
		return nil, err
	}
	if decodes.Acquire(ctx, 1) != nil {
		return nil, errBusy
	}
	defer decodes.Release(1)

	m, err := decodeChecked(f, data, lim)
	if err != nil {
		return nil, err
	}
	return encodeImage(shrink(m, MaxSide), f, lim.MaxBytes)
}

// Reencode is Sanitize for an image sent in a message (API.md §13): data
// is the whole upload, already read within the caller's limit, and the
// result is the image re-encoded at its own size (without metadata, as
// Sanitize's) and a thumbnail of at most thumbSide on its longer side,
// both from one decode under one unit of decodes. The errors are
// Sanitize's.
func Reencode(ctx context.Context, data []byte, lim Limits, decodes *semaphore.Weighted, thumbSide int) (full, thumb *Image, err error) {
	if !lim.valid() || decodes == nil || thumbSide < 1 {
		return nil, nil, errLimits
	}
	f := Sniff(data)
	if f == "" {
		return nil, nil, apierr.Unsupported("unsupported image type")
	}
	format := sniff(data, formats)
	defer func() {
		if p := recover(); p != nil {
			full, thumb, err = nil, nil, apierr.Unsupported("invalid image")
		}
	}()
	if err := checkHeader(format, data, lim); err != nil {
		return nil, nil, err
	}
	if decodes.Acquire(ctx, 1) != nil {
		return nil, nil, errBusy
	}
	defer decodes.Release(1)
	m, err := decodeChecked(format, data, lim)
	if err != nil {
		return nil, nil, err
	}
	if full, err = encodeImage(m, format, lim.MaxBytes); err != nil {
		return nil, nil, err
	}
	if thumb, err = encodeImage(shrink(m, thumbSide), format, lim.MaxBytes); err != nil {
		return nil, nil, err
	}
	return full, thumb, nil
}

// Sniff names the image type of data's first bytes ("png", "jpeg",
// "gif", "webp"), or "" when it is none of them: from the bytes alone.
func Sniff(data []byte) string {
	if f := sniff(data, formats); f != nil {
		return f.name
	}
	return ""
}

// readUpload reads the whole upload, refusing one over maxBytes with 413
// and an empty one with 415, so nothing later sees either.
func readUpload(r io.Reader, maxBytes int64) ([]byte, error) {
	// One byte past the limit is enough to tell "too large" from "exactly
	// at the limit" without buffering an arbitrarily large body.
	n := maxBytes
	if n < math.MaxInt64 {
		n++
	}
	data, err := io.ReadAll(io.LimitReader(r, n))
	if err != nil {
		return nil, fmt.Errorf("avatar: reading upload: %w", err)
	}
	if int64(len(data)) > maxBytes {
		return nil, apierr.TooLarge("file too large")
	}
	if len(data) == 0 {
		return nil, apierr.Unsupported("empty file")
	}
	return data, nil
}

// checkHeader refuses an image by what its header declares, before any
// decode: a few KiB of compressed input can declare enough pixels to
// exhaust memory once expanded.
func checkHeader(f *format, data []byte, lim Limits) error {
	cfg, err := f.decodeConfig(bytes.NewReader(data))
	if err != nil {
		return apierr.Unsupported("invalid image")
	}
	if !fits(cfg.Width, cfg.Height, lim) {
		return apierr.TooLarge("image dimensions too large")
	}
	if decodedBytes(cfg, f, data) > lim.MaxDecodedBytes {
		return apierr.TooLarge("image too large to decode")
	}
	return nil
}

// decodeChecked decodes data and checks the result against lim again: the
// header has been trusted so far, and the decoded image is what gets
// stored, in case a decoder disagrees with its own config.
func decodeChecked(f *format, data []byte, lim Limits) (image.Image, error) {
	m, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return nil, apierr.Unsupported("invalid image")
	}
	b := m.Bounds()
	if b.Empty() {
		return nil, apierr.Unsupported("invalid image")
	}
	if !fits(b.Dx(), b.Dy(), lim) {
		return nil, apierr.TooLarge("image dimensions too large")
	}
	return m, nil
}

// encodeImage encodes m within maxBytes and describes the result; its
// dimensions are those of m, which is what was encoded.
func encodeImage(m image.Image, f *format, maxBytes int64) (*Image, error) {
	out, err := encodeWithin(m, f, maxBytes)
	if err != nil {
		return nil, err
	}
	b := m.Bounds()
	return &Image{
		Data:        out.data,
		Ext:         out.ext,
		ContentType: out.contentType,
		Width:       b.Dx(),
		Height:      b.Dy(),
	}, nil
}

// shrink scales m down to at most side on its longer side, keeping its
// aspect ratio; a smaller image is returned as it is.
func shrink(m image.Image, side int) image.Image {
	b := m.Bounds()
	w, h := b.Dx(), b.Dy()
	if w <= side && h <= side {
		return m
	}
	if w >= h {
		w, h = side, max(1, h*side/w)
	} else {
		w, h = max(1, w*side/h), side
	}
	dst := image.NewNRGBA(image.Rect(0, 0, w, h))
	// ApproxBiLinear: its cost is per output pixel, so a 4096-pixel
	// upload costs no more to scale than a 600-pixel one.
	draw.ApproxBiLinear.Scale(dst, dst.Bounds(), m, b, draw.Src, nil)
	return dst
}

// encoded is an image's bytes and type.
type encoded struct {
	data             []byte
	ext, contentType string
}

// encodeWithin encodes m in f's output format or, when that is larger
// than limit, as JPEG at jpegQuality and then at each of
// fallbackQualities, and refuses it with 413 when none fits.
func encodeWithin(m image.Image, f *format, limit int64) (encoded, error) {
	var out bytes.Buffer
	if err := f.encode(&out, m); err != nil {
		// The image decoded, so an encode failure is this program's
		// fault rather than the client's.
		return encoded{}, fmt.Errorf("avatar: encoding %s as %s: %w", f.name, f.ext, err)
	}
	if int64(out.Len()) <= limit {
		return encoded{out.Bytes(), f.ext, f.contentType}, nil
	}
	tries := make([]func(io.Writer, image.Image) error, 0, 1+len(fallbackQualities))
	if f.ext != "jpg" {
		tries = append(tries, encodeJPEG)
	}
	for _, q := range fallbackQualities {
		tries = append(tries, encodeJPEGAt(q))
	}
	for _, encode := range tries {
		out.Reset()
		if err := encode(&out, m); err != nil {
			return encoded{}, fmt.Errorf("avatar: encoding %s as jpg: %w", f.name, err)
		}
		if int64(out.Len()) <= limit {
			return encoded{out.Bytes(), "jpg", "image/jpeg"}, nil
		}
	}
	return encoded{}, apierr.TooLarge("image too large once re-encoded")
}

func fits(w, h int, lim Limits) bool {
	return w > 0 && h > 0 && w <= lim.MaxWidth && h <= lim.MaxHeight
}

// decodedBytes is what decoding an image of cfg takes, from the bytes per
// pixel of the decoder's output type (cfg.ColorModel): 16-bit PNGs take
// twice what 8-bit ones do. Progressive JPEGs also keep every coefficient
// (an int32 a sample) until the last scan. Models this does not know
// count as the widest, 8 bytes a pixel.
func decodedBytes(cfg image.Config, f *format, data []byte) int64 {
	px := int64(cfg.Width) * int64(cfg.Height)
	n := px * bytesPerPixel(cfg.ColorModel)
	if f.name == "jpeg" && progressiveJPEG(data) {
		n *= 5
	}
	return n
}

func bytesPerPixel(m color.Model) int64 {
	if _, ok := m.(color.Palette); ok {
		return 1
	}
	switch m {
	case color.GrayModel, color.AlphaModel:
		return 1
	case color.Gray16Model, color.Alpha16Model:
		return 2
	case color.YCbCrModel:
		return 3 // at most: 4:4:4, no chroma subsampling
	case color.RGBAModel, color.NRGBAModel, color.CMYKModel, color.NYCbCrAModel:
		return 4
	}
	return 8 // RGBA64, NRGBA64, and anything else
}

// progressiveJPEG reports whether data's frame header (SOF2, SOF6, SOF10
// or SOF14) declares a progressive JPEG, walking the marker segments
// before it.
func progressiveJPEG(data []byte) bool {
	for i := 2; i+4 <= len(data); {
		if data[i] != 0xff {
			return false
		}
		marker := data[i+1]
		if marker == 0xff { // fill byte
			i++
			continue
		}
		if marker >= 0xc0 && marker <= 0xcf && marker != 0xc4 && marker != 0xc8 && marker != 0xcc {
			return marker&0x03 == 0x02
		}
		if marker == 0xda { // start of scan: no frame header came first
			return false
		}
		i += 2 + (int(data[i+2])<<8 | int(data[i+3]))
	}
	return false
}
