package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fiberchat/fiberchat/internal/chattest"
)

// The chat page (web/app) driven in a real headless Chromium: two people
// in two separate browsers register, become contacts and talk, each seeing
// the other's messages arrive without a reload. Skipped, saying so, when
// no Chromium is installed (.ci/run installs Debian's).
// (TestBrowserScreenshot takes README's screenshot.)

// findChromium returns the browser to drive: $CHROMIUM, /usr/bin/chromium,
// or chromium in PATH.
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("SKIPPED: no Chromium found (set CHROMIUM, or apt-get install chromium): the browser tests of the chat page did not run")
	return ""
}

// browser is one Chromium with its own profile: its own localStorage, so
// two of them are two people.
type browser struct {
	name string
	ctx  context.Context
	logs *chattest.SyncBuffer
}

func newBrowser(t *testing.T, execPath, name string) *browser {
	t.Helper()
	dir := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(execPath),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-default-browser-check", true),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.UserDataDir(dir),
		chromedp.WindowSize(980, 640),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	b := &browser{name: name, ctx: ctx, logs: &chattest.SyncBuffer{}}
	// The first action starts the browser; only then may another
	// goroutine use the context.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s (%s): %v", execPath, name, err)
	}
	go func() {
		for m, err := range chromedp.Console(ctx) {
			if err != nil {
				return
			}
			fmt.Fprintf(b.logs, "%s console: %s\n", name, m.String())
		}
	}()
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
		if t.Failed() {
			t.Logf("%s's browser console:\n%s", name, b.logs.String())
		}
	})
	return b
}

// do runs steps, failing the test with what they were for after timeout.
func (b *browser) do(t *testing.T, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("%s: %s: %v", b.name, what, err)
	}
}

// waitFor polls a JavaScript predicate for up to 30 s.
func (b *browser) waitFor(t *testing.T, what, predicate string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 40*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](predicate, chromedp.WithPollingTimeout(30*time.Second), chromedp.WithPollingInterval(100*time.Millisecond))); err != nil {
		t.Fatalf("%s: waiting for %s: %v", b.name, what, err)
	}
}

// eval runs JavaScript that ends in true.
func (b *browser) eval(t *testing.T, js string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](js)); err != nil || !ok {
		t.Fatalf("%s: %s: %v %v", b.name, js, ok, err)
	}
}

func (b *browser) text(t *testing.T, sel string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.TextContent(sel))
	if err != nil {
		t.Fatalf("%s: text of %s: %v", b.name, sel, err)
	}
	return s
}

// registerPage opens the page in a browser of its own and registers name
// there (password name-pass, in lower case); it returns the browser and
// the uid the page shows.
func registerPage(t *testing.T, chromium, base, name string) (*browser, int64) {
	t.Helper()
	b := newBrowser(t, chromium, strings.ToLower(name))
	return b, b.register(t, base, name, strings.ToLower(name)+"-pass")
}

// register signs up on the page and returns the uid it shows.
func (b *browser) register(t *testing.T, base, name, passwd string) int64 {
	t.Helper()
	b.do(t, "open the page and register",
		chromedp.Navigate(base+"/app/"),
		chromedp.WaitVisible("#auth"),
		chromedp.Click("#tab-register"),
		chromedp.SendKeys("#register-name", name),
		chromedp.SendKeys("#register-passwd", passwd),
		chromedp.Click("#register-form button[type=submit]"),
		chromedp.WaitVisible("#chat"),
	)
	b.waitFor(t, "my uid", `document.getElementById("me-uid").textContent !== ""`)
	uid, err := strconv.ParseInt(b.text(t, "#me-uid"), 10, 64)
	if err != nil {
		t.Fatalf("%s: uid shown: %v", b.name, err)
	}
	return uid
}

// openPage opens the chat page for p in a browser of its own, logged in
// with p's session, and waits for its stream.
func openPage(t *testing.T, chromium, base string, p person) *browser {
	t.Helper()
	b := newBrowser(t, chromium, strings.ToLower(p.name))
	b.openAs(t, base, p)
	return b
}

// openAs opens the chat page logged in with p's session (made through
// the API), and waits for its stream.
func (b *browser) openAs(t *testing.T, base string, p person) {
	t.Helper()
	session, _ := json.Marshal(map[string]any{"uid": p.uid, "access_token": p.tok})
	b.do(t, "open the page", chromedp.Navigate(base+"/app/"))
	b.eval(t, fmt.Sprintf(`localStorage.setItem("fiberchat:demo::session", %q); true`, session))
	b.do(t, "reload logged in", chromedp.Reload(), chromedp.WaitVisible("#chat"))
	b.waitFor(t, "the stream open", `document.body.dataset.connection === "live"`)
}

// contactItem is the selector of uid's row in the contact list.
func contactItem(uid int64) string {
	return fmt.Sprintf(`#contacts li[data-uid="%d"]`, uid)
}

// openContact opens the conversation with the contact uid.
func (b *browser) openContact(t *testing.T, uid int64) {
	t.Helper()
	b.clickContact(t, uid)
	b.do(t, fmt.Sprintf("open the conversation with %d", uid), chromedp.WaitVisible("#composer"))
}

// clickContact clicks uid's row in the contact list from within the
// page. The list is drawn again as messages come (its unread counts), so
// a node found by one call to the browser may be gone by the next, as it
// was between chromedp.Click's finding the row and clicking it.
func (b *browser) clickContact(t *testing.T, uid int64) {
	t.Helper()
	sel := contactItem(uid)
	b.waitFor(t, fmt.Sprintf("%d in the contacts", uid), fmt.Sprintf(`document.querySelector(%q) !== null`, sel))
	b.eval(t, fmt.Sprintf(`document.querySelector(%q).click(); true`, sel))
}

// send writes text in the open conversation and waits until the server
// has stored it (the message has its id).
func (b *browser) send(t *testing.T, text string) {
	t.Helper()
	b.do(t, "send "+text, chromedp.SendKeys("#text", text), chromedp.Click("#composer button[type=submit]"))
	b.waitFor(t, "sent "+text, fmt.Sprintf(`[...document.querySelectorAll("#messages .mine[data-id] .text")].some((e) => e.textContent === %q)`, text))
}

// befriendOnPages makes two people registered on their pages contacts
// there: asker asks with the add box, asked accepts the request.
func befriendOnPages(t *testing.T, asker, asked *browser, askerUID, askedUID int64) {
	t.Helper()
	asker.do(t, "ask "+asked.name, chromedp.SendKeys("#add-uid", strconv.FormatInt(askedUID, 10)), chromedp.Click("#add-form button"))
	asker.waitFor(t, "the request sent", `document.getElementById("side-note").textContent.startsWith("Request sent")`)
	reqSel := fmt.Sprintf(`#requests li[data-uid="%d"] button.accept`, askerUID)
	asked.do(t, "see "+asker.name+"'s request", chromedp.Click("#refresh"), chromedp.WaitVisible(reqSel))
	asked.do(t, "accept it", chromedp.Click(reqSel))
}

// openBlank opens the chat page, logged in as no one, for a script
// that imports fiberchat.js from it.
func openBlank(t *testing.T, chromium, base string) *browser {
	t.Helper()
	b := newBrowser(t, chromium, "page")
	b.do(t, "open the page", chromedp.Navigate(base+"/app/"))
	return b
}

// check runs script, a promise that resolves to the checks that failed,
// and reports each as an error of the test.
func (b *browser) check(t *testing.T, script string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 60*time.Second)
	defer cancel()
	failed, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](script, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("the script: %v", err)
	}
	for _, f := range failed {
		t.Error(f)
	}
}

// hasMessage is a predicate: a message with exactly text, on side
// ("mine" or "theirs"), is in the open conversation.
func hasMessage(side, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages .%s .text")].some((e) => e.textContent === %q)`, side, text)
}

func TestBrowserChat(t *testing.T) {
	chromium := findChromium(t)
	s := startServe(t, tempDSN(t))
	alice, aliceUID := registerPage(t, chromium, s.base, "Alice")
	bob, bobUID := registerPage(t, chromium, s.base, "Bob")
	if aliceUID == bobUID {
		t.Fatalf("both registered as %d", aliceUID)
	}

	// A wrong password is explained in words.
	bob.do(t, "log out and log in with a wrong password",
		chromedp.Click("#logout"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SetValue("#login-uid", strconv.FormatInt(bobUID, 10)),
		chromedp.SendKeys("#login-passwd", "not-my-password"),
		chromedp.Click("#login-form button[type=submit]"),
		chromedp.WaitVisible("#auth-error"),
	)
	if got := bob.text(t, "#auth-error"); got != "Wrong user id, handle or password." {
		t.Fatalf("wrong password shows %q", got)
	}
	bob.eval(t, `document.getElementById("login-passwd").value = ""; true`)
	bob.do(t, "log in", chromedp.SendKeys("#login-passwd", "bob-pass"),
		chromedp.Click("#login-form button[type=submit]"), chromedp.WaitVisible("#chat"))

	// Alice asks, Bob accepts.
	befriendOnPages(t, alice, bob, aliceUID, bobUID)
	aliceItem, bobItem := contactItem(aliceUID), contactItem(bobUID)
	bob.waitFor(t, "Alice among the contacts", fmt.Sprintf(`!!document.querySelector('%s')`, aliceItem))

	// Alice opens the conversation and writes; Bob's page shows it live.
	alice.do(t, "refresh", chromedp.Click("#refresh"), chromedp.WaitVisible(bobItem))
	alice.openContact(t, bobUID)
	alice.send(t, "Hi Bob! Are you coming to the climbing gym tonight?")
	bob.waitFor(t, "an unread badge from Alice", fmt.Sprintf(`!!document.querySelector('%s .badge')`, aliceItem))
	bob.openContact(t, aliceUID)
	bob.waitFor(t, "Alice's message", hasMessage("theirs", "Hi Bob! Are you coming to the climbing gym tonight?"))

	// Both ways, live, in open conversations.
	bob.send(t, "Yes! 7 pm at the usual place?")
	alice.waitFor(t, "Bob's reply, live", hasMessage("theirs", "Yes! 7 pm at the usual place?"))
	alice.send(t, "Perfect, see you there!")
	bob.waitFor(t, "Alice's answer, live", hasMessage("theirs", "Perfect, see you there!"))
	bob.send(t, "I'll bring the rope.")
	alice.waitFor(t, "Bob's last message, live", hasMessage("theirs", "I'll bring the rope."))

	// At 360 px the page shows one pane at a time, without sideways
	// scrolling.
	bob.do(t, "narrow the window", chromedp.EmulateViewport(360, 700))
	bob.waitFor(t, "the conversation alone at 360 px", `getComputedStyle(document.getElementById("side")).display === "none" &&
		document.getElementById("composer").getBoundingClientRect().right <= 360 &&
		document.documentElement.scrollWidth <= 360`)
	bob.do(t, "go back to the contacts", chromedp.Click("#back"))
	bob.waitFor(t, "the contacts alone at 360 px", `getComputedStyle(document.getElementById("conv")).display === "none" &&
		document.documentElement.scrollWidth <= 360`)
	bob.openContact(t, aliceUID)

	// A reload keeps the session and the open conversation, with read
	// ticks from History: Bob has read everything Alice sent.
	alice.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible("#composer"))
	alice.waitFor(t, "the conversation after reload", hasMessage("theirs", "I'll bring the rope.")+" && "+hasMessage("mine", "Perfect, see you there!"))
	if got := alice.text(t, "#peer-name"); got != "Bob" {
		t.Fatalf("after reload the open conversation is with %q", got)
	}
	alice.waitFor(t, "read ticks", `[...document.querySelectorAll("#messages .mine")].every((e) => e.classList.contains("read"))`)
	// And it still receives live after the reload.
	bob.send(t, "On my way.")
	alice.waitFor(t, "a live message after reload", hasMessage("theirs", "On my way."))
}
