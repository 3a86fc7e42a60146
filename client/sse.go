package client

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"strings"
	"time"
)

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	// ID is the last event id in force when the event was dispatched
	// (an id: field sets it for this event and the ones after).
	ID   string
	Type string // "message" when the event named none
	Data string
}

// sseReader parses a text/event-stream as the HTML standard's
// "interpreting an event stream" says: lines end in CRLF, LF or CR; a
// line starting with ':' is a comment; "field: value" loses one space
// after the colon; data lines join with LF; an empty line dispatches,
// unless no data came (an id alone still sets the last event id); retry
// takes digits only; an id holding NUL is ignored. Written here rather
// than taken from a library because it is this small and the module
// keeps its dependencies few.
type sseReader struct {
	sc *bufio.Scanner
	// lastID is the last event id, kept across events.
	lastID string
	// retry is the reconnection time the server last asked for; 0 if none.
	retry time.Duration
	first bool
}

// maxSSELine bounds one line: a message of the largest allowed size,
// JSON-escaped, is far below it.
const maxSSELine = 1 << 20

func newSSEReader(r io.Reader) *sseReader {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxSSELine)
	sc.Split(splitSSELines)
	return &sseReader{sc: sc, first: true}
}

// splitSSELines splits at CRLF, LF or a lone CR, waiting for more input
// when a CR ends what has been read so far (an LF may follow).
func splitSSELines(data []byte, atEOF bool) (advance int, token []byte, err error) {
	i := bytes.IndexAny(data, "\r\n")
	if i < 0 {
		if atEOF && len(data) > 0 {
			// An unterminated last line is discarded, as the standard says:
			// returning it would dispatch a half-received event.
			return len(data), nil, nil
		}
		return 0, nil, nil
	}
	if data[i] == '\n' {
		return i + 1, data[:i], nil
	}
	if i+1 < len(data) {
		if data[i+1] == '\n' {
			return i + 2, data[:i], nil
		}
		return i + 1, data[:i], nil
	}
	if atEOF {
		return i + 1, data[:i], nil
	}
	return 0, nil, nil
}

// next returns the next event, or the reader's error (io.EOF at the end).
func (r *sseReader) next() (sseEvent, error) {
	var (
		typ     string
		data    strings.Builder
		hasData bool
	)
	for r.sc.Scan() {
		line := r.sc.Text()
		if r.first {
			line = strings.TrimPrefix(line, "\uFEFF")
			r.first = false
		}
		if line == "" {
			if !hasData {
				typ = ""
				continue
			}
			if typ == "" {
				typ = "message"
			}
			return sseEvent{ID: r.lastID, Type: typ, Data: strings.TrimSuffix(data.String(), "\n")}, nil
		}
		if line[0] == ':' {
			continue
		}
		field, value, found := strings.Cut(line, ":")
		if found {
			value = strings.TrimPrefix(value, " ")
		}
		switch field {
		case "event":
			typ = value
		case "data":
			data.WriteString(value)
			data.WriteByte('\n')
			hasData = true
		case "id":
			if !strings.ContainsRune(value, 0) {
				r.lastID = value
			}
		case "retry":
			if ms, err := strconv.ParseUint(value, 10, 32); err == nil && value != "" && strings.Trim(value, "0123456789") == "" {
				r.retry = time.Duration(ms) * time.Millisecond
			}
		}
	}
	if err := r.sc.Err(); err != nil {
		return sseEvent{}, err
	}
	return sseEvent{}, io.EOF
}
