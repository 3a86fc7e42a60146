package main

import (
	"context"
	"fmt"
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

// finishScene is TestBrowserFinish's server and people: Alice and Bob in
// browsers, Carol (who asks Bob) and Dave (whom Bob blocks) through the API.
type finishScene struct {
	s                  *server
	dsn, secret        string
	aliceUID, bobUID   int64
	carolUID, daveUID  int64
	aliceTok           string
	alice, bob         *browser
	aliceItem, bobItem string
}

// TestBrowserFinish walks the page's finishing touches through two
// browsers: a notice that fades, request and blocked rows lined up with
// the contacts, previews in the list, the "new messages" divider, day
// separators, a rename reaching an open conversation's header, the
// length counter, and a message sent while the server was away: shown
// as not sent (and only that), then sent by itself, once, when it is back.
func TestBrowserFinish(t *testing.T) {
	chromium := findChromium(t)
	f := &finishScene{dsn: tempDSN(t)}
	f.s, f.secret = serveDemo(t, f.dsn)
	alice := apiUser(t, f.s.base, f.secret, "Alice")
	bob := apiUser(t, f.s.base, f.secret, "Bob")
	carol := apiUser(t, f.s.base, f.secret, "Carol")
	dave := apiUser(t, f.s.base, f.secret, "Dave")
	f.aliceUID, f.aliceTok, f.bobUID, f.carolUID, f.daveUID = alice.uid, alice.tok, bob.uid, carol.uid, dave.uid
	apiPost(t, f.s.base, f.secret, "/Contacts/IO/block", map[string]any{"uid": bob.uid, "access_token": bob.tok, "data": []map[string]any{{"uid": dave.uid}}})
	for _, asker := range []person{alice, carol} {
		apiPost(t, f.s.base, f.secret, "/Contacts/IO/addContacts", map[string]any{"uid": asker.uid, "access_token": asker.tok, "data": []map[string]any{{"uid": bob.uid}}})
	}
	f.aliceItem, f.bobItem = contactItem(alice.uid), contactItem(bob.uid)
	f.bob = openPage(t, chromium, f.s.base, bob)
	f.noticeAndRows(t)
	f.alice = openPage(t, chromium, f.s.base, alice)
	f.previewsAndDivider(t)
	f.days(t)
	f.rename(t)
	f.counter(t)
	f.resend(t)
}

// noticeAndRows: Bob accepts Alice; the notice fades; Carol's request,
// Dave (blocked) and Alice (a contact) share one column of avatars, each
// row with a name and its id.
func (f *finishScene) noticeAndRows(t *testing.T) {
	bob := f.bob
	bob.do(t, "accept Alice", chromedp.Click(fmt.Sprintf(`#requests li[data-uid="%d"] button.accept`, f.aliceUID)))
	bob.waitFor(t, "the notice", `!document.getElementById("side-note").hidden && document.getElementById("side-note").textContent.startsWith("Request accepted")`)
	bob.waitFor(t, "the notice gone", `document.getElementById("side-note").hidden`)
	bob.waitFor(t, "Alice among the contacts", fmt.Sprintf(`!!document.querySelector('%s')`, f.aliceItem))
	bob.eval(t, `document.getElementById("blocked-box").open = true; true`)
	bob.waitFor(t, "the rows lined up", fmt.Sprintf(`(() => {
		const left = (sel) => { const e = document.querySelector(sel); return e ? Math.round(e.getBoundingClientRect().left) : -1; };
		const contact = left('%s .avatar');
		const dave = document.querySelector('#blocked li[data-uid="%d"]');
		return contact > 0 && left('#requests li[data-uid="%d"] .avatar') === contact &&
			left('#blocked li[data-uid="%d"] .avatar') === contact &&
			dave.querySelector(".who strong").textContent === "Dave" && !!dave.querySelector("button.unblock");
	})()`, f.aliceItem, f.daveUID, f.carolUID, f.daveUID))
}

// previewsAndDivider: Alice writes while Bob has no conversation open:
// his list shows the last message and its time; opening it shows where
// the new ones begin. The page encrypts between two browsers (API.md
// §15): the previews show the lock.
func (f *finishScene) previewsAndDivider(t *testing.T) {
	alice, bob := f.alice, f.bob
	alice.openContact(t, f.bobUID)
	alice.send(t, "Are you free on Saturday?")
	bob.waitFor(t, "a first preview", fmt.Sprintf(`document.querySelector('%s .preview')?.textContent === "🔒 Are you free on Saturday?"`, f.aliceItem))
	bob.openContact(t, f.aliceUID)
	bob.send(t, "I think so, why?")
	alice.waitFor(t, "Bob has read her question", `document.querySelector("#messages .mine").classList.contains("read")`)
	bob.eval(t, `document.getElementById("back").click(); true`) // close the conversation
	for _, text := range []string{"There is a concert in the park.", "Starts at 6.", "Tickets are free!"} {
		alice.send(t, text)
	}
	bob.waitFor(t, "the preview and its time", fmt.Sprintf(`document.querySelector('%s .preview')?.textContent === "🔒 Tickets are free!" &&
		/\d/.test(document.querySelector('%s .when')?.textContent || "")`, f.aliceItem, f.aliceItem))
	if got := alice.text(t, f.bobItem+" .preview"); got != "You: 🔒 Tickets are free!" {
		t.Errorf("Alice's preview of her own message: %q", got)
	}
	bob.openContact(t, f.aliceUID)
	bob.waitFor(t, "the divider above the first unread", `(() => {
		const d = document.querySelector("#messages .unread-divider");
		return !!d && d.textContent === "3 new messages" &&
			d.nextElementSibling.querySelector(".text").textContent === "There is a concert in the park.";
	})()`)
}

// days: the first message was two days ago: a separator for that day
// and one for today.
func (f *finishScene) days(t *testing.T) {
	first, err := chromedp.Run(f.alice.ctx, chromedp.Evaluate[int64](`Number(document.querySelector("#messages .mine[data-id]").dataset.id)`))
	if err != nil {
		t.Fatal(err)
	}
	ageMessage(t, f.dsn, first, 2)
	f.bob.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible("#composer"))
	f.bob.waitFor(t, "two days", `(() => {
		const days = [...document.querySelectorAll("#messages .day")];
		return days.length === 2 && days[1].textContent === "Today" && days[0].textContent !== "Today" &&
			days[0].textContent !== "Yesterday" && days[0] === document.querySelector("#messages").firstElementChild &&
			days[1].nextElementSibling.querySelector(".text").textContent === "I think so, why?";
	})()`)
}

// rename: Alice's new name reaches Bob's open conversation, not only his list.
func (f *finishScene) rename(t *testing.T) {
	f.bob.waitFor(t, "the stream open", `document.body.dataset.connection === "live"`)
	f.alice.do(t, "rename herself", chromedp.Click("#profile-toggle"), chromedp.WaitVisible("#profile-name"),
		chromedp.SetValue("#profile-name", "Alice Martin"), chromedp.Click("#profile button[type=submit]"))
	f.alice.waitFor(t, "her new name", `document.getElementById("me-name").textContent === "Alice Martin"`)
	f.bob.do(t, "refresh", chromedp.Click("#refresh"))
	f.bob.waitFor(t, "the new name in the header and the list", fmt.Sprintf(`document.getElementById("peer-name").textContent === "Alice Martin" &&
		document.querySelector('%s .who strong').textContent === "Alice Martin"`, f.aliceItem))
}

// counter: 4 005 characters are all kept, counted, and refused in words.
func (f *finishScene) counter(t *testing.T) {
	bob := f.bob
	bob.do(t, "type a long message", chromedp.Focus("#text"), insertText(strings.Repeat("a", 4005)))
	bob.waitFor(t, "the counter", `document.getElementById("text").value.length === 4005 && !document.getElementById("text-count").hidden &&
		document.getElementById("text-count").textContent === "4005 / 4000" && document.getElementById("text-count").classList.contains("over")`)
	bob.do(t, "try to send it", chromedp.Click("#composer button[type=submit]"))
	bob.waitFor(t, "the refusal", `document.getElementById("conv-error").textContent.includes("5 characters too long") &&
		document.getElementById("text").value.length === 4005 && ![...document.querySelectorAll("#messages .text")].some((e) => e.textContent.length > 4000)`)
	bob.eval(t, `const x = document.getElementById("text"); x.value = ""; x.dispatchEvent(new Event("input")); true`)
}

// resend: the server goes away; Bob's message says only that it is not
// sent yet; once the server is back it is sent by itself, once.
func (f *finishScene) resend(t *testing.T) {
	addr := strings.TrimPrefix(f.s.base, "http://")
	f.s.stop(t)
	const away = "Sent while the server was away"
	f.bob.do(t, "send while the server is away", chromedp.SendKeys("#text", away), chromedp.Click("#composer button[type=submit]"))
	f.bob.waitFor(t, "only the failure", fmt.Sprintf(`(() => {
		const li = [...document.querySelectorAll("#messages .mine")].find((e) => e.querySelector(".text").textContent === %q);
		return !!li && li.classList.contains("failed") && li.querySelector(".why").textContent.startsWith("Not sent yet") &&
			!li.innerText.includes("sending") && !li.innerText.includes("✓");
	})()`, away))
	startServe(t, f.dsn, "--addr", addr)
	f.bob.waitFor(t, "the message sent by itself", fmt.Sprintf(`[...document.querySelectorAll("#messages .mine[data-id]:not(.failed) .text")].some((e) => e.textContent === %q)`, away))
	once := fmt.Sprintf(`[...document.querySelectorAll("#messages .theirs .text")].filter((e) => e.textContent === %q).length === 1`, away)
	f.alice.waitFor(t, "the message, once", once)
	time.Sleep(time.Second) // a second send would have come by now
	// Encrypted, so counted rather than read: five before, and this one.
	hist := apiPost(t, f.s.base, f.secret, "/Message/History", map[string]any{"uid": f.aliceUID, "access_token": f.aliceTok, "uid_with": f.bobUID, "limit": 10})
	if n := len(hist["data"].([]any)); n != 6 {
		t.Fatalf("the server stored %d messages, want 6: %v", n, hist)
	}
	f.alice.waitFor(t, "still once", once)
}
