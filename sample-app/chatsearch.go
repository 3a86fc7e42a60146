package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/fiberchat/fiberchat/client"
)

// login opens the session by uid, or by handle when uid is 0, and
// returns the uid.
func login(ctx context.Context, c *client.Client, uid int64, handle, password string) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if uid != 0 {
		if _, err := c.Login(ctx, uid, password); err != nil {
			return 0, fmt.Errorf("login as %d: %s", uid, describe(err))
		}
		return uid, nil
	}
	sess, err := c.LoginHandle(ctx, handle, password)
	if err != nil {
		return 0, fmt.Errorf("login as @%s: %s", handle, describe(err))
	}
	return sess.UID, nil
}

// search lists the people whose handle starts with q or whose name
// contains it.
func (s *chatSession) search(ctx context.Context, q string) error {
	if len([]rune(q)) < 2 {
		s.out.printf("/search wants at least 2 characters: /search TEXT\n")
		return nil
	}
	found, err := s.c.Search(ctx, q)
	if err != nil {
		return err
	}
	if len(found) == 0 {
		s.out.printf("no one found for %q\n", q)
	}
	for _, p := range found {
		s.remember(p)
		s.out.printf("  %d  %s%s\n", p.UID, p.Name, handleLabel(p.Handle))
	}
	return nil
}

// addHandle asks the user with that handle to be a contact: search finds
// them (so only users who let themselves be found), then /add UID does.
func (s *chatSession) addHandle(ctx context.Context, handle string) error {
	handle = strings.ToLower(handle)
	if len(handle) < 2 {
		s.out.printf("/add wants a handle: /add @HANDLE\n")
		return nil
	}
	found, err := s.c.Search(ctx, handle)
	if err != nil {
		return err
	}
	for _, p := range found {
		if p.Handle == handle {
			s.remember(p)
			return s.add(ctx, p.UID)
		}
	}
	s.out.printf("no one found with handle @%s\n", handle)
	return nil
}

// handleLabel is "  @handle", or nothing for a user without one.
func handleLabel(h string) string {
	if h == "" {
		return ""
	}
	return "  @" + h
}
