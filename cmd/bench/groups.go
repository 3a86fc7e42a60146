package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/fiberchat/fiberchat/client"
	"github.com/fiberchat/fiberchat/internal/database"
	"github.com/fiberchat/fiberchat/models"
	"github.com/libtnb/sqlite"
	"github.com/valyala/fasthttp"
	"golang.org/x/sync/errgroup"
	"gorm.io/gorm"
	"gorm.io/gorm/schema"
)

// groupSize is how many members the group of the group send workload
// has: the figure issue 23 names.
const groupSize = 100

// checkPage is the Recv page the group send workload's check reads
// members' messages in: the most API.md allows.
const checkPage = 500

// groupResults are the outcomes of the group workloads (API.md §12).
type groupResults struct {
	// send is group send on SQLite and sendRef its 1:1 reference.
	send, sendRef rate
	// sendMySQL and sendRefMySQL are nil without --mysql-dsn.
	sendMySQL, sendRefMySQL *rate
	// delivered counts the group messages the checks found on members'
	// cursors, every database and round together.
	delivered int64
	// recv is recv groups and selectRecv its bare query, on SQLite.
	recv, selectRecv rate
	// The recv groups seed: messages, users and how long it took.
	seedMessages, seedUsers int
	seedTime                time.Duration
	// groupMembers is how many members each seeded group has.
	groupMembers int
}

// rawSend is a closed loop of /Message/Send over fasthttp's client, each
// worker one user sending to its own target (a uid_to or a gid). The
// group send workload and its 1:1 reference both run on it, so that the
// client's cost is the same on both sides and the ratio is the server's:
// the SDK has no group Send to compare through.
type rawSend struct {
	hc   *fasthttp.HostClient
	path string // signed /Message/Send
	// field is the target's field: "uid_to" or "gid"; worker i sends as
	// from[i] to to[i], its texts numbered from worker tag+i.
	field string
	from  []user
	to    []int64
	tag   int
	seq   []int // as in sdkLoad
	// sent, when not nil, holds each worker's stored ids of the round.
	sent [][]int64
}

func newRawSend(addr, path, field string, from []user, to []int64, tag int, record bool) *rawSend {
	l := &rawSend{hc: newFastTransport(addr, len(from)).hc, path: path, field: field, from: from, to: to, tag: tag, seq: make([]int, len(from))}
	if record {
		l.sent = make([][]int64, len(from))
	}
	return l
}

func (l *rawSend) round(ctx context.Context, p phase) (rate, error) {
	for i := range l.sent {
		l.sent[i] = l.sent[i][:0]
	}
	return closedLoop(ctx, len(l.from), p, func(i int) func(int) string {
		head := credentials(nil, l.from[i])
		head = append(head, ',', '"')
		head = append(head, l.field...)
		head = append(head, `":`...)
		head = strconv.AppendInt(head, l.to[i], 10)
		head = append(head, `,"data":"`...)
		uri := "http://" + l.hc.Addr + l.path
		var body []byte
		return func(int) string {
			body = messageText(append(body[:0], head...), l.tag+i, l.seq[i])
			body = append(body, `"}`...)
			l.seq[i]++
			id, fail := l.post(uri, body)
			if fail == "" && l.sent != nil {
				l.sent[i] = append(l.sent[i], id)
			}
			return fail
		}
	})
}

// post sends one Send and returns the stored id, or why it failed.
func (l *rawSend) post(uri string, body []byte) (int64, string) {
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI(uri)
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(body)
	if err := l.hc.Do(req, resp); err != nil {
		return 0, err.Error()
	}
	if fail := checkEnvelope(resp.StatusCode(), resp.Body(), false); fail != "" {
		return 0, fail
	}
	var sent struct {
		Error *int  `json:"error"`
		ID    int64 `json:"id"`
	}
	if err := json.Unmarshal(resp.Body(), &sent); err != nil || sent.Error == nil || *sent.Error != 0 || sent.ID == 0 {
		return 0, fmt.Sprintf("not a Send's answer: %.200s", resp.Body())
	}
	return sent.ID, ""
}

func (l *rawSend) close() { l.hc.CloseIdleConnections() }

// groupSendLoad is group send: rawSend into one group, each round
// followed by a check, not timed, that every member's Recv from the
// round's starting cursor returns each message another member stored in
// the round, once, and nothing else.
type groupSendLoad struct {
	send *rawSend
	// members are the group's, each with an SDK client for the check.
	members []user
	readers []*client.Client
	tr      *fastTransport
	// cursor is past every message stored before the round.
	cursor    int64
	delivered int64
}

func (g *groupSendLoad) round(ctx context.Context, p phase) (rate, error) {
	r, err := g.send.round(ctx, p)
	if err != nil {
		return r, err
	}
	from := map[int64]int64{} // the round's message ids and their senders
	for i, ids := range g.send.sent {
		for _, id := range ids {
			from[id] = g.send.from[i].UID
		}
	}
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(4)
	counts := make([]int, len(g.members))
	for k := range g.members {
		eg.Go(func() (err error) {
			counts[k], err = g.check(ectx, k, from, r.Failed > 0)
			return err
		})
	}
	if err := eg.Wait(); err != nil {
		return r, fmt.Errorf("group send: delivery check: %w", err)
	}
	for id := range from {
		g.cursor = max(g.cursor, id)
	}
	for _, n := range counts {
		g.delivered += int64(n)
	}
	return r, nil
}

// check reads member k's messages past the round's cursor and compares
// them with from, the round's ids and their senders: each one from
// another member must be there once. Nothing else may be, unless some
// Sends failed (a Send that timed out may still have stored its message).
func (g *groupSendLoad) check(ctx context.Context, k int, from map[int64]int64, failures bool) (int, error) {
	me := g.members[k].UID
	want := 0
	for _, uid := range from {
		if uid != me {
			want++
		}
	}
	got, seen := 0, map[int64]bool{}
	cursor := g.cursor
	for {
		res, err := g.readers[k].Recv(ctx, client.RecvRequest{LastID: &cursor, Limit: checkPage})
		if err != nil {
			return got, fmt.Errorf("member %d: %w", me, err)
		}
		for _, m := range res.Messages {
			uid, ours := from[m.ID]
			switch {
			case seen[m.ID]:
				return got, fmt.Errorf("member %d got message %d twice", me, m.ID)
			case ours && (uid == me || m.UIDFrom != uid):
				return got, fmt.Errorf("member %d got message %d from %d (stored from %d)", me, m.ID, m.UIDFrom, uid)
			case !ours && !failures:
				return got, fmt.Errorf("member %d got message %d, which no Send of the round stored", me, m.ID)
			}
			seen[m.ID] = true
			if ours {
				got++
			}
		}
		cursor = res.LastID
		if !res.More {
			break
		}
	}
	if got != want {
		return got, fmt.Errorf("member %d got %d of the round's %d messages from others", me, got, want)
	}
	return got, nil
}

func (g *groupSendLoad) close() {
	g.send.close()
	g.tr.closeIdle()
}

// groupSend runs group send against 1:1 Sends on one fresh database of
// kind ("sqlite" or "mysql"), one server. Its users: clients senders of
// the 1:1 Sends, their clients recipients, then the group's groupSize
// members, of whom the first clients send (all of them, again and again,
// when clients is larger). The group is made through /Group/create.
func (rep *report) groupSend(ctx context.Context, kind, dsn, dir string, log *slog.Logger, logf func(string, ...any)) (send, ref rate, err error) {
	o := rep.opts
	clients := o.clients
	contacts := make([][2]int, 0, clients+groupSize)
	for i := range clients {
		contacts = append(contacts, [2]int{i, clients + i})
	}
	for k := 1; k < groupSize; k++ {
		contacts = append(contacts, [2]int{2 * clients, 2*clients + k})
	}
	fx, err := prepare(ctx, dsn, 2*clients+groupSize, contacts, log)
	if err != nil {
		return send, ref, fmt.Errorf("group send (%s): prepare: %w", kind, err)
	}
	srv, err := startChat(ctx, dsn, "127.0.0.1:0", dir, nil, log)
	if err != nil {
		return send, ref, fmt.Errorf("group send (%s): start server: %w", kind, err)
	}
	defer srv.close()
	members := fx.users[2*clients:]
	gid, err := createGroup(ctx, srv.addr, fx, members)
	if err != nil {
		return send, ref, fmt.Errorf("group send (%s): %w", kind, err)
	}
	g, err := newGroupSendLoad(srv.addr, fx, members, gid, clients)
	if err != nil {
		return send, ref, err
	}
	defer g.close()
	to := make([]int64, clients)
	for i := range to {
		to[i] = fx.users[clients+i].UID
	}
	one := newRawSend(srv.addr, fx.signedPath("/Message/Send"), "uid_to", fx.users[:clients], to, 0, false)
	defer one.close()
	logf("group send (%s): /Message/Send into a group of %d by %d members against 1:1 Sends, %d clients, %d rounds", kind, groupSize, min(clients, groupSize), clients, o.rounds)
	p := phase{warmup: o.warmup, duration: o.duration}
	send, ref, err = compare(ctx, o.rounds, p, g, one, rep.profile("group-send-"+kind), rep.profile("send-1to1-"+kind))
	rep.groups.delivered += g.delivered
	return send, ref, err
}

// newGroupSendLoad readies group send into gid by clients workers, worker
// i sending as member i mod groupSize.
func newGroupSendLoad(addr string, fx *fixture, members []user, gid int64, clients int) (*groupSendLoad, error) {
	from, to := make([]user, clients), make([]int64, clients)
	for i := range from {
		from[i], to[i] = members[i%len(members)], gid
	}
	g := &groupSendLoad{
		send:    newRawSend(addr, fx.signedPath("/Message/Send"), "gid", from, to, clients, true),
		members: members,
		tr:      newFastTransport(addr, 4),
	}
	for _, m := range members {
		c, err := sdkClient(g.tr, fx.secret, m)
		if err != nil {
			return nil, err
		}
		g.readers = append(g.readers, c)
	}
	return g, nil
}

// createGroup makes members[0] create a group with the others through
// /Group/create (they are its contacts) and returns its gid.
func createGroup(ctx context.Context, addr string, fx *fixture, members []user) (int64, error) {
	type uidItem struct {
		UID int64 `json:"uid"`
	}
	owner := members[0]
	body := struct {
		UID         int64     `json:"uid"`
		AccessToken string    `json:"access_token"`
		Name        string    `json:"name"`
		Data        []uidItem `json:"data"`
	}{UID: owner.UID, AccessToken: owner.Token, Name: "bench group"}
	for _, m := range members[1:] {
		body.Data = append(body.Data, uidItem{m.UID})
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, err
	}
	req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
	defer fasthttp.ReleaseRequest(req)
	defer fasthttp.ReleaseResponse(resp)
	req.Header.SetMethod(fasthttp.MethodPost)
	req.SetRequestURI("http://" + addr + fx.signedPath("/Group/create"))
	req.Header.SetContentType("application/json")
	req.SetBodyRaw(raw)
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(30 * time.Second)
	}
	if err := fasthttp.DoDeadline(req, resp, deadline); err != nil {
		return 0, fmt.Errorf("create group: %w", err)
	}
	if fail := checkEnvelope(resp.StatusCode(), resp.Body(), true); fail != "" {
		return 0, errors.New("create group: " + fail)
	}
	var made struct {
		GID int64 `json:"gid"`
		Num int   `json:"num"`
	}
	if err := json.Unmarshal(resp.Body(), &made); err != nil || made.GID == 0 || made.Num != len(members)-1 {
		return 0, fmt.Errorf("create group: %d of %d members added: %.200s", made.Num, len(members)-1, resp.Body())
	}
	return made.GID, nil
}

// groupWorkloads runs the group workloads: group send on SQLite and,
// with ms, on a fresh MariaDB/MySQL database; then recv groups on
// SQLite.
func (rep *report) groupWorkloads(ctx context.Context, dir string, ms *mysqlServer, log *slog.Logger, logf func(string, ...any)) (err error) {
	gr := &rep.groups
	gr.send, gr.sendRef, err = rep.groupSend(ctx, "sqlite", "sqlite:"+filepath.Join(dir, "group-send.db"), dir, log, logf)
	if err != nil {
		return err
	}
	if ms != nil {
		dsn, err := ms.fresh(ctx, "gsend")
		if err != nil {
			return err
		}
		send, ref, err := rep.groupSend(ctx, "mysql", dsn, dir, log, logf)
		if err != nil {
			return err
		}
		gr.sendMySQL, gr.sendRefMySQL = &send, &ref
	}
	return rep.recvGroups(ctx, filepath.Join(dir, "group-recv.db"), dir, log, logf)
}

// failed counts the failed requests of the group workloads.
func (gr *groupResults) failed() int64 {
	n := gr.send.Failed + gr.sendRef.Failed + gr.recv.Failed + gr.selectRecv.Failed
	if gr.sendMySQL != nil {
		n += gr.sendMySQL.Failed + gr.sendRefMySQL.Failed
	}
	return n
}

// rates names the group workloads' rates, for the report's list of
// first failures.
func (gr *groupResults) rates() []namedRate {
	return []namedRate{{"group send sqlite", &gr.send}, {"send (1:1, group run) sqlite", &gr.sendRef},
		{"group send mysql", gr.sendMySQL}, {"send (1:1, group run) mysql", gr.sendRefMySQL},
		{"recv groups", &gr.recv}, {"select recv groups", &gr.selectRecv}}
}

// namedRate is a rate and the name the report gives it.
type namedRate struct {
	name string
	r    *rate
}

// The recv groups workload's seed: recvGroupCount groups, each with the
// readers (one per client, measured) and groupOthers others of its own,
// who send its messages; the readers send none, so each sees every one.
const (
	recvGroupCount = 50
	// recvPage is the page Recv is asked for.
	recvPage = 100
	// groupOthersMin is the fewest senders a group has; a group has
	// groupSize members when the readers leave room for that.
	groupOthersMin = 10
	// groupSeedShare is the share of --messages the seed stores: a tenth,
	// so that the default makes groups of 2 000 messages each.
	groupSeedShare = 10
	// minGroupMessages is the fewest messages a seeded group holds.
	minGroupMessages = 10
	// directEvery is how often, in rounds of one message to each group,
	// each reader also gets a 1:1 message: the other side of Recv's read.
	directEvery = 5
)

// recvFixture is a database seeded for the recv groups workload.
type recvFixture struct {
	*fixture
	readers int // users[:readers]
	// groupIDs are the ids of the group messages, ascending.
	groupIDs []int64
	messages int
	seeded   time.Duration
}

// recvGroupsSQL is the reference of the recv groups workload: the text
// models.Store.MessagesFor runs (models.Store.RecvStatement), asking, as
// Recv does, for one message past the page. Its arguments are recvArgs'.
// The workload checks first that it returns what Recv does.
func recvGroupsSQL(gdb *gorm.DB) (string, error) {
	store, err := moduleStore(gdb)
	if err != nil {
		return "", err
	}
	q, _, err := store.RecvStatement(0, 0, recvPage+1)
	return q, err
}

// moduleStore is the module's store on gdb, a SQLite database of the
// bench's: the module's table prefix, on gdb's pool. Its statements are
// the references of the workloads that compare a route with its read.
func moduleStore(gdb *gorm.DB) (*models.Store, error) {
	pool, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	prefixed, err := gorm.Open(&sqlite.Dialector{Conn: pool}, &gorm.Config{NamingStrategy: schema.NamingStrategy{TablePrefix: "chat_"}})
	if err != nil {
		return nil, err
	}
	return models.NewStore(prefixed, 0), nil
}

// recvArgs are recvGroupsSQL's arguments for uid past lastID, as
// RecvStatement gives them.
func recvArgs(uid, lastID int64) []any { return models.RecvArgs(uid, lastID) }

// recvPick is worker i's seq-th Recv: its reader, and a last_id with at
// least a page and one of group messages past it.
func (rf *recvFixture) recvPick(i, seq int) (user, int64) {
	k := (mix(i, seq) >> 16) % uint64(len(rf.groupIDs)-recvPage-1)
	return rf.users[i%rf.readers], rf.groupIDs[k]
}

// seedGroups migrates the database dsn names and stores readers users in
// recvGroupCount groups with others of their own, then
// messages/groupSeedShare messages (at least minGroupMessages a group)
// straight into the tables, in rounds of one to each group, and every
// directEvery rounds one 1:1 message to each reader; ids are given, so
// the cursors to ask from are known.
func seedGroups(ctx context.Context, dsn string, messages, readers int, log *slog.Logger) (*recvFixture, error) {
	start := time.Now()
	others := max(groupSize-readers, groupOthersMin)
	fx, err := prepare(ctx, dsn, readers+recvGroupCount*others, nil, log)
	if err != nil {
		return nil, err
	}
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer database.Close(gdb)
	db, err := gdb.DB()
	if err != nil {
		return nil, err
	}
	rf := &recvFixture{fixture: fx, readers: readers}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	if err := seedGroupRows(ctx, tx, fx.users, readers, others); err != nil {
		return nil, err
	}
	perGroup := max(messages/groupSeedShare/recvGroupCount, minGroupMessages)
	if err := rf.seedGroupMessages(ctx, tx, others, perGroup); err != nil {
		return nil, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE chat_groups SET seq = ?, last_id = (SELECT MAX(id) FROM chat_messages AS m WHERE m.gid = chat_groups.gid)", perGroup); err != nil {
		return nil, fmt.Errorf("seed group counters: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO chat_conversations (uid, peer_uid, last_id, read_id, unread)
		SELECT to_uid, from_uid, MAX(id), 0, COUNT(*) FROM chat_messages WHERE gid = 0 GROUP BY to_uid, from_uid`); err != nil {
		return nil, fmt.Errorf("seed conversations: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	rf.seeded = time.Since(start)
	return rf, nil
}

// groupGID is the gid of seeded group g: gids start at 20000001.
func groupGID(g int) int64 { return 20_000_001 + int64(g) }

// groupOther is the index of the k-th other member of seeded group g.
func groupOther(readers, others, g, k int) int { return readers + g*others + k }

// seedGroupRows stores the groups and their members: every reader in
// every group, and each group's others, the first of them its owner.
func seedGroupRows(ctx context.Context, tx *sql.Tx, users []user, readers, others int) error {
	now := time.Now().Unix()
	groups := newBulkInsert(tx, "chat_groups", "gid, name, head_img, members_num, seq, last_id, created_at, updated_at")
	members := newBulkInsert(tx, "chat_group_members", "gid, uid, role, since, from_id, until_id, read_id, read_seq")
	for g := range recvGroupCount {
		if err := groups.add(ctx, groupGID(g), "busy group "+strconv.Itoa(g), "", readers+others, 0, 0, now, now); err != nil {
			return err
		}
	}
	if err := groups.flush(ctx); err != nil {
		return err
	}
	for g := range recvGroupCount {
		gid := groupGID(g)
		for k := range others {
			role := "member"
			if k == 0 {
				role = "owner"
			}
			if err := members.add(ctx, gid, users[groupOther(readers, others, g, k)].UID, role, now, 0, 0, 0, 0); err != nil {
				return err
			}
		}
		for r := range readers {
			if err := members.add(ctx, gid, users[r].UID, "member", now, 0, 0, 0, 0); err != nil {
				return err
			}
		}
	}
	return members.flush(ctx)
}

// seedGroupMessages stores perGroup messages to each group, in rounds,
// and the readers' 1:1 messages between them.
func (rf *recvFixture) seedGroupMessages(ctx context.Context, tx *sql.Tx, others, perGroup int) error {
	ins := newBulkInsert(tx, "chat_messages", "id, from_uid, to_uid, body, created_at, pair_lo, pair_hi, gid, gseq")
	base := time.Now().Add(-time.Minute).Unix() - int64(perGroup)
	id := int64(0)
	var text []byte
	for r := range perGroup {
		for g := range recvGroupCount {
			from := groupOther(rf.readers, others, g, r%others)
			id++
			text = messageText(text[:0], from, r)
			if err := ins.add(ctx, id, rf.users[from].UID, nil, string(text), base+int64(r), 0, 0, groupGID(g), r+1); err != nil {
				return err
			}
			rf.groupIDs = append(rf.groupIDs, id)
		}
		if r%directEvery != directEvery-1 {
			continue
		}
		for to := range rf.readers {
			from := groupOther(rf.readers, others, (r+to)%recvGroupCount, 0)
			a, b := rf.users[from].UID, rf.users[to].UID
			id++
			text = messageText(text[:0], from, r)
			if err := ins.add(ctx, id, a, b, string(text), base+int64(r), min(a, b), max(a, b), 0, 0); err != nil {
				return err
			}
		}
	}
	rf.messages = int(id)
	return ins.flush(ctx)
}

// bulkInsert gathers rows into multi-row INSERTs of seedRows rows each
// (see seedRows for why no more).
type bulkInsert struct {
	tx    *sql.Tx
	head  string
	ncols int
	args  []any
}

func newBulkInsert(tx *sql.Tx, table, cols string) *bulkInsert {
	return &bulkInsert{tx: tx, head: "INSERT INTO " + table + " (" + cols + ") VALUES ", ncols: strings.Count(cols, ",") + 1}
}

// add queues one row, writing the statement once it is full.
func (b *bulkInsert) add(ctx context.Context, row ...any) error {
	b.args = append(b.args, row...)
	if len(b.args) < seedRows*b.ncols {
		return nil
	}
	return b.flush(ctx)
}

// flush writes the queued rows.
func (b *bulkInsert) flush(ctx context.Context) error {
	if len(b.args) == 0 {
		return nil
	}
	one := "(" + strings.TrimSuffix(strings.Repeat("?, ", b.ncols), ", ") + "), "
	q := b.head + strings.TrimSuffix(strings.Repeat(one, len(b.args)/b.ncols), ", ")
	if _, err := b.tx.ExecContext(ctx, q, b.args...); err != nil {
		return fmt.Errorf("seed %s: %w", b.head, err)
	}
	b.args = b.args[:0]
	return nil
}

// recvGroups seeds a SQLite database and runs recv groups: /Message/Recv
// with last_id and limit recvPage, each worker one reader of
// recvGroupCount groups, against recvGroupsSQL through database/sql on a
// pool of its own as database.Open makes it, on the same file.
func (rep *report) recvGroups(ctx context.Context, path, dir string, log *slog.Logger, logf func(string, ...any)) error {
	o := rep.opts
	dsn := "sqlite:" + path
	logf("recv groups: seeding %d readers in %d groups", o.clients, recvGroupCount)
	rf, err := seedGroups(ctx, dsn, o.messages, o.clients, log)
	if err != nil {
		return fmt.Errorf("recv groups: seed: %w", err)
	}
	gr := &rep.groups
	gr.seedMessages, gr.seedUsers, gr.seedTime = rf.messages, len(rf.users), rf.seeded
	gr.groupMembers = (len(rf.users)-rf.readers)/recvGroupCount + rf.readers
	logf("recv groups: %d messages seeded in %s", rf.messages, rf.seeded.Round(time.Millisecond))
	srv, err := startChat(ctx, dsn, "127.0.0.1:0", dir, nil, log)
	if err != nil {
		return fmt.Errorf("recv groups: start server: %w", err)
	}
	defer srv.close()
	gdb, err := database.Open(ctx, dsn)
	if err != nil {
		return err
	}
	defer database.Close(gdb)
	db, err := gdb.DB()
	if err != nil {
		return err
	}
	recv, err := newSDKLoad([]string{srv.addr}, rf.secret, rf.users[:o.clients], func(i int, c *client.Client) func(context.Context, int) error {
		return func(ctx context.Context, seq int) error {
			_, last := rf.recvPick(i, seq)
			res, err := c.Recv(ctx, client.RecvRequest{LastID: &last, Limit: recvPage})
			if err == nil && (len(res.Messages) != recvPage || !res.More) {
				err = fmt.Errorf("recv past %d: %d messages (more %v), want a full page", last, len(res.Messages), res.More)
			}
			return err
		}
	})
	if err != nil {
		return err
	}
	defer recv.close()
	query, err := recvGroupsSQL(gdb)
	if err != nil {
		return err
	}
	if err := sameAsRecv(ctx, db, query, recv.clients[:min(3, len(recv.clients))], rf); err != nil {
		return fmt.Errorf("recv groups: %w", err)
	}
	sel, err := newQueryLoad(ctx, db, query, o.clients, func(i, seq int) []any {
		u, last := rf.recvPick(i, seq)
		return recvArgs(u.UID, last)
	}, func() func(*sql.Rows) error {
		var id, from, to, gid, at, kind, ref, reply, edited, file int64
		var body string
		var enc, deleted bool
		var reactions *string
		return func(rows *sql.Rows) error {
			return rows.Scan(&id, &from, &to, &gid, &body, &at, &enc, &kind, &ref, &reply, &edited, &deleted, &reactions, &file)
		}
	})
	if err != nil {
		return err
	}
	defer sel.close()
	logf("recv groups: /Message/Recv (pages of %d, readers of %d groups) against the bare query, %d clients, %d rounds", recvPage, recvGroupCount, o.clients, o.rounds)
	p := phase{warmup: o.warmup, duration: o.duration}
	gr.recv, gr.selectRecv, err = compare(ctx, o.rounds, p, recv, sel, rep.profile("recv-groups"), rep.profile("select-recv-groups"))
	return err
}

// sameAsRecv checks, once before measuring, that the reference query
// answers what Recv does (its first recvPage rows, Recv's page), so that
// a change to MessagesFor's query that this copy misses shows here
// rather than as a ratio of two different reads. Reader i asks from its
// first cursor.
func sameAsRecv(ctx context.Context, db *sql.DB, query string, readers []*client.Client, rf *recvFixture) error {
	for i, c := range readers {
		u, last := rf.recvPick(i, 0)
		res, err := c.Recv(ctx, client.RecvRequest{LastID: &last, Limit: recvPage})
		if err != nil {
			return err
		}
		rows, err := db.QueryContext(ctx, query, recvArgs(u.UID, last)...)
		if err != nil {
			return err
		}
		var ids []int64
		for rows.Next() {
			var id, from, to, gid, at, kind, ref, reply, edited, file int64
			var body string
			var enc, deleted bool
			var reactions *string
			if err := rows.Scan(&id, &from, &to, &gid, &body, &at, &enc, &kind, &ref, &reply, &edited, &deleted, &reactions, &file); err != nil {
				_ = rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		if err := rows.Close(); err != nil {
			return err
		}
		got := make([]int64, len(res.Messages))
		for k, m := range res.Messages {
			got[k] = m.ID
		}
		if len(ids) != recvPage+1 || !slices.Equal(got, ids[:recvPage]) {
			return fmt.Errorf("the reference query past %d for %d is not Recv's page: %d rows, Recv %d messages %v…, query %v…",
				last, u.UID, len(ids), len(got), got[:min(3, len(got))], ids[:min(3, len(ids))])
		}
	}
	return nil
}

// printRows writes the group workloads' rows of the report's table,
// through its row.
func (gr *groupResults) printRows(w io.Writer, row func(name, db string, r rate, unit, ref, ratio string)) {
	sendRows := func(db string, send, ref rate) {
		row("send (1:1, group run)", db, ref, "req/s", "-", "-")
		row("group send", db, send, "msg/s", fmt.Sprintf("1:1 send %.0f req/s", ref.PerSec()), fmt.Sprintf("%.3f", ratio(send, ref)))
	}
	sendRows("sqlite", gr.send, gr.sendRef)
	if gr.sendMySQL != nil {
		sendRows("mysql", *gr.sendMySQL, *gr.sendRefMySQL)
	} else {
		fmt.Fprintln(w, "group send\tmysql\tskipped: no --mysql-dsn\t\t\t\t")
	}
	row("select recv groups", "sqlite", gr.selectRecv, "pages/s", "-", "-")
	row("recv groups", "sqlite", gr.recv, "req/s", fmt.Sprintf("select %.0f pages/s", gr.selectRecv.PerSec()), fmt.Sprintf("%.3f", ratio(gr.recv, gr.selectRecv)))
}

// printNotes writes the group workloads' notes under the table, and
// their first failures.
func (gr *groupResults) printNotes(w io.Writer, clients int) {
	fmt.Fprintf(w, "group send: %d members of a group of %d sending into it (/Group/create made it), against 1:1 Sends by %d clients, each its own sender and recipient, on the same database and server; both over fasthttp's client without the SDK (which has no group Send); after each group round, every member's Recv from the round's starting cursor checked to return each message of the round from another member once and nothing else (%d deliveries checked, not timed)\n",
		min(clients, groupSize), groupSize, clients, gr.delivered)
	fmt.Fprintf(w, "recv groups: %d messages among %d users, seeded in %s: %d readers (one per client) each in %d groups of %d members, whose others send; each reader also gets a 1:1 message every %d rounds; Recv with last_id (a page and one past it remaining) and limit %d; select: MessagesFor's query (LIMIT %d, as Recv asks) on its own pool as database.Open makes it\n",
		gr.seedMessages, gr.seedUsers, gr.seedTime.Round(time.Millisecond), clients, recvGroupCount, gr.groupMembers, directEvery, recvPage, recvPage+1)
	for _, f := range gr.rates() {
		if f.r != nil && f.r.Failed > 0 {
			fmt.Fprintf(w, "%s: first failure: %s\n", f.name, f.r.FirstFailure)
		}
	}
}

// groupKeys are the group workloads' keys in the summary (issue 23);
// group_send_vs_send_mysql is null without --mysql-dsn.
type groupKeys struct {
	GroupSendVsSend      float64  `json:"group_send_vs_send"`
	GroupSendVsSendMySQL *float64 `json:"group_send_vs_send_mysql"`
	RecvGroupsVsSelect   float64  `json:"recv_groups_vs_select"`
}

// groupFigures are the group workloads' raw figures in the summary.
type groupFigures struct {
	GroupSendRPS         float64  `json:"group_send_rps"`
	GroupSendRefRPS      float64  `json:"group_send_ref_rps"`
	GroupSendMySQLRPS    *float64 `json:"group_send_mysql_rps"`
	GroupSendRefMySQLRPS *float64 `json:"group_send_ref_mysql_rps"`
	GroupDelivered       int64    `json:"group_delivered"`
	RecvGroupsRPS        float64  `json:"recv_groups_rps"`
	SelectRecvGroupsRPS  float64  `json:"select_recv_groups_rps"`
	GroupSeedMessages    int      `json:"group_seed_messages"`
	GroupSeedS           float64  `json:"group_seed_s"`
}

// summary returns the group workloads' part of the summary.
func (gr *groupResults) summary() (groupKeys, groupFigures) {
	k := groupKeys{
		GroupSendVsSend:    round(ratio(gr.send, gr.sendRef), 3),
		RecvGroupsVsSelect: round(ratio(gr.recv, gr.selectRecv), 3),
	}
	f := groupFigures{
		GroupSendRPS:        round(gr.send.PerSec(), 0),
		GroupSendRefRPS:     round(gr.sendRef.PerSec(), 0),
		GroupDelivered:      gr.delivered,
		RecvGroupsRPS:       round(gr.recv.PerSec(), 0),
		SelectRecvGroupsRPS: round(gr.selectRecv.PerSec(), 0),
		GroupSeedMessages:   gr.seedMessages,
		GroupSeedS:          round(gr.seedTime.Seconds(), 1),
	}
	if gr.sendMySQL != nil {
		r := round(ratio(*gr.sendMySQL, *gr.sendRefMySQL), 3)
		send, ref := round(gr.sendMySQL.PerSec(), 0), round(gr.sendRefMySQL.PerSec(), 0)
		k.GroupSendVsSendMySQL, f.GroupSendMySQLRPS, f.GroupSendRefMySQLRPS = &r, &send, &ref
	}
	return k, f
}
