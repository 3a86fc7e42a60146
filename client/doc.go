// Package client is a typed Go client for a fiberchat server: the HTTP
// contract of API.md (request signing, the JSON envelope, the user,
// contacts, message, conversation and group routes, and the push stream)
// as Go methods, request structs and errors.
//
// It is for Go programs that talk to a chat over HTTP: a bot, a command
// line tool, a host's backend acting for its users, and fiberchat's own
// tests. It is a package of its own, importing nothing of the server, so
// that such a program links neither Fiber nor GORM and never hand-builds
// a signed request: the api_token of every route, the user credentials in
// the body and the error envelope are written once, here.
//
// A Client holds one API client's credentials (client_id and secret) and
// at most one user session at a time:
//
//	c, err := client.New("https://example.com/chat", "bot", secret)
//	uid, err := c.Register(ctx, "Bot", "password")
//	_, err = c.Login(ctx, uid, "password")
//	_, err = c.Send(ctx, peer, "hello")
//	err = c.Listen(ctx, 0, func(m client.Message) error { … })
//
// Every failure the server answers is an *Error carrying the HTTP status
// and the envelope's code (see the Code constants and IsCode); a failure
// to reach the server is returned as the transport reported it, wrapped
// with the route. A Client is safe for concurrent use.
package client
