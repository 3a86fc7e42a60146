package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserFiles drives files (API.md §13) in two Chromiums: an image
// dropped on Alice's conversation is shown to Bob as a loaded thumbnail,
// live, and a text file pasted into the message box and one picked with
// 📎 arrive as cards that link to their signed URLs.
func TestBrowserFiles(t *testing.T) {
	chromium := findChromium(t)
	s := startServe(t, tempDSN(t))
	alice, aliceUID := registerPage(t, chromium, s.base, "Alice")
	bob, bobUID := registerPage(t, chromium, s.base, "Bob")

	befriendOnPages(t, alice, bob, aliceUID, bobUID)
	aliceItem, bobItem := contactItem(aliceUID), contactItem(bobUID)
	// The lists redraw as the contact requests settle: a row clicked
	// just as it is replaced opens nothing, so each click is repeated
	// until the conversation shows (no conversation is open before).
	alice.do(t, "refresh", chromedp.Click("#refresh"))
	alice.clickUntil(t, "Bob's conversation open", bobItem, "#composer")
	bob.clickUntil(t, "Alice's conversation open", aliceItem, "#composer")

	// A 640×480 picture drawn on a canvas, dropped on the conversation.
	alice.evalAsync(t, `(async () => {
		const cv = document.createElement("canvas");
		cv.width = 640; cv.height = 480;
		const g = cv.getContext("2d");
		g.fillStyle = "#c33"; g.fillRect(0, 0, 640, 480);
		g.fillStyle = "#36c"; g.fillRect(100, 100, 200, 150);
		const blob = await new Promise((ok) => cv.toBlob(ok, "image/png"));
		const dt = new DataTransfer();
		dt.items.add(new File([blob], "sunset.png", { type: "image/png" }));
		document.getElementById("conv-open").dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
		return true;
	})()`)
	alice.waitFor(t, "the image sent", `[...document.querySelectorAll("#messages .mine[data-id] img.thumb")].some((i) => i.complete && i.naturalWidth > 0)`)
	bob.waitFor(t, "Alice's image shown, loaded", `[...document.querySelectorAll("#messages .theirs img.thumb")].some((i) => i.complete && i.naturalWidth === 320 && i.naturalHeight === 240 && i.alt === "sunset.png")`)

	// A text file pasted into the message box.
	alice.eval(t, `(() => {
		const dt = new DataTransfer();
		dt.items.add(new File(["meeting notes"], "notes.txt", { type: "text/plain" }));
		document.getElementById("text").dispatchEvent(new ClipboardEvent("paste", { clipboardData: dt, bubbles: true, cancelable: true }));
		return true;
	})()`)
	bob.waitFor(t, "the pasted file's card", `[...document.querySelectorAll("#messages .theirs a.file-card")].some((a) => a.textContent.includes("notes.txt") && a.href.includes("/file/"))`)

	// One picked with the 📎 button's file input.
	path := filepath.Join(t.TempDir(), "plan.pdf")
	if err := os.WriteFile(path, []byte("%PDF-1.4 a plan"), 0o600); err != nil {
		t.Fatal(err)
	}
	alice.do(t, "pick a file", chromedp.SetUploadFiles("#file-input", []string{path}))
	bob.waitFor(t, "the picked file's card", `[...document.querySelectorAll("#messages .theirs a.file-card")].some((a) => a.textContent.includes("plan.pdf"))`)

	// The card's link downloads the file, from the page, as Bob.
	bob.evalAsync(t, `(async () => {
		const a = [...document.querySelectorAll("#messages .theirs a.file-card")].find((a) => a.textContent.includes("notes.txt"));
		const r = await fetch(a.href);
		return r.ok && (await r.text()) === "meeting notes" && r.headers.get("Content-Disposition").startsWith("attachment");
	})()`)
}

// evalAsync runs JavaScript whose promise resolves to true.
func (b *browser) evalAsync(t *testing.T, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js, chromedp.EvalAwaitPromise)); err != nil || !ok {
		t.Fatalf("%s: %s: %v %v", b.name, js, ok, err)
	}
}
