package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/fiberchat/fiberchat/client"
)

// groupUsage is what a /group the chat cannot read answers.
const groupUsage = "usage: /group create NAME [UID...] | add GID UID... | remove GID UID... | open GID | info GID | leave GID"

// groupCommand is a /group sub-command that names a group.
type groupCommand struct {
	// args is what follows the sub-command, for the message a wrong use
	// gets.
	args string
	// uids tells that it takes one or more uids after the gid, and none
	// else.
	uids bool
	do   func(ctx context.Context, gid int64, uids []int64) error
}

// groupCommands are the /group sub-commands that name a group, by name.
func (s *chatSession) groupCommands() map[string]groupCommand {
	gidOnly := func(do func(ctx context.Context, gid int64) error) func(context.Context, int64, []int64) error {
		return func(ctx context.Context, gid int64, _ []int64) error { return do(ctx, gid) }
	}
	return map[string]groupCommand{
		"add":    {"GID UID...", true, s.addMembers},
		"remove": {"GID UID...", true, s.removeMembers},
		"open":   {"GID", false, gidOnly(s.openGroup)},
		"info":   {"GID", false, gidOnly(s.showGroup)},
		"leave":  {"GID", false, gidOnly(s.leaveGroup)},
	}
}

// group runs `/group arg`.
func (s *chatSession) group(ctx context.Context, arg string) error {
	fields := strings.Fields(arg)
	if len(fields) == 0 {
		return errors.New(groupUsage)
	}
	sub, args := fields[0], fields[1:]
	if sub == "create" {
		uids, err := parseIDs(args[min(1, len(args)):])
		if len(args) == 0 || err != nil {
			return errors.New("usage: /group create NAME [UID...], NAME one word")
		}
		return s.createGroup(ctx, args[0], uids)
	}
	cmd, ok := s.groupCommands()[sub]
	if !ok {
		return errors.New(groupUsage)
	}
	ids, err := parseIDs(args)
	ok = len(ids) == 1
	if cmd.uids {
		ok = len(ids) > 1
	}
	if err != nil || !ok {
		return fmt.Errorf("usage: /group %s %s", sub, cmd.args)
	}
	return cmd.do(ctx, ids[0], ids[1:])
}

// parseIDs reads uids or gids, one a field.
func parseIDs(fields []string) ([]int64, error) {
	ids := make([]int64, len(fields))
	for i, f := range fields {
		id, err := strconv.ParseInt(f, 10, 64)
		if err != nil || id <= 0 {
			return nil, fmt.Errorf("not an id: %q", f)
		}
		ids[i] = id
	}
	return ids, nil
}

// createGroup creates a group named name with uids in it.
func (s *chatSession) createGroup(ctx context.Context, name string, uids []int64) error {
	g, err := s.c.CreateGroup(ctx, name, uids...)
	if err != nil {
		return err
	}
	s.rememberGroup(g.GID, name)
	s.out.printf("created group %s: /group open %d to talk in it\n", s.groupLabel(ctx, g.GID), g.GID)
	s.printAdded(ctx, g.Results)
	return nil
}

func (s *chatSession) addMembers(ctx context.Context, gid int64, uids []int64) error {
	res, err := s.c.AddGroupMembers(ctx, gid, uids...)
	if err != nil {
		return err
	}
	s.out.printf("group %s:\n", s.groupLabel(ctx, gid))
	s.printAdded(ctx, res)
	return nil
}

// printAdded says, per uid, what adding it to a group did.
func (s *chatSession) printAdded(ctx context.Context, res []client.AddResult) {
	for _, r := range res {
		switch r.Status {
		case client.StatusAdded:
			s.out.printf("  added %s\n", s.label(ctx, r.UID))
		case client.StatusAlreadyMember:
			s.out.printf("  %s is already a member\n", s.label(ctx, r.UID))
		case client.StatusNotFound:
			s.out.printf("  not added: %d (no such user, or not your contact)\n", r.UID)
		case client.StatusFull:
			s.out.printf("  not added: %s (the group is full)\n", s.label(ctx, r.UID))
		default:
			s.out.printf("  not added: %d (%s)\n", r.UID, r.Status)
		}
	}
}

func (s *chatSession) removeMembers(ctx context.Context, gid int64, uids []int64) error {
	n, err := s.c.RemoveGroupMembers(ctx, gid, uids...)
	if err != nil {
		return err
	}
	s.out.printf("removed %d of %d from group %s\n", n, len(uids), s.groupLabel(ctx, gid))
	return nil
}

// leaveGroup leaves gid, and closes its conversation if it is open.
func (s *chatSession) leaveGroup(ctx context.Context, gid int64) error {
	label := s.groupLabel(ctx, gid) // while its members may still ask
	if err := s.c.LeaveGroup(ctx, gid); err != nil {
		return err
	}
	s.mu.Lock()
	if s.open == (conversation{gid: gid}) {
		s.open = conversation{}
	}
	s.mu.Unlock()
	s.out.printf("you left group %s\n", label)
	return nil
}

// openGroup makes gid's conversation the open one, prints its last page
// and marks it read.
func (s *chatSession) openGroup(ctx context.Context, gid int64) error {
	if _, err := s.loadGroup(ctx, gid); err != nil {
		return err
	}
	return s.show(ctx, conversation{gid: gid})
}

// showGroup prints gid's members.
func (s *chatSession) showGroup(ctx context.Context, gid int64) error {
	g, err := s.loadGroup(ctx, gid)
	if err != nil {
		return err
	}
	s.out.printf("-- group %s: %d members --\n", s.groupLabel(ctx, gid), g.MembersNum)
	for _, m := range g.Members {
		s.out.printf("  %d  %s  %s\n", m.UID, m.Name, m.Role)
	}
	return nil
}

// listGroups prints my groups, newest activity first, with unread counts.
func (s *chatSession) listGroups(ctx context.Context) error {
	groups, err := s.c.Groups(ctx)
	if err != nil {
		return err
	}
	unread, err := s.c.Unread(ctx)
	if err != nil {
		return err
	}
	counts := map[int64]int64{}
	for _, u := range unread {
		if u.GID != 0 {
			counts[u.GID] = u.Count
		}
	}
	if len(groups) == 0 {
		s.out.printf("no groups yet: /group create NAME [UID...] makes one\n")
	}
	for _, g := range groups {
		s.rememberGroup(g.GID, g.Name)
		line := fmt.Sprintf("  %d  %s  (%d members, you are %s)", g.GID, g.Name, g.MembersNum, g.Role)
		if n := counts[g.GID]; n > 0 {
			line += fmt.Sprintf("  (%d unread)", n)
		}
		s.out.printf("%s\n", line)
	}
	return nil
}

// loadGroup asks for gid and its members, and caches their names.
func (s *chatSession) loadGroup(ctx context.Context, gid int64) (client.GroupInfo, error) {
	g, err := s.c.GroupInfo(ctx, gid)
	if err != nil {
		return g, err
	}
	s.rememberGroup(gid, g.Name)
	for _, m := range g.Members {
		s.remember(m.Profile)
	}
	return g, nil
}

// rememberGroup caches a group's name.
func (s *chatSession) rememberGroup(gid int64, name string) {
	s.mu.Lock()
	s.groups[gid] = name
	s.mu.Unlock()
}

// groupName is gid's name, asked once and then cached; the gid itself
// when the server cannot say.
func (s *chatSession) groupName(ctx context.Context, gid int64) string {
	return s.lookUp(ctx, s.groups, gid, func(ctx context.Context) (string, bool) {
		g, err := s.loadGroup(ctx, gid)
		return g.Name, err == nil
	})
}

// groupLabel is a group as a sentence names it: "team (20000001)".
func (s *chatSession) groupLabel(ctx context.Context, gid int64) string {
	return labelOf(s.groupName(ctx, gid), gid)
}

// memberName is the name of uid, a member of gid: a member who is a
// stranger to me is named by the group's member list, asked again (and
// cached) when a name is missing; a former member, by their profile.
func (s *chatSession) memberName(ctx context.Context, gid, uid int64) string {
	if n, ok := s.cached(s.names, uid); ok {
		return n
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if _, err := s.loadGroup(cctx, gid); err == nil {
		if n, ok := s.cached(s.names, uid); ok {
			return n
		}
	}
	return s.name(ctx, uid)
}
