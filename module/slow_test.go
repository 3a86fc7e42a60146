package module_test

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// The tests in this file are about a stream whose client stops reading:
// its socket's buffers fill, and it must cost no one else anything.

// dialNonReading opens a connection whose receive buffer is as small as
// the kernel allows, sends req on it and reads nothing, so that what the
// server writes soon fills both ends' buffers.
func dialNonReading(t *testing.T, l *chattest.Live, req *http.Request) net.Conn {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var err error
		if e := c.Control(func(fd uintptr) {
			err = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); e != nil {
			return e
		}
		return err
	}}
	conn, err := d.Dial("tcp", l.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	if err := req.Write(conn); err != nil {
		t.Fatal(err)
	}
	return conn
}

// sendMany stores n messages of size bytes each from from to to, a few
// at a time.
func sendMany(t *testing.T, l *chattest.Live, from, to chattest.User, n, size int) {
	t.Helper()
	c := l.Server.SDKFor(t, from)
	body := strings.Repeat("\U0001F600", size)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				if _, err := c.Send(context.Background(), to.UID, body); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		t.Fatalf("send: %v", err)
	}
}

// awaitQuiet waits until this process (the server, and the test) has
// nearly stopped using the CPU: the streams have filled what their sockets
// buffer, and wait.
func awaitQuiet(t *testing.T) {
	t.Helper()
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		before := cpu()
		time.Sleep(250 * time.Millisecond)
		if cpu()-before < 25*time.Millisecond {
			return
		}
	}
	t.Fatal("the streams still use the CPU after 60s")
}

// readSlowStream reads what conn's stream wrote: the ids of its message
// events, and the data of the bye that ends it ("" without one).
func readSlowStream(t *testing.T, conn net.Conn) (ids []int64, bye string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(conn)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("stream head: %v", err)
	}
	s := &sseStream{events: make(chan sseEvent, 100000)}
	s.read(resp.Body)
	for ev := range s.events {
		switch ev.event {
		case "message":
			id, _ := strconv.ParseInt(ev.id, 10, 64)
			ids = append(ids, id)
		case "bye":
			bye = ev.data
		}
	}
	return ids, bye
}

// Sixteen streams of one user that never read must not delay another
// user's long poll; each ends with bye "slow" once it falls behind, and a
// stream reopened with Last-Event-ID carries on from the last message it
// got, none lost.
func TestStreamSlowReader(t *testing.T) {
	chattest.EachDB(t, func(t *testing.T, db *chattest.DB) {
		l := chattest.NewLive(t, db, chattest.Options{})
		a, b := l.NewUser(t, "a"), l.NewUser(t, "b")
		c, d := l.NewUser(t, "c"), l.NewUser(t, "d")
		l.Befriend(t, a, b)
		l.Befriend(t, d, c)
		// Enough that each stream's reads outgrow what the kernel buffers
		// on both ends (a few MiB on loopback): an emoji is four bytes.
		const n = 400
		sendMany(t, l, a, b, n, 4000)
		var conns []net.Conn
		for i := range 16 {
			if i%4 == 0 {
				b = login(t, l.Server, b)
			}
			conns = append(conns, dialNonReading(t, l, streamGET(t, l, b, url.Values{"last_id": {"0"}})))
		}
		awaitHijacked(t, l, 16)
		awaitQuiet(t) // the streams have filled their sockets

		done := poll(t, l, c, client.RecvRequest{Wait: 20 * time.Second})
		awaitHijacked(t, l, 17)
		time.Sleep(100 * time.Millisecond) // its first check has found nothing
		id := mustSend(t, l.Server, d, c, "not held up")
		sent := time.Now()
		r := awaitPoll(t, done)
		// Held up behind the streams' writes, it would wait for their
		// write timeout (seconds); a second leaves room for a loaded
		// machine under -race.
		if took := time.Since(sent); took > time.Second {
			t.Errorf("poll answered %v after its message, want within 1s", took)
		}
		if len(r.ans.Messages) != 1 || r.ans.Messages[0].ID != id {
			t.Fatalf("poll: %+v, want message %d", r.ans, id)
		}

		// Past the write timeout with nothing read, the streams have
		// fallen behind.
		time.Sleep(7 * time.Second)
		ids, bye := readSlowStream(t, conns[15])
		if bye != `{"reason":"slow"}` {
			t.Fatalf("slow stream ended with bye %q after %d messages, want reason slow", bye, len(ids))
		}
		if len(ids) == 0 || len(ids) >= n {
			t.Fatalf("slow stream got %d messages before its bye, want some of %d", len(ids), n)
		}
		last := ids[len(ids)-1]
		req := streamGET(t, l, b, nil)
		req.Header.Set("Last-Event-ID", strconv.FormatInt(last, 10))
		s := openSSE(t, req)
		for len(ids) < n {
			ids = append(ids, s.nextMessage(t).ID)
		}
		for i := 1; i < len(ids); i++ {
			if ids[i] <= ids[i-1] {
				t.Fatalf("message %d after %d: out of order or twice", ids[i], ids[i-1])
			}
		}
	})
}
