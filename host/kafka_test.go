package host_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/sink"
	"github.com/edbgpd/edbgpd/internal/bgptest"
)

// streamMessage is what a consumer of the stream decodes.
type streamMessage struct {
	Version     int      `json:"version"`
	Type        string   `json:"type"`
	Router      string   `json:"router"`
	Seq         uint64   `json:"seq"`
	Prefix      string   `json:"prefix"`
	Withdrawal  bool     `json:"withdrawal"`
	Communities []string `json:"communities"`
	ASPath      []uint32 `json:"as_path"`
	Peer        struct {
		Address string `json:"address"`
		ASN     uint32 `json:"asn"`
	} `json:"peer"`
	State    string `json:"state"`
	OldState string `json:"old_state"`
}

type received struct {
	key, router string
	partition   int32
	msg         streamMessage
}

// consumer reads a topic from its start into a list, until the test ends.
type consumer struct {
	mu   sync.Mutex
	msgs []received
}

func consume(t *testing.T, topic string, opts ...kgo.Opt) *consumer {
	t.Helper()
	cl, err := kgo.NewClient(append(opts, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))...)
	if err != nil {
		t.Fatal(err)
	}
	c := &consumer{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
				var m streamMessage
				if err := json.Unmarshal(r.Value, &m); err != nil {
					t.Errorf("message %q: %v", r.Value, err)
					return
				}
				got := received{key: string(r.Key), partition: r.Partition, msg: m}
				for _, h := range r.Headers {
					if h.Key == "router" {
						got.router = string(h.Value)
					}
				}
				c.mu.Lock()
				c.msgs = append(c.msgs, got)
				c.mu.Unlock()
			})
		}
	}()
	return c
}

func (c *consumer) all() []received {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.msgs)
}

// has reports whether a best path for prefix arrived.
func (c *consumer) has(prefix string) bool {
	for _, r := range c.all() {
		if r.msg.Type == "best_path" && r.msg.Prefix == prefix {
			return true
		}
	}
	return false
}

func kafkaSection(broker, extra string) string {
	return fmt.Sprintf("\n[edbgpd.kafka]\n  brokers = [%q]\n  topic = \"bgp\"\n%s", broker, extra)
}

// TestKafkaStream: every best path and peer state a real peer causes
// reaches the topic, keyed by prefix or peer, with the documented fields,
// in order per prefix; through SASL.
func TestKafkaStream(t *testing.T) {
	const prefixes, withdrawn = 100, 20
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, "bgp"), kfake.EnableSASL(), kfake.Superuser("PLAIN", "edbgpd", "secret"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	broker := cluster.ListenAddrs()[0]
	auth := kgo.SASL(plain.Auth{User: "edbgpd", Pass: "secret"}.AsMechanism())

	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	port := bgptest.FreePort(t)
	startDaemon(t, edbgpdConfig(port, "", "127.0.0.2")+kafkaSection(broker, `  [edbgpd.kafka.sasl]
    mechanism = "plain"
    user = "edbgpd"
    password = "secret"
`))
	r.Connect(port)
	r.WaitEstablished()
	for i := range prefixes {
		r.Announce(fmt.Sprintf("198.18.%d.0/24", i), "65000:1")
	}
	for i := range prefixes {
		r.Announce(fmt.Sprintf("198.18.%d.0/24", i), "65000:2")
	}
	for i := range withdrawn {
		r.Withdraw(fmt.Sprintf("198.18.%d.0/24", i))
	}

	c := consume(t, "bgp", kgo.SeedBrokers(broker), auth)
	last := func() map[string]streamMessage {
		m := map[string]streamMessage{}
		for _, r := range c.all() {
			if r.msg.Type == "best_path" {
				m[r.msg.Prefix] = r.msg
			}
		}
		return m
	}
	bgptest.WaitFor(t, 20*time.Second, func() bool {
		m := last()
		for i := range prefixes {
			e, ok := m[fmt.Sprintf("198.18.%d.0/24", i)]
			if !ok || e.Withdrawal != (i < withdrawn) || (!e.Withdrawal && !slices.Equal(e.Communities, []string{"65000:2"})) {
				return false
			}
		}
		return true
	}, "the final state of every prefix on the topic")

	seqs, partitions := map[string]uint64{}, map[string]int32{}
	sawUp := false
	for _, r := range c.all() {
		m := r.msg
		if m.Version != event.StreamVersion || m.Router != "127.0.0.1" || r.router != "127.0.0.1" {
			t.Fatalf("message without schema version or router id: %+v (header %q)", m, r.router)
		}
		switch m.Type {
		case "best_path":
			if r.key != m.Prefix {
				t.Errorf("best path keyed %q, want its prefix %q", r.key, m.Prefix)
			}
			if strings.HasPrefix(m.Prefix, "198.18.") && !m.Withdrawal && !slices.Equal(m.ASPath, []uint32{65002}) {
				t.Errorf("%s: as_path %v, want [65002]", m.Prefix, m.ASPath)
			}
		case "peer_state":
			if r.key != "127.0.0.2" || m.Peer.Address != "127.0.0.2" || m.Peer.ASN != 65002 {
				t.Errorf("peer state keyed %q (peer %v), want the peer address", r.key, m.Peer)
			}
			if m.State == "established" {
				sawUp = true
			}
		default:
			t.Errorf("message type %q", m.Type)
		}
		if p, ok := partitions[r.key]; ok && p != r.partition {
			t.Errorf("key %s in partitions %d and %d", r.key, p, r.partition)
		}
		partitions[r.key] = r.partition
		if m.Seq <= seqs[r.key] {
			t.Errorf("key %s: seq %d after %d: out of order", r.key, m.Seq, seqs[r.key])
		}
		seqs[r.key] = m.Seq
	}
	if !sawUp {
		t.Error("no peer_state established on the topic")
	}

}

// TestKafkaBrokerDown: with the broker gone, BGP and the daemon go on,
// events that cannot be delivered are counted and logged, and delivery
// resumes when the broker is back. What was buffered when the broker went
// is kept and the newest events are dropped (drop-newest). Debian's kcat,
// an independent client, then reads what arrived.
func TestKafkaBrokerDown(t *testing.T) {
	// The same port and data folder: the same broker, restarted.
	kport, data := bgptest.FreePort(t), t.TempDir()
	newCluster := func() *kfake.Cluster {
		c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(1, "bgp"), kfake.DataDir(data), kfake.SyncWrites())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	cluster := newCluster()
	broker := cluster.ListenAddrs()[0]

	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	port := bgptest.FreePort(t)
	d, logs := startDaemonLogs(t, edbgpdConfig(port, "", "127.0.0.2")+kafkaSection(broker, "  buffer = 20\n  delivery-timeout = \"60s\"\n"))
	r.Connect(port)
	r.WaitEstablished()
	r.Announce("198.18.0.0/24")
	before := consume(t, "bgp", kgo.SeedBrokers(broker))
	bgptest.WaitFor(t, 10*time.Second, func() bool { return before.has("198.18.0.0/24") }, "a first event on the topic")

	cluster.Close()
	for i := range 500 {
		r.Announce(fmt.Sprintf("198.19.%d.%d/32", i/256, i%256))
	}
	stats := func() sink.KafkaStats { s, _ := d.KafkaStats(); return s }
	bgptest.WaitFor(t, 10*time.Second, func() bool { return stats().Dropped+stats().Failed >= 500-20 }, "the loss to be counted")
	bgptest.WaitFor(t, 10*time.Second, func() bool { return strings.Contains(logs.String(), "events not delivered to kafka") }, "the loss to be logged")
	if r.State() != "ESTABLISHED" {
		t.Fatalf("the BGP session is %s while Kafka is down", r.State())
	}
	if got := len(r.Received()); got != 1 {
		t.Errorf("the router has %d routes from edbgpd, want the default route", got)
	}

	cluster = newCluster()
	t.Cleanup(cluster.Close)
	after := consume(t, "bgp", kgo.SeedBrokers(broker))
	bgptest.WaitFor(t, 30*time.Second, func() bool {
		r.Announce(fmt.Sprintf("198.20.0.%d/32", time.Now().UnixNano()%200)) // keep events coming until one arrives
		time.Sleep(100 * time.Millisecond)
		for _, m := range after.all() {
			if strings.HasPrefix(m.msg.Prefix, "198.20.0.") {
				return true
			}
		}
		return false
	}, "delivery to resume once the broker is back\n"+logs.String())
	st := stats()
	t.Logf("during the outage: %d dropped (buffer full), %d failed (delivery timeout); %d delivered in all", st.Dropped, st.Failed, st.Delivered)
	if lost := st.Dropped + st.Failed; lost < 500-20 {
		t.Errorf("%d events counted as lost, want at least the 480 that did not fit the buffer of 20", lost)
	}
	// Drop-newest: the first events of the outage waited in the buffer and
	// arrived; the last ones were dropped.
	if !after.has("198.19.0.0/32") {
		t.Error("the first event of the outage, buffered, did not arrive after it")
	}
	if after.has("198.19.1.243/32") {
		t.Error("the last event of the outage arrived: it should have been dropped")
	}

	// An independent client: Debian's kcat (librdkafka; its SASL does not
	// get along with kfake's, hence this plain cluster).
	kcat, err := exec.LookPath("kcat")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("CI must install kcat (see .ci/run)")
		}
		t.Skip("kcat not installed: apt-get install kcat")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, kcat, "-C", "-b", broker, "-t", "bgp", "-o", "beginning", "-e", "-q", "-f", "%k %h %s\n").CombinedOutput()
	if err != nil {
		t.Fatalf("kcat: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(before.all())+len(after.all()) && len(lines) != len(after.all()) {
		t.Errorf("kcat read %d messages, franz-go %d before and %d after the outage", len(lines), len(before.all()), len(after.all()))
	}
	for _, want := range []string{`198.18.0.0/24 router=127.0.0.1 {"version":2,"type":"best_path","router":"127.0.0.1"`, `127.0.0.2 router=127.0.0.1 {"version":2,"type":"peer_state"`} {
		if !strings.Contains(string(out), want) {
			t.Errorf("kcat output lacks %q:\n%.2000s", want, out)
		}
	}
}

// TestKafkaPeerStatesOnly: events = "peer-state" keeps best paths off the
// topic. One partition: the topic is in event order.
func TestKafkaPeerStatesOnly(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bgp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	broker := cluster.ListenAddrs()[0]
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	port := bgptest.FreePort(t)
	d := startDaemon(t, edbgpdConfig(port, "", "127.0.0.2")+kafkaSection(broker, "  events = \"peer-state\"\n"))
	r.Connect(port)
	r.WaitEstablished()
	r.Announce("198.18.0.0/24")
	bgptest.WaitFor(t, 5*time.Second, func() bool { _, ok := bgptest.BestCommunities(d.Speaker(), "198.18.0.0/24"); return ok }, "the route in edbgpd's RIB")
	r.Reset() // a peer event after the best path
	c := consume(t, "bgp", kgo.SeedBrokers(broker))
	bgptest.WaitFor(t, 10*time.Second, func() bool {
		for _, m := range c.all() {
			if m.msg.OldState == "established" {
				return true
			}
		}
		return false
	}, "the session going down on the topic")
	for _, m := range c.all() {
		if m.msg.Type != "peer_state" {
			t.Errorf("a %s message with events = peer-state: %+v", m.msg.Type, m.msg)
		}
	}
}

// TestKafkaTLS: with [edbgpd.kafka.tls], events reach a broker that only
// speaks TLS, verified against the CA file given.
func TestKafkaTLS(t *testing.T) {
	caPEM, serverCert := testCertificates(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	os.WriteFile(caFile, caPEM, 0o644)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "bgp"), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{serverCert}}))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cluster.Close)
	broker := cluster.ListenAddrs()[0]
	r := bgptest.NewRouter(t, 65002, "127.0.0.2", bgptest.Quiet{})
	port := bgptest.FreePort(t)
	startDaemon(t, edbgpdConfig(port, "", "127.0.0.2")+kafkaSection(broker, fmt.Sprintf("  [edbgpd.kafka.tls]\n    enabled = true\n    ca-file = %q\n", caFile)))
	r.Connect(port)
	r.WaitEstablished()
	r.Announce("198.18.0.0/24")
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	c := consume(t, "bgp", kgo.SeedBrokers(broker), kgo.DialTLSConfig(&tls.Config{RootCAs: pool}))
	bgptest.WaitFor(t, 10*time.Second, func() bool { return c.has("198.18.0.0/24") }, "the event over TLS")
}

// testCertificates makes a CA and a certificate for 127.0.0.1 signed by it.
func testCertificates(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	caKey, serverKey := key(), key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "edbgpd test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	server := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		KeyUsage: x509.KeyUsageDigitalSignature}
	serverDER, err := x509.CreateCertificate(rand.Reader, server, ca, &serverKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		tls.Certificate{Certificate: [][]byte{serverDER}, PrivateKey: serverKey}
}
