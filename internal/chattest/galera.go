package chattest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// serverUser is who the nodes run as when the test runs as root: not
// root itself, for rsync's daemon, which receives a joiner's state,
// would then write as nobody. Debian's mariadb-server makes the user.
const serverUser = "mysql"

// galeraProvider is where Debian's galera-4 puts the wsrep provider.
const galeraProvider = "/usr/lib/galera/libgalera_smm.so"

// Galera is a MariaDB Galera cluster of three nodes, each a mariadbd child
// process of the test with its own datadir, ports and socket (never the
// shared server on 3306), as a site that outgrows one MariaDB runs it.
// Node 1 bootstraps the cluster; the others start from copies of its
// datadir (see seed), and a node restarted catches up by an incremental
// state transfer, or rsync's full one.
type Galera struct {
	Nodes []*GaleraNode
	t     testing.TB
}

// GaleraNode is one node of a Galera cluster: its Name is the node's
// wsrep_node_name, "node1" to "node3".
type GaleraNode struct {
	Mariadbd

	cluster string
	// gport, istPort and sstPort are Galera's own ports: group
	// communication, incremental and full state transfer.
	gport, istPort, sstPort int
}

// The timeouts Galera decides a node is gone by, shortened from their
// defaults (a suspect timeout of 5 s, an inactive timeout of 15 s): a
// node killed stalls every commit in the cluster until the others have
// evicted it, and a test's Sends have a QueryTimeout of a few seconds.
// docs/scaling.md says what they cost a site.
const galeraEVS = "evs.suspect_timeout=PT1S;evs.inactive_timeout=PT2S;evs.keepalive_period=PT0.2S;" +
	"evs.inactive_check_period=PT0.2S;evs.install_timeout=PT2S;evs.join_retrans_period=PT0.2S"

// StartGalera starts a three-node Galera cluster for the test, with a
// "fiberchat" database and user fiberchat/fiberchat on every node, and
// kills it when the test ends. It skips the test when galera-4, mariadbd,
// mariadb-install-db or rsync is not installed (.ci/run installs them).
func StartGalera(t testing.TB) *Galera {
	t.Helper()
	if _, err := os.Stat(galeraProvider); err != nil {
		t.Skip("galera-4 is not installed: skipping the Galera cluster (apt-get install galera-4; .ci/run does)")
	}
	for _, bin := range []string{"mariadbd", "mariadb-install-db", "rsync"} {
		if _, err := LookBinary(bin); err != nil {
			t.Skipf("%s is not installed: skipping the Galera cluster (.ci/run installs it)", bin)
		}
	}
	// A short path: a Unix socket's is limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "fcgalera")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	// Passable by the nodes' user (see serverUser), who owns what is inside.
	if err := os.Chmod(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	g := &Galera{t: t}
	// Four ports a node, all distinct.
	ports := FreePorts(t, 3*4)
	for i := 1; i <= 3; i++ {
		p := ports[4*(i-1):]
		n := &GaleraNode{Mariadbd: Mariadbd{Name: fmt.Sprintf("node%d", i), Dir: filepath.Join(dir, strconv.Itoa(i)), Port: p[0]},
			gport: p[1], istPort: p[2], sstPort: p[3]}
		if err := os.Mkdir(n.Dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if out, err := exec.Command("chown", serverUser+":", n.Dir).CombinedOutput(); err != nil {
				t.Skipf("the nodes run as %s, who cannot have their directory: %v: %s", serverUser, err, out)
			}
		}
		g.Nodes = append(g.Nodes, n)
	}
	addrs := make([]string, len(g.Nodes))
	for i, n := range g.Nodes {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(n.gport)
	}
	for _, n := range g.Nodes {
		n.cluster = "gcomm://" + strings.Join(addrs, ",")
		t.Cleanup(n.Kill)
	}
	g.seed(t)
	g.Nodes[0].start(t, true)
	for _, n := range g.Nodes[1:] {
		n.start(t, false)
	}
	g.AwaitSynced(t, nil)
	return g
}

// seed makes the nodes' datadirs: node 1's is installed, bootstrapped
// as a cluster of one, given the database and the user, and stopped
// cleanly; the others are copies of it, which share its history and
// position, so that they join with no state transfer at all (rsync's,
// the other way, is slower and must run as a user who may write the
// datadir).
func (g *Galera) seed(t testing.TB) {
	t.Helper()
	first := g.Nodes[0]
	if err := InstallDatadir(first.Datadir(), serverUser); err != nil {
		t.Fatal(err)
	}
	first.start(t, true)
	first.awaitSynced(t, 1)
	g.setUp(t)
	first.Stop(t, 60*time.Second)
	for _, n := range g.Nodes[1:] {
		data := n.Datadir()
		if out, err := exec.Command("cp", "-a", first.Datadir(), data).CombinedOutput(); err != nil {
			t.Fatalf("copy datadir: %v\n%s", err, out)
		}
		// The view node 1 last saw is its own; each node finds its own.
		_ = os.Remove(filepath.Join(data, "gvwstate.dat"))
	}
}

// setUp creates the database and the user on the bootstrap node, which
// replicates both to the nodes that join.
func (g *Galera) setUp(t testing.TB) {
	t.Helper()
	db := g.Nodes[0].Root(t)
	defer db.Close()
	for _, q := range []string{
		"CREATE DATABASE fiberchat CHARACTER SET utf8mb4",
		"CREATE USER 'fiberchat'@'127.0.0.1' IDENTIFIED BY 'fiberchat'",
		"GRANT ALL PRIVILEGES ON `fiberchat%`.* TO 'fiberchat'@'127.0.0.1'",
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// DSN is the go-sql-driver DSN of the fiberchat database on node i
// (0-based) as user fiberchat, as a host would write it: the module
// makes its Recv reads causal itself (see models.Store.MessagesFor).
func (g *Galera) DSN(i int) string { return g.DSNOf(i) }

// DSNOf is DSN listing the given nodes' addresses, in that order,
// comma-separated: internal/database connects to the first that is up
// and ready (see internal/database/failover).
func (g *Galera) DSNOf(nodes ...int) string {
	addrs := make([]string, len(nodes))
	for i, n := range nodes {
		addrs[i] = "127.0.0.1:" + strconv.Itoa(g.Nodes[n].Port)
	}
	return "fiberchat:fiberchat@tcp(" + strings.Join(addrs, ",") + ")/fiberchat?parseTime=true&charset=utf8mb4&loc=UTC"
}

// Kill stops node i with SIGKILL, as a crash would, and waits for it.
func (g *Galera) Kill(i int) { g.Nodes[i].Kill() }

// Start starts node i again; it rejoins the cluster (by an incremental
// state transfer when the others still hold what it missed). It returns
// once the node answers; AwaitSynced waits until it has caught up.
func (g *Galera) Start(i int) { g.Nodes[i].start(g.t, false) }

// AwaitSynced waits until every node but skip is running, Synced and in
// a primary component of as many nodes.
func (g *Galera) AwaitSynced(t testing.TB, skip *GaleraNode) {
	t.Helper()
	want := len(g.Nodes)
	if skip != nil {
		want--
	}
	for _, n := range g.Nodes {
		if n != skip {
			n.awaitSynced(t, want)
		}
	}
}

// Status returns a wsrep status variable of node i (wsrep_local_bf_aborts,
// say), or "" if the node does not answer.
func (g *Galera) Status(i int, name string) string {
	db := g.Nodes[i].Root(g.t)
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var k, v string
	// A literal: SHOW takes no placeholder, and the names are the test's.
	if err := db.QueryRowContext(ctx, "SHOW GLOBAL STATUS LIKE '"+strings.ReplaceAll(name, "'", "")+"'").Scan(&k, &v); err != nil {
		return ""
	}
	return v
}

// Root opens node i as root, over its socket, for a test's own checks.
func (g *Galera) Root(i int) *sql.DB { return g.Nodes[i].Root(g.t) }

// args are the node's mariadbd arguments: Mariadbd's small server, with
// no performance schema and wsrep on.
func (n *GaleraNode) args(bootstrap bool) []string {
	args := append(n.Args(),
		"--performance-schema=OFF",
		"--skip-name-resolve",
		"--binlog-format=ROW",
		"--innodb-autoinc-lock-mode=2",
		"--wsrep-on=ON",
		"--wsrep-provider="+galeraProvider,
		"--wsrep-cluster-name=fiberchat",
		"--wsrep-cluster-address="+n.cluster,
		"--wsrep-node-name="+n.Name,
		"--wsrep-node-address=127.0.0.1:"+strconv.Itoa(n.gport),
		"--wsrep-provider-options=gcache.size=32M;gcache.recover=yes;ist.recv_addr=127.0.0.1:"+strconv.Itoa(n.istPort)+";"+galeraEVS,
		"--wsrep-sst-method=rsync",
		"--wsrep-sst-receive-address=127.0.0.1:"+strconv.Itoa(n.sstPort),
		"--wsrep-slave-threads=2",
	)
	if bootstrap {
		args = append(args, "--wsrep-new-cluster")
	}
	if os.Geteuid() == 0 {
		args = append(args, "--user="+serverUser)
	}
	return args
}

// start starts the node's mariadbd and waits until it answers.
func (n *GaleraNode) start(t testing.TB, bootstrap bool) {
	t.Helper()
	// The SST scripts live beside mariadbd's tools in /usr/bin.
	n.Start(t, n.args(bootstrap), []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}, 90*time.Second)
}

// awaitSynced waits until the node is Synced in a primary component of
// size nodes.
func (n *GaleraNode) awaitSynced(t testing.TB, size int) {
	t.Helper()
	db := n.Root(t)
	defer db.Close()
	deadline := time.Now().Add(90 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var state, status, got string
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.QueryRowContext(ctx, "SELECT (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'wsrep_local_state_comment'),"+
			" (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'wsrep_cluster_status'),"+
			" (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'wsrep_cluster_size')").Scan(&state, &status, &got)
		cancel()
		if err == nil && state == "Synced" && status == "Primary" && got == strconv.Itoa(size) {
			return
		}
		if err == nil {
			err = fmt.Errorf("%s, %s, size %s", state, status, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not synced in a cluster of %d after 90 s: %v\n%s", n.Name, size, err, n.Log())
}

// Open opens the fiberchat database through the given nodes, the first
// preferred and the others in failover order (see DSNOf), as an
// instance of a site on the cluster opens it.
func (g *Galera) Open(t testing.TB, nodes ...int) *DB {
	t.Helper()
	return open(t, "mysql", "mysql:"+g.DSNOf(nodes...))
}
