package main

import (
	"bytes"
	"io"
	"net/http"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/valyala/fasthttp"
)

// fastTransport is an http.RoundTripper over a fasthttp.HostClient, so
// that the workloads call the Go SDK (package client) while the load
// generator, which shares the CPUs with the server it measures, costs
// about what fasthttp's own client does: pooled requests and responses,
// keep-alive connections, and an answer's body handed to the SDK without
// a copy (it is released when the SDK closes it).
//
// A request's context is honoured only for its deadline: fasthttp cannot
// abandon a request in flight, and the HostClient's read and write
// timeouts bound every one anyway.
type fastTransport struct {
	hc *fasthttp.HostClient
	// answered, when set, is told when each answer arrived, before the
	// SDK decodes it; it runs on the caller's goroutine.
	answered func(time.Time)
}

// newFastTransport keeps at most maxConns keep-alive connections to addr.
func newFastTransport(addr string, maxConns int) *fastTransport {
	return &fastTransport{hc: &fasthttp.HostClient{
		Addr:                addr,
		Name:                "fiberchat-bench",
		MaxConns:            maxConns,
		MaxConnWaitTimeout:  10 * time.Second,
		ReadTimeout:         30 * time.Second,
		WriteTimeout:        30 * time.Second,
		MaxIdleConnDuration: time.Minute,
	}}
}

// fastBody is an answer's body: a reader over the fasthttp.Response's
// bytes, which Close gives back to fasthttp's pool. Each answer has a
// body of its own (a small allocation), so a second Close, or a Read
// after it, can never reach a response that another call has taken from
// the pool since.
type fastBody struct {
	bytes.Reader
	resp *fasthttp.Response
}

// Close releases the response once; later calls do nothing, as
// io.Closer allows.
func (b *fastBody) Close() error {
	if b.resp == nil {
		return nil
	}
	fasthttp.ReleaseResponse(b.resp)
	b.resp = nil
	b.Reset(nil)
	return nil
}

// RoundTrip sends r as a fasthttp request: method, URI, headers and body
// copied into a pooled fasthttp.Request.
func (t *fastTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	req := fasthttp.AcquireRequest()
	defer fasthttp.ReleaseRequest(req)
	req.Header.SetMethod(r.Method)
	uri := req.URI()
	uri.SetScheme(r.URL.Scheme)
	uri.SetHost(r.URL.Host)
	uri.SetPath(r.URL.Path)
	uri.SetQueryString(r.URL.RawQuery)
	for k, vs := range r.Header {
		for j, v := range vs {
			if j == 0 {
				req.Header.Set(k, v)
			} else {
				req.Header.Add(k, v)
			}
		}
	}
	if r.Body != nil {
		// The SDK's bodies are bytes.Readers, whose WriteTo makes this one
		// copy into fasthttp's buffer.
		_, err := io.Copy(req.BodyWriter(), r.Body)
		_ = r.Body.Close()
		if err != nil {
			return nil, err
		}
	}
	resp := fasthttp.AcquireResponse()
	var err error
	if d, ok := r.Context().Deadline(); ok {
		err = t.hc.DoDeadline(req, resp, d)
	} else {
		err = t.hc.Do(req, resp)
	}
	if err != nil {
		fasthttp.ReleaseResponse(resp)
		return nil, err
	}
	if t.answered != nil {
		t.answered(time.Now())
	}
	body := new(fastBody)
	body.resp = resp
	raw := resp.Body()
	body.Reset(raw)
	h := make(http.Header, 1)
	if ct := resp.Header.ContentType(); len(ct) > 0 {
		h["Content-Type"] = []string{string(ct)}
	}
	return &http.Response{
		Status:        http.StatusText(resp.StatusCode()),
		StatusCode:    resp.StatusCode(),
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        h,
		Body:          body,
		ContentLength: int64(len(raw)),
		Request:       r,
	}, nil
}

// closeIdle closes the transport's idle connections.
func (t *fastTransport) closeIdle() { t.hc.CloseIdleConnections() }

// sdkClient is an SDK client of the server t reaches, signing for the
// benchmark's API client with secret, holding u's session.
func sdkClient(t *fastTransport, secret string, u user) (*client.Client, error) {
	return client.New("http://"+t.hc.Addr, benchClientID, secret,
		client.WithHTTPClient(&http.Client{Transport: t}),
		client.WithSession(client.Session{UID: u.UID, AccessToken: u.Token}))
}
