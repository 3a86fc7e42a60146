package main

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/client"
)

// What the terminal chat shows as it happens besides the open
// conversation's messages: contact requests and answers, and messages of
// other conversations, announced in a line rather than mixed into the
// open one; and the time of every message.

// stamp is when a message was stored, as a line starts with it: the time
// of day for today's, with the date for older ones (local time).
func stamp(unix int64, now time.Time) string {
	t := time.Unix(unix, 0).Local()
	now = now.Local()
	switch {
	case t.Year() == now.Year() && t.YearDay() == now.YearDay():
		return t.Format("15:04")
	case t.Year() == now.Year():
		return t.Format("Jan 2 15:04")
	}
	return t.Format("2006-01-02 15:04")
}

// contactEvent says what another user just did about being my contact.
func (s *chatSession) contactEvent(ctx context.Context, ev client.ContactEvent) {
	who := s.label(ctx, ev.UID)
	switch ev.What {
	case "request":
		s.out.printf("* %s asks to be your contact: /accept %d or /refuse %d\n", who, ev.UID, ev.UID)
	case "accept":
		s.out.printf("* %s accepted: you are contacts now, /open %d to talk\n", who, ev.UID)
	case "refuse":
		s.out.printf("* %s did not accept your request\n", who)
	case "delete", "block":
		// Whether they removed or blocked me is theirs to tell.
		s.out.printf("* you and %s are no longer contacts\n", who)
	}
}

// waitingRequests says, at login, how many contact requests came while I
// was away (those that come later are told as they happen). Not being
// able to ask is no reason to stop: /requests asks again.
func (s *chatSession) waitingRequests(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	reqs, err := s.c.ContactRequests(cctx)
	switch {
	case err != nil || len(reqs) == 0:
	case len(reqs) == 1:
		s.out.printf("* 1 contact request is waiting: /requests shows it\n")
	default:
		s.out.printf("* %d contact requests are waiting: /requests shows them\n", len(reqs))
	}
}

// announce tells of a message to a conversation other than the open one
// ("* new message from bob (10000002): /open 10000002"), without its
// text, which /open shows in its place.
func (s *chatSession) announce(ctx context.Context, m client.Message) {
	if m.GID != 0 {
		s.out.printf("* new message in %s from %s: /group open %d\n", s.groupLabel(ctx, m.GID), s.memberName(ctx, m.GID, m.UIDFrom), m.GID)
		return
	}
	s.out.printf("* new message from %s: /open %d\n", s.label(ctx, m.UIDFrom), m.UIDFrom)
}

// printMessage prints one message, its text shown as the caller made it
// (a reply's mark, an edit's or a deletion's, reactions), as it arrives or
// as History has it: "15:04 #12 [bob] hi", and "15:04 #12 [bob @ team] hi"
// for a group's message with inGroup.
func (s *chatSession) printMessage(ctx context.Context, m client.Message, inGroup bool, shown string) {
	at := stamp(m.Time, time.Now())
	if m.GID != 0 && inGroup {
		s.out.printf("%s #%d [%s @ %s] %s\n", at, m.ID, s.memberName(ctx, m.GID, m.UIDFrom), s.groupName(ctx, m.GID), shown)
		return
	}
	s.out.printf("%s #%d [%s] %s\n", at, m.ID, s.name(ctx, m.UIDFrom), shown)
}

// serverWords are the sentences for what the server says in its own
// terms (field names such as uid_to), matched on its msg.
var serverWords = []struct {
	msg   *regexp.Regexp
	words string
}{
	{regexp.MustCompile(`uid_to is not a contact`), "they are not your contact (yet): /add UID asks them, and you can talk once they accept"},
	{regexp.MustCompile(`uid_to is blocked, or blocks you`), "one of you has blocked the other"},
	{regexp.MustCompile(`cannot message yourself`), "that is you"},
	{regexp.MustCompile(`invalid data: max length (\d+) characters`), "the message is too long: at most $1 characters"},
	{regexp.MustCompile(`not a member of the group`), "you are not a member of that group"},
	{regexp.MustCompile(`your role in the group does not allow it`), "your role in the group does not allow that"},
	{regexp.MustCompile(`you are in as many groups as allowed`), "you are in as many groups as anyone may be"},
	{regexp.MustCompile(`no pending request from uid_from`), "they have not asked you (/requests lists who has)"},
}

// codeWords say what an error code means when the server's msg is not
// one of serverWords'.
var codeWords = map[int]string{
	client.CodeRateLimited: "too many attempts: wait a little and try again",
	client.CodeInternal:    "something went wrong on the server: try again",
	client.CodeUnavailable: "the chat is unavailable for a moment: try again shortly",
}

// inWords is e said for a person: one of serverWords, or the server's
// msg with the code's sentence where it has one.
func inWords(e *client.Error) string {
	for _, w := range serverWords {
		if m := w.msg.FindStringSubmatchIndex(e.Msg); m != nil {
			return string(w.msg.ExpandString(nil, w.words, e.Msg, m))
		}
	}
	if w, ok := codeWords[e.Code]; ok {
		return w
	}
	if e.Msg == "" {
		return fmt.Sprintf("the server answered HTTP %d", e.Status)
	}
	return strings.TrimPrefix(e.Msg, "not allowed: ")
}
