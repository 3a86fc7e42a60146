package handlers

import "sync"

const (
	// maxPollsPerSession caps the waiting Recv long polls of one session,
	// as maxStreamsPerSession caps its streams: a client that opens polls
	// without waiting for their answers (a bug, or a page open in many
	// tabs) costs at most this many. Past it the oldest is answered at
	// once, empty, as if its wait had run out, which any client handles.
	maxPollsPerSession = 4
	// maxPollsPerUser caps them for all of a user's sessions together, so
	// that logging in again for fresh sessions does not lift the cap.
	maxPollsPerUser = 16
)

// pollCap is the registry of waiting long polls, held or parked, by uid,
// that enforces maxPollsPerSession and maxPollsPerUser.
type pollCap struct {
	mu sync.Mutex
	// byUID holds each user's waiting polls, oldest first.
	byUID map[int64][]*waitingPoll
}

// waitingPoll is one waiting poll; end answers it at once.
type waitingPoll struct {
	uid, tokenID int64
	end          func()
}

func newPollCap() *pollCap { return &pollCap{byUID: make(map[int64][]*waitingPoll)} }

// add registers a poll of the session (uid, tokenID) that end answers at
// once, and ends the oldest ones past the caps. Each poll's end runs at
// most once, and never after remove. Call remove once the poll is
// answered.
func (p *pollCap) add(uid, tokenID int64, end func()) *waitingPoll {
	w := &waitingPoll{uid: uid, tokenID: tokenID, end: end}
	var ended []*waitingPoll
	p.mu.Lock()
	list := append(p.byUID[uid], w)
	n := 0
	for _, o := range list {
		if o.tokenID == tokenID {
			n++
		}
	}
	for i := 0; n > maxPollsPerSession; i++ {
		if list[i].tokenID == tokenID {
			ended = append(ended, list[i])
			list = append(list[:i], list[i+1:]...)
			i--
			n--
		}
	}
	if over := len(list) - maxPollsPerUser; over > 0 {
		ended = append(ended, list[:over]...)
		list = append(list[:0:0], list[over:]...)
	}
	p.byUID[uid] = list
	p.mu.Unlock()
	for _, o := range ended {
		o.end()
	}
	return w
}

// remove forgets w; it may have been ended and forgotten already.
func (p *pollCap) remove(w *waitingPoll) {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.byUID[w.uid]
	for i, o := range list {
		if o == w {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(p.byUID, w.uid)
		return
	}
	p.byUID[w.uid] = list
}
