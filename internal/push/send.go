package push

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/SherClockHolmes/webpush-go"
	"github.com/fiberchat/fiberchat/models"
	"github.com/sethvargo/go-retry"
)

// TTL is how long a push service keeps a push for a browser that is
// offline: a day, after which "you have a message" is old news.
const TTL = 24 * 60 * 60

// work posts jobs until the Pusher stops.
func (p *Pusher) work() {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case j := <-p.jobs:
			p.send(j)
		}
	}
}

// errGone is a push service's 404 or 410: the subscription has expired
// or was withdrawn.
var errGone = errors.New("subscription gone")

// send posts j, retrying what may pass, and deletes a subscription the
// push service no longer knows.
func (p *Pusher) send(j job) {
	backoff := retry.WithMaxRetries(uint64(p.cfg.Retries), retry.NewExponential(time.Second))
	err := retry.Do(p.ctx, backoff, func(ctx context.Context) error { return p.post(ctx, j) })
	switch {
	case err == nil:
		p.sent.Add(1)
	case errors.Is(err, errGone):
		p.gone.Add(1)
		ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Timeout)
		defer cancel()
		if err := p.cfg.Store.DeletePushSubscription(ctx, 0, j.sub.Endpoint); err != nil {
			p.cfg.Logger.Warn("push: drop subscription", "uid", j.sub.UID, "error", models.Redact(err).Error())
		}
	default:
		p.failed.Add(1)
		// The endpoint is a capability: only its host is logged.
		p.cfg.Logger.Warn("push: not sent", "uid", j.sub.UID, "host", endpointHost(j.sub.Endpoint), "error", withoutURL(err).Error())
	}
}

// post makes one attempt at j: nil when the push service took it,
// errGone when it has forgotten the subscription, a retryable error when
// trying again may help.
func (p *Pusher) post(ctx context.Context, j job) error {
	key, err := p.keys.get(ctx)
	if err != nil {
		return retry.RetryableError(fmt.Errorf("vapid key: %w", models.Redact(err)))
	}
	ctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout)
	defer cancel()
	// The library appends its padding to the slice it is given, in
	// place when there is room: each post gets a copy of its own, with
	// none, since jobs of one message share their payload.
	payload := make([]byte, len(j.payload))
	copy(payload, j.payload)
	resp, err := webpush.SendNotificationWithContext(ctx, payload, &webpush.Subscription{
		Endpoint: j.sub.Endpoint,
		Keys:     webpush.Keys{P256dh: j.sub.P256dh, Auth: j.sub.Auth},
	}, &webpush.Options{
		HTTPClient: p.cfg.Client,
		// The library adds "mailto:" to a subscriber that is not https.
		Subscriber:      strings.TrimPrefix(p.cfg.Subscriber, "mailto:"),
		TTL:             TTL,
		Urgency:         webpush.UrgencyHigh,
		VAPIDPublicKey:  key.PublicKey,
		VAPIDPrivateKey: key.PrivateKey,
	})
	if err != nil {
		var refused *refusedError
		if errors.As(err, &refused) {
			return err
		}
		return retry.RetryableError(err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	switch s := resp.StatusCode; {
	case s >= 200 && s < 300:
		return nil
	case s == http.StatusNotFound || s == http.StatusGone:
		return errGone
	case s == http.StatusTooManyRequests || s >= 500:
		return retry.RetryableError(fmt.Errorf("push service answered %d", s))
	default:
		return fmt.Errorf("push service answered %d", s)
	}
}

// generateKeys makes a VAPID key pair as the store keeps it.
func generateKeys() (priv, pub string, err error) { return webpush.GenerateVAPIDKeys() }

// withoutURL is err without the URL an HTTP client's error names (a
// *url.Error's text carries the whole endpoint, which is a capability):
// its operation and its cause.
func withoutURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	return fmt.Errorf("%s to the push service: %w", ue.Op, ue.Err)
}

func endpointHost(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil {
		return ""
	}
	return u.Host
}

// refusedError is an address GuardedClient does not connect to.
type refusedError struct{ addr string }

func (e *refusedError) Error() string {
	return "push: refusing to connect to non-public address " + e.addr
}

// GuardedClient is the client pushes are posted with unless the host
// gives one: endpoints come from users, so it connects to public
// addresses only (never loopback, private, link-local or unspecified
// ones, whatever name resolved to them), follows no redirect, uses no
// proxy, and gives up after timeout.
func GuardedClient(timeout time.Duration) *http.Client {
	dialer := &net.Dialer{Timeout: timeout, Control: func(_, address string, _ syscall.RawConn) error {
		host, _, err := net.SplitHostPort(address)
		if err != nil {
			return err
		}
		if ip := net.ParseIP(host); ip == nil || !public(ip) {
			return &refusedError{addr: host}
		}
		return nil
	}}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			DialContext:         dialer.DialContext,
			TLSHandshakeTimeout: timeout,
			ForceAttemptHTTP2:   true,
			MaxIdleConnsPerHost: 8,
			IdleConnTimeout:     90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// public reports whether ip is an address on the internet.
func public(ip net.IP) bool {
	return !ip.IsLoopback() && !ip.IsPrivate() && !ip.IsLinkLocalUnicast() && !ip.IsLinkLocalMulticast() &&
		!ip.IsUnspecified() && !ip.IsMulticast() && !ip.IsInterfaceLocalMulticast()
}
