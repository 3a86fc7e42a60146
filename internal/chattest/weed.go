package chattest

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

// WeedEnv names the SeaweedFS binary when it is not on PATH.
const WeedEnv = "FIBERCHAT_WEED"

// StartS3 starts an S3 server on a loopback port until the test ends, and
// returns an S3 store on a new bucket of it. The server is a SeaweedFS
// (master, volume, filer and S3 gateway, in a temporary directory) when
// there is a weed binary, on PATH or in FIBERCHAT_WEED; without one it is
// gofakes3, an S3 server of the test's own process, on a socket of its
// own: the store still speaks S3 over HTTP, through minio-go, to a server
// that parses its requests (multipart uploads and ranges included), but
// one that checks no signature.
func StartS3(t *testing.T) *filestore.S3 {
	t.Helper()
	var addr string
	if bin := weedBinary(); bin != "" {
		addr = startWeed(t, bin)
	} else {
		t.Logf("no SeaweedFS (set %s or put weed on PATH; README says how to build it): S3 is gofakes3's, in the test's process", WeedEnv)
		addr = startFakeS3(t)
	}
	st, err := filestore.NewS3(filestore.S3Config{Endpoint: addr, AccessKey: "any", SecretKey: "anysecret", Bucket: "fiberchat"})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := st.Client().MakeBucket(context.Background(), "fiberchat", minio.MakeBucketOptions{})
		if err == nil {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("make bucket: %v", err)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// weedBinary returns the SeaweedFS binary to run, "" without one.
func weedBinary() string {
	if bin := os.Getenv(WeedEnv); bin != "" {
		return bin
	}
	bin, err := exec.LookPath("weed")
	if err != nil {
		return ""
	}
	return bin
}

// startWeed starts weed server -s3 and returns the S3 address once it
// listens.
func startWeed(t *testing.T, bin string) string {
	t.Helper()
	ports := QuietPorts(t, 4, 10000)
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
