package chattest

import (
	"database/sql"
	"testing"
)

// TestGaleraHarness starts the cluster, writes through one node and
// reads through another, and kills and restarts a node.
func TestGaleraHarness(t *testing.T) {
	g := StartGalera(t)
	open := func(i int) *sql.DB {
		db, err := sql.Open("mysql", g.DSN(i))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = db.Close() })
		return db
	}
	a, c := open(0), open(2)
	if _, err := a.Exec("CREATE TABLE t (id INT PRIMARY KEY AUTO_INCREMENT, v INT)"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec("INSERT INTO t (v) VALUES (1), (2), (3)"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := c.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 3 {
		t.Fatalf("node 3 sees %d rows (%v), want 3", n, err)
	}
	g.Kill(1)
	g.AwaitSynced(t, g.Nodes[1])
	if _, err := c.Exec("INSERT INTO t (v) VALUES (4)"); err != nil {
		t.Fatal(err)
	}
	g.Start(1)
	g.AwaitSynced(t, nil)
	b := open(1)
	if err := b.QueryRow("SELECT COUNT(*) FROM t").Scan(&n); err != nil || n != 4 {
		t.Fatalf("node 2 after its restart sees %d rows (%v), want 4", n, err)
	}
}
