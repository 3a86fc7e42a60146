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
	a1, cancelA1 := SubscribeChan(n, 1)
	defer cancelA1()
	a2, cancelA2 := SubscribeChan(n, 1)
	defer cancelA2()
	b, cancelB := SubscribeChan(n, 2)
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
	wake, cancel := SubscribeChan(n, 7)
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
	wake, cancel := SubscribeChan(n, 3)
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
	wake, cancel := SubscribeChan(n, 5)
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
	wake, cancel := SubscribeChan(n, 9)
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
	late, lateCancel := SubscribeChan(n, 9)
	defer lateCancel()
	_ = n.Publish(context.Background(), 9)
	if late == nil || received(late) {
		t.Fatal("a Subscribe after Close must register nothing")
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
				wake, cancel := SubscribeChan(n, uid%4)
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

func TestLocalCallback(t *testing.T) {
	// The callback form is what a parked poll uses: wake runs on the
	// publisher's goroutine, once per Publish, and never after cancel
	// has returned.
	n := NewLocal()
	defer n.Close()
	var calls int
	cancel := n.Subscribe(4, func() { calls++ }) // no lock: Publish is on this goroutine
	for range 3 {
		_ = n.Publish(context.Background(), 4)
	}
	if calls != 3 {
		t.Fatalf("wake called %d times for 3 publishes, want 3", calls)
	}
	cancel()
	_ = n.Publish(context.Background(), 4)
	if calls != 3 {
		t.Fatal("wake called after cancel returned")
	}
	// The same callback subscribed twice is two subscriptions.
	wake := func() { calls++ }
	c1, c2 := n.Subscribe(4, wake), n.Subscribe(4, wake)
	defer c2()
	c1()
	_ = n.Publish(context.Background(), 4)
	if calls != 4 {
		t.Fatalf("after cancelling one of two: %d calls, want 4", calls)
	}
}

var _ Notifier = (*Local)(nil)
