package replay

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
)

// session is one feeder's BGP session, as the collector peer would have
// held it: it opens with the peer's AS, sends the peer's UPDATE messages
// as they were recorded and a KEEPALIVE every holdTime/3, and ignores
// what it is sent. (No hold timer at all would do, but GoBGP then writes
// with a deadline of now and drops the session.)
type session struct {
	peer *Peer
	conn net.Conn
	r    *bufio.Reader
	w    *bufio.Writer
	done chan struct{} // closed when the connection ends
	wmu  sync.Mutex    // w: the replay's writes and the keepalives
	mu   sync.Mutex
	err  error // why it ended, if the far side ended it
}

const holdTime = 90 // seconds

// asTrans stands for a 4-octet AS in a 2-octet field (RFC 6793).
const asTrans = 23456

// dial opens the session from the peer's source address. A speaker
// closes a connection from a neighbour it has only just been given (GoBGP
// accepts once the neighbour's FSM is active): dial tries again, for at
// most timeout.
func dial(target string, p *Peer, timeout time.Duration) (*session, error) {
	deadline := time.Now().Add(timeout)
	for wait := 10 * time.Millisecond; ; wait = min(2*wait, time.Second) {
		s, err := dialOnce(target, p, timeout)
		if err == nil {
			return s, nil
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("peer %s (AS%d) from %s to %s: %v", p.Collector, p.AS, p.Source, target, err)
		}
		time.Sleep(wait)
	}
}

func dialOnce(target string, p *Peer, timeout time.Duration) (*session, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: &net.TCPAddr{IP: p.Source.AsSlice()}}
	conn, err := d.Dial("tcp", target)
	if err != nil {
		return nil, err
	}
	s := &session{peer: p, conn: conn, r: bufio.NewReader(conn), w: bufio.NewWriterSize(conn, 1<<16), done: make(chan struct{})}
	if err := s.open(timeout); err != nil {
		conn.Close()
		return nil, err
	}
	go s.drain()
	go s.keepalive()
	return s, nil
}

func (s *session) open(timeout time.Duration) error {
	p := s.peer
	myAS := uint16(p.AS)
	caps := []bgp.ParameterCapabilityInterface{
		bgp.NewCapMultiProtocol(bgp.RF_IPv4_UC),
		bgp.NewCapMultiProtocol(bgp.RF_IPv6_UC),
		bgp.NewCapRouteRefresh(),
	}
	if p.AS4 {
		caps = append(caps, bgp.NewCapFourOctetASNumber(p.AS))
		if p.AS > 0xffff {
			myAS = asTrans
		}
	}
	open := bgp.NewBGPOpenMessage(myAS, holdTime, p.RouterID.String(), []bgp.OptionParameterInterface{bgp.NewOptionParameterCapability(caps)})
	b, err := open.Serialize()
	if err != nil {
		return err
	}
	s.conn.SetDeadline(time.Now().Add(timeout))
	defer s.conn.SetDeadline(time.Time{})
	if _, err := s.conn.Write(b); err != nil {
		return err
	}
	for gotOpen := false; ; {
		m, err := readMessage(s.r)
		if err != nil {
			return err
		}
		switch m.Header.Type {
		case bgp.BGP_MSG_OPEN:
			gotOpen = true
		case bgp.BGP_MSG_KEEPALIVE:
			if gotOpen {
				ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
				_, err := s.conn.Write(ka)
				return err
			}
		case bgp.BGP_MSG_NOTIFICATION:
			return notificationError(m)
		}
	}
}

func notificationError(m *bgp.BGPMessage) error {
	n := m.Body.(*bgp.BGPNotification)
	return fmt.Errorf("NOTIFICATION %d/%d (%s)", n.ErrorCode, n.ErrorSubcode, bgp.NewNotificationErrorCode(n.ErrorCode, n.ErrorSubcode))
}

func readMessage(r io.Reader) (*bgp.BGPMessage, error) {
	head := make([]byte, bgp.BGP_HEADER_LENGTH)
	if _, err := io.ReadFull(r, head); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint16(head[16:]))
	if n < bgp.BGP_HEADER_LENGTH {
		return nil, fmt.Errorf("BGP message length %d", n)
	}
	buf := make([]byte, n)
	copy(buf, head)
	if _, err := io.ReadFull(r, buf[bgp.BGP_HEADER_LENGTH:]); err != nil {
		return nil, err
	}
	return bgp.ParseBGPMessage(buf)
}

// drain reads and drops what the far side sends until the connection
// ends, remembering a NOTIFICATION.
func (s *session) drain() {
	defer close(s.done)
	for {
		m, err := readMessage(s.r)
		if err != nil {
			s.setErr(err)
			return
		}
		if m.Header.Type == bgp.BGP_MSG_NOTIFICATION {
			s.setErr(notificationError(m))
		}
	}
}

func (s *session) setErr(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil {
		s.err = err
	}
}

// Err is why the session ended, nil while it runs.
func (s *session) Err() error {
	select {
	case <-s.done:
	default:
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err == nil || errors.Is(s.err, io.EOF) {
		return errors.New("closed by the far side")
	}
	return s.err
}

func (s *session) keepalive() {
	ka, _ := bgp.NewBGPKeepAliveMessage().Serialize()
	t := time.NewTicker(holdTime / 3 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			s.wmu.Lock()
			s.w.Write(ka)
			s.w.Flush()
			s.wmu.Unlock()
		case <-s.done:
			return
		}
	}
}

func (s *session) send(msg []byte) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_, err := s.w.Write(msg)
	return err
}

func (s *session) flush() error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	return s.w.Flush()
}

// endOfRIB is an empty UPDATE (RFC 4724): it changes no route, and its
// mark tells a replay that everything sent before it was handled.
var endOfRIB = func() []byte {
	b, _ := bgp.NewEndOfRib(bgp.RF_IPv4_UC).Serialize()
	return b
}()

// close ends the session with a Cease, as a collector peer's session
// that went down. It half-closes and reads until the far side closes:
// closing at once would reset the connection while the speaker may
// still have UPDATEs to read, and a reset throws them away.
func (s *session) close() {
	n, _ := bgp.NewBGPNotificationMessage(bgp.BGP_ERROR_CEASE, bgp.BGP_ERROR_SUB_ADMINISTRATIVE_RESET, nil).Serialize()
	s.wmu.Lock()
	s.w.Write(n)
	s.w.Flush()
	s.wmu.Unlock()
	if tc, ok := s.conn.(*net.TCPConn); ok {
		tc.CloseWrite()
		select {
		case <-s.done: // the speaker read everything and closed its side
		case <-time.After(30 * time.Second):
		}
	}
	s.conn.Close()
	<-s.done
}
