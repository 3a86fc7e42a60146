package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// notesSpy wraps window.Notification so that the test sees each
// notification the page makes (a headless browser shows none).
const notesSpy = `(() => {
  window.__notes = [];
  const Real = window.Notification;
  window.Notification = class extends Real {
    constructor(title, options) {
      super(title, options);
      window.__notes.push({ title, body: (options && options.body) || "", tag: (options && options.tag) || "" });
    }
  };
  return true;
})()`

// hidePage makes the page believe its tab went to the background.
const hidePage = `(() => {
  Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
  Object.defineProperty(document, "hidden", { configurable: true, get: () => true });
  document.dispatchEvent(new Event("visibilitychange"));
  return true;
})()`

// showPage brings it back.
const showPage = `(() => {
  delete document.visibilityState;
  delete document.hidden;
  document.dispatchEvent(new Event("visibilitychange"));
  return !document.hidden;
})()`

// TestBrowserNotifications: the page never asks for permission on load
// (the button does); it registers its service worker (sw.js, scoped to
// the page); with notifications granted (through the DevTools protocol)
// and the tab hidden, a message makes a Notification from its sender and
// counts in the title, and the count goes once the tab is seen again; a
// push makes the service worker show a notification, whose click opens
// the conversation.
func TestBrowserNotifications(t *testing.T) {
	chromium := findChromium(t)
	s, secret, ann, ben := serveContacts(t, tempDSN(t), "Ann", "Ben")
	b := openPage(t, chromium, s.base, ben)
	b.waitFor(t, "the service worker registered for the page",
		`navigator.serviceWorker.getRegistration().then((r) => !!r && r.scope.endsWith("/app/") && !!r.active && r.active.scriptURL.endsWith("/app/sw.js"))`)
	b.eval(t, `Notification.permission === "default" && !document.getElementById("notify-enable").hidden`)

	grantNotifications(t, b, s.base)
	b.do(t, "reload with notifications granted", chromedp.Reload(), chromedp.WaitVisible("#chat"))
	b.waitFor(t, "the stream open", `document.body.dataset.connection === "live"`)
	b.eval(t, `Notification.permission === "granted" && document.getElementById("notify-enable").hidden`)
	b.eval(t, notesSpy)

	b.openContact(t, ann.uid)
	b.eval(t, hidePage)
	apiPost(t, s.base, secret, "/Message/Send", map[string]any{"uid": ann.uid, "access_token": ann.tok, "uid_to": ben.uid, "data": "are you there?"})
	b.waitFor(t, "a notification from Ann", fmt.Sprintf(
		`window.__notes.length === 1 && __notes[0].title === "Ann" && __notes[0].body === "are you there?" && __notes[0].tag === "u%d"`, ann.uid))
	b.waitFor(t, "the title's count", `document.title.startsWith("(1) ")`)
	b.eval(t, showPage)
	b.waitFor(t, "the count gone once seen", `!document.title.startsWith("(")`)
	apiPost(t, s.base, secret, "/Message/Send", map[string]any{"uid": ann.uid, "access_token": ann.tok, "uid_to": ben.uid, "data": "seen now"})
	b.waitFor(t, "the message shown", hasMessage("theirs", "seen now"))
	b.eval(t, `window.__notes.length === 1`)

	checkServiceWorker(t, b, s.base, ann.uid)
}

// grantNotifications allows origin's notifications, as a person's "Allow"
// would (the DevTools protocol's Browser.setPermission).
func grantNotifications(t *testing.T, b *browser, origin string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, func(ctx context.Context, _ *chromedp.Target) (struct{}, error) {
		return struct{}{}, chromedp.FromContext(ctx).Browser.Call(ctx, cdpbrowser.CommandSetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"},
			Setting:    cdpbrowser.PermissionSettingGranted,
			Origin:     origin,
		}, nil)
	})
	if err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
}

// checkServiceWorker: a push, as the server sends when no page is open,
// makes the service worker show a notification from aUID (without text
// for an encrypted message), and a click on it opens the conversation:
// in the page when one is open, else in a new window.
func checkServiceWorker(t *testing.T, b *browser, base string, aUID int64) {
	t.Helper()
	src := serviceWorker(t, base)
	b.do(t, "leave the page (its CSP forbids running the worker's source)", chromedp.Navigate("about:blank"))
	var got struct {
		Shown  []map[string]any
		Posted []map[string]any
		Opened []string
	}
	swRun(t, b, src, base+"/app/", fmt.Sprintf(`{"uid_from":%d,"name":"Ann","preview":"lunch?"}`, aUID), true, &got)
	if len(got.Shown) != 1 || got.Shown[0]["title"] != "Ann" || got.Shown[0]["body"] != "lunch?" || got.Shown[0]["tag"] != fmt.Sprintf("u%d", aUID) ||
		len(got.Posted) != 1 || got.Posted[0]["type"] != "fiberchat:open" || got.Posted[0]["uid"] != float64(aUID) || len(got.Opened) != 0 {
		t.Fatalf("push to the worker with the page open: %+v", got)
	}
	got.Shown, got.Posted, got.Opened = nil, nil, nil
	swRun(t, b, src, base+"/app/", fmt.Sprintf(`{"uid_from":%d,"gid":20000001,"name":"Ann","preview":""}`, aUID), false, &got)
	if len(got.Shown) != 1 || got.Shown[0]["body"] != "New message in a group" || got.Shown[0]["tag"] != "g20000001" ||
		len(got.Posted) != 0 || len(got.Opened) != 1 || got.Opened[0] != base+"/app/#g20000001" {
		t.Fatalf("encrypted group push with no page open: %+v", got)
	}
}

// swHarness runs the page's sw.js (as served) against a stand-in
// for the worker's global scope, delivers one push to it and clicks the
// notification it shows, and reports what the worker did. Headless
// Chromium closes a service worker's notifications within moments (and
// no protocol command clicks one), so the worker's own handlers are
// driven here; that the real worker registers and activates is checked
// above.
const swHarness = `(async (src, pageURL, payload, pageOpen) => {
  const on = {}, shown = [], posted = [], opened = [], waits = [];
  const page = { url: pageURL, focus: async () => {}, postMessage: (m) => posted.push(m) };
  const scope = {
    addEventListener: (type, fn) => (on[type] = fn),
    skipWaiting: () => {},
    registration: { scope: pageURL, showNotification: async (title, o) => shown.push({ title, ...o }) },
    clients: { matchAll: async () => (pageOpen ? [page] : []), openWindow: async (url) => opened.push(url), claim: async () => {} },
  };
  new Function("self", src)(scope);
  on.push({ data: { json: () => JSON.parse(payload) }, waitUntil: (p) => waits.push(p) });
  await Promise.all(waits);
  on.notificationclick({ notification: { data: shown[0] && shown[0].data, close: () => {} }, waitUntil: (p) => waits.push(p) });
  await Promise.all(waits);
  return JSON.stringify({ shown, posted, opened });
})(%s, %q, %q, %t)`

// serviceWorker fetches the page's sw.js as a browser does, and checks
// it is served as a script from the page's directory (so that its scope
// is the page's) that is revalidated at every load.
func serviceWorker(t *testing.T, base string) string {
	t.Helper()
	res, err := http.Get(base + "/app/sw.js")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	src, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || !strings.Contains(res.Header.Get("Content-Type"), "javascript") || res.Header.Get("Cache-Control") != "no-cache" {
		t.Fatalf("sw.js served %d, Content-Type %q, Cache-Control %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	return string(src)
}

// swRun runs swHarness on sw.js's source src, for the page at pageURL,
// with payload, and decodes its report into out.
func swRun(t *testing.T, b *browser, src, pageURL, payload string, pageOpen bool, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	js, _ := json.Marshal(src)
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[string](fmt.Sprintf(swHarness, js, pageURL, payload, pageOpen), chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("run sw.js: %v", err)
	}
	if err := json.Unmarshal([]byte(raw), out); err != nil {
		t.Fatalf("sw.js report %s: %v", raw, err)
	}
}
