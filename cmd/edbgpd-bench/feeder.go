package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// feeder is a minimal BGP speaker: it opens a session and writes
// pre-encoded UPDATEs as fast as TCP takes them. It answers nothing but
// keepalives, so it costs the receiver nothing extra.
type feeder struct {
	conn net.Conn
	mu   sync.Mutex // whole messages only: keepalives share the connection
	w    *bufio.Writer
	done chan struct{}
}

// dialFeeder connects from 127.0.0.2 (AS 65002) to addr and establishes
// the session (OPEN, KEEPALIVE both ways).
func dialFeeder(addr string, v6 bool) (*feeder, error) {
	return dialPeer(addr, "127.0.0.2", 65002, v6, nil)
}

// dialPeer is dialFeeder from local (AS as); what the other side sends
// goes to read (nil: dropped).
func dialPeer(addr, local string, as uint32, v6 bool, read func(io.Reader)) (*feeder, error) {
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	var conn net.Conn
	var err error
	for i := 0; i < 100; i++ { // the system under test may still be starting
		if conn, err = d.Dial("tcp", addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return nil, err
	}
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapFourOctetASNumber(as), bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC)}
	if v6 {
		caps = append(caps, bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC))
	}
	open := bgp.NewBGPOpenMessage(uint16(as), 180, local, []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	f := &feeder{conn: conn, w: bufio.NewWriterSize(conn, 1<<20), done: make(chan struct{})}
	if err := f.send(open); err != nil {
		return nil, err
	}
	r := bufio.NewReader(conn)
	for got := 0; got < 2; { // their OPEN, then their KEEPALIVE
		m, err := readMessage(r)
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
		switch m.Header.Type {
		case bgp.BGP_MSG_OPEN:
			if err := f.send(bgp.NewBGPKeepAliveMessage()); err != nil {
				return nil, err
			}
			got++
		case bgp.BGP_MSG_KEEPALIVE:
			got++
		case bgp.BGP_MSG_NOTIFICATION:
			return nil, fmt.Errorf("handshake: notification %v", m.Body)
		}
	}
	if read == nil {
		read = f.drain
	}
	go read(r)
	go f.keepalive()
	return f, nil
}

// receiver counts the prefixes a peer has from edbgpd, from the UPDATEs
// it reads; the count drops to none when the session ends.
type receiver struct {
	mu       sync.Mutex
	prefixes map[string]bool
	down     bool
}

func (rc *receiver) read(r io.Reader) {
	br := bufio.NewReaderSize(r, 1<<20)
	for {
		m, err := readMessage(br)
		if err != nil || m.Header.Type == bgp.BGP_MSG_NOTIFICATION {
			rc.mu.Lock()
			rc.down, rc.prefixes = true, nil
			rc.mu.Unlock()
			return
		}
		u, ok := m.Body.(*bgp.BGPUpdate)
		if !ok {
			continue
		}
		rc.mu.Lock()
		for _, p := range u.WithdrawnRoutes {
			delete(rc.prefixes, p.String())
		}
		for _, p := range u.NLRI {
			rc.prefixes[p.String()] = true
		}
		rc.mu.Unlock()
	}
}

// count is how many prefixes the peer has, and whether its session ended.
func (rc *receiver) count() (int, bool) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return len(rc.prefixes), rc.down
}

func readMessage(r *bufio.Reader) (*bgp.BGPMessage, error) {
	hdr := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(r, hdr); err != nil {
		return nil, err
	}
	l := binary.BigEndian.Uint16(hdr[16:18])
	buf := make([]byte, l)
	copy(buf, hdr)
	if _, err := io.ReadFull(r, buf[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(buf)
}

// drain reads and drops what the receiver sends (keepalives, updates).
func (f *feeder) drain(r io.Reader) {
	io.Copy(io.Discard, r)
}

func (f *feeder) keepalive() {
	t := time.NewTicker(30 * time.Second)
	defer t.Stop()
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	for {
		select {
		case <-f.done:
			return
		case <-t.C:
			f.write(ka)
		}
	}
}

func (f *feeder) send(m *bgp.BGPMessage) error {
	b, err := m.Serialize()
	if err != nil {
		return err
	}
	return f.write(b)
}

// write sends bytes now (keepalives share the connection, so writes are
// whole messages, serialised by the caller's order).
func (f *feeder) write(b []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.Write(b); err != nil {
		return err
	}
	return f.w.Flush()
}

func (f *feeder) close() {
	select {
	case <-f.done:
	default:
		close(f.done)
	}
	f.conn.Close()
}

// discardPeer accepts one session as the passive side and drops all it
// gets: the feeder's speed limit, to show it is not the bottleneck.
func discardPeer(l net.Listener) {
	conn, err := l.Accept()
	if err != nil {
		return
	}
	defer conn.Close()
	r := bufio.NewReader(conn)
	if _, err := readMessage(r); err != nil { // their OPEN
		return
	}
	caps := []bgp.ParameterCapabilityInterface{bgp.NewCapFourOctetASNumber(65001), bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC), bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC)}
	for _, m := range []*bgp.BGPMessage{
		bgp.NewBGPOpenMessage(65001, 180, "127.0.0.1", []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)}),
		bgp.NewBGPKeepAliveMessage(),
	} {
		b, _ := m.Serialize()
		conn.Write(b)
	}
	io.Copy(io.Discard, r)
}
