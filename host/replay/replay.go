// Package replay plays route collectors' history (MRT update files) to a
// BGP speaker over real sessions, one feeder session per collector peer,
// so that GoBGP's own decision process picks the best paths a live edbgpd
// peering with those peers would have picked.
package replay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/edbgpd/edbgpd/host/mrt"
	"github.com/edbgpd/edbgpd/host/speaker"
)

// Options choose what of the files is replayed, and how fast.
type Options struct {
	// Peers keeps only these collector peers: addresses, or AS numbers
	// ("3333" or "AS3333"). Empty: every peer.
	Peers []string
	// From and To keep the records of [From, To]; zero: no bound.
	From, To time.Time
	// Speed: 0 as fast as the speaker takes the updates; 1 the files'
	// own pace; N, N times it.
	Speed float64
	// FirstSource is the address the first collector peer's feeder
	// connects from, the next peer's the next address, and so on.
	// Zero: 127.1.0.1.
	FirstSource netip.Addr
	// Timeout bounds each wait: a dial, an open, the speaker taking
	// what was sent. Zero: 30 s.
	Timeout time.Duration
	Log     *slog.Logger
}

// DefaultFirstSource is where feeders' addresses start.
var DefaultFirstSource = netip.MustParseAddr("127.1.0.1")

// Peer is a collector peer and the feeder that stands for it.
type Peer struct {
	Collector netip.Addr // the collector peer's address, from the file
	AS        uint32
	AS4       bool       // its session carried 4-octet AS numbers
	Source    netip.Addr // the address its feeder connects from
	RouterID  netip.Addr // the BGP identifier it opens with: its IPv4 address, else Source
}

// Stats say what a replay did.
type Stats struct {
	Updates      int            // UPDATE messages sent
	StateChanges int            // state changes played (sessions closed or opened)
	Filtered     int            // records left out by --peer, --from, --to
	Skipped      map[string]int // records passed over, by what they were
	Peers        []*Peer        // in order of first sight
	Elapsed      time.Duration
}

// ParseSpeed reads "max", "1x", "10x" (or "10").
func ParseSpeed(s string) (float64, error) {
	if s == "" || s == "max" {
		return 0, nil
	}
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "x"), 64)
	if err != nil || f <= 0 {
		return 0, fmt.Errorf("speed %q: want max, 1x or Nx", s)
	}
	return f, nil
}

// SetWindow sets From and To from what an operator wrote (ParseTime).
func (o *Options) SetWindow(from, to string) error {
	var err error
	if o.From, err = ParseTime(from); err == nil {
		o.To, err = ParseTime(to)
	}
	return err
}

// ParseTime reads RFC 3339 or Unix seconds.
func ParseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Unix(0, int64(f*1e9)), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q: want RFC 3339 (2016-08-11T16:00:00Z) or Unix seconds", s)
	}
	return t, nil
}

// Witness is what the speaker under replay has handled, as its marks
// tell (speaker.WatchMarks). A replay with a witness sends a record of
// another peer only once everything sent before is handled, which makes
// the order of best-path events the order of the files: two peers'
// updates sent at once would otherwise be handled in either order, as
// they would be live.
type Witness struct {
	mu      sync.Mutex
	changed chan struct{}
	updates map[netip.Addr]uint64
	ups     map[netip.Addr]uint64
	downs   map[netip.Addr]uint64
}

// NewWitness makes a witness; give its Mark to speaker.WatchMarks.
func NewWitness() *Witness {
	return &Witness{changed: make(chan struct{}), updates: map[netip.Addr]uint64{},
		ups: map[netip.Addr]uint64{}, downs: map[netip.Addr]uint64{}}
}

// Mark counts one mark. Any goroutine.
func (w *Witness) Mark(m speaker.Mark) {
	w.mu.Lock()
	switch m.Kind {
	case speaker.MarkUpdate:
		w.updates[m.Peer]++
	case speaker.MarkUp:
		w.ups[m.Peer]++
	case speaker.MarkDown:
		w.downs[m.Peer]++
	}
	close(w.changed)
	w.changed = make(chan struct{})
	w.mu.Unlock()
}

// wait waits until ok holds of the counts, or timeout passes with no
// mark at all. It looks again every 50 ms besides: ok may depend on more
// than marks (a session the far side ended).
func (w *Witness) wait(timeout time.Duration, ok func(w *Witness) bool) bool {
	idle := time.NewTimer(timeout)
	defer idle.Stop()
	for {
		w.mu.Lock()
		if ok(w) {
			w.mu.Unlock()
			return true
		}
		ch := w.changed
		w.mu.Unlock()
		select {
		case <-ch:
			idle.Reset(timeout)
		case <-time.After(50 * time.Millisecond):
		case <-idle.C:
			return false
		}
	}
}

// Hooks let the offline runner follow a replay.
type Hooks struct {
	// NewPeer is called when a collector peer is first seen, before its
	// feeder dials (offline: the neighbour is added to the speaker).
	NewPeer func(*Peer) error
	// Sending is called before an UPDATE, an end-of-RIB marker or a
	// session change of a peer is sent, with the record's time.
	// session counts p's sessions from 1.
	Sending func(p *Peer, kind speaker.MarkKind, at time.Time, session uint64)
}

// Replayer plays files to one target.
type Replayer struct {
	target  string
	o       Options
	witness *Witness
	hooks   Hooks

	peers    map[netip.Addr]*Peer
	stats    Stats
	sessions map[*Peer]*session
	sent     map[netip.Addr]uint64 // UPDATEs sent, by source
	upsSent  map[netip.Addr]uint64 // sessions opened, by source
	last     *Peer                 // the peer of the last UPDATE sent
	nextSrc  netip.Addr
	start    time.Time // wall clock at the first record kept
	first    time.Time // the first record kept
	lastTime time.Time // the last record played
}

// New makes a replayer to target (host:port). witness may be nil: then
// peers' updates are not ordered against each other, as live.
func New(target string, o Options, witness *Witness, hooks Hooks) *Replayer {
	if !o.FirstSource.IsValid() {
		o.FirstSource = DefaultFirstSource
	}
	if o.Timeout == 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Replayer{target: target, o: o, witness: witness, hooks: hooks,
		peers: map[netip.Addr]*Peer{}, sessions: map[*Peer]*session{},
		sent: map[netip.Addr]uint64{}, upsSent: map[netip.Addr]uint64{},
		nextSrc: o.FirstSource, stats: Stats{Skipped: map[string]int{}}}
}

// keep tells whether the options keep rec.
func (o *Options) keep(rec *mrt.Record) bool {
	if !o.From.IsZero() && rec.Time.Before(o.From) || !o.To.IsZero() && rec.Time.After(o.To) {
		return false
	}
	if len(o.Peers) == 0 {
		return true
	}
	for _, p := range o.Peers {
		if a, err := netip.ParseAddr(p); err == nil && a == rec.Peer {
			return true
		}
		if as, err := strconv.ParseUint(strings.TrimPrefix(strings.ToUpper(p), "AS"), 10, 32); err == nil && uint32(as) == rec.PeerAS {
			return true
		}
	}
	return false
}

// Peers lists the collector peers of files the options keep, with the
// sources their feeders would use: what a daemon must be configured with
// before a live replay (see NeighbourConfig).
func Peers(files []string, o Options) ([]*Peer, error) {
	r := New("", o, nil, Hooks{})
	_, _, err := r.o.records(files, func(rec *mrt.Record) error {
		r.peerOf(rec)
		return nil
	})
	return r.stats.Peers, err
}

// errStop ends a walk of records early, without an error.
var errStop = errors.New("stop")

// FirstTime is the time of the first record the options keep.
func FirstTime(files []string, o Options) (time.Time, error) {
	var first time.Time
	_, _, err := o.records(files, func(rec *mrt.Record) error {
		first = rec.Time
		return errStop
	})
	if err == nil && first.IsZero() {
		err = fmt.Errorf("%s: no records to replay", strings.Join(files, ", "))
	}
	return first, err
}

// records calls fn on every record of files the options keep, in order,
// and returns how many it left out and what the reader passed over. An
// error of fn ends the walk (errStop: with none).
func (o *Options) records(files []string, fn func(*mrt.Record) error) (filtered int, skipped map[string]int, err error) {
	s, err := mrt.OpenAll(files)
	if err != nil {
		return 0, nil, err
	}
	defer s.Close()
	for {
		rec, err := s.Next()
		if err == io.EOF {
			return filtered, s.Skipped, nil
		}
		if err != nil {
			return filtered, s.Skipped, err
		}
		if !o.keep(&rec) {
			filtered++
			continue
		}
		if err := fn(&rec); err != nil {
			if err == errStop {
				err = nil
			}
			return filtered, s.Skipped, err
		}
	}
}

// peerOf is rec's peer, made on first sight: its source is the next one.
func (r *Replayer) peerOf(rec *mrt.Record) *Peer {
	if p := r.peers[rec.Peer]; p != nil {
		return p
	}
	p := &Peer{Collector: rec.Peer, AS: rec.PeerAS, AS4: rec.AS4, Source: r.nextSrc, RouterID: r.nextSrc}
	if rec.Peer.Is4() {
		p.RouterID = rec.Peer
	}
	r.nextSrc = r.nextSrc.Next()
	r.peers[rec.Peer] = p
	r.stats.Peers = append(r.stats.Peers, p)
	return p
}

// Run plays the files, then waits until the target has handled all of
// it (with a witness), and leaves the sessions up; Close ends them.
func (r *Replayer) Run(files []string) (Stats, error) {
	began := time.Now()
	err := r.run(files)
	r.stats.Elapsed = time.Since(began)
	return r.stats, err
}

func (r *Replayer) run(files []string) error {
	if r.witness == nil {
		if err := r.openAhead(files); err != nil {
			return err
		}
	}
	filtered, skipped, err := r.o.records(files, func(rec *mrt.Record) error {
		if err := r.play(rec); err != nil {
			return fmt.Errorf("%s: record at offset %d: %w", rec.File, rec.Offset, err)
		}
		return nil
	})
	r.stats.Filtered += filtered
	for k, v := range skipped {
		r.stats.Skipped[k] += v
	}
	if err != nil {
		return err
	}
	return r.settle()
}

func (r *Replayer) play(rec *mrt.Record) error {
	r.pace(rec.Time)
	r.lastTime = rec.Time
	fresh := r.peers[rec.Peer] == nil
	p := r.peerOf(rec)
	if fresh && r.hooks.NewPeer != nil {
		if err := r.hooks.NewPeer(p); err != nil {
			return err
		}
	}
	if rec.AS4 != p.AS4 {
		r.stats.Skipped["records of a peer whose AS number size changed"]++
		return nil
	}
	s := r.sessions[p]
	if s != nil && s.Err() != nil {
		r.o.Log.Warn("replay: a feeder's session ended", "peer", p.Collector, "source", p.Source, "err", s.Err())
		if err := r.ended(p, s); err != nil {
			return err
		}
		s = nil
	}
	switch rec.Kind {
	case mrt.Update:
		if s == nil {
			var err error
			if s, err = r.open(p, rec.Time); err != nil {
				return err
			}
		}
		if r.last != p && r.last != nil {
			if err := r.barrier(); err != nil {
				return err
			}
		}
		r.last = p
		r.sending(p, speaker.MarkUpdate, rec.Time)
		r.sent[p.Source]++
		r.stats.Updates++
		return s.send(rec.Message)
	case mrt.StateChange:
		switch {
		case rec.NewState == mrt.Established && s == nil:
			r.stats.StateChanges++
			_, err := r.open(p, rec.Time)
			return err
		case rec.NewState != mrt.Established && s != nil:
			r.stats.StateChanges++
			return r.shut(p, s, rec.Time)
		}
	}
	return nil
}

func (r *Replayer) sending(p *Peer, kind speaker.MarkKind, at time.Time) {
	if r.hooks.Sending != nil {
		session := r.upsSent[p.Source]
		if kind == speaker.MarkUp {
			session++
		}
		r.hooks.Sending(p, kind, at, session)
	}
}

// pace sleeps until rec's moment at the chosen speed.
func (r *Replayer) pace(at time.Time) {
	if r.first.IsZero() {
		r.first, r.start = at, time.Now()
		return
	}
	if r.o.Speed <= 0 {
		return
	}
	due := r.start.Add(time.Duration(float64(at.Sub(r.first)) / r.o.Speed))
	if d := time.Until(due); d > 0 {
		r.flushAll()
		time.Sleep(d)
	}
}

func (r *Replayer) flushAll() error {
	var first error
	for _, s := range r.sessions {
		if err := s.flush(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// open dials p's feeder; with a witness, waits until the speaker has the
// session up, so that the peer's events come where the record is.
func (r *Replayer) open(p *Peer, at time.Time) (*session, error) {
	if err := r.barrier(); err != nil {
		return nil, err
	}
	r.sending(p, speaker.MarkUp, at)
	s, err := dial(r.target, p, r.o.Timeout)
	if err != nil {
		return nil, err
	}
	r.sessions[p] = s
	r.upsSent[p.Source]++
	if r.witness == nil {
		pastNextSecond()
		return s, nil
	}
	want := r.upsSent[p.Source]
	if !r.witness.wait(r.o.Timeout, func(w *Witness) bool { return w.ups[p.Source] >= want }) {
		return nil, fmt.Errorf("the speaker did not bring up the session of peer %s from %s", p.Collector, p.Source)
	}
	return s, nil
}

// openAhead, for a replay with no witness, opens the sessions of every
// peer whose first record is an UPDATE before anything is sent, then
// waits past the next second. GoBGP drops an UPDATE received in an
// earlier second than the one its main loop noted the session coming up
// in (its guard against an old session's messages), and without a
// witness nothing says when that was: UPDATEs sent at once could be lost
// on a busy daemon. One wait for all the peers, not one each.
func (r *Replayer) openAhead(files []string) error {
	var first []*Peer
	_, _, err := r.o.records(files, func(rec *mrt.Record) error {
		if r.peers[rec.Peer] == nil && rec.Kind == mrt.Update {
			first = append(first, r.peerOf(rec))
		} else {
			r.peerOf(rec) // sources go by first sight, as in the replay
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, p := range first {
		s, err := dial(r.target, p, r.o.Timeout)
		if err != nil {
			return err
		}
		r.sessions[p] = s
		r.upsSent[p.Source]++
	}
	if len(first) > 0 {
		pastNextSecond()
	}
	return nil
}

// pastNextSecond sleeps until half a second into the next second of the
// wall clock.
func pastNextSecond() {
	now := time.Now()
	time.Sleep(now.Truncate(time.Second).Add(1500 * time.Millisecond).Sub(now))
}

// shut closes p's session as the record says the collector's went down:
// an end-of-RIB marker first, so that the withdrawals that follow are
// known to come from this record, then a Cease.
func (r *Replayer) shut(p *Peer, s *session, at time.Time) error {
	if err := r.mark(p, s, at); err != nil {
		return err
	}
	s.close()
	return r.ended(p, s)
}

// ended forgets p's session; with a witness, once the speaker has it down
// and has handled everything it took in from it.
func (r *Replayer) ended(p *Peer, s *session) error {
	delete(r.sessions, p)
	if r.last == p {
		r.last = nil
	}
	if r.witness == nil {
		return nil
	}
	want := r.upsSent[p.Source]
	if !r.witness.wait(r.o.Timeout, func(w *Witness) bool { return w.downs[p.Source] >= want }) {
		return fmt.Errorf("the speaker did not see the session of peer %s from %s go down", p.Collector, p.Source)
	}
	// What was sent but never taken in is gone with the session.
	r.witness.mu.Lock()
	r.sent[p.Source] = r.witness.updates[p.Source]
	r.witness.mu.Unlock()
	return nil
}

// mark sends an end-of-RIB marker on s and, with a witness, waits until
// the speaker has handled it.
func (r *Replayer) mark(p *Peer, s *session, at time.Time) error {
	if r.last != p {
		// What another peer sent first must be handled first: at most
		// one session has anything in flight.
		if err := r.barrier(); err != nil {
			return err
		}
	}
	r.last = p
	r.sending(p, speaker.MarkUpdate, at)
	r.sent[p.Source]++
	if err := s.send(endOfRIB); err != nil {
		return err
	}
	return r.barrier()
}

// barrier flushes every session and, with a witness, waits until the
// speaker has handled every UPDATE sent.
func (r *Replayer) barrier() error {
	if err := r.flushAll(); err != nil {
		return err
	}
	if r.witness == nil {
		return nil
	}
	done := func(w *Witness) bool {
		for src, n := range r.sent {
			if w.updates[src] < n && !r.endedFrom(src) {
				return false
			}
		}
		return true
	}
	if !r.witness.wait(r.o.Timeout, done) {
		var late []string
		r.witness.mu.Lock()
		for src, n := range r.sent {
			if got := r.witness.updates[src]; got < n {
				late = append(late, fmt.Sprintf("%s: %d of %d", src, got, n))
			}
		}
		r.witness.mu.Unlock()
		return fmt.Errorf("the speaker did not take in what was sent within %s (%s)", r.o.Timeout, strings.Join(late, ", "))
	}
	return nil
}

// endedFrom tells whether the session from src was ended by the far
// side: it takes in no more.
func (r *Replayer) endedFrom(src netip.Addr) bool {
	for p, s := range r.sessions {
		if p.Source == src {
			return s.Err() != nil
		}
	}
	return true
}

// settle waits, at the end, until everything sent has been handled: an
// end-of-RIB marker on the last peer's session, whose mark comes after
// every event before it.
func (r *Replayer) settle() error {
	if r.last != nil && r.sessions[r.last] != nil {
		return r.mark(r.last, r.sessions[r.last], r.lastTime)
	}
	return r.barrier()
}

// Close ends every feeder session.
func (r *Replayer) Close() {
	for p, s := range r.sessions {
		s.close()
		delete(r.sessions, p)
	}
}

// NeighbourConfig is the GoBGP config (TOML) of the neighbours a live
// replay of peers needs: passive, IPv4 and IPv6 unicast.
func NeighbourConfig(peers []*Peer) string {
	var b strings.Builder
	for _, p := range peers {
		fmt.Fprintf(&b, "# collector peer %s, AS%d\n[[neighbors]]\n  [neighbors.config]\n    neighbor-address = %q\n    peer-as = %d\n", p.Collector, p.AS, p.Source, p.AS)
		b.WriteString("  [neighbors.transport.config]\n    passive-mode = true\n  [neighbors.timers.config]\n    idle-hold-time-after-reset = 1\n")
		for _, f := range []string{"ipv4-unicast", "ipv6-unicast"} {
			fmt.Fprintf(&b, "  [[neighbors.afi-safis]]\n    [neighbors.afi-safis.config]\n      afi-safi-name = %q\n", f)
		}
	}
	return b.String()
}
