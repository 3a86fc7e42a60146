package module

import (
	"github.com/fiberchat/fiberchat/middleware"
	"github.com/gofiber/fiber/v2"
)

// endsSessions wraps a route that ends sessions of its caller's user
// (logout, password change): once it has succeeded, the user's open
// streams check their sessions and the ended ones say bye with reason.
func (m *Module) endsSessions(reason string, h fiber.Handler) fiber.Handler {
	return func(c *fiber.Ctx) error {
		if err := h(c); err != nil {
			return err
		}
		if c.Response().StatusCode() == fiber.StatusOK {
			m.sessionsEnded(middleware.SessionFrom(c).UID, reason)
		}
		return nil
	}
}

// sessionsEnded tells uid's streams, here and on every other process, that
// some of uid's sessions ended, with the bye reason for those whose
// session is one of them. The other processes also drop their cached
// sessions of uid: every path that ends sessions comes here, after
// forgetting this process's (see cluster).
func (m *Module) sessionsEnded(uid int64, reason string) {
	m.waiters.SessionsEnded(uid, reason)
	if m.cluster != nil {
		m.cluster.publishUser(uid, reason)
	}
}

// sessionEnds is the handlers' way to sessionsEnded.
type sessionEnds struct{ m *Module }

func (e sessionEnds) SessionsEnded(uid int64, reason string) { e.m.sessionsEnded(uid, reason) }

// notices is the handlers' Notices: a notice goes to uid's streams in
// this process and, with Redis, in every other (as a "notice:" note), so
// a read receipt, a contact change or a group change reaches a stream
// wherever it is open.
type notices struct{ m *Module }

func (n notices) Notice(frame []byte, uids ...int64) {
	for _, uid := range uids {
		n.m.waiters.Notice(uid, frame)
	}
	if n.m.cluster != nil {
		n.m.cluster.publishNotice(frame, uids)
	}
}
