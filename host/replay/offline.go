package replay

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/speaker"
)

// The offline speaker's own AS and identifier: a private AS no collector
// peer's path should carry (a path with it would be dropped as a loop).
const (
	offlineAS       = 4294967294
	offlineRouterID = "192.0.2.254"
)

// SelectionConfig is the GoBGP config a replay's speaker needs to pick
// the same best paths every time: GoBGP keeps a path's age in whole
// seconds of when it came, and prefers the older of two eBGP paths that
// tie on everything else (RFC 5004); a replay sends minutes of history
// in a second, so which is older would be a matter of luck. Router ids
// decide instead.
const SelectionConfig = "[global.route-selection-options.config]\n  external-compare-router-id = true\n"

// Offline replays files to a speaker of its own, in this process, on
// loopback, and hands feed its events in GoBGP's order: each best path
// and peer change with the time of the record that made it, and the
// collector peer's address as its peer's. feed runs on one goroutine;
// the replay waits for it.
func Offline(files []string, o Options, feed func(event.Event)) (Stats, error) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	port, err := freePort()
	if err != nil {
		return Stats{}, err
	}
	// GoBGP's own lines (connections accepted and closed, peers added)
	// are the replay's machinery, not the script's story: errors only.
	sp := speaker.New(speaker.Options{Logger: slog.New(atLeast{o.Log.Handler(), slog.LevelError}), LogLevel: slog.LevelError})
	defer sp.Stop()
	cfg, err := speaker.ReadConfig("replay.toml", "toml", fmt.Appendf(nil,
		"[global.config]\nas = %d\nrouter-id = %q\nport = %d\nlocal-address-list = [\"127.0.0.1\"]\n%s",
		offlineAS, offlineRouterID, port, SelectionConfig))
	if err != nil {
		return Stats{}, err
	}
	if err := sp.Start(cfg, false); err != nil {
		return Stats{}, err
	}
	if err := sp.SetInitialExportPolicy("none"); err != nil { // feeders want nothing back
		return Stats{}, err
	}
	t := newTimes()
	items := make(chan item, 4096)
	witness := NewWitness()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := sp.WatchMarks(ctx, func(m speaker.Mark) {
		witness.Mark(m)
		select {
		case items <- item{mark: m}:
		case <-ctx.Done():
		}
	}, sinkFunc(func(ev event.Event) {
		select {
		case items <- item{ev: ev}:
		case <-ctx.Done():
		}
	})); err != nil {
		return Stats{}, err
	}
	r := New(fmt.Sprintf("127.0.0.1:%d", port), o, witness, Hooks{
		NewPeer: func(p *Peer) error {
			t.addPeer(p)
			return sp.AddReplayPeer(ctx, p.Source, p.AS)
		},
		Sending: t.sending,
	})
	// The runner: events in order, each given its record's time.
	var consumed sync.WaitGroup
	consumed.Add(1)
	var marks int
	stop := make(chan int, 1) // the number of marks after which events stop being fed
	go func() {
		defer consumed.Done()
		limit := -1
		for {
			if limit >= 0 && marks >= limit {
				return
			}
			select {
			case n := <-stop:
				limit = n
				continue
			case it := <-items:
				if it.mark.Kind != 0 {
					marks++
					t.marked(it.mark)
					continue
				}
				feed(t.restamp(it.ev))
			}
		}
	}()
	stats, err := r.Run(files)
	witness.mu.Lock()
	total := 0
	for _, m := range []map[netip.Addr]uint64{witness.updates, witness.ups, witness.downs} {
		for _, n := range m {
			total += int(n)
		}
	}
	witness.mu.Unlock()
	stop <- total
	consumed.Wait()
	cancel() // the watcher's pushes give up from now on
	r.Close()
	return stats, err
}

type item struct {
	mark speaker.Mark
	ev   event.Event
}

type sinkFunc func(event.Event)

func (f sinkFunc) Push(ev event.Event) { f(ev) }

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// times follows which record each mark belongs to: the replayer says
// what it sends (per feeder, per session), the runner pops as marks come.
type times struct {
	mu      sync.Mutex
	peers   map[string]*Peer // by source address, as events name it
	updates map[netip.Addr][]stamp
	ups     map[netip.Addr][]stamp
	now     time.Time // the time of the last mark's record
}

type stamp struct {
	at      time.Time
	session uint64
}

func newTimes() *times {
	return &times{peers: map[string]*Peer{}, updates: map[netip.Addr][]stamp{}, ups: map[netip.Addr][]stamp{}}
}

func (t *times) addPeer(p *Peer) {
	t.mu.Lock()
	t.peers[p.Source.String()] = p
	t.mu.Unlock()
}

func (t *times) sending(p *Peer, kind speaker.MarkKind, at time.Time, session uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch kind {
	case speaker.MarkUpdate:
		t.updates[p.Source] = append(t.updates[p.Source], stamp{at, session})
	case speaker.MarkUp:
		t.ups[p.Source] = append(t.ups[p.Source], stamp{at, session})
	}
}

// marked moves the time to the record of m. A session's UPDATEs not
// taken in when it went down are dropped with it.
func (t *times) marked(m speaker.Mark) {
	t.mu.Lock()
	defer t.mu.Unlock()
	pop := func(q map[netip.Addr][]stamp) (stamp, bool) {
		l := q[m.Peer]
		if len(l) == 0 {
			return stamp{}, false
		}
		q[m.Peer] = l[1:]
		return l[0], true
	}
	switch m.Kind {
	case speaker.MarkUpdate:
		if s, ok := pop(t.updates); ok {
			t.now = s.at
		}
	case speaker.MarkUp:
		if s, ok := pop(t.ups); ok {
			t.now = s.at
			// UPDATEs of earlier sessions still queued were never taken in.
			l := t.updates[m.Peer]
			for len(l) > 0 && l[0].session < s.session {
				l = l[1:]
			}
			t.updates[m.Peer] = l
		}
	}
}

// restamp gives ev the time of its record and its collector peer.
func (t *times) restamp(ev event.Event) event.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case ev.BestPath != nil:
		ev.BestPath.Timestamp = t.now
		if p := t.peers[ev.BestPath.Peer.Address]; p != nil {
			ev.BestPath.Peer.Address = p.Collector.String()
		}
	case ev.PeerState != nil:
		ev.PeerState.Timestamp = t.now
		if p := t.peers[ev.PeerState.Peer.Address]; p != nil {
			ev.PeerState.Peer.Address = p.Collector.String()
		}
	}
	return ev
}

// atLeast passes on records of level min and above.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(a []slog.Attr) slog.Handler { return atLeast{h.Handler.WithAttrs(a), h.min} }
func (h atLeast) WithGroup(g string) slog.Handler      { return atLeast{h.Handler.WithGroup(g), h.min} }
