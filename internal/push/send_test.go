package push_test

import (
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/internal/push"
	"github.com/fiberchat/fiberchat/models"
)

// fakeStore is a Store of subs, with no names.
type fakeStore struct{ subs []models.PushSubscription }

func (f *fakeStore) VAPIDKeyPair(_ context.Context, _ int64, generate func() (string, string, error)) (models.VapidKey, error) {
	priv, pub, err := generate()
	return models.VapidKey{PrivateKey: priv, PublicKey: pub}, err
}

func (f *fakeStore) PushSubscriptions(context.Context, []int64) ([]models.PushSubscription, error) {
	return f.subs, nil
}

func (f *fakeStore) DeletePushSubscription(context.Context, int64, string) error { return nil }

func (f *fakeStore) Profiles(context.Context, []int64) ([]models.Profile, error) { return nil, nil }

func (f *fakeStore) PushPreviews(_ context.Context, ids []int64) (map[int64]models.Message, error) {
	out := map[int64]models.Message{}
	for _, id := range ids {
		out[id] = models.Message{ID: id, Body: "hi"}
	}
	return out, nil
}

// TestFailedPushLogsNoEndpoint: a push that fails is logged with its
// endpoint's host only. An HTTP client's error names the whole URL, and
// the endpoint's path is a capability: whoever has it can push to that
// browser.
func TestFailedPushLogsNoEndpoint(t *testing.T) {
	var log chattest.SyncBuffer
	const secret = "SECRET-CAPABILITY-abcdef"
	st := &fakeStore{subs: []models.PushSubscription{{UID: 2, Endpoint: "https://127.0.0.1/wpush/v2/" + secret,
		P256dh: "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM", Auth: "tBHItJI5svbpez7KI4CCXg"}}}
	p := push.New(push.Config{Store: st, Online: func(context.Context, []int64) map[int64]bool { return nil },
		Delay: time.Millisecond, Workers: 1, Queue: 10, Subscriber: "mailto:ops@example.com",
		Timeout: time.Second, Now: time.Now, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	defer p.Close()
	p.Queue(&models.Message{ID: 1, FromUID: 1, Body: "hi"}, []int64{2})
	deadline := time.Now().Add(10 * time.Second)
	for p.Stats().Failed == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the push to a loopback address did not fail: %+v", p.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	out := log.String()
	if !strings.Contains(out, "push: not sent") || !strings.Contains(out, "host=127.0.0.1") || !strings.Contains(out, "refusing") {
		t.Fatalf("log: %s, want the failure with its host and cause", out)
	}
	if strings.Contains(out, secret) {
		t.Fatalf("the endpoint's path is in the log: %s", out)
	}
}
