package notify

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

func received(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func TestLocalWakesOnlyThatUser(t *testing.T) {
	n := NewLocal()
	defer n.Close()
	a1, cancelA1 := n.Subscribe(1)
	defer cancelA1()
	a2, cancelA2 := n.Subscribe(1)
	defer cancelA2()
	b, cancelB := n.Subscribe(2)
	defer cancelB()

	if err := n.Publish(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if !received(a1) || !received(a2) {
		t.Fatal("a subscriber of uid 1 was not woken")
	}
	if received(b) {
		t.Fatal("uid 2 was woken by a publish for uid 1")
	}
}

func TestLocalCoalescesAndNeverBlocks(t *testing.T) {
	n := NewLocal()
	defer n.Close()
	wake, cancel := n.Subscribe(7)
	defer cancel()
	for i := 0; i < 100; i++ { // nobody reads: Publish must not block
		if err := n.Publish(context.Background(), 7); err != nil {
			t.Fatal(err)
		}
	}
	if !received(wake) {
		t.Fatal("no wake-up kept")
	}
	if received(wake) {
		t.Fatal("wake-ups were queued instead of coalesced")
	}
}

func TestLocalRemembersPublishBeforeReceive(t *testing.T) {
	// Subscribe, then publish, then wait: the wake-up is not lost, which is
	// what lets Recv subscribe before it reads the database.
	n := NewLocal()
	defer n.Close()
	wake, cancel := n.Subscribe(3)
	defer cancel()
	_ = n.Publish(context.Background(), 3)
	select {
	case <-wake:
	case <-time.After(time.Second):
		t.Fatal("wake-up lost")
	}
}

func TestLocalCancel(t *testing.T) {
	n := NewLocal()
	defer n.Close()
	wake, cancel := n.Subscribe(5)
	cancel()
	cancel() // idempotent
	_ = n.Publish(context.Background(), 5)
	if received(wake) {
		t.Fatal("woken after cancel")
	}
	if got := n.subscribers(5); got != 0 {
		t.Fatalf("%d subscriptions left after cancel, want 0", got)
	}
	if len(n.subs) != 0 {
		t.Fatal("an empty subscriber set was kept")
	}
}

func TestLocalClose(t *testing.T) {
	n := NewLocal()
	wake, cancel := n.Subscribe(9)
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	cancel() // after Close: harmless
	if err := n.Publish(context.Background(), 9); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if received(wake) {
		t.Fatal("woken after Close")
	}
	late, lateCancel := n.Subscribe(9)
	defer lateCancel()
	if late == nil || received(late) {
		t.Fatal("a Subscribe after Close must give a channel that never fires")
	}
}

func TestLocalConcurrent(t *testing.T) {
	n := NewLocal()
	defer n.Close()
	var wg sync.WaitGroup
	for i := 0; i < 16; i++ {
		wg.Add(2)
		go func(uid int64) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				wake, cancel := n.Subscribe(uid % 4)
				_ = n.Publish(context.Background(), uid%4)
				<-wake // its own publish came after the subscription
				cancel()
			}
		}(int64(i))
		go func(uid int64) {
			defer wg.Done()
			for j := 0; j < 200; j++ {
				_ = n.Publish(context.Background(), uid%4)
			}
		}(int64(i))
	}
	wg.Wait()
	for uid := int64(0); uid < 4; uid++ {
		if got := n.subscribers(uid); got != 0 {
			t.Fatalf("uid %d: %d subscriptions left", uid, got)
		}
	}
}

var _ Notifier = (*Local)(nil)
