package client_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/fiberchat/fiberchat/module"
	"github.com/gofiber/fiber/v2"
	"gorm.io/gorm"
)

// server is a fiberchat server on a loopback port, built the way the
// sample app runs one (parked long polls, hijacked connections kept), that
// can be stopped and started again on the same database and address.
// Examples use it because they have no testing.TB for chattest.
type server struct {
	db      *gorm.DB
	uploads string
	addr    string
	// Secret is the API client "test"'s.
	Secret string

	Module *module.Module
	App    *fiber.App
	served chan error
}

// testSecret is the API client's secret on every server.
const testSecret = "example-secret"

// newServer builds a server on db without serving it yet.
func newServer(db *gorm.DB, uploads string) (*server, error) {
	s := &server{db: db, uploads: uploads, addr: "127.0.0.1:0", Secret: testSecret}
	return s, s.build()
}

// build makes a fresh module and app on the database.
func (s *server) build() error {
	ctx := context.Background()
	m, err := module.New(module.Config{
		DB:            s.db,
		UploadDir:     s.uploads,
		Logger:        slog.New(slog.DiscardHandler),
		BcryptCost:    4,
		ParkLongPolls: true,
	})
	if err != nil {
		return err
	}
	if err := m.Migrate(ctx); err != nil {
		_ = m.Close()
		return err
	}
	if _, err := m.CreateClient(ctx, "test", s.Secret, "Test client"); err != nil && !errors.Is(err, module.ErrClientExists) {
		_ = m.Close()
		return err
	}
	app := fiber.New(m.AppConfig("test"))
	app.Server().KeepHijackedConns = true
	m.Mount(app)
	s.Module, s.App = m, app
	return nil
}

// start serves the built app, on the address of the previous start if
// there was one.
func (s *server) start() error {
	var ln net.Listener
	var err error
	for range 50 { // the old socket may linger for a moment
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.served = make(chan error, 1)
	go func() { s.served <- s.App.Listener(ln) }()
	return nil
}

// URL is the base URL clients use.
func (s *server) URL() string { return "http://" + s.addr }

// stop shuts the server down as a host does: the module first (which
// answers parked polls), then the app.
func (s *server) stop() error {
	err := s.Module.Close()
	if s.served != nil {
		if serr := s.App.ShutdownWithTimeout(5 * time.Second); serr != nil && err == nil {
			err = serr
		}
		if serr := <-s.served; serr != nil && err == nil {
			err = serr
		}
		s.served = nil
	}
	return err
}

// appTransport sends requests straight to a Fiber app, without a socket:
// a client on it reaches a server that is not listening.
type appTransport struct{ app *fiber.App }

func (t appTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	return t.app.Test(req, -1)
}

// tempDir makes a directory for an example, which has no t.TempDir.
func tempDir() (string, func()) {
	dir, err := os.MkdirTemp("", "fiberchat-client")
	if err != nil {
		panic(err)
	}
	return dir, func() { _ = os.RemoveAll(dir) }
}
