package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserUpdates: two pages reply with a quoted snippet, edit and
// delete from a message's menu, and react under a message; each update
// shows live on the other page (API.md §13).
func TestBrowserUpdates(t *testing.T) {
	chromium := findChromium(t)
	s, _, a, b := serveContacts(t, tempDSN(t), "Alice", "Bob")
	alice, bob := openPage(t, chromium, s.base, a), openPage(t, chromium, s.base, b)
	alice.openContact(t, b.uid)
	bob.openContact(t, a.uid)

	// item is the message whose text is text, on side, in JavaScript.
	item := func(side, text string) string {
		return fmt.Sprintf(`[...document.querySelectorAll("#messages .%s[data-id]")].find((li) => li.querySelector(".text").textContent === %q)`, side, text)
	}
	click := func(b *browser, what, li, button string) {
		t.Helper()
		b.eval(t, fmt.Sprintf(`(() => { const li = %s; li.querySelector(%q).click(); return true; })()`, li, button))
	}

	alice.send(t, "Lunch at noon?")
	bob.waitFor(t, "Alice's message", hasMessage("theirs", "Lunch at noon?"))

	// Bob answers it: Alice sees his reply quoting her message.
	click(bob, "reply", item("theirs", "Lunch at noon?"), ".act-reply")
	bob.waitFor(t, "the reply note", `!document.getElementById("compose-note").hidden && document.getElementById("compose-what").textContent.includes("Lunch at noon?")`)
	bob.send(t, "Sure, where?")
	alice.waitFor(t, "Bob's reply with its quote", fmt.Sprintf(`(() => { const li = %s; return !!li && li.querySelector(".quote")?.textContent === "Lunch at noon?"; })()`, item("theirs", "Sure, where?")))

	// Alice edits her message: Bob's page shows the new text, edited.
	click(alice, "edit", item("mine", "Lunch at noon?"), ".act-edit")
	alice.waitFor(t, "the edit in the composer", `document.getElementById("text").value === "Lunch at noon?"`)
	alice.eval(t, `document.getElementById("text").value = ""; true`)
	alice.do(t, "save the edit", chromedp.SendKeys("#text", "Lunch at 12:30?"), chromedp.Click("#composer button[type=submit]"))
	alice.waitFor(t, "her edit shown", hasMessage("mine", "Lunch at 12:30?"))
	bob.waitFor(t, "the edit, live", fmt.Sprintf(`(() => { const li = %s; return !!li && !!li.querySelector(".edited"); })()`, item("theirs", "Lunch at 12:30?")))

	// Bob reacts; Alice sees the reaction under her message.
	click(bob, "react", item("theirs", "Lunch at 12:30?"), ".act-react")
	alice.waitFor(t, "Bob's reaction, live", fmt.Sprintf(`(() => { const li = %s; return !!li && li.querySelector(".reaction")?.textContent === "👍 1"; })()`, item("mine", "Lunch at 12:30?")))
	bob.waitFor(t, "his own reaction", fmt.Sprintf(`(() => { const li = %s; return !!li && !!li.querySelector(".reaction.mine"); })()`, item("theirs", "Lunch at 12:30?")))

	// Alice deletes it for everyone.
	click(alice, "delete", item("mine", "Lunch at 12:30?"), ".act-delete")
	alice.waitFor(t, "her message deleted", hasMessage("mine", "This message was deleted."))
	bob.waitFor(t, "the delete, live", hasMessage("theirs", "This message was deleted.")+` && !document.querySelector("#messages .reaction")`)

	// A reload shows the same, from History.
	bob.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible("#composer"))
	bob.waitFor(t, "the state after reload", hasMessage("theirs", "This message was deleted.")+" && "+
		fmt.Sprintf(`(() => { const li = %s; return !!li && li.querySelector(".quote")?.textContent === "A deleted message"; })()`, item("mine", "Sure, where?")))
}
