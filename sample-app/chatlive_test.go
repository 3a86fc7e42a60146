package main

import (
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestChatLive: the terminal chat tells of contact requests and answers
// as they happen, stamps every message with its time, announces a
// message of another conversation instead of mixing it into the open
// one, and says the server's refusals in words.
func TestChatLive(t *testing.T) {
	t.Parallel()
	_, _, env := serveChat(t, tempDSN(t))
	alice, aliceUID := registerChat(t, env, "alice")
	bob, bobUID := registerChat(t, env, "bob")
	carol, carolUID := registerChat(t, env, "carol")

	// A stranger: refused in words, never in the wire's field names.
	alice.say("/open " + bobUID)
	alice.expect("conversation with bob")
	alice.say("are you there?")
	alice.expect("not sent: they are not your contact (yet): /add UID asks them, and you can talk once they accept")
	alice.say("/accept " + carolUID)
	alice.expect("they have not asked you (/requests lists who has)")

	// Requests and answers, as they happen.
	alice.say("/add " + bobUID)
	bob.expect("* alice (" + aliceUID + ") asks to be your contact: /accept " + aliceUID + " or /refuse " + aliceUID)
	bob.say("/accept " + aliceUID)
	alice.expect("* bob (" + bobUID + ") accepted: you are contacts now, /open " + bobUID + " to talk")
	carol.say("/add " + aliceUID)
	alice.expect("* carol (" + carolUID + ") asks to be your contact")
	alice.say("/refuse " + carolUID)
	carol.expect("* alice (" + aliceUID + ") did not accept your request")
	carol.say("/add " + aliceUID)
	alice.expect("* carol (" + carolUID + ") asks to be your contact")
	alice.say("/accept " + carolUID)
	carol.expect("* alice (" + aliceUID + ") accepted")

	// Timestamps, today's as the time of day.
	bob.say("/open " + aliceUID)
	bob.expect("conversation with alice")
	bob.say("hi alice")
	stamped := regexp.MustCompile(`^\d\d:\d\d #\d+ \[bob\] hi alice$`)
	if line := alice.expect("[bob] hi alice"); !stamped.MatchString(line) {
		t.Errorf("alice was shown %q, want it stamped like %q", line, stamped)
	}
	alice.say("/open " + bobUID)
	if line := alice.expect("[bob] hi alice"); !stamped.MatchString(line) {
		t.Errorf("/open showed %q, want it stamped like %q", line, stamped)
	}

	chatAnnounced(t, alice, bob, carol, aliceUID, bobUID, carolUID)
}

// chatAnnounced: carol writes while alice has bob open: announced, not
// mixed in; bob's block is told too, and no field name of the wire is
// ever shown.
func chatAnnounced(t *testing.T, alice, bob, carol *chatRun, aliceUID, bobUID, carolUID string) {
	t.Helper()
	carol.say("/open " + aliceUID)
	carol.expect("conversation with alice")
	carol.say("psst, alice")
	alice.expect("* new message from carol (" + carolUID + "): /open " + carolUID)
	bob.say("still here")
	alice.expect("[bob] still here")
	if out := alice.stdout.String(); strings.Contains(out, "psst") {
		t.Errorf("carol's message was mixed into alice's conversation with bob:\n%s", out)
	}
	alice.say("/open " + carolUID)
	alice.expect("[carol] psst, alice")

	bob.say("/block " + aliceUID)
	alice.expect("* you and bob (" + bobUID + ") are no longer contacts")
	if out := alice.stdout.String() + bob.stdout.String() + carol.stdout.String(); strings.Contains(out, "uid_") {
		t.Errorf("a field name of the wire was shown:\n%s", out)
	}
}

func TestStamp(t *testing.T) {
	now := time.Date(2026, 12, 6, 15, 30, 0, 0, time.Local)
	for _, tt := range []struct {
		at   time.Time
		want string
	}{
		{time.Date(2026, 12, 6, 9, 5, 0, 0, time.Local), "09:05"},
		{time.Date(2026, 12, 5, 23, 59, 0, 0, time.Local), "Dec 5 23:59"},
		{time.Date(2025, 12, 6, 9, 5, 0, 0, time.Local), "2025-12-06 09:05"},
	} {
		if got := stamp(tt.at.Unix(), now); got != tt.want {
			t.Errorf("stamp(%v) = %q, want %q", tt.at, got, tt.want)
		}
	}
}
