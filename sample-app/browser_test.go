package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
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

// hasMessage is a predicate: a message with exactly text, on side
// ("mine" or "theirs"), is in the open conversation.
func hasMessage(side, text string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages .%s .text")].some((e) => e.textContent === %q)`, side, text)
}

func TestBrowserChat(t *testing.T) {
	chromium := findChromium(t)
	s := startServe(t, "sqlite:"+filepath.Join(t.TempDir(), "chat.db"))
	alice := newBrowser(t, chromium, "alice")
	bob := newBrowser(t, chromium, "bob")

	aliceUID := alice.register(t, s.base, "Alice", "alice-pass")
	bobUID := bob.register(t, s.base, "Bob", "bob-pass")
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
	alice.do(t, "add Bob", chromedp.SendKeys("#add-uid", strconv.FormatInt(bobUID, 10)), chromedp.Click("#add-form button"))
	alice.waitFor(t, "the request sent", `document.getElementById("side-note").textContent.startsWith("Request sent")`)
	reqSel := fmt.Sprintf(`#requests li[data-uid="%d"] button.accept`, aliceUID)
	bob.do(t, "see Alice's request", chromedp.Click("#refresh"), chromedp.WaitVisible(reqSel))
	bob.do(t, "accept it", chromedp.Click(reqSel))
	bob.waitFor(t, "Alice among the contacts", fmt.Sprintf(`!!document.querySelector('#contacts li[data-uid="%d"]')`, aliceUID))

	// Alice opens the conversation and writes; Bob's page shows it live.
	bobItem := fmt.Sprintf(`#contacts li[data-uid="%d"]`, bobUID)
	alice.do(t, "open Bob", chromedp.Click("#refresh"), chromedp.WaitVisible(bobItem), chromedp.Click(bobItem), chromedp.WaitVisible("#composer"))
	send := func(b *browser, text string) {
		t.Helper()
		b.do(t, "send "+text, chromedp.SendKeys("#text", text), chromedp.Click("#composer button[type=submit]"))
		b.waitFor(t, "sent "+text, fmt.Sprintf(`[...document.querySelectorAll("#messages .mine[data-id] .text")].some((e) => e.textContent === %q)`, text))
	}
	send(alice, "Hi Bob! Are you coming to the climbing gym tonight?")
	aliceItem := fmt.Sprintf(`#contacts li[data-uid="%d"]`, aliceUID)
	bob.waitFor(t, "an unread badge from Alice", fmt.Sprintf(`!!document.querySelector('%s .badge')`, aliceItem))
	bob.do(t, "open Alice", chromedp.Click(aliceItem), chromedp.WaitVisible("#composer"))
	bob.waitFor(t, "Alice's message", hasMessage("theirs", "Hi Bob! Are you coming to the climbing gym tonight?"))

	// Both ways, live, in open conversations.
	send(bob, "Yes! 7 pm at the usual place?")
	alice.waitFor(t, "Bob's reply, live", hasMessage("theirs", "Yes! 7 pm at the usual place?"))
	send(alice, "Perfect, see you there!")
	bob.waitFor(t, "Alice's answer, live", hasMessage("theirs", "Perfect, see you there!"))
	send(bob, "I'll bring the rope.")
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
	bob.do(t, "open Alice again", chromedp.Click(aliceItem), chromedp.WaitVisible("#composer"))

	// A reload keeps the session and the open conversation, with read
	// ticks from History: Bob has read everything Alice sent.
	alice.do(t, "reload", chromedp.Reload(), chromedp.WaitVisible("#composer"))
	alice.waitFor(t, "the conversation after reload", hasMessage("theirs", "I'll bring the rope.")+" && "+hasMessage("mine", "Perfect, see you there!"))
	if got := alice.text(t, "#peer-name"); got != "Bob" {
		t.Fatalf("after reload the open conversation is with %q", got)
	}
	alice.waitFor(t, "read ticks", `[...document.querySelectorAll("#messages .mine")].every((e) => e.classList.contains("read"))`)
	// And it still receives live after the reload.
	send(bob, "On my way.")
	alice.waitFor(t, "a live message after reload", hasMessage("theirs", "On my way."))
}
