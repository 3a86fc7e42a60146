package chattest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// startFakeS3 serves gofakes3, its objects in memory, on a loopback port
// until the test ends, and returns its address.
func startFakeS3(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(unchunk(gofakes3.New(s3mem.New()).Server()))
	t.Cleanup(srv.Close)
	return srv.Listener.Addr().String()
}

// unchunk hands next every request body as its plain bytes. minio-go
// sends a body of unknown signature in S3's aws-chunked encoding (with a
// trailing checksum), which gofakes3 decodes only in a single PUT, and
// only without the trailer: it would store the chunks' framing as the
// object's bytes. Signatures and checksums are not checked, as gofakes3
// checks none.
func unchunk(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.Header.Get("X-Amz-Content-Sha256"), "STREAMING-") {
			body, err := decodeAWSChunked(r.Body)
			_ = r.Body.Close()
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			if want := r.Header.Get("X-Amz-Decoded-Content-Length"); want != "" && want != strconv.Itoa(len(body)) {
				http.Error(w, fmt.Sprintf("aws-chunked body of %d bytes, %s announced", len(body), want), http.StatusBadRequest)
				return
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
			r.ContentLength = int64(len(body))
			r.Header.Set("Content-Length", strconv.Itoa(len(body)))
			r.Header.Set("X-Amz-Content-Sha256", "UNSIGNED-PAYLOAD")
			r.Header.Del("X-Amz-Decoded-Content-Length")
			r.Header.Del("Content-Encoding")
		}
		next.ServeHTTP(w, r)
	})
}

// decodeAWSChunked reads an aws-chunked body: chunks of
// "<hex size>[;chunk-signature=…]\r\n<data>\r\n", a chunk of size 0, and
// trailer lines up to an empty one, which it skips.
func decodeAWSChunked(r io.Reader) ([]byte, error) {
	br := bufio.NewReader(r)
	var out []byte
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return nil, fmt.Errorf("aws-chunked: chunk header: %w", err)
		}
		hexSize, _, _ := strings.Cut(strings.TrimRight(line, "\r\n"), ";")
		size, err := strconv.ParseInt(hexSize, 16, 64)
		if err != nil || size < 0 {
			return nil, fmt.Errorf("aws-chunked: chunk size %q", hexSize)
		}
		if size == 0 {
			_, err := io.Copy(io.Discard, br)
			return out, err
		}
		start := len(out)
		out = append(out, make([]byte, size)...)
		if _, err := io.ReadFull(br, out[start:]); err != nil {
			return nil, fmt.Errorf("aws-chunked: chunk of %d bytes: %w", size, err)
		}
		if crlf, err := br.ReadString('\n'); err != nil || crlf != "\r\n" {
			return nil, errors.New("aws-chunked: no CRLF after a chunk")
		}
	}
}
