package client

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// requestTimeout bounds a call whose context has no deadline, on top of
// the time a long poll asks the server to hold it: every request that
// leaves the process ends.
const requestTimeout = 30 * time.Second

// maxAnswer bounds how much of an answer is read: the largest contract
// answer (500 messages of 4000 characters) is far below it.
const maxAnswer = 64 << 20

// Client talks to one fiberchat server as one API client, for at most one
// user session at a time. Its methods are safe for concurrent use.
type Client struct {
	base     *url.URL
	baseURL  string // base.String()
	clientID string
	secret   string
	hc       *http.Client
	loc      *time.Location
	now      func() time.Time
	tokens   func(path string) string
	// signed keeps the day's api_tokens (see APIToken).
	signed atomic.Pointer[signedDay]

	// e2ee is the device of end-to-end encryption, nil without
	// WithDevice.
	e2ee *e2eeState

	mu   sync.RWMutex
	sess Session
}

// Session is a logged-in user: what Login returns and what every route but
// register and login sends back.
type Session struct {
	// UID is the user's id.
	UID int64
	// AccessToken is the user token (API.md §1b).
	AccessToken string
	// ExpireTime is when the token expires if left idle (unix seconds);
	// each request moves it on. 0 when unknown.
	ExpireTime int64
}

// Option adjusts New.
type Option func(*Client)

// WithHTTPClient sends requests with hc instead of a client of the
// package's own. Leave hc.Timeout 0: it would cut long polls and streams;
// calls are bounded by their context instead. The Client uses a copy of
// hc that follows redirects only to the same scheme and host, refusing
// others with ErrRedirectElsewhere, before hc's own CheckRedirect.
func WithHTTPClient(hc *http.Client) Option { return func(c *Client) { c.hc = hc } }

// WithLocation sets the time zone whose date enters the api_token; it
// must be the server's (module.Config.Location). Default: UTC.
func WithLocation(loc *time.Location) Option { return func(c *Client) { c.loc = loc } }

// WithClock sets the clock whose date enters the api_token. Default:
// time.Now.
func WithClock(now func() time.Time) Option { return func(c *Client) { c.now = now } }

// WithTokenSource makes the client ask tokens for the api_token of each
// request instead of computing it from the secret: for a client that was
// handed the day's per-route tokens (module.APIToken) and not the secret,
// as a web page is. path is the route relative to the base URL, as
// "/Message/Send".
func WithTokenSource(tokens func(path string) string) Option {
	return func(c *Client) { c.tokens = tokens }
}

// WithSession starts the client with a session it did not log in itself,
// such as one a host issued with module.IssueToken.
func WithSession(s Session) Option { return func(c *Client) { c.sess = s } }

// New returns a client for the server whose module is mounted at baseURL
// (as "https://example.com/chat"), signing as clientID with secret. The
// secret may be empty only WithTokenSource.
func New(baseURL, clientID, secret string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil {
		return nil, fmt.Errorf("fiberchat: base URL: %w", err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("fiberchat: base URL %q: want http(s)://host[/prefix]", baseURL)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath, u.RawQuery, u.Fragment = "", "", ""
	if clientID == "" {
		return nil, errors.New("fiberchat: empty client_id")
	}
	c := &Client{base: u, baseURL: u.String(), clientID: clientID, secret: secret, loc: time.UTC, now: time.Now}
	for _, opt := range opts {
		opt(c)
	}
	if c.secret == "" && c.tokens == nil {
		return nil, errors.New("fiberchat: empty secret and no token source")
	}
	// A copy, so that the client given keeps its own redirect policy for
	// the host's own requests.
	hc := http.Client{}
	if c.hc != nil {
		hc = *c.hc
	}
	hc.CheckRedirect = sameOrigin(hc.CheckRedirect)
	c.hc = &hc
	if c.loc == nil {
		c.loc = time.UTC
	}
	if c.now == nil {
		c.now = time.Now
	}
	return c, nil
}

// sameOrigin is a CheckRedirect that follows a redirect only to the
// scheme and host the request was sent to, then asks next (Go's default
// policy when nil). Go follows a 307 or 308 by sending the body again,
// access_token included, and keeps every header but Authorization and
// Cookie, X-Access-Token included, wherever the Location points.
func sameOrigin(next func(*http.Request, []*http.Request) error) func(*http.Request, []*http.Request) error {
	return func(req *http.Request, via []*http.Request) error {
		first := via[0].URL
		if req.URL.Scheme != first.Scheme || !strings.EqualFold(req.URL.Host, first.Host) {
			return fmt.Errorf("%w: to %s://%s", ErrRedirectElsewhere, req.URL.Scheme, req.URL.Host)
		}
		if next != nil {
			return next(req, via)
		}
		if len(via) >= 10 {
			return errors.New("stopped after 10 redirects")
		}
		return nil
	}
}

// Session returns the session the client holds (zero if none).
func (c *Client) Session() Session {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.sess
}

// SetSession replaces the session the client holds; the zero Session
// leaves it with none.
func (c *Client) SetSession(s Session) {
	c.mu.Lock()
	c.sess = s
	c.mu.Unlock()
}

// session returns the session, or ErrNoSession.
func (c *Client) session() (Session, error) {
	s := c.Session()
	if s.UID == 0 || s.AccessToken == "" {
		return s, ErrNoSession
	}
	return s, nil
}

// APIToken returns the api_token of path (relative to the base URL, as
// "/Message/Send") for now: lowercase hex MD5 of module, controller and
// action (the first three segments of path, lower-cased, "index" where
// missing), the date in the client's location, and the secret.
func (c *Client) APIToken(path string) string {
	if c.tokens != nil {
		return c.tokens(path)
	}
	now := c.now()
	d := c.signed.Load()
	if d == nil || now.Before(d.from) || !now.Before(d.until) {
		d = c.signedDayAt(now)
		c.signed.Store(d)
	}
	if token, ok := d.tokens.Load(path); ok {
		return token.(string)
	}
	token := Sign(path, d.day, c.secret)
	if d.n.Add(1) <= maxSignedPaths {
		d.tokens.Store(path, token)
	}
	return token
}

// signedDay is one day's api_tokens, kept over [from, until): every call
// computed the date and an MD5 again.
type signedDay struct {
	from, until time.Time
	day         string
	tokens      sync.Map // path → token
	n           atomic.Int64
}

// maxSignedPaths bounds how many paths' tokens a day keeps: the package's
// routes, and a few a program signs for others.
const maxSignedPaths = 64

// signedDayAt starts the day of now. Its span is the local day, when the
// calendar's midnights give it (both ends of the day have its date);
// where a daylight-saving change skips midnight they may not, and the
// span is empty, so that the date is computed on every call.
func (c *Client) signedDayAt(now time.Time) *signedDay {
	local := now.In(c.loc)
	day := local.Format(time.DateOnly)
	d := &signedDay{from: now, until: now, day: day}
	y, m, dd := local.Date()
	from, until := time.Date(y, m, dd, 0, 0, 0, 0, c.loc), time.Date(y, m, dd+1, 0, 0, 0, 0, c.loc)
	if !from.After(now) && until.After(now) &&
		from.In(c.loc).Format(time.DateOnly) == day &&
		until.Add(-time.Nanosecond).In(c.loc).Format(time.DateOnly) == day {
		d.from, d.until = from, until
	}
	return d
}

// Sign computes an api_token (API.md §1a) for path on day (YYYY-MM-DD)
// with secret, for a program that hands tokens to others.
func Sign(path, day, secret string) string {
	segs := strings.FieldsFunc(strings.ToLower(path), func(r rune) bool { return r == '/' })
	for len(segs) < 3 {
		segs = append(segs, "index")
	}
	sum := md5.Sum([]byte(segs[0] + segs[1] + segs[2] + day + secret))
	return hex.EncodeToString(sum[:])
}

// url is the signed URL of path with extra query parameters.
func (c *Client) url(path string, query url.Values) string {
	if len(query) == 0 {
		// Every call but a stream's: the query url.Values.Encode would
		// write (its keys sorted), without building one. path is one of
		// the package's routes, which need no escaping.
		return c.baseURL + path + "?api_token=" + url.QueryEscape(c.APIToken(path)) + "&client_id=" + url.QueryEscape(c.clientID)
	}
	u := *c.base
	u.Path += path
	q := url.Values{}
	for k, v := range query {
		q[k] = v
	}
	q.Set("client_id", c.clientID)
	q.Set("api_token", c.APIToken(path))
	u.RawQuery = q.Encode()
	return u.String()
}

// credentials is the user half of an authenticated JSON body (§1b).
type credentials struct {
	UID         int64  `json:"uid"`
	AccessToken string `json:"access_token"`
}

// call posts body (a struct marshalled to a JSON object, or nil) to path,
// with the session's credentials when authed, and decodes a successful
// answer into out (when not nil).
func (c *Client) call(ctx context.Context, path string, authed bool, body, out any) error {
	if !authed {
		return c.send(ctx, path, nil, body, 0, out)
	}
	s, err := c.session()
	if err != nil {
		return err
	}
	return c.send(ctx, path, &s, body, 0, out)
}

// send is call with the session given (nil for none) and the time the
// server may hold the request.
func (c *Client) send(ctx context.Context, path string, s *Session, body any, hold time.Duration, out any) error {
	payload := []byte("{}")
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("fiberchat %s: %w", path, err)
		}
		payload = b
	}
	if s != nil {
		creds, _ := json.Marshal(credentials{UID: s.UID, AccessToken: s.AccessToken})
		payload = mergeObjects(creds, payload)
	}
	return c.post(ctx, path, "application/json", payload, hold, out)
}

// mergeObjects joins two JSON objects' members; b's keys never repeat
// a's, as request structs never carry credentials.
func mergeObjects(a, b []byte) []byte {
	if len(bytes.TrimSpace(b)) <= 2 {
		return a
	}
	out := append([]byte{}, a[:len(a)-1]...)
	out = append(out, ',')
	return append(out, bytes.TrimSpace(b)[1:]...)
}

// post sends one signed POST. hold is how long the server may hold it
// (a long poll's wait) on top of requestTimeout.
func (c *Client) post(ctx context.Context, path, ctype string, body []byte, hold time.Duration, out any) error {
	return c.postReader(ctx, path, ctype, bytes.NewReader(body), hold, out)
}

// postReader is post with the body read from body as it is sent (an
// upload's, streamed).
func (c *Client) postReader(ctx context.Context, path, ctype string, body io.Reader, hold time.Duration, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout+hold)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path, nil), body)
	if err != nil {
		return fmt.Errorf("fiberchat %s: %w", path, err)
	}
	req.Header.Set("Content-Type", ctype)
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return transportError(path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return transportError(path, err)
	}
	if e, ok := out.(enveloped); ok {
		// One pass decodes the envelope and the data together. An answer
		// that is no envelope, or not of out's shape, is left to the two
		// passes below, which tell which it is.
		if json.Unmarshal(raw, out) == nil && e.env().Error != nil {
			code, msg := *e.env().Error, e.env().Msg
			if resp.StatusCode >= 200 && resp.StatusCode < 300 && code == 0 {
				return nil
			}
			// A failed call returns no data, whatever the answer held.
			reflect.ValueOf(out).Elem().SetZero()
			return fmt.Errorf("fiberchat %s: %w", path, &Error{Status: resp.StatusCode, Code: code, Msg: msg, RetryAfter: retryAfter(resp.Header)})
		}
		reflect.ValueOf(out).Elem().SetZero()
	}
	if err := envelopeError(resp, raw); err != nil {
		return fmt.Errorf("fiberchat %s: %w", path, err)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("fiberchat %s: decode answer: %w", path, err)
		}
	}
	return nil
}

// transportError wraps a failure to reach the server with the route, and
// strips the query (api_token) from the URL
// the transport put in it, which would otherwise end up in logs.
func transportError(path string, err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery = ""
			ue.URL = u.String()
		}
	}
	return fmt.Errorf("fiberchat %s: %w", path, err)
}

// envelope is the part of every answer that says whether it failed.
type envelope struct {
	Error *int   `json:"error"`
	Msg   string `json:"msg"`
}

// enveloped is an answer struct that embeds envelope, so that post
// decodes an answer once rather than once for the envelope and again for
// the data: on a page of messages, that second pass is most of what a
// call costs the client.
type enveloped interface{ env() *envelope }

func (e *envelope) env() *envelope { return e }

// envelopeError returns the *Error resp's answer raw carries, with the
// Retry-After it asked for, or nil for success.
func envelopeError(resp *http.Response, raw []byte) error {
	var env envelope
	jsonErr := json.Unmarshal(raw, &env)
	e := &Error{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header)}
	ok2xx := e.Status >= 200 && e.Status < 300
	switch {
	case jsonErr == nil && env.Error != nil:
		if ok2xx && *env.Error == 0 {
			return nil
		}
		e.Code, e.Msg = *env.Error, env.Msg
	case ok2xx:
		e.Msg = "answer is not an envelope: " + snippet(raw)
	default:
		e.Msg = snippet(raw)
	}
	return e
}

// snippet is the start of a body that was not an envelope, for an error.
func snippet(raw []byte) string {
	s := strings.TrimSpace(string(raw))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return s
}
