package filestore_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/filestore"
	"github.com/minio/minio-go/v7"
)

// weedEnv names the SeaweedFS binary when it is not on PATH.
const weedEnv = "FIBERCHAT_WEED"

// TestS3 runs the store checks against a real S3-compatible server: a
// SeaweedFS (`weed server -s3`) the test starts on free ports. Without
// a weed binary it skips, saying where it looked.
func TestS3(t *testing.T) {
	bin := os.Getenv(weedEnv)
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("weed"); err != nil {
			t.Skipf("no SeaweedFS: set %s or put weed on PATH (go build ./weed in github.com/seaweedfs/seaweedfs) to run the S3 store against a real server", weedEnv)
		}
	}
	endpoint := startWeed(t, bin)
	st, err := filestore.NewS3(filestore.S3Config{Endpoint: endpoint, AccessKey: "any", SecretKey: "anysecret", Bucket: "fiberchat"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := st.Client().MakeBucket(ctx, "fiberchat", minio.MakeBucketOptions{})
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("make bucket: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
	testStore(t, st)
}

// startWeed runs a SeaweedFS master, volume, filer and S3 gateway in a
// temporary directory until the test ends, and returns the S3 address.
func startWeed(t *testing.T, bin string) string {
	t.Helper()
	ports := freePorts(t, 4)
	cmd := exec.Command(bin, "server", "-dir="+t.TempDir(), "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
		fmt.Sprintf("-master.port=%d", ports[0]), fmt.Sprintf("-volume.port=%d", ports[1]),
		"-filer", fmt.Sprintf("-filer.port=%d", ports[2]), "-s3", fmt.Sprintf("-s3.port=%d", ports[3]))
	logs, err := os.Create(t.TempDir() + "/weed.log")
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start weed: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logs.Name())
			t.Logf("weed's log:\n%s", b)
		}
	})
	addr := fmt.Sprintf("127.0.0.1:%d", ports[3])
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			_ = c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("weed's S3 gateway never listened on %s", addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freePorts returns n ports free now whose +10000 (SeaweedFS's gRPC
// ports) are free too.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var out []int
	for len(out) < n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		_ = l.Close()
		if p+10000 > 65535 {
			continue
		}
		g, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+10000))
		if err != nil {
			continue
		}
		_ = g.Close()
		out = append(out, p)
	}
	return out
}
