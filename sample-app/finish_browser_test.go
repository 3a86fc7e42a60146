package main

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
	"github.com/fiberchat/fiberchat/internal/database"
)

// insertText types text into the focused field as a keyboard would
// (a field's maxlength applies to it, unlike to a value set by script).
func insertText(text string) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := cdp.Call(ctx, t, input.InsertText, input.InsertTextParams{Text: text})
		return err
	})
}

// ageMessage moves message id days back, as if it had been sent then.
func ageMessage(t *testing.T, dsn string, id int64, days int) {
	t.Helper()
	ctx := context.Background()
	db, err := database.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer database.Close(db)
	res := db.Exec("UPDATE chat_messages SET created_at = created_at - ? WHERE id = ?", days*86400, id)
	if res.Error != nil || res.RowsAffected != 1 {
		t.Fatalf("age message %d: %v, %d rows", id, res.Error, res.RowsAffected)
	}
}

// TestBrowserFinish walks the page's finishing touches through two
// browsers: a notice that fades, request and blocked rows lined up with
// the contacts, previews in the list, the "new messages" divider, day
// separators, a rename reaching an open conversation's header, the
// length counter, and a message sent while the server was away: shown
// as not sent (and only that), then sent by itself, once, when it is back.
func TestBrowserFinish(t *testing.T) {
	chromium := findChromium(t)
	dsn := "sqlite:" + filepath.Join(t.TempDir(), "chat.db")
	s := startServe(t, dsn)
	secret := demoSecretRE.FindStringSubmatch(s.stdout.String())[1]
	aliceUID, aliceTok := apiUser(t, s.base, secret, "Alice")
	bobUID, bobTok := apiUser(t, s.base, secret, "Bob")
	carolUID, carolTok := apiUser(t, s.base, secret, "Carol")
	daveUID, _ := apiUser(t, s.base, secret, "Dave")
	apiPost(t, s.base, secret, "/Contacts/IO/block", map[string]any{"uid": bobUID, "access_token": bobTok, "data": []map[string]any{{"uid": daveUID}}})
	for _, asker := range []struct {
		uid int64
		tok string
	}{{aliceUID, aliceTok}, {carolUID, carolTok}} {
		apiPost(t, s.base, secret, "/Contacts/IO/addContacts", map[string]any{"uid": asker.uid, "access_token": asker.tok, "data": []map[string]any{{"uid": bobUID}}})
	}

	bob := newBrowser(t, chromium, "bob")
	bob.openAs(t, s.base, bobUID, bobTok)
	aliceItem := fmt.Sprintf(`#contacts li[data-uid="%d"]`, aliceUID)
	bob.do(t, "accept Alice", chromedp.Click(fmt.Sprintf(`#requests li[data-uid="%d"] button.accept`, aliceUID)))
	bob.waitFor(t, "the notice", `!document.getElementById("side-note").hidden && document.getElementById("side-note").textContent.startsWith("Request accepted")`)
	bob.waitFor(t, "the notice gone", `document.getElementById("side-note").hidden`)

	// Carol's request, Dave (blocked) and Alice (a contact): one column
	// of avatars, each row with a name and its id.
	bob.waitFor(t, "Alice among the contacts", fmt.Sprintf(`!!document.querySelector('%s')`, aliceItem))
	bob.eval(t, `document.getElementById("blocked-box").open = true; true`)
	bob.waitFor(t, "the rows lined up", fmt.Sprintf(`(() => {
		const left = (sel) => { const e = document.querySelector(sel); return e ? Math.round(e.getBoundingClientRect().left) : -1; };
		const contact = left('%s .avatar');
		const dave = document.querySelector('#blocked li[data-uid="%d"]');
		return contact > 0 && left('#requests li[data-uid="%d"] .avatar') === contact &&
			left('#blocked li[data-uid="%d"] .avatar') === contact &&
			dave.querySelector(".who strong").textContent === "Dave" && !!dave.querySelector("button.unblock");
	})()`, aliceItem, daveUID, carolUID, daveUID))

	// Alice writes while Bob has no conversation open: his list shows the
	// last message and its time; opening it shows where the new ones begin.
	alice := newBrowser(t, chromium, "alice")
	alice.openAs(t, s.base, aliceUID, aliceTok)
	bobItem := fmt.Sprintf(`#contacts li[data-uid="%d"]`, bobUID)
	alice.do(t, "open Bob", chromedp.Click(bobItem), chromedp.WaitVisible("#composer"))
	send := func(b *browser, text string) {
		t.Helper()
		b.do(t, "send "+text, chromedp.SendKeys("#text", text), chromedp.Click("#composer button[type=submit]"))
		b.waitFor(t, "sent "+text, fmt.Sprintf(`[...document.querySelectorAll("#messages .mine[data-id] .text")].some((e) => e.textContent === %q)`, text))
	}
	send(alice, "Are you free on Saturday?")
	// The page encrypts between two browsers (API.md §15): the previews
	// show the lock.
	bob.waitFor(t, "a first preview", fmt.Sprintf(`document.querySelector('%s .preview')?.textContent === "🔒 Are you free on Saturday?"`, aliceItem))
	bob.do(t, "open Alice", chromedp.Click(aliceItem), chromedp.WaitVisible("#composer"))
	send(bob, "I think so, why?")
	alice.waitFor(t, "Bob has read her question", `document.querySelector("#messages .mine").classList.contains("read")`)
	bob.eval(t, `document.getElementById("back").click(); true`) // close the conversation
	for _, text := range []string{"There is a concert in the park.", "Starts at 6.", "Tickets are free!"} {
		send(alice, text)
	}
	bob.waitFor(t, "the preview and its time", fmt.Sprintf(`document.querySelector('%s .preview')?.textContent === "🔒 Tickets are free!" &&
		/\d/.test(document.querySelector('%s .when')?.textContent || "")`, aliceItem, aliceItem))
	if got := alice.text(t, bobItem+" .preview"); got != "You: 🔒 Tickets are free!" {
		t.Errorf("Alice's preview of her own message: %q", got)
	}
	bob.do(t, "open Alice again", chromedp.Click(aliceItem), chromedp.WaitVisible("#composer"))
	bob.waitFor(t, "the divider above the first unread", `(() => {
		const d = document.querySelector("#messages .unread-divider");
		return !!d && d.textContent === "3 new messages" &&
			d.nextElementSibling.querySelector(".text").textContent === "There is a concert in the park.";
	})()`)

	// The first message was two days ago: a separator for that day and
	// one for today.
	first, err := chromedp.Run(alice.ctx, chromedp.Evaluate[int64](`Number(document.querySelector("#messages .mine[data-id]").dataset.id)`))
	if err != nil {
		t.Fatal(err)
	}
	ageMessage(t, dsn, first, 2)
	bob.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible("#composer"))
	bob.waitFor(t, "two days", `(() => {
		const days = [...document.querySelectorAll("#messages .day")];
		return days.length === 2 && days[1].textContent === "Today" && days[0].textContent !== "Today" &&
			days[0].textContent !== "Yesterday" && days[0] === document.querySelector("#messages").firstElementChild &&
			days[1].nextElementSibling.querySelector(".text").textContent === "I think so, why?";
	})()`)

	// Alice's new name reaches Bob's open conversation, not only his list.
	bob.waitFor(t, "the stream open", `document.body.dataset.connection === "live"`)
	alice.do(t, "rename herself", chromedp.Click("#profile-toggle"), chromedp.WaitVisible("#profile-name"),
		chromedp.SetValue("#profile-name", "Alice Martin"), chromedp.Click("#profile button[type=submit]"))
	alice.waitFor(t, "her new name", `document.getElementById("me-name").textContent === "Alice Martin"`)
	bob.do(t, "refresh", chromedp.Click("#refresh"))
	bob.waitFor(t, "the new name in the header and the list", fmt.Sprintf(`document.getElementById("peer-name").textContent === "Alice Martin" &&
		document.querySelector('%s .who strong').textContent === "Alice Martin"`, aliceItem))

	// 4 005 characters: all kept, counted, and refused in words.
	bob.do(t, "type a long message", chromedp.Focus("#text"), insertText(strings.Repeat("a", 4005)))
	bob.waitFor(t, "the counter", `document.getElementById("text").value.length === 4005 && !document.getElementById("text-count").hidden &&
		document.getElementById("text-count").textContent === "4005 / 4000" && document.getElementById("text-count").classList.contains("over")`)
	bob.do(t, "try to send it", chromedp.Click("#composer button[type=submit]"))
	bob.waitFor(t, "the refusal", `document.getElementById("conv-error").textContent.includes("5 characters too long") &&
		document.getElementById("text").value.length === 4005 && ![...document.querySelectorAll("#messages .text")].some((e) => e.textContent.length > 4000)`)
	bob.eval(t, `const x = document.getElementById("text"); x.value = ""; x.dispatchEvent(new Event("input")); true`)

	// The server goes away: Bob's message says only that it is not sent
	// yet; once the server is back it is sent by itself, once.
	addr := strings.TrimPrefix(s.base, "http://")
	s.stop(t)
	const away = "Sent while the server was away"
	bob.do(t, "send while the server is away", chromedp.SendKeys("#text", away), chromedp.Click("#composer button[type=submit]"))
	bob.waitFor(t, "only the failure", fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll("#messages .mine")].find((e) => e.querySelector(".text").textContent === %q);
		return !!li && li.classList.contains("failed") && li.querySelector(".why").textContent.startsWith("Not sent yet") &&
			!li.innerText.includes("sending") && !li.innerText.includes("✓");
	})()`, away))
	startServe(t, dsn, "--addr", addr)
	bob.waitFor(t, "the message sent by itself", fmt.Sprintf(`[...document.querySelectorAll("#messages .mine[data-id]:not(.failed) .text")].some((e) => e.textContent === %q)`, away))
	alice.waitFor(t, "the message, once", fmt.Sprintf(`[...document.querySelectorAll("#messages .theirs .text")].filter((e) => e.textContent === %q).length === 1`, away))
	time.Sleep(time.Second) // a second send would have come by now
	// Encrypted, so counted rather than read: five before, and this one.
	hist := apiPost(t, s.base, secret, "/Message/History", map[string]any{"uid": aliceUID, "access_token": aliceTok, "uid_with": bobUID, "limit": 10})
	if n := len(hist["data"].([]any)); n != 6 {
		t.Fatalf("the server stored %d messages, want 6: %v", n, hist)
	}
	alice.waitFor(t, "still once", fmt.Sprintf(`[...document.querySelectorAll("#messages .theirs .text")].filter((e) => e.textContent === %q).length === 1`, away))
}
