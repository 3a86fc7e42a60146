package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/fiberchat/fiberchat/client"
)

// e2eeVectorsScript checks fiberchat.js's end-to-end encryption against
// the Go SDK's known-answer vectors (%s: client/testdata/e2ee_vectors.json)
// in the browser's Web Crypto: the same envelope from the same inputs,
// bob reads it, the same safety number, and a tampered ct or wrapped key
// is an E2EEError. It resolves to the checks that failed.
const e2eeVectorsScript = `(async () => {
  const v = %s;
  const { importDevice, sealMessage, openMessage, safetyNumber, fromBase64, toBase64, E2EEError, newDevice } = await import("/static/fiberchat.js");
  const failed = [];
  const check = (ok, what, got) => ok || failed.push(what + ": " + JSON.stringify(got));
  const alice = await importDevice("a1", fromBase64(v.alice_private), fromBase64(v.alice_public));
  const bob = await importDevice("b1", fromBase64(v.bob_private), fromBase64(v.bob_public));
  const rnd = fromBase64(v.random);
  let at = 0;
  const random = (n) => { const b = rnd.slice(at, at + n); at += n; return b; };
  const keys = [{ uid: 2, device_id: "b1", key: v.bob_public }, { uid: 1, device_id: "a1", key: v.alice_public }];
  const env = await sealMessage(alice, keys, v.plaintext, random);
  check(JSON.stringify(env) === JSON.stringify(v.envelope), "the envelope", env);
  check((await openMessage(bob, 2, v.alice_public, v.envelope)) === v.plaintext, "bob opens it", null);
  check((await openMessage(alice, 1, v.alice_public, v.envelope)) === v.plaintext, "alice opens it", null);
  check((await safetyNumber(keys)) === v.safety, "the safety number", await safetyNumber(keys));
  const fails = async (enc, what) => {
    try { await openMessage(bob, 2, v.alice_public, enc); failed.push(what + " opened"); }
    catch (e) { check(e instanceof E2EEError, what, String(e)); }
  };
  const flip = (b64, i) => { const b = fromBase64(b64); b[i] ^= 1; return toBase64(b); };
  await fails({ ...v.envelope, ct: flip(v.envelope.ct, 3) }, "tampered ct");
  await fails({ ...v.envelope, keys: v.envelope.keys.map((k) => ({ ...k, wrapped: flip(k.wrapped, 20) })) }, "tampered wrapped key");
  const d = await newDevice("fresh");
  check(d.publicKey.length === 32 && !d.privateKey.extractable, "a new device's key: 32 bytes public, private not extractable", d.privateKey.extractable);
  return failed;
})()`

// TestBrowserE2EEVectors: the page's Web Crypto implementation and the
// Go SDK's cannot drift: both pass the same known-answer vectors.
func TestBrowserE2EEVectors(t *testing.T) {
	chromium := findChromium(t)
	vectors, err := os.ReadFile(filepath.Join("..", "client", "testdata", "e2ee_vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	s := startServe(t, tempDSN(t))
	openBlank(t, chromium, s.base).check(t, fmt.Sprintf(e2eeVectorsScript, vectors))
}

// e2eePageSetup, as B in the page: a fresh device, its key published,
// and "from the page" sent encrypted to A. It resolves to the checks that
// failed.
const e2eePageSetup = `(async () => {
  const A = %d, B = %d;
  const { configure, newDevice } = await import("/static/fiberchat.js");
  const cfg = await (await fetch("/app/config.json")).json();
  globalThis.ben = configure({ clientId: cfg.client_id, tokens: cfg.tokens, session: { uid: B, access_token: %q } });
  globalThis.dev = await newDevice("page");
  await ben.publishKey(dev);
  await ben.sendEncrypted(A, "from the page", dev);
  return [];
})()`

// e2eePageRead, as B in the page: the newest message from A, decrypted.
const e2eePageRead = `(async () => {
  const A = %d;
  const h = await ben.history(A, { limit: 1 });
  const m = h.data[0];
  if (!m || !m.enc || "message" in m) return ["not an encrypted message: " + JSON.stringify(m)];
  const text = await ben.decrypt(m, dev);
  return text === "from go" ? [] : ["decrypted " + JSON.stringify(text)];
})()`

// goDevice is p's session in the Go SDK on a new device whose key it
// has published.
func goDevice(t *testing.T, base, secret string, p person) *client.Client {
	t.Helper()
	dev, err := client.NewDevice("go")
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(base, "demo", secret, client.WithDevice(dev), client.WithSession(client.Session{UID: p.uid, AccessToken: p.tok}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.PublishKey(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestBrowserE2EEInterop: a message the page encrypts with Web Crypto is
// read by the Go SDK, and one the Go SDK encrypts is read in the page.
func TestBrowserE2EEInterop(t *testing.T) {
	chromium := findChromium(t)
	forEachDatabase(t, func(t *testing.T, dsn string) { runBrowserE2EEInterop(t, chromium, dsn) })
}

func runBrowserE2EEInterop(t *testing.T, chromium, dsn string) {
	s, secret, a, b := serveContacts(t, dsn, "Ann", "Ben")
	ann := goDevice(t, s.base, secret, a)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	tab := openBlank(t, chromium, s.base)
	tab.check(t, fmt.Sprintf(e2eePageSetup, a.uid, b.uid, b.tok))
	page, err := ann.History(ctx, client.HistoryRequest{With: b.uid, Limit: 1})
	if err != nil || len(page.Messages) != 1 || !page.Messages[0].Encrypted || page.Messages[0].Message.Message != "from the page" {
		t.Fatalf("Go reads the page's message: %+v, %v", page, err)
	}
	if _, err := ann.SendEncrypted(ctx, b.uid, "from go"); err != nil {
		t.Fatal(err)
	}
	tab.check(t, fmt.Sprintf(e2eePageRead, a.uid))
}

// TestBrowserE2EEPage: the page makes its device (the private key not
// extractable, kept in IndexedDB) and publishes its key; with a contact
// who has one, the conversation shows a lock and the safety number the
// Go SDK computes too; a message the Go SDK encrypts shows decrypted,
// behind a lock, and one the page sends is encrypted (the Go SDK reads
// it); a contact's new key warns.
func TestBrowserE2EEPage(t *testing.T) {
	chromium := findChromium(t)
	forEachDatabase(t, func(t *testing.T, dsn string) { runBrowserE2EEPage(t, chromium, dsn) })
}

func runBrowserE2EEPage(t *testing.T, chromium, dsn string) {
	s, secret, a, b := serveContacts(t, dsn, "Ann", "Ben")
	ann := goDevice(t, s.base, secret, a)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	ben := openPage(t, chromium, s.base, b)
	ben.openContact(t, a.uid)
	ben.waitFor(t, "the lock", `!document.getElementById("peer-lock").hidden`)
	safety, err := ann.SafetyNumber(ctx, b.uid)
	if err != nil {
		t.Fatal(err)
	}
	if got := ben.text(t, "#peer-safety"); got != safety {
		t.Fatalf("the page's safety number %q, the Go SDK's %q", got, safety)
	}

	if _, err := ann.SendEncrypted(ctx, b.uid, "sealed from go"); err != nil {
		t.Fatal(err)
	}
	ben.waitFor(t, "the message decrypted, behind a lock", `[...document.querySelectorAll("#messages .theirs")].some((e) =>
		e.querySelector(".text").textContent === "sealed from go" && !!e.querySelector(".lock"))`)
	ben.do(t, "send", chromedp.SendKeys("#text", "sealed from the page"), chromedp.Click("#composer button[type=submit]"))
	ben.waitFor(t, "sent", `[...document.querySelectorAll("#messages .mine")].some((e) => e.dataset.id && !!e.querySelector(".lock"))`)
	page, err := ann.History(ctx, client.HistoryRequest{With: b.uid, Limit: 1})
	if err != nil || len(page.Messages) != 1 || !page.Messages[0].Encrypted || page.Messages[0].Message.Message != "sealed from the page" {
		t.Fatalf("Go reads the page's message: %+v, %v", page, err)
	}

	goDevice(t, s.base, secret, a) // a new device of Ann's
	ben.waitFor(t, "the key-change warning", `!document.getElementById("peer-keys-changed").hidden`)
	if got := ben.text(t, "#peer-safety"); got == safety {
		t.Fatal("the safety number did not change with Ann's keys")
	}
}

// TestBrowserE2EEPageToPage: two browsers talk encrypted: what Ann's page
// sends, Ben's shows decrypted behind a lock, and the server keeps only
// its enc (History without a device sees an encrypted message).
func TestBrowserE2EEPageToPage(t *testing.T) {
	chromium := findChromium(t)
	forEachDatabase(t, func(t *testing.T, dsn string) { runBrowserE2EEPageToPage(t, chromium, dsn) })
}

func runBrowserE2EEPageToPage(t *testing.T, chromium, dsn string) {
	s, secret, a, b := serveContacts(t, dsn, "Ann", "Ben")
	ben, ann := openPage(t, chromium, s.base, b), openPage(t, chromium, s.base, a)
	ann.openContact(t, b.uid)
	ann.waitFor(t, "the lock", `!document.getElementById("peer-lock").hidden`)
	ann.do(t, "send", chromedp.SendKeys("#text", "page to page"), chromedp.Click("#composer button[type=submit]"))
	ben.openContact(t, a.uid)
	ben.waitFor(t, "the message decrypted, behind a lock", `[...document.querySelectorAll("#messages .theirs")].some((e) =>
		e.querySelector(".text").textContent === "page to page" && !!e.querySelector(".lock"))`)
	for _, p := range []*browser{ann, ben} {
		// Shown once the peer's key is fetched, which may come after the
		// message itself.
		p.waitFor(t, "the safety number", `document.getElementById("peer-safety").textContent !== ""`)
	}
	if sa, sb := ann.text(t, "#peer-safety"), ben.text(t, "#peer-safety"); sa == "" || sa != sb {
		t.Fatalf("safety numbers %q and %q", sa, sb)
	}
	plain, err := client.New(s.base, "demo", secret, client.WithSession(client.Session{UID: b.uid, AccessToken: b.tok}))
	if err != nil {
		t.Fatal(err)
	}
	page, err := plain.History(context.Background(), client.HistoryRequest{With: a.uid, Limit: 1})
	if err != nil || len(page.Messages) != 1 || !page.Messages[0].Encrypted || page.Messages[0].Message.Message != "" {
		t.Fatalf("History without a device: %+v, %v", page, err)
	}
}
