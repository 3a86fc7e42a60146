package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserScreenshot sets the scene README shows: Alice's page with a
// few contacts and a group, each with its last message, and her
// conversation with Bob across two days. FIBERCHAT_UPDATE_SCREENSHOT=1
// writes it to docs/screenshot.png.
func TestBrowserScreenshot(t *testing.T) {
	chromium := findChromium(t)
	dsn := tempDSN(t)
	s, secret := serveDemo(t, dsn)
	reg := func(name string) person { return apiUser(t, s.base, secret, name) }
	alice, bob, carol, dan := reg("Alice"), reg("Bob"), reg("Carol"), reg("Dan")
	for _, u := range []person{bob, carol, dan} {
		befriend(t, s.base, secret, u, alice)
	}
	send := func(from, to person, text string, daysAgo int) {
		t.Helper()
		r := apiPost(t, s.base, secret, "/Message/Send", map[string]any{"uid": from.uid, "access_token": from.tok, "uid_to": to.uid, "data": text})
		if daysAgo > 0 {
			ageMessage(t, dsn, int64(r["id"].(float64)), daysAgo)
		}
	}
	send(alice, dan, "Thanks for the book, I finished it in two days!", 3)
	send(dan, alice, "Glad you liked it. The sequel is even better.", 3)
	g := apiPost(t, s.base, secret, "/Group/create", map[string]any{"uid": carol.uid, "access_token": carol.tok, "name": "Climbing club",
		"data": []map[string]any{{"uid": alice.uid}}})
	apiPost(t, s.base, secret, "/Message/Send", map[string]any{"uid": carol.uid, "access_token": carol.tok, "gid": g["gid"], "data": "Who is in for Sunday morning?"})
	send(bob, alice, "Are you coming to the climbing gym tomorrow?", 1)
	send(alice, bob, "Yes! Same time as last week?", 1)
	send(bob, alice, "7 pm at the usual place.", 1)
	send(alice, bob, "On my way, see you in ten minutes.", 0)
	send(bob, alice, "Great, I'll bring the rope.", 0)
	send(bob, alice, "Don't forget your shoes this time 😄", 0)
	send(carol, alice, "The photos from Saturday are up!", 0)

	b := openPage(t, chromium, s.base, alice)
	b.openContact(t, bob.uid)
	b.waitFor(t, "the scene", fmt.Sprintf(`[...document.querySelectorAll("#messages .day")].map((e) => e.textContent).join() === "Yesterday,Today" &&
		document.querySelectorAll("#contacts .preview").length === 3 && !!document.querySelector('#contacts li[data-uid="%d"] .badge') &&
		!!document.querySelector("#groups .preview")`, carol.uid))
	b.eval(t, `document.activeElement.blur(); true`)
	b.do(t, "size the screenshot", chromedp.EmulateViewport(960, 600))
	shot, err := chromedp.Run(b.ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if os.Getenv("FIBERCHAT_UPDATE_SCREENSHOT") == "1" {
		if err := os.WriteFile(filepath.Join("..", "docs", "screenshot.png"), shot, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
