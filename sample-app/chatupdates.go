package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fiberchat/fiberchat/client"
)

// The terminal chat's replies, edits, deletes and reactions (API.md §13).
// Every message is shown with its id (#ID), which the commands take.

// updateCommand runs /reply, /edit, /delete, /react or /unreact with its
// arguments: an id, then the text or emoji.
func (s *chatSession) updateCommand(ctx context.Context, name, arg string) error {
	idText, rest, _ := strings.Cut(arg, " ")
	id, err := strconv.ParseInt(strings.TrimPrefix(idText, "#"), 10, 64)
	rest = strings.TrimSpace(rest)
	if err != nil || id <= 0 || (name != "/delete" && rest == "") {
		return fmt.Errorf("usage: %s", updateUsage[name])
	}
	s.mu.Lock()
	open := s.open
	s.mu.Unlock()
	switch name {
	case "/reply":
		return s.reply(ctx, open, id, rest)
	case "/edit":
		if s.e2ee && open.uid != 0 {
			_, err = s.c.EditEncrypted(ctx, open.uid, id, rest)
		} else {
			_, err = s.c.Edit(ctx, id, rest)
		}
		s.done(err, "edited #%d", id)
	case "/delete":
		_, err = s.c.Delete(ctx, id)
		s.done(err, "deleted #%d", id)
	case "/react":
		_, err = s.c.React(ctx, id, rest, true)
		s.done(err, "put %s on #%d", rest, id)
	default:
		_, err = s.c.React(ctx, id, rest, false)
		s.done(err, "took %s off #%d", rest, id)
	}
	return err
}

var updateUsage = map[string]string{
	"/reply":   "/reply ID TEXT",
	"/edit":    "/edit ID TEXT",
	"/delete":  "/delete ID",
	"/react":   "/react ID EMOJI",
	"/unreact": "/unreact ID EMOJI",
}

// done prints what an update did, once it did.
func (s *chatSession) done(err error, format string, args ...any) {
	if err == nil {
		s.out.printf(format+"\n", args...)
	}
}

// reply sends text to the open conversation as an answer to message id.
func (s *chatSession) reply(ctx context.Context, open conversation, id int64, text string) error {
	var err error
	switch {
	case open.gid != 0:
		_, err = s.c.SendToGroup(ctx, open.gid, text, client.ReplyTo(id))
	case open.uid != 0 && s.e2ee:
		_, err = s.c.SendEncrypted(ctx, open.uid, text, client.ReplyTo(id))
	case open.uid != 0:
		_, err = s.c.Send(ctx, open.uid, text, client.ReplyTo(id))
	default:
		return errors.New("no conversation open: /open UID or /group open GID first")
	}
	return err
}

// updated prints an update that arrived: who edited, deleted or reacted
// to which message.
func (s *chatSession) updated(ctx context.Context, m client.Message) {
	who := s.name(ctx, m.UIDFrom)
	if m.GID != 0 {
		who = s.memberName(ctx, m.GID, m.UIDFrom) + " @ " + s.groupName(ctx, m.GID)
	}
	switch m.Kind {
	case client.KindEdit:
		s.out.printf("[%s] edited #%d: %s\n", who, m.RefID, text(m))
	case client.KindDelete:
		s.out.printf("[%s] deleted #%d\n", who, m.RefID)
	case client.KindReaction:
		if m.On {
			s.out.printf("[%s] reacted %s to #%d\n", who, m.Emoji, m.RefID)
		} else {
			s.out.printf("[%s] took %s off #%d\n", who, m.Emoji, m.RefID)
		}
	}
}

// replyMark is what a message line starts with when it answers another.
func replyMark(m client.Message) string {
	if m.ReplyTo == 0 {
		return ""
	}
	return fmt.Sprintf("(re #%d) ", m.ReplyTo)
}

// shownText is a History message's text as a line shows it: deleted,
// or its text marked edited.
func shownText(m client.Message) string {
	switch {
	case m.Deleted:
		return "(deleted)"
	case m.EditedTime != 0:
		return text(m) + " (edited)"
	}
	return text(m)
}

// reactionsMark lists a History message's reactions: "  [👍 2 ❤️ 1]".
func reactionsMark(m client.HistoryMessage) string {
	if len(m.Reactions) == 0 {
		return ""
	}
	parts := make([]string, len(m.Reactions))
	for i, r := range m.Reactions {
		parts[i] = fmt.Sprintf("%s %d", r.Emoji, len(r.UIDs))
	}
	return "  [" + strings.Join(parts, " ") + "]"
}
