package main

import (
	"strings"
	"testing"
)

// The terminal chat registers and logs in by handle, finds people with
// /search and asks them with /add @handle.
func TestChatSearchAndAddByHandle(t *testing.T) {
	t.Parallel()
	_, _, env := serveChat(t, tempDSN(t))

	carol, carolUID := registerChat(t, env, "carol", "--handle", "Carol.X")
	dave, _ := registerChat(t, env, "dave")

	dave.say("/search CAR")
	dave.expect("  " + carolUID + "  carol  @carol.x")
	dave.say("/search zzz")
	dave.expect(`no one found for "zzz"`)
	dave.say("/search c")
	dave.expect("/search wants at least 2 characters")
	dave.say("/add @nobody")
	dave.expect("no one found with handle @nobody")
	dave.say("/add @Carol.X")
	dave.expect("request sent to carol")

	carol.say("/quit")
	if code := carol.exit(); code != exitOK {
		t.Fatalf("carol's /quit: exit status %d", code)
	}
	carol = startChat(t, "carol again", env, "--handle", "CAROL.x", "--password", "carol-pw")
	carol.expect("logged in as carol")
	carol.expect("* 1 contact request is waiting: /requests shows it")
	carol.say("/requests")
	carol.expect("dave asks to be your contact")
	wrong := startChat(t, "wrong handle", env, "--handle", "carol.y", "--password", "carol-pw")
	if code := wrong.exit(); code == exitOK || !strings.Contains(wrong.stderr.String(), "login as @carol.y") {
		t.Fatalf("a wrong handle: exit %d, stderr %q", code, wrong.stderr.String())
	}
}
