package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// hasGroupMessage is a predicate: the open group shows a message with
// exactly text from a sender named from, with the sender's avatar.
func hasGroupMessage(text, from string) string {
	return fmt.Sprintf(`[...document.querySelectorAll("#messages .theirs")].some((e) =>
		e.querySelector(".text").textContent === %q && e.querySelector(".from .name")?.textContent === %q &&
		!!e.querySelector(".from .avatar"))`, text, from)
}

// TestBrowserGroup: three people in three browsers. Alice makes a group
// with Bob and Carol on the page, which appears on theirs; each writes,
// each sees the others' messages with the sender's name; a group not open
// shows its unread count; Carol leaves and the others' member lists lose
// her; the owner adds her back, and removes Bob, whose page lets the
// group go.
func TestBrowserGroup(t *testing.T) {
	chromium := findChromium(t)
	s, secret := serveDemo(t, tempDSN(t))
	g := newGroupTest(t, chromium, s.base, secret)
	g.create()
	g.talk()
	g.notInOneToOne()
	g.leave()
	g.addAndRemove()
}

// groupTest is TestBrowserGroup's three people, each in a browser, and
// their group once made.
type groupTest struct {
	t                 *testing.T
	alice, bob, carol *browser
	aliceUID, bobUID  int64
	carolUID, gid     int64
	item              string // the group's selector in the list
}

// newGroupTest makes the three users through the API, Alice a contact of
// Bob and of Carol (who are not each other's), and opens their pages.
func newGroupTest(t *testing.T, chromium, base, secret string) *groupTest {
	t.Helper()
	alice := apiUser(t, base, secret, "Alice")
	bob := apiUser(t, base, secret, "Bob")
	carol := apiUser(t, base, secret, "Carol")
	befriend(t, base, secret, alice, bob)
	befriend(t, base, secret, alice, carol)
	g := &groupTest{t: t, aliceUID: alice.uid, bobUID: bob.uid, carolUID: carol.uid}
	g.alice = openPage(t, chromium, base, alice)
	g.bob = openPage(t, chromium, base, bob)
	g.carol = openPage(t, chromium, base, carol)
	return g
}

// groupName is shown as text, never as markup.
const groupName = `Crew <b>&</b> co`

// create: Alice makes the group from her contacts on the page; it
// appears on Bob's and Carol's, live.
func (g *groupTest) create() {
	t := g.t
	t.Helper()
	g.alice.do(t, "create the group",
		chromedp.Click("#group-new"),
		chromedp.WaitVisible("#group-form"),
		chromedp.SendKeys("#group-name", groupName),
		chromedp.Click(fmt.Sprintf(`#group-pick-list input[value="%d"]`, g.bobUID)),
		chromedp.Click(fmt.Sprintf(`#group-pick-list input[value="%d"]`, g.carolUID)),
		chromedp.Click("#group-form button[type=submit]"),
		chromedp.WaitVisible("#composer"),
	)
	g.alice.waitFor(t, "the group open with three members", fmt.Sprintf(`document.getElementById("peer-name").textContent === %q &&
		document.getElementById("group-sub").textContent.startsWith("3 members") && !!document.querySelector("#groups li.active")`, groupName))
	gid, err := chromedp.Run(g.alice.ctx, chromedp.Evaluate[int64](`Number(document.querySelector("#groups li.active").dataset.gid)`))
	if err != nil || gid == 0 {
		t.Fatalf("the new group's gid %d: %v", gid, err)
	}
	g.gid = gid
	g.item = fmt.Sprintf(`#groups li[data-gid="%d"]`, gid)
	for _, b := range []*browser{g.bob, g.carol} {
		b.waitFor(t, "the group, live", fmt.Sprintf(`document.querySelector('%s strong')?.textContent === %q && !document.querySelector('%s b')`, g.item, groupName, g.item))
	}
}

// badge is a predicate: the group's unread badge says n.
func (g *groupTest) badge(n int) string {
	return fmt.Sprintf(`document.querySelector('%s .badge')?.textContent === "%d"`, g.item, n)
}

// talk: each writes; the others see it with the sender's name, live, or
// as an unread count while the group is not open.
func (g *groupTest) talk() {
	t := g.t
	t.Helper()
	g.alice.send(t, "Hi both! Climbing on Saturday?")
	g.bob.waitFor(t, "an unread badge on the group", g.badge(1))
	g.bob.do(t, "open the group", chromedp.Click(g.item), chromedp.WaitVisible("#composer"))
	g.bob.waitFor(t, "Alice's message with her name", hasGroupMessage("Hi both! Climbing on Saturday?", "Alice"))
	g.bob.send(t, "I'm in.")
	g.alice.waitFor(t, "Bob's message with his name, live", hasGroupMessage("I'm in.", "Bob"))

	// Carol has not opened it: two unread. She then sees both, Bob's
	// under his name though he is not her contact.
	g.carol.waitFor(t, "two unread on the group", g.badge(2))
	g.carol.do(t, "open the group", chromedp.Click(g.item), chromedp.WaitVisible("#composer"))
	g.carol.waitFor(t, "both messages with their senders", hasGroupMessage("Hi both! Climbing on Saturday?", "Alice")+" && "+hasGroupMessage("I'm in.", "Bob"))
	g.carol.send(t, "Me too!")
	g.alice.waitFor(t, "Carol's message, live", hasGroupMessage("Me too!", "Carol"))
	g.bob.waitFor(t, "Carol's message, live", hasGroupMessage("Me too!", "Carol"))
}

// notInOneToOne: a group's message never lands in the 1:1 conversation
// with its sender that happens to be open.
func (g *groupTest) notInOneToOne() {
	t := g.t
	t.Helper()
	g.alice.clickContact(t, g.bobUID)
	g.alice.do(t, "open Bob", chromedp.WaitVisible("#peer-sub"))
	g.bob.send(t, "See you at 10.")
	g.alice.waitFor(t, "the group's badge while Bob's conversation is open", g.badge(1))
	g.alice.eval(t, `document.querySelectorAll("#messages li").length === 0`)
}

// leave: the members with their roles; Carol leaves, and the others see
// her gone from the member list.
func (g *groupTest) leave() {
	t := g.t
	t.Helper()
	for _, b := range []*browser{g.alice, g.bob} {
		// Clicked from JavaScript, again until it took: the list may be
		// drawn anew (a notice just came) between finding the item and
		// a mouse click at its place.
		b.clickUntil(t, "open the group", g.item, "#group-members-toggle")
		b.clickUntil(t, "open its members", "#group-members-toggle", "#members-box")
		b.waitFor(t, "three members with their roles", fmt.Sprintf(`(() => {
			const role = (uid) => document.querySelector('#members li[data-uid="' + uid + '"] .role')?.textContent;
			return document.querySelectorAll("#members li").length === 3 && role(%d) === "owner" && role(%d) === "member" && role(%d) === "member";
		})()`, g.aliceUID, g.bobUID, g.carolUID))
	}
	g.carol.eval(t, `window.confirm = () => true; true`)
	g.carol.do(t, "leave", chromedp.Click("#group-leave"), chromedp.WaitVisible("#conv-empty"))
	g.carol.waitFor(t, "the group gone from her list", fmt.Sprintf(`!document.querySelector('%s')`, g.item))
	for _, b := range []*browser{g.alice, g.bob} {
		b.waitFor(t, "Carol gone from the members", fmt.Sprintf(`document.querySelectorAll("#members li").length === 2 &&
			!document.querySelector('#members li[data-uid="%d"]') && document.getElementById("group-sub").textContent.startsWith("2 members")`, g.carolUID))
	}
}

// addAndRemove: the owner adds Carol back from the member list (the
// group reappears on her page) and removes Bob, whose page closes the
// group and says why.
func (g *groupTest) addAndRemove() {
	t := g.t
	t.Helper()
	g.alice.do(t, "add Carol back", chromedp.SetValue("#members-add-uid", fmt.Sprint(g.carolUID)), chromedp.Click("#members-add button"))
	for _, b := range []*browser{g.alice, g.bob} {
		b.waitFor(t, "Carol back among the members", fmt.Sprintf(`document.querySelectorAll("#members li").length === 3 && !!document.querySelector('#members li[data-uid="%d"]')`, g.carolUID))
	}
	g.carol.waitFor(t, "the group back in her list, live", fmt.Sprintf(`!!document.querySelector('%s')`, g.item))

	g.bob.eval(t, `!document.querySelector("#members li button.remove")`) // a member removes no one
	g.alice.eval(t, `window.confirm = () => true; true`)
	g.alice.do(t, "remove Bob", chromedp.Click(fmt.Sprintf(`#members li[data-uid="%d"] button.remove`, g.bobUID)))
	g.alice.waitFor(t, "Bob gone from the members", fmt.Sprintf(`!document.querySelector('#members li[data-uid="%d"]')`, g.bobUID))
	g.bob.waitFor(t, "the group closed, saying why", fmt.Sprintf(`!document.getElementById("conv-empty").hidden && !document.querySelector('%s') &&
		document.getElementById("side-note").textContent === %q`, g.item, "You were removed from "+groupName+"."))
}

// clickUntil clicks the element sel from JavaScript, again each time the
// poll finds shown still hidden, until shown is visible.
func (b *browser) clickUntil(t *testing.T, what, sel, shown string) {
	t.Helper()
	b.waitFor(t, what, fmt.Sprintf(`(() => {
		const done = document.querySelector(%q);
		if (done && done.offsetParent !== null) return true;
		document.querySelector(%q)?.click();
		return false;
	})()`, shown, sel))
}
