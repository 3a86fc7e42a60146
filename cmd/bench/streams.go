package main

import (
	"bufio"
	"bytes"
	"fmt"
	"mime"
	"net"
	"net/http"
	"strconv"
	"time"
)

// streamKind is a push stream (API.md §10): GET /Message/Stream with the
// credentials in the query, as a browser's EventSource opens it. last_id
// 0, like the polls' (the users have no messages before their workload),
// spares each stream the read of the newest message id when it opens.
//
// Unlike a poll, a stream answers at once with its head, and then sends
// events on the same response. The client reads the head as soon as the
// server has settled with the stream's wave, and keeps the connection's
// reader for the events.
type streamKind struct {
	path string
	// readers are the opened streams' readers, by index into the
	// connections.
	readers []*bufio.Reader
}

func newStreamKind(fx *fixture) heldKind {
	return &streamKind{path: fx.signedPath("/Message/Stream")}
}

func (k *streamKind) request(host string, u user) []byte {
	return fmt.Appendf(nil, "GET %s&user_id=%d&user_token=%s&last_id=0 HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n",
		k.path, u.UID, u.Token, host)
}

// streamReadBuffer is each stream reader's buffer: a head, or an event
// with a short message, fits several times over, and ten thousand of
// them stay small on the client.
const streamReadBuffer = 1024

// opened reads each new stream's head: 200, text/event-stream. The server
// wrote it before the stream parked, so it is there to read.
func (k *streamKind) opened(conns []net.Conn) error {
	for _, c := range conns {
		i := len(k.readers)
		br := bufio.NewReaderSize(c, streamReadBuffer)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			return fmt.Errorf("stream %d: response head: %w", i, err)
		}
		ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
		if resp.StatusCode != http.StatusOK || ct != "text/event-stream" {
			return fmt.Errorf("stream %d: status %d, Content-Type %q; want 200, text/event-stream", i, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		// The body is what follows the head on br, to the connection's
		// end; resp.Body would read the same. answered, in idle, obeys
		// the read deadline too, so none is left behind.
		_ = c.SetReadDeadline(time.Time{})
		k.readers = append(k.readers, br)
	}
	return nil
}

// idle fails unless every stream is open and has sent nothing but pings
// (": ping" comments, which come every 25 s) since its head.
// lifetime is 0: a stream is held until the client closes it (its pings
// do not end it).
func (k *streamKind) lifetime() time.Duration { return 0 }

func (k *streamKind) idle(conns []net.Conn) error {
	for i, c := range conns {
		br := k.readers[i]
		for {
			if br.Buffered() == 0 {
				got, err := answered(c)
				if err != nil {
					return fmt.Errorf("stream %d: %w", i, err)
				}
				if !got {
					break
				}
			}
			_ = c.SetReadDeadline(time.Now().Add(time.Second))
			line, err := br.ReadSlice('\n')
			_ = c.SetReadDeadline(time.Time{})
			if err != nil {
				return fmt.Errorf("stream %d ended before any message was sent: %w", i, err)
			}
			if s := string(line); s != ": ping\n" && s != "\n" {
				return fmt.Errorf("stream %d sent %q before any message was sent", i, line)
			}
		}
	}
	return nil
}

// await reads the stream's lines until an event arrives: it must be a
// message whose data holds want. It notes the time the event's first
// line was read; the server writes an event whole, so the rest is in the
// same read.
func (k *streamKind) await(i int, c net.Conn, want []byte) (time.Time, error) {
	br := k.readers[i]
	_ = c.SetReadDeadline(time.Now().Add((pollWait + 10) * time.Second))
	var (
		arrived time.Time
		event   string
	)
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return arrived, err
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if arrived.IsZero() && len(line) > 0 && line[0] != ':' {
			arrived = time.Now()
		}
		switch {
		case len(line) == 0 || line[0] == ':':
			// An event's end before its data, or a ping: keep reading.
		case bytes.HasPrefix(line, []byte("id: ")):
			if _, err := strconv.ParseInt(string(line[4:]), 10, 64); err != nil {
				return arrived, fmt.Errorf("stream event id %q", line)
			}
		case bytes.HasPrefix(line, []byte("event: ")):
			event = string(line[7:])
		case bytes.HasPrefix(line, []byte("data: ")):
			if event != "message" {
				return arrived, fmt.Errorf("stream sent event %q, want a message: %.200s", event, line)
			}
			if !bytes.Contains(line, want) {
				return arrived, fmt.Errorf("stream's message is not the one sent: %.200s", line)
			}
			return arrived, nil
		default:
			return arrived, fmt.Errorf("stream sent %q", line)
		}
	}
}
