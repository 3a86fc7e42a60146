package main

import (
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestBrowserSearchAndAdd: Dave registers on the page with a handle,
// finds Carol by part of her handle, sees the others the search found
// (by name), and asks her with the Add button of her row; he then logs
// in again by his handle, changes it (after trying Carol's), and Carol
// has his request, handle and all.
func TestBrowserSearchAndAdd(t *testing.T) {
	chromium := findChromium(t)
	s, secret := serveDemo(t, tempDSN(t))
	carol := int64(apiPost(t, s.base, secret, "/user/reg/ajax_reg", map[string]any{"name": "Carol", "passwd": "secret1", "handle": "carol.k"})["uid"].(float64))
	carla := int64(apiPost(t, s.base, secret, "/user/reg/ajax_reg", map[string]any{"name": "Carla Jones", "passwd": "secret1"})["uid"].(float64))
	carolTok := apiPost(t, s.base, secret, "/user/login", map[string]any{"handle": "carol.k", "passwd": "secret1"})["access_token"].(string)

	dave := newBrowser(t, chromium, "dave")
	dave.do(t, "open the page and register with a handle",
		chromedp.Navigate(s.base+"/app/"),
		chromedp.WaitVisible("#auth"),
		chromedp.Click("#tab-register"),
		chromedp.SendKeys("#register-name", "Dave"),
		chromedp.SendKeys("#register-handle", "Dave_1"),
		chromedp.SendKeys("#register-passwd", "dave-pass"),
		chromedp.Click("#register-form button[type=submit]"),
		chromedp.WaitVisible("#chat"),
	)
	dave.waitFor(t, "my handle shown", `document.getElementById("me-handle").textContent === " · @dave_1"`)

	dave.do(t, "search for car", chromedp.SendKeys("#add-uid", "car"), chromedp.Click("#add-form button"), chromedp.WaitVisible("#search-box"))
	row := func(uid int64) string { return fmt.Sprintf(`#search-results li[data-uid="%d"]`, uid) }
	dave.waitFor(t, "Carol (by handle) then Carla (by name)", fmt.Sprintf(`(() => {
		const rows = [...document.querySelectorAll("#search-results li")].map((li) => li.dataset.uid);
		return rows.join(",") === "%d,%d" &&
			document.querySelector('%s small').textContent === "@carol.k · id %d";
	})()`, carol, carla, row(carol), carol))
	dave.do(t, "add Carol", chromedp.Click(row(carol)+" button.add"))
	dave.waitFor(t, "the request sent", fmt.Sprintf(`document.getElementById("side-note").textContent.startsWith("Request sent") &&
		document.querySelector('%s button.add').textContent === "Asked"`, row(carol)))

	dave.do(t, "search for no one", chromedp.SetValue("#add-uid", "@nobody.here"), chromedp.Click("#add-form button"))
	dave.waitFor(t, "no one found", `document.getElementById("side-note").textContent === "No one found for “nobody.here”." &&
		document.querySelectorAll("#search-results li").length === 0`)

	dave.do(t, "log out and in again by handle",
		chromedp.Click("#logout"),
		chromedp.WaitVisible("#login-form"),
		chromedp.SetValue("#login-uid", "@DAVE_1"),
		chromedp.SendKeys("#login-passwd", "dave-pass"),
		chromedp.Click("#login-form button[type=submit]"),
		chromedp.WaitVisible("#chat"),
	)
	dave.waitFor(t, "logged in as Dave", `document.getElementById("me-name").textContent === "Dave"`)

	// A taken handle is said in words; a free one is shown at once.
	dave.do(t, "take Carol's handle", chromedp.Click("#profile-toggle"), chromedp.WaitVisible("#profile-handle"),
		chromedp.SetValue("#profile-handle", "Carol.K"), chromedp.Click("#profile button[type=submit]"))
	dave.waitFor(t, "the handle refused", `document.getElementById("profile-error").textContent === "That handle is taken. Choose another."`)
	dave.do(t, "take a free one", chromedp.SetValue("#profile-handle", "dave.two"), chromedp.Click("#profile button[type=submit]"))
	dave.waitFor(t, "the new handle shown", `document.getElementById("me-handle").textContent === " · @dave.two"`)

	reqs := apiPost(t, s.base, secret, "/Contacts/list/add", map[string]any{"uid": carol, "access_token": carolTok})
	data, _ := reqs["data"].([]any)
	if len(data) != 1 || data[0].(map[string]any)["handle"] != "dave.two" {
		t.Fatalf("Carol's requests: %v", reqs)
	}
}
