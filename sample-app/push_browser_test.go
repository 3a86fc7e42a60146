package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/serviceworker"
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

// notificationsSpy records, in __shown, every notification the service
// worker shows, by looking often: a headless browser closes them soon
// after.
const notificationsSpy = `(() => {
  window.__shown = [];
  const seen = new Set();
  const look = async () => {
    const reg = await navigator.serviceWorker.getRegistration();
    for (const n of await reg.getNotifications()) {
      const key = n.tag + "|" + n.body;
      if (!seen.has(key)) {
        seen.add(key);
        __shown.push({ title: n.title, body: n.body, tag: n.tag, uid: n.data && n.data.uid });
      }
    }
    setTimeout(look, 5);
  };
  look();
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
// push makes the service worker show a notification.
func TestBrowserNotifications(t *testing.T) {
	chromium := findChromium(t)
	s := startServe(t, "sqlite:"+filepath.Join(t.TempDir(), "chat.db"))
	m := demoSecretRE.FindStringSubmatch(s.stdout.String())
	if m == nil {
		t.Fatalf("serve printed no demo client: %q", s.stdout.String())
	}
	aUID, aTok := apiUser(t, s.base, m[1], "Ann")
	bUID, bTok := apiUser(t, s.base, m[1], "Ben")
	befriend(t, s.base, m[1], aUID, aTok, bUID, bTok)

	b := newBrowser(t, chromium, "ben")
	b.openAs(t, s.base, bUID, bTok)
	b.waitFor(t, "the service worker registered for the page",
		`navigator.serviceWorker.getRegistration().then((r) => !!r && r.scope.endsWith("/app/") && !!r.active && r.active.scriptURL.endsWith("/app/sw.js"))`)
	b.eval(t, `Notification.permission === "default" && !document.getElementById("notify-enable").hidden`)

	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, func(ctx context.Context, _ *chromedp.Target) (struct{}, error) {
		return struct{}{}, chromedp.FromContext(ctx).Browser.Call(ctx, cdpbrowser.CommandSetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: "notifications"},
			Setting:    cdpbrowser.PermissionSettingGranted,
			Origin:     s.base,
		}, nil)
	})
	if err != nil {
		t.Fatalf("grant notifications: %v", err)
	}
	b.do(t, "reload with notifications granted", chromedp.Reload(), chromedp.WaitVisible("#chat"))
	b.waitFor(t, "the stream open", `document.body.dataset.connection === "live"`)
	b.eval(t, `Notification.permission === "granted" && document.getElementById("notify-enable").hidden`)
	b.eval(t, notesSpy)

	annItem := fmt.Sprintf(`#contacts li[data-uid="%d"]`, aUID)
	b.do(t, "open Ann", chromedp.Click(annItem), chromedp.WaitVisible("#composer"))
	b.eval(t, hidePage)
	apiPost(t, s.base, m[1], "/Message/Send", map[string]any{"uid": aUID, "access_token": aTok, "uid_to": bUID, "data": "are you there?"})
	b.waitFor(t, "a notification from Ann", fmt.Sprintf(
		`window.__notes.length === 1 && __notes[0].title === "Ann" && __notes[0].body === "are you there?" && __notes[0].tag === "u%d"`, aUID))
	b.waitFor(t, "the title's count", `document.title.startsWith("(1) ")`)
	b.eval(t, showPage)
	b.waitFor(t, "the count gone once seen", `!document.title.startsWith("(")`)
	apiPost(t, s.base, m[1], "/Message/Send", map[string]any{"uid": aUID, "access_token": aTok, "uid_to": bUID, "data": "seen now"})
	b.waitFor(t, "the message shown", hasMessage("theirs", "seen now"))
	b.eval(t, `window.__notes.length === 1`)

	// A push, as the server sends when no page is open, reaches the
	// service worker, which shows it; an encrypted message's says only
	// that there is one.
	b.eval(t, notificationsSpy)
	deliverPush(t, b, s.base, fmt.Sprintf(`{"uid_from":%d,"name":"Ann","preview":"lunch?"}`, aUID))
	b.waitFor(t, "the pushed notification", fmt.Sprintf(
		`__shown.some((n) => n.title === "Ann" && n.body === "lunch?" && n.tag === "u%d" && n.uid === %d)`, aUID, aUID))
	deliverPush(t, b, s.base, fmt.Sprintf(`{"uid_from":%d,"gid":20000001,"name":"Ann","preview":""}`, aUID))
	b.waitFor(t, "the encrypted message's notification",
		`__shown.some((n) => n.title === "Ann" && n.body === "New message in a group" && n.tag === "g20000001")`)
}

// deliverPush hands data to the page's service worker as a push message
// (the DevTools protocol's ServiceWorker.deliverPushMessage).
func deliverPush(t *testing.T, b *browser, origin, data string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, func(ctx context.Context, tg *chromedp.Target) (struct{}, error) {
		updates := cdp.Events(ctx, tg, serviceworker.WorkerRegistrationUpdated)
		// Enabling lists the registrations; disabled again after, so that
		// the next call lists them again.
		if _, err := cdp.Call(ctx, tg, serviceworker.Enable, cdp.Empty{}); err != nil {
			return struct{}{}, err
		}
		defer func() { _, _ = cdp.Call(ctx, tg, serviceworker.Disable, cdp.Empty{}) }()
		for ev, err := range updates {
			if err != nil {
				return struct{}{}, err
			}
			for _, r := range ev.Registrations {
				if !r.IsDeleted && strings.HasSuffix(r.ScopeURL, "/app/") {
					_, err := cdp.Call(ctx, tg, serviceworker.DeliverPushMessage, serviceworker.DeliverPushMessageParams{
						Origin: origin, RegistrationID: r.RegistrationID, Data: data})
					return struct{}{}, err
				}
			}
		}
		return struct{}{}, errors.New("no registration of the page's service worker")
	})
	if err != nil {
		t.Fatalf("deliver a push: %v", err)
	}
}
