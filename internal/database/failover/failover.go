// Package failover opens MySQL/MariaDB connections on a DSN that lists
// several servers, tcp(host1:port,host2:port,…): each new connection goes
// to the first of them that answers and is ready, so an instance whose
// database node dies moves on to the next by itself. go-sql-driver takes
// one address only; this package splits the list and hands each
// connection to the driver's own connector for one address.
//
// It is made for the nodes of a MariaDB Galera cluster, where any node
// takes writes (docs/scaling.md): a node that is up but not ready to
// take queries (wsrep_on, and wsrep_ready OFF: not yet joined, or cut
// off from the primary component, where every statement would fail with
// 1047) is passed over like one that does not answer. A server without
// wsrep is always ready. A new connection costs these two questions, a
// round trip each, once.
//
// Connections already open stay where they are: one whose server dies
// fails, and database/sql replaces it by a new one, which goes to the
// first server ready then. A Galera node that is up but cut off from the
// primary component answers 1047 to every statement on the connections
// to it instead, for as long as they lived: its first such answer
// retires them all, and database/sql closes each rather than hand it out
// again (see conn).
//
// Nothing here needs the database's other drivers, so the models
// package (the message writers' own pool) can use it without importing
// internal/database.
package failover

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	gomysql "github.com/go-sql-driver/mysql"
)

// DialTimeout bounds one server's connect, when the DSN sets no timeout:
// a server that does not answer (its host down, packets dropped) costs a
// new connection that long before the next is tried.
const DialTimeout = time.Second

// Split returns one DSN per address of dsn's tcp(…) list, in order, each
// otherwise as dsn wrote it; a DSN of one address is returned alone.
// The list is the first "tcp(" … ")" in dsn.
func Split(dsn string) []string {
	start := strings.Index(dsn, "tcp(")
	if start < 0 {
		return []string{dsn}
	}
	start += len("tcp(")
	end := strings.IndexByte(dsn[start:], ')')
	if end < 0 || !strings.Contains(dsn[start:start+end], ",") {
		return []string{dsn}
	}
	var out []string
	for addr := range strings.SplitSeq(dsn[start:start+end], ",") {
		out = append(out, dsn[:start]+strings.TrimSpace(addr)+dsn[start+end:])
	}
	return out
}

// Configs returns the driver configuration of each server that a DSN
// (as GORM's MySQL dialector keeps it: its text, or a parsed config, or
// both) names: one, or several in failover order, or none when there is
// neither. A list of several addresses in dsn wins over cfg; otherwise
// cfg, a copy, wins over dsn.
func Configs(dsn string, cfg *gomysql.Config) ([]*gomysql.Config, error) {
	if dsns := Split(dsn); len(dsns) > 1 {
		cfgs := make([]*gomysql.Config, len(dsns))
		for i, one := range dsns {
			c, err := gomysql.ParseDSN(one)
			if err != nil {
				return nil, err
			}
			cfgs[i] = c
		}
		return cfgs, nil
	}
	switch {
	case cfg != nil:
		return []*gomysql.Config{cfg.Clone()}, nil
	case dsn != "":
		c, err := gomysql.ParseDSN(dsn)
		if err != nil {
			return nil, err
		}
		return []*gomysql.Config{c}, nil
	}
	return nil, nil
}

// New returns a connector over cfgs' servers, in order (see the package
// doc); wrap, if not nil, wraps each server's connector (clientcharset's
// guard, say).
func New(cfgs []*gomysql.Config, wrap func(driver.Connector) driver.Connector) (driver.Connector, error) {
	if len(cfgs) == 0 {
		return nil, errors.New("failover: no server")
	}
	c := &connector{}
	for _, cfg := range cfgs {
		cfg = cfg.Clone()
		if cfg.Timeout == 0 {
			cfg.Timeout = DialTimeout
		}
		one, err := gomysql.NewConnector(cfg)
		if err != nil {
			return nil, err
		}
		if wrap != nil {
			one = wrap(one)
		}
		c.servers = append(c.servers, server{addr: cfg.Addr, conn: one, epoch: &atomic.Uint64{}})
	}
	return c, nil
}

type server struct {
	addr string
	conn driver.Connector
	// epoch is the generation of the server's connections that are good:
	// a 1047 answer on one of them moves it on (see conn).
	epoch *atomic.Uint64
}

type connector struct{ servers []server }

// Connect returns a connection to the first server that answers and is
// ready, or why none was.
func (c *connector) Connect(ctx context.Context) (driver.Conn, error) {
	var errs []error
	for _, s := range c.servers {
		epoch := s.epoch.Load()
		inner, err := s.conn.Connect(ctx)
		if err == nil {
			if err = ready(ctx, inner); err != nil {
				_ = inner.Close()
			}
		}
		if err == nil {
			return &conn{Conn: inner, epoch: epoch, server: s.epoch}, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.addr, err))
		if ctx.Err() != nil {
			break
		}
	}
	// The last server's error first: errors.As finds it, and the
	// module's classification (Unavailable) reads the driver's own.
	slices.Reverse(errs)
	return nil, errors.Join(errs...)
}

func (c *connector) Driver() driver.Driver { return c.servers[0].conn.Driver() }

// ErrNotReady is a server that answers but says it is not ready for
// queries (wsrep_ready OFF).
var ErrNotReady = errors.New("failover: server not ready (wsrep_ready is OFF)")

// ready asks conn's server whether it takes queries: a server with
// wsrep on must say wsrep_ready ON. A MariaDB without a cluster has the
// status too, always OFF, so wsrep_on is asked first; a MySQL without
// wsrep has neither.
func ready(ctx context.Context, conn driver.Conn) error {
	q, ok := conn.(driver.QueryerContext)
	if !ok {
		return nil
	}
	on, err := show(ctx, q, "SHOW VARIABLES LIKE 'wsrep_on'")
	if err != nil || !strings.EqualFold(on, "ON") {
		return err
	}
	switch state, err := show(ctx, q, "SHOW STATUS LIKE 'wsrep_ready'"); {
	case err != nil:
		return err
	case !strings.EqualFold(state, "ON"):
		return ErrNotReady
	}
	return nil
}

// show runs a SHOW … LIKE of one name and returns its value, "" for no
// row.
func show(ctx context.Context, q driver.QueryerContext, stmt string) (string, error) {
	rows, err := q.QueryContext(ctx, stmt, nil)
	if err != nil {
		return "", err
	}
	defer rows.Close()
	vals := make([]driver.Value, len(rows.Columns()))
	switch err := rows.Next(vals); {
	case errors.Is(err, io.EOF):
		return "", nil
	case err != nil:
		return "", err
	case len(vals) != 2:
		return "", fmt.Errorf("failover: %s: %d columns", stmt, len(vals))
	}
	return text(vals[1]), nil
}

func text(v driver.Value) string {
	switch v := v.(type) {
	case []byte:
		return string(v)
	case string:
		return v
	}
	return fmt.Sprint(v)
}

// MySQL/MariaDB server errors that say a server takes no queries now.
const (
	// A Galera node not (yet, or no longer) in the primary component
	// answers every statement with ER_UNKNOWN_COM_ERROR, "WSREP has not
	// yet prepared node for application use".
	wsrepNotReady = 1047
	// A server being made read-only in a failover:
	// ER_OPTION_PREVENTS_STATEMENT and ER_READ_ONLY_MODE.
	readOnlyOption = 1290
	readOnlyMode   = 1836
)

// NotReady reports whether err is a server's answer that it takes no
// queries now (see the package doc): a node to move away from, not a bug.
func NotReady(err error) bool {
	var e *gomysql.MySQLError
	if !errors.As(err, &e) {
		return false
	}
	switch e.Number {
	case wsrepNotReady, readOnlyOption, readOnlyMode:
		return true
	}
	return false
}

// conn is a connection Connect handed out. A 1047 answer on it (the
// node is not in the primary component, which ready would refuse too)
// retires it and every other connection to its server made before: each
// then reports itself invalid (IsValid), and bad when database/sql would
// reuse it (ResetSession), so that database/sql closes it and, past its
// retries, opens a new connection, which goes to the first server ready.
// One failed request, not one for each pooled connection, moves an
// instance off a node that stopped taking queries.
//
// The driver's connections (go-sql-driver's, or clientcharset's
// wrapping of them) have every interface database/sql uses; conn passes
// each on.
type conn struct {
	driver.Conn
	// epoch is the server's epoch the connection was made in.
	epoch  uint64
	server *atomic.Uint64
}

func (c *conn) retired() bool { return c.server.Load() != c.epoch }

// watch retires the server's connections when err says it is cut off
// from the primary component, and returns err as it is. A read-only
// answer does not: ready does not ask about read_only, so the new
// connections would go back to the same server, and 1290 is not only
// read_only's.
func (c *conn) watch(err error) error {
	var e *gomysql.MySQLError
	if err != nil && errors.As(err, &e) && e.Number == wsrepNotReady {
		c.server.CompareAndSwap(c.epoch, c.epoch+1)
	}
	return err
}

func (c *conn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	res, err := c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
	return res, c.watch(err)
}

func (c *conn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	rows, err := c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
	return rows, c.watch(err)
}

func (c *conn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	return st, c.watch(err)
}

func (c *conn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
	return tx, c.watch(err)
}

func (c *conn) Ping(ctx context.Context) error {
	return c.watch(c.Conn.(driver.Pinger).Ping(ctx))
}

func (c *conn) ResetSession(ctx context.Context) error {
	if c.retired() {
		return driver.ErrBadConn
	}
	return c.Conn.(driver.SessionResetter).ResetSession(ctx)
}

func (c *conn) IsValid() bool { return !c.retired() && c.Conn.(driver.Validator).IsValid() }

func (c *conn) CheckNamedValue(nv *driver.NamedValue) error {
	return c.Conn.(driver.NamedValueChecker).CheckNamedValue(nv)
}
