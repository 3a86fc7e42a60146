package main

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserTypingPresence drives typing and presence (API.md §13) in
// two Chromiums: one types and the other sees "typing…" in the open
// conversation's header; a contact's dot turns green when they open the
// page, grey once they left (after the server's grace, 10 s), and the
// list says when they were last seen.
func TestBrowserTypingPresence(t *testing.T) {
	chromium := findChromium(t)
	s := startServe(t, tempDSN(t))
	alice, aliceUID := registerPage(t, chromium, s.base, "Alice")
	bob, bobUID := registerPage(t, chromium, s.base, "Bob")

	befriendOnPages(t, alice, bob, aliceUID, bobUID)
	aliceItem, bobItem := contactItem(aliceUID), contactItem(bobUID)
	bob.waitFor(t, "Alice online", fmt.Sprintf(`!!document.querySelector('%s .presence.online')`, aliceItem))

	// Alice leaves: after the grace her dot goes grey, and she was seen.
	alice.do(t, "log out", chromedp.Click("#logout"), chromedp.WaitVisible("#login-form"))
	bob.waitFor(t, "Alice offline", fmt.Sprintf(`!document.querySelector('%s .presence.online') &&
		document.querySelector('%s small').textContent.includes("last seen")`, aliceItem, aliceItem))
	// She comes back: the dot turns green without a reload.
	alice.do(t, "log in again",
		chromedp.SetValue("#login-uid", strconv.FormatInt(aliceUID, 10)),
		chromedp.SendKeys("#login-passwd", "alice-pass"),
		chromedp.Click("#login-form button[type=submit]"), chromedp.WaitVisible("#chat"))
	bob.waitFor(t, "Alice online again", fmt.Sprintf(`!!document.querySelector('%s .presence.online')`, aliceItem))

	// Bob has Alice's conversation open; Alice types in hers.
	bob.openContact(t, aliceUID)
	alice.do(t, "refresh", chromedp.Click("#refresh"), chromedp.WaitVisible(bobItem))
	alice.openContact(t, bobUID)
	alice.do(t, "type", chromedp.SendKeys("#text", "On my w"))
	bob.waitFor(t, "typing… in the header", `!document.getElementById("typing").hidden && document.getElementById("typing").textContent === "typing…"`)
	// Her message ends it.
	alice.do(t, "send", chromedp.SendKeys("#text", "ay"), chromedp.Click("#composer button[type=submit]"))
	bob.waitFor(t, "the message, and no more typing…", hasMessage("theirs", "On my way")+` && document.getElementById("typing").hidden`)
}
