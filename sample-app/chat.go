package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/fiberchat/fiberchat/client"
)

// chatHelp is what /help prints.
const chatHelp = `commands:
  /contacts      your contacts, with unread counts
  /requests      pending contact requests to you
  /add UID       ask UID to be your contact  /add @HANDLE  ask the user with that handle
  /search TEXT   find people by handle (its start) or name (any part)
  /accept UID    accept UID's request      /refuse UID   refuse it
  /block UID     block UID                 /unblock UID  lift the block
  /open UID      open the conversation with UID: its last messages, marked read
  /history       older messages of the open conversation
  /groups        your groups, with unread counts
  /group create NAME [UID...]  a group named NAME (one word), with those contacts in it
  /group add GID UID...        add contacts to group GID
  /group remove GID UID...     remove members from group GID
  /group open GID              open group GID's conversation, as /open does
  /group info GID              group GID's members and their roles
  /group leave GID             leave group GID
  /reply ID TEXT   answer message #ID in the open conversation
  /edit ID TEXT    replace the text of your message #ID
  /delete ID       delete message #ID for everyone (yours, or any as a group's owner or admin)
  /react ID EMOJI  put EMOJI on message #ID   /unreact ID EMOJI  take it off
  /send-file PATH  send a file (an image is shown as one) to the open conversation
  /verify UID    the safety number of you and UID (with --e2ee): compare it with UID's
  /quit          log out and leave (so does end of input)
any other line is sent to the open conversation; a message to another
conversation is announced with a * line (open it to read it), and so are
contact requests and answers as they happen
`

// pageSize is how many messages /open and /history show at a time.
const pageSize = 20

// callTimeout bounds what the chat does for one command, or one message
// that arrives, however many calls it takes.
const callTimeout = 30 * time.Second

// chatCmd is `sample chat`: it logs in (registering first with
// --register), then runs commands read from stdin, one a line, and prints
// incoming messages as they arrive, until /quit, the end of stdin or ctx.
func chatCmd(ctx context.Context, args []string, getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet(command+" chat", flag.ContinueOnError)
	fs.SetOutput(stderr)
	base := fs.String("url", "http://127.0.0.1:8080", "base URL the chat module is mounted at")
	clientID := fs.String("client-id", "demo", "API client_id")
	secret := fs.String("secret", "", "the API client's secret (required; serve prints the demo client's)")
	uid := fs.Int64("uid", 0, "log in as this uid")
	register := fs.String("register", "", "register a new user with this name, then log in")
	handle := fs.String("handle", "", "log in by this handle instead of --uid; with --register, the new user's handle")
	password := fs.String("password", "", "the user's password (required)")
	e2ee := fs.Bool("e2ee", false, "end-to-end encrypt 1:1 messages (API.md §15)")
	device := fs.String("device", "", "with --e2ee, the file keeping this device's key (default fiberchat-device-UID.json)")
	if code, ok := parseFlags(fs, args, getenv); !ok {
		return code
	}
	var bad string
	switch {
	case *secret == "":
		bad = "--secret is required"
	case *password == "":
		bad = "--password is required"
	case *register != "" && *uid != 0, *register == "" && (*uid == 0) == (*handle == ""):
		bad = "give either --uid, --handle or --register"
	}
	if bad != "" {
		fmt.Fprintf(stderr, "%s chat: %s\n", command, bad)
		fs.Usage()
		return exitUsage
	}

	c, err := client.New(*base, *clientID, *secret)
	if err != nil {
		return fail(stderr, err)
	}
	out := &lineWriter{w: stdout}
	if *register != "" {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		var opts []client.RegisterOption
		if *handle != "" {
			opts = append(opts, client.WithHandle(*handle))
		}
		*uid, err = c.Register(cctx, *register, *password, opts...)
		cancel()
		if err != nil {
			return fail(stderr, fmt.Errorf("register: %s", describe(err)))
		}
		out.printf("registered %s: your uid is %d (next time: --uid %d)\n", *register, *uid, *uid)
	}
	if *uid, err = login(ctx, c, *uid, *handle, *password); err != nil {
		return fail(stderr, err)
	}
	if *e2ee {
		if c, err = encrypting(ctx, c, *base, *clientID, *secret, *device, *uid); err != nil {
			return fail(stderr, err)
		}
	}
	s := &chatSession{c: c, out: out, me: *uid, e2ee: *e2ee, names: map[int64]string{}, groups: map[int64]string{}}
	defer s.logout()
	return s.run(ctx, stdin, stderr)
}

// encrypting returns a client for logged-in c's session that encrypts as
// the device kept at path (made there on first use), its key published.
func encrypting(ctx context.Context, c *client.Client, base, clientID, secret, path string, uid int64) (*client.Client, error) {
	if path == "" {
		path = fmt.Sprintf("fiberchat-device-%d.json", uid)
	}
	id := make([]byte, 8)
	_, _ = rand.Read(id)
	d, err := client.LoadOrCreateDevice(path, hex.EncodeToString(id))
	if err != nil {
		return nil, fmt.Errorf("device key: %w", err)
	}
	ec, err := client.New(base, clientID, secret, client.WithDevice(d), client.WithSession(c.Session()))
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := ec.PublishKey(cctx); err != nil {
		return nil, fmt.Errorf("publish device key: %s", describe(err))
	}
	return ec, nil
}

// text is how a message reads at the terminal: an encrypted one behind a
// lock, one that cannot be decrypted says so rather than show anything.
func text(m client.Message) string {
	switch {
	case m.Kind == "file":
		return fileText(m)
	case m.DecryptErr != nil:
		return "🔒 (cannot be decrypted on this device)"
	case m.Encrypted:
		return "🔒 " + m.Message
	}
	return m.Message
}

// lineWriter serialises the writes of the command loop and of the
// listener, so that a message arriving mid-command never splits a line.
type lineWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lineWriter) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	fmt.Fprintf(l.w, format, args...)
}

// chatSession is one logged-in user at the terminal.
type chatSession struct {
	c   *client.Client
	out *lineWriter
	me  int64
	// e2ee sends 1:1 messages encrypted (the client has a device).
	e2ee bool

	mu     sync.Mutex
	names  map[int64]string // profile names, filled as uids show up
	groups map[int64]string // group names, filled as gids show up
	open   conversation     // the open conversation; zero for none
	// oldest is the id of the oldest message of the open conversation
	// shown so far, where /history goes on; more tells there are older.
	oldest int64
	more   bool
}

// run starts the listener and reads commands until the session ends; it
// returns the exit status.
func (s *chatSession) run(ctx context.Context, stdin io.Reader, stderr io.Writer) int {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	from, fresh, err := s.start(ctx)
	if err != nil {
		return fail(stderr, fmt.Errorf("start: %s", describe(err)))
	}
	s.out.printf("logged in as %s (uid %d); /help lists the commands\n", s.name(ctx, s.me), s.me)
	s.waitingRequests(ctx)
	for _, m := range fresh {
		s.incoming(ctx, m)
	}

	// The listener is waited for, so that nothing is printed after the
	// command returns.
	listened := make(chan error, 1)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		listened <- s.c.Listen(ctx, from, func(m client.Message) error {
			s.incoming(ctx, m)
			return nil
		}, client.OnEvent(func(ev client.Event) { s.event(ctx, ev) }))
	}()
	defer func() {
		cancel()
		wg.Wait()
	}()

	lines := readLines(ctx, stdin)
	for {
		select {
		case <-ctx.Done():
			return exitOK
		case err := <-listened:
			if ctx.Err() != nil {
				return exitOK
			}
			return fail(stderr, fmt.Errorf("receiving messages: %s", describe(err)))
		case line, ok := <-lines:
			if !ok {
				return exitOK
			}
			if quit := s.command(ctx, strings.TrimSpace(line)); quit {
				return exitOK
			}
		}
	}
}

// readLines sends stdin's lines on a channel, so that run's loop also
// sees the listener end; the reader stays blocked on stdin at exit, which
// ends with the process (or with the pipe a test closes).
func readLines(ctx context.Context, stdin io.Reader) <-chan string {
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdin)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			case <-ctx.Done():
				return
			}
		}
	}()
	return lines
}

// start finds where live messages begin: past every message already
// there, so that only new ones are printed (the backlog is what /contacts'
// and /groups' unread counts and /open are for). The newest message of
// each conversation with a contact or in a group and the newest unread one
// bound it; the messages above that bound (read ones from former contacts
// or groups, or new ones that came meanwhile) are then walked past with
// Recv, keeping only those of my contacts and groups, which are new: start
// returns them to be printed.
func (s *chatSession) start(ctx context.Context) (from int64, fresh []client.Message, err error) {
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	from, mine, err := s.newest(cctx)
	if err != nil {
		return 0, nil, err
	}
	for {
		r, err := s.c.Recv(cctx, client.RecvRequest{LastID: &from, Limit: 500})
		if err != nil {
			return 0, nil, err
		}
		for _, m := range r.Messages {
			if mine(m) {
				fresh = append(fresh, m)
			}
			from = max(from, m.ID)
		}
		from = max(from, r.LastID)
		if !r.More {
			break
		}
	}
	return from, fresh, nil
}

// newest returns the largest id among the newest message of each of my
// conversations with contacts and groups and my newest unread message,
// and tells which messages are of those conversations.
func (s *chatSession) newest(ctx context.Context) (from int64, mine func(client.Message) bool, err error) {
	contacts, err := s.c.Contacts(ctx)
	if err != nil {
		return 0, nil, err
	}
	unread, err := s.c.Unread(ctx)
	if err != nil {
		return 0, nil, err
	}
	groups, err := s.c.Groups(ctx)
	if err != nil {
		return 0, nil, err
	}
	for _, u := range unread {
		from = max(from, u.LastID)
	}
	isContact := map[int64]bool{}
	for _, p := range contacts {
		s.remember(p.Profile)
		isContact[p.UID] = true
		page, err := s.c.History(ctx, client.HistoryRequest{With: p.UID, Limit: 1})
		if err != nil {
			return 0, nil, err
		}
		if len(page.Messages) > 0 {
			from = max(from, page.Messages[0].ID)
		}
	}
	isGroup := map[int64]bool{}
	for _, g := range groups {
		s.rememberGroup(g.GID, g.Name)
		isGroup[g.GID] = true
		from = max(from, g.LastID)
	}
	return from, func(m client.Message) bool {
		if m.GID != 0 {
			return isGroup[m.GID]
		}
		return isContact[m.UIDFrom]
	}, nil
}

// event prints what the stream says besides messages that a person at
// the terminal wants to know: who is typing, and whose device keys
// changed. (The chat reads whole lines, so it cannot tell when its own
// user is typing, and sends no typing.)
func (s *chatSession) event(ctx context.Context, ev client.Event) {
	if c, ok := ev.(client.ContactEvent); ok {
		s.contactEvent(ctx, c)
		return
	}
	if k, ok := ev.(client.KeysEvent); ok && s.e2ee {
		s.out.printf("⚠ %s's device keys changed: your safety number with them is new. /verify %d and compare it with them again\n", s.name(ctx, k.UID), k.UID)
		return
	}
	t, ok := ev.(client.TypingEvent)
	if !ok {
		return
	}
	if t.GID != 0 {
		s.out.printf("%s is typing… in %s\n", s.memberName(ctx, t.GID, t.UID), s.groupName(ctx, t.GID))
		return
	}
	s.out.printf("%s is typing…\n", s.name(ctx, t.UID))
}

// incoming prints a message that arrived, or only announces it when
// another conversation is open, and marks it read when its conversation
// is open. A failed mark is only printed: the message stays unread, for
// /contacts or /groups to count.
func (s *chatSession) incoming(ctx context.Context, m client.Message) {
	if m.IsUpdate() {
		s.updated(ctx, m)
		return
	}
	conv := conversation{uid: m.UIDFrom}
	if m.GID != 0 {
		conv = conversation{gid: m.GID}
	}
	s.mu.Lock()
	open, none := s.open == conv, s.open == conversation{}
	s.mu.Unlock()
	if open || none {
		s.printMessage(ctx, m, true, replyMark(m)+text(m))
	} else {
		s.announce(ctx, m)
	}
	if open {
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		if err := s.markRead(cctx, conv, m.ID); err != nil && ctx.Err() == nil {
			s.out.printf("could not mark it read: %s\n", describe(err))
		}
	}
}

// markRead marks conv read up to lastID.
func (s *chatSession) markRead(ctx context.Context, conv conversation, lastID int64) error {
	var err error
	if conv.gid != 0 {
		_, err = s.c.ReadGroup(ctx, conv.gid, lastID)
	} else {
		_, err = s.c.Read(ctx, conv.uid, lastID)
	}
	return err
}

// command runs one line and tells whether the session should end.
func (s *chatSession) command(ctx context.Context, line string) (quit bool) {
	if line == "" {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if !strings.HasPrefix(line, "/") {
		s.send(ctx, line)
		return false
	}
	name, arg, _ := strings.Cut(line, " ")
	arg = strings.TrimSpace(arg)
	switch name {
	case "/quit", "/exit":
		return true
	case "/help":
		s.out.printf("%s", chatHelp)
	case "/contacts":
		s.report(s.contacts(ctx))
	case "/requests":
		s.report(s.requests(ctx))
	case "/history":
		s.report(s.history(ctx))
	case "/groups":
		s.report(s.listGroups(ctx))
	case "/group":
		s.report(s.group(ctx, arg))
	case "/search":
		s.report(s.search(ctx, arg))
	case "/reply", "/edit", "/delete", "/react", "/unreact":
		s.report(s.updateCommand(ctx, name, arg))
	case "/send-file":
		s.report(s.sendFile(ctx, arg))
	case "/add":
		if handle, ok := strings.CutPrefix(arg, "@"); ok {
			s.report(s.addHandle(ctx, handle))
			return false
		}
		s.uidCommand(ctx, name, arg)
	default:
		s.uidCommand(ctx, name, arg)
	}
	return false
}

// uidCommand runs one of uidCommands.
func (s *chatSession) uidCommand(ctx context.Context, name, arg string) {
	do, ok := s.uidCommands()[name]
	if !ok {
		s.out.printf("unknown command %s; /help lists them\n", name)
		return
	}
	uid, err := strconv.ParseInt(arg, 10, 64)
	if err != nil || uid <= 0 {
		s.out.printf("%s wants a uid: %s UID\n", name, name)
		return
	}
	s.report(do(ctx, uid))
}

// uidCommands are the commands that take one uid, by name.
func (s *chatSession) uidCommands() map[string]func(ctx context.Context, uid int64) error {
	return map[string]func(ctx context.Context, uid int64) error{
		"/add":     s.add,
		"/accept":  func(ctx context.Context, uid int64) error { return s.answer(ctx, uid, true) },
		"/refuse":  func(ctx context.Context, uid int64) error { return s.answer(ctx, uid, false) },
		"/block":   func(ctx context.Context, uid int64) error { return s.block(ctx, uid, true) },
		"/unblock": func(ctx context.Context, uid int64) error { return s.block(ctx, uid, false) },
		"/open":    s.openConversation,
		"/verify":  s.verify,
	}
}

// verify prints the safety number of me and uid (client.SafetyNumber):
// the same on both sides unless the server handed out a key of its own.
func (s *chatSession) verify(ctx context.Context, uid int64) error {
	if !s.e2ee {
		s.out.printf("/verify needs --e2ee\n")
		return nil
	}
	n, err := s.c.SafetyNumber(ctx, uid)
	if err != nil {
		return err
	}
	s.out.printf("safety number with %s: %s (compare it with theirs, face to face or by call)\n", s.label(ctx, uid), n)
	return nil
}

// answer accepts or refuses uid's contact request.
func (s *chatSession) answer(ctx context.Context, uid int64, accept bool) error {
	if err := s.c.AnswerRequest(ctx, uid, accept); err != nil {
		return err
	}
	if accept {
		s.out.printf("you and %s are contacts now\n", s.label(ctx, uid))
	} else {
		s.out.printf("refused %s's request\n", s.label(ctx, uid))
	}
	return nil
}

// block blocks or unblocks uid.
func (s *chatSession) block(ctx context.Context, uid int64, block bool) error {
	call, done := s.c.Block, "blocked"
	if !block {
		call, done = s.c.Unblock, "unblocked"
	}
	if _, err := call(ctx, uid); err != nil {
		return err
	}
	s.out.printf("%s %s\n", done, s.label(ctx, uid))
	return nil
}

// report prints err, if any, in words.
func (s *chatSession) report(err error) {
	if err != nil {
		s.out.printf("%s\n", describe(err))
	}
}

func (s *chatSession) send(ctx context.Context, text string) {
	s.mu.Lock()
	to := s.open
	s.mu.Unlock()
	var err error
	switch {
	case to.gid != 0:
		_, err = s.c.SendToGroup(ctx, to.gid, text)
	case to.uid != 0 && s.e2ee:
		_, err = s.c.SendEncrypted(ctx, to.uid, text)
	case to.uid != 0:
		_, err = s.c.Send(ctx, to.uid, text)
	default:
		s.out.printf("no conversation open: /open UID or /group open GID first (/help lists the commands)\n")
		return
	}
	if err != nil {
		s.out.printf("not sent: %s\n", describe(err))
	}
}

func (s *chatSession) contacts(ctx context.Context) error {
	contacts, err := s.c.Contacts(ctx)
	if err != nil {
		return err
	}
	unread, err := s.c.Unread(ctx)
	if err != nil {
		return err
	}
	counts := map[int64]int64{}
	for _, u := range unread {
		counts[u.UIDFrom] = u.Count
	}
	if len(contacts) == 0 {
		s.out.printf("no contacts yet: /add UID asks someone\n")
	}
	for _, p := range contacts {
		s.remember(p.Profile)
		line := fmt.Sprintf("  %d  %s", p.UID, p.Name)
		switch {
		case p.Online:
			line += "  (online)"
		case p.LastSeen > 0:
			line += "  (last seen " + time.Unix(p.LastSeen, 0).Format("2006-01-02 15:04") + ")"
		}
		if n := counts[p.UID]; n > 0 {
			line += fmt.Sprintf("  (%d unread)", n)
		}
		s.out.printf("%s\n", line)
	}
	return nil
}

func (s *chatSession) requests(ctx context.Context) error {
	reqs, err := s.c.ContactRequests(ctx)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		s.out.printf("no pending requests\n")
	}
	for _, r := range reqs {
		s.remember(r.Profile)
		s.out.printf("  %d  %s asks to be your contact: /accept %d or /refuse %d\n", r.UID, r.Name, r.UID, r.UID)
	}
	return nil
}

func (s *chatSession) add(ctx context.Context, uid int64) error {
	res, err := s.c.AddContacts(ctx, uid)
	if err != nil {
		return err
	}
	if len(res) == 0 {
		return fmt.Errorf("the server said nothing about %d", uid)
	}
	switch res[0].Status {
	case client.StatusRequested:
		s.out.printf("request sent to %s\n", s.label(ctx, uid))
	case client.StatusPending:
		s.out.printf("a request to %s is already waiting\n", s.label(ctx, uid))
	case client.StatusAccepted:
		s.out.printf("%s had asked you: you are contacts now\n", s.label(ctx, uid))
	case client.StatusAlreadyContact:
		s.out.printf("%s is already a contact\n", s.label(ctx, uid))
	case client.StatusNotFound:
		s.out.printf("no such user: %d\n", uid)
	case client.StatusSelf:
		s.out.printf("that is you\n")
	default:
		s.out.printf("%d: %s\n", uid, res[0].Status)
	}
	return nil
}

// openConversation makes uid's conversation the open one, prints its last
// page and marks it read.
func (s *chatSession) openConversation(ctx context.Context, uid int64) error {
	if uid == s.me {
		return errors.New("that is you: /open the uid of someone else")
	}
	profiles, err := s.c.ContactsInfo(ctx, uid)
	if err != nil {
		return err
	}
	if len(profiles) == 0 {
		return fmt.Errorf("no such user: %d", uid)
	}
	s.remember(profiles[0])
	return s.show(ctx, conversation{uid: uid})
}

// show makes conv the open conversation, prints its last page and marks
// it read.
func (s *chatSession) show(ctx context.Context, conv conversation) error {
	page, err := s.c.History(ctx, conv.page(0))
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.open, s.oldest, s.more = conv, 0, page.More
	if n := len(page.Messages); n > 0 {
		s.oldest = page.Messages[n-1].ID
	}
	s.mu.Unlock()
	s.out.printf("-- conversation %s --\n", s.about(ctx, conv))
	if len(page.Messages) == 0 {
		s.out.printf("no messages yet\n")
		return nil
	}
	s.printPage(ctx, page)
	// Marking up to the newest id covers every message to me shown,
	// whoever sent the newest.
	if err := s.markRead(ctx, conv, page.Messages[0].ID); err != nil {
		return fmt.Errorf("could not mark them read: %s", describe(err))
	}
	return nil
}

// history prints the page before the oldest message shown.
func (s *chatSession) history(ctx context.Context) error {
	s.mu.Lock()
	conv, before, more := s.open, s.oldest, s.more
	s.mu.Unlock()
	switch {
	case conv == conversation{}:
		return errors.New("no conversation open: /open UID or /group open GID first")
	case !more:
		s.out.printf("no older messages\n")
		return nil
	}
	page, err := s.c.History(ctx, conv.page(before))
	if err != nil {
		return err
	}
	s.mu.Lock()
	if s.open == conv && s.oldest == before { // not moved on meanwhile
		s.more = page.More
		if n := len(page.Messages); n > 0 {
			s.oldest = page.Messages[n-1].ID
		}
	}
	s.mu.Unlock()
	s.out.printf("-- older messages %s --\n", s.about(ctx, conv))
	s.printPage(ctx, page)
	return nil
}

// conversation is a conversation the chat can open: with a user (uid) or
// in a group (gid), never both.
type conversation struct{ uid, gid int64 }

// page asks for the page of conv before the message before (0 for the
// newest).
func (conv conversation) page(before int64) client.HistoryRequest {
	return client.HistoryRequest{With: conv.uid, GID: conv.gid, BeforeID: before, Limit: pageSize}
}

// about names conv after a word of the sentence: "with bob (10000002)",
// "in group team (20000001)".
func (s *chatSession) about(ctx context.Context, conv conversation) string {
	if conv.gid != 0 {
		return "in group " + s.groupLabel(ctx, conv.gid)
	}
	return "with " + s.label(ctx, conv.uid)
}

// printPage prints a History page oldest first, as a conversation reads.
func (s *chatSession) printPage(ctx context.Context, page client.HistoryPage) {
	for _, m := range slices.Backward(page.Messages) {
		s.printMessage(ctx, m.Message, false, replyMark(m.Message)+shownText(m.Message)+reactionsMark(m))
	}
}

// remember caches a profile's name.
func (s *chatSession) remember(p client.Profile) {
	s.mu.Lock()
	s.names[p.UID] = p.Name
	s.mu.Unlock()
}

// cached is the name m (names or groups) holds for id.
func (s *chatSession) cached(m map[int64]string, id int64) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ok := m[id]
	return n, ok
}

// lookUp is the name m (names or groups) holds for id, else the one load
// asks the server for (and caches), within callTimeout; id itself when
// the server cannot say, not cached: the next message asks again.
func (s *chatSession) lookUp(ctx context.Context, m map[int64]string, id int64, load func(context.Context) (string, bool)) string {
	if n, ok := s.cached(m, id); ok {
		return n
	}
	cctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if n, ok := load(cctx); ok {
		return n
	}
	return strconv.FormatInt(id, 10)
}

// labelOf is a name as a sentence gives it, with its id: "bob
// (10000002)"; the bare id when the name is only that.
func labelOf(name string, id int64) string {
	if name == strconv.FormatInt(id, 10) {
		return name
	}
	return fmt.Sprintf("%s (%d)", name, id)
}

// name is uid's profile name, asked once and then cached; the uid itself
// when the server cannot say.
func (s *chatSession) name(ctx context.Context, uid int64) string {
	return s.lookUp(ctx, s.names, uid, func(ctx context.Context) (string, bool) {
		profiles, err := s.c.ContactsInfo(ctx, uid)
		if err != nil || len(profiles) == 0 {
			return "", false
		}
		s.remember(profiles[0])
		return profiles[0].Name, true
	})
}

// label is a user as a sentence names them: "bob (10000002)".
func (s *chatSession) label(ctx context.Context, uid int64) string {
	return labelOf(s.name(ctx, uid), uid)
}

// logout ends the session on the server, so that its token does not
// linger until it expires; a failure changes nothing for the person.
func (s *chatSession) logout() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.c.Logout(ctx)
}

// describe says what went wrong in words: the server's message, with a
// hint where the code calls for one, and never a bare code.
func describe(err error) string {
	var e *client.Error
	switch {
	case errors.As(err, &e):
		switch e.Code {
		case 0:
			return fmt.Sprintf("unexpected answer from the server (HTTP %d): %s", e.Status, e.Msg)
		case client.CodeAccessDeny:
			return "the server refused the API client: check --client-id and --secret (" + e.Msg + ")"
		case client.CodeBadToken:
			return "the session ended (" + e.Msg + "): log in again"
		}
		return inWords(e)
	case errors.Is(err, client.ErrSessionEnded):
		return "the session ended (logged out or password changed): log in again"
	case errors.Is(err, client.ErrStreamReplaced):
		return "this session opened more streams elsewhere, which replaced this one's: start the chat again to take it back"
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Sprintf("cannot reach the server at %s: %v", ue.URL, ue.Err)
	}
	return err.Error()
}
