// Package web holds fiberchat's browser files, embedded so that a binary
// needs nothing beside it:
//
//   - ClientJS is fiberchat.js, a dependency-free ES module that signs and
//     sends every route of the contract (API.md) and listens for messages
//     over the push stream, falling back to long polls. The module serves
//     it under its mount prefix at GET /static/fiberchat.js; a host may as
//     well copy the file into its own assets.
//   - App is the web chat page (index.html, app.css, app.js), served by
//     the sample app at /app/ and by examples/host to its signed-in users.
//     The page imports ./fiberchat.js beside it and reads its settings
//     (mount prefix, client_id, the day's api_tokens, and for a host an
//     URL that hands out a chat session) from ./config.json, which the
//     serving program writes with module.BrowserTokens: the client secret
//     stays on the server. Beside them, notify.js (notifications while
//     the tab is hidden, the button that asks for permission, the push
//     subscription) and sw.js, the service worker that shows Web Pushes
//     (API.md §14). sw.js is served from the page's own directory, so
//     its scope is the page's (no Service-Worker-Allowed header), and a
//     server should send it, as the page, with Cache-Control: no-cache,
//     so that browsers pick up a new version at once.
//
// The files are plain HTML, CSS and JavaScript: no build step, no Node
// toolchain.
package web

import (
	"embed"
	"io/fs"
)

// ClientJS is the source of fiberchat.js (see the package comment).
//
//go:embed fiberchat.js
var ClientJS []byte

// appFiles holds the chat page under app/.
//
//go:embed app
var appFiles embed.FS

// App is the chat page's files (index.html, app.css, app.js) at the root
// of the returned file system.
func App() fs.FS {
	sub, err := fs.Sub(appFiles, "app")
	if err != nil {
		// "app" is a literal directory embedded above: Sub cannot fail.
		panic(err)
	}
	return sub
}
