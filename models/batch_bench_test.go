package models_test

import (
	"context"
	"sync"
	"testing"

	"github.com/fiberchat/fiberchat/internal/chattest"
	"github.com/fiberchat/fiberchat/models"
)

// BenchmarkCreateMessage compares storing messages one transaction each
// with group commit through a MessageWriter, 64 concurrent senders, on a
// SQLite file (synchronous=FULL): one fsync per Send against one per
// batch.
func BenchmarkCreateMessage(b *testing.B) {
	for _, tc := range []struct {
		name  string
		batch bool
	}{{"one-per-tx", false}, {"group-commit", true}} {
		b.Run(tc.name, func(b *testing.B) {
			s := chattest.NewServer(b, chattest.OpenSQLite(b), chattest.Options{})
			from, to := s.NewUser(b, "a"), s.NewUser(b, "b")
			store := models.NewStore(s.Module.DB(), 0)
			var create func(context.Context, *models.Message) error
			if tc.batch {
				w := models.NewMessageWriter(store, 128)
				w.Start(1)
				b.Cleanup(w.Stop)
				create = func(ctx context.Context, m *models.Message) error {
					_, err := w.CreateMessage(ctx, m, false)
					return err
				}
			} else {
				create = func(ctx context.Context, m *models.Message) error {
					_, err := store.CreateMessage(ctx, m, false)
					return err
				}
			}
			const senders = 64
			work := make(chan struct{})
			var wg sync.WaitGroup
			b.ResetTimer()
			for range senders {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for range work {
						m := &models.Message{FromUID: from.UID, ToUID: to.UID, Body: "hello", CreatedAt: 1}
						if err := create(context.Background(), m); err != nil {
							b.Error(err)
						}
					}
				}()
			}
			for range b.N {
				work <- struct{}{}
			}
			close(work)
			wg.Wait()
		})
	}
}
