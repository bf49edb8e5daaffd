package main

import (
	"slices"
	"sort"
)

// message is the part of edbgpd's stream schema (version 2) this consumer
// reads.
type message struct {
	Version     int      `json:"version"`
	Type        string   `json:"type"`
	Router      string   `json:"router"`
	Seq         uint64   `json:"seq"`
	Prefix      string   `json:"prefix"`
	Withdrawal  bool     `json:"withdrawal"`
	Communities []string `json:"communities"`
	Peer        struct {
		Address string `json:"address"`
	} `json:"peer"`
	State    string `json:"state"`
	OldState string `json:"old_state"`
}

// schema is the stream schema version this consumer reads.
const schema = 2

// peerAddress is the address of the peer the event is about.
func (m message) peerAddress() string { return m.Peer.Address }

const watched = "10.0.0.0/8"

var code = []string{"65000:38", "65000:38", "65000:40", "65000:40", "65000:37",
	"65000:39", "65000:37", "65000:39", "65000:66", "65000:65"}

type seen struct {
	seq       uint64
	community string
}

// konami is konami.lua's logic over the stream. Best paths are keyed by
// prefix and peer states by peer, so they may sit in different partitions
// and arrive in any order between them: everything is ordered by seq, and
// a decision waits for a grace period (see main.go) before it is taken.
type konami struct {
	router  string            // only events of this edbgpd ("" any)
	history map[string][]seen // peer -> communities on 10.0.0.0/8
	upSince map[string]uint64 // peer -> seq of its last session up
}

func newKonami(router string) *konami {
	return &konami{router: router, history: map[string][]seen{}, upSince: map[string]uint64{}}
}

// decision is what to do with a peer whose session went down at seq.
type decision struct {
	peer string
	seq  uint64
}

// handle takes one message; it returns a decision to take later when a
// peer's session went down.
func (k *konami) handle(m message) *decision {
	if m.Version != schema || (k.router != "" && m.Router != k.router) {
		return nil
	}
	switch m.Type {
	case "best_path":
		if m.Prefix != watched || m.Withdrawal {
			return nil
		}
		p := m.peerAddress()
		for _, c := range m.Communities {
			k.history[p] = append(k.history[p], seen{m.Seq, c})
		}
	case "peer_state":
		p := m.peerAddress()
		switch {
		case m.State == "established":
			k.upSince[p] = max(k.upSince[p], m.Seq)
		case m.OldState == "established":
			return &decision{peer: p, seq: m.Seq}
		}
	}
	return nil
}

// entered reports whether the peer sent the code during the session that
// ended with d, and forgets what that session sent.
func (k *konami) entered(d decision) bool {
	var h []seen
	for _, s := range k.history[d.peer] {
		if s.seq > k.upSince[d.peer] && s.seq < d.seq {
			h = append(h, s)
		}
	}
	sort.Slice(h, func(i, j int) bool { return h[i].seq < h[j].seq })
	k.history[d.peer] = slices.DeleteFunc(k.history[d.peer], func(s seen) bool { return s.seq < d.seq })
	if len(h) < len(code) {
		return false
	}
	for i, c := range code {
		if h[len(h)-len(code)+i].community != c {
			return false
		}
	}
	return true
}
