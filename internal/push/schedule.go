package push

import (
	"context"
	"slices"
	"time"

	"github.com/fiberchat/fiberchat/models"
)

// maxBatch bounds the messages one look at presence and subscriptions
// serves.
const maxBatch = 256

// schedule waits out each message's Delay, then dispatches it with every
// other message due by then.
func (p *Pusher) schedule() {
	defer p.wg.Done()
	var carry *pending
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case <-p.stop:
				return
			case it := <-p.pending:
				first = &it
			}
		}
		if !p.sleepUntil(first.due) {
			return
		}
		batch := []pending{*first}
	drain:
		for len(batch) < maxBatch {
			select {
			case it := <-p.pending:
				if it.due.After(time.Now()) {
					carry = &it
					break drain
				}
				batch = append(batch, it)
			default:
				break drain
			}
		}
		p.dispatch(batch)
	}
}

// sleepUntil waits until t; false when the Pusher stops first.
func (p *Pusher) sleepUntil(t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.stop:
		return false
	case <-timer.C:
		return true
	}
}

// dispatch turns the batch's messages that are still there into one job
// per subscription of each recipient who is not online.
func (p *Pusher) dispatch(batch []pending) {
	ctx, cancel := context.WithTimeout(p.ctx, p.cfg.Timeout)
	defer cancel()
	ids := make([]int64, len(batch))
	for i, it := range batch {
		ids[i] = it.id
	}
	shown, err := p.cfg.Store.PushPreviews(ctx, ids)
	if err != nil {
		// Pushed unread, a deleted message's text would go out.
		p.cfg.Logger.Warn("push: read messages", "error", models.Redact(err).Error())
		p.dropped.Add(uint64(recipients(batch)))
		return
	}
	batch = slices.DeleteFunc(batch, func(it pending) bool {
		_, ok := shown[it.id]
		return !ok
	})
	if len(batch) == 0 {
		return
	}
	absent := p.absent(ctx, batch)
	if len(absent) == 0 {
		return
	}
	subs, err := p.cfg.Store.PushSubscriptions(ctx, absent)
	if err != nil {
		p.cfg.Logger.Warn("push: read subscriptions", "error", models.Redact(err).Error())
		p.dropped.Add(uint64(len(absent)))
		return
	}
	if len(subs) == 0 {
		return
	}
	byUID := map[int64][]models.PushSubscription{}
	for _, s := range subs {
		byUID[s.UID] = append(byUID[s.UID], s)
	}
	names := p.names(ctx, batch)
	for _, it := range batch {
		body := it.payload(names[it.from], shown[it.id])
		for _, uid := range it.to {
			for _, s := range byUID[uid] {
				p.enqueue(job{sub: s, payload: body})
			}
		}
	}
}

// recipients counts the pushes batch would make at most: one a
// recipient of each message.
func recipients(batch []pending) int {
	n := 0
	for _, it := range batch {
		n += len(it.to)
	}
	return n
}

// absent returns the batch's recipients who are not online, each once.
func (p *Pusher) absent(ctx context.Context, batch []pending) []int64 {
	seen := map[int64]bool{}
	var uids []int64
	for _, it := range batch {
		for _, uid := range it.to {
			if !seen[uid] {
				seen[uid] = true
				uids = append(uids, uid)
			}
		}
	}
	online := p.cfg.Online(ctx, uids)
	out := uids[:0]
	for _, uid := range uids {
		if !online[uid] {
			out = append(out, uid)
		}
	}
	return out
}

// names returns the senders' names; a sender whose profile cannot be
// read is pushed without a name rather than not at all.
func (p *Pusher) names(ctx context.Context, batch []pending) map[int64]string {
	from := make([]int64, 0, len(batch))
	for _, it := range batch {
		from = append(from, it.from)
	}
	out := map[int64]string{}
	profiles, err := p.cfg.Store.Profiles(ctx, from)
	if err != nil {
		p.cfg.Logger.Warn("push: read names", "error", models.Redact(err).Error())
		return out
	}
	for _, pr := range profiles {
		out[pr.UID] = pr.Name
	}
	return out
}

// enqueue hands j to the workers, or drops it when they are that far
// behind.
func (p *Pusher) enqueue(j job) {
	select {
	case p.jobs <- j:
	default:
		p.dropped.Add(1)
	}
}
