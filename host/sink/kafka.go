package sink

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/edbgpd/edbgpd/host/event"
	"github.com/edbgpd/edbgpd/host/units"
)

// KafkaOptions are the [edbgpd.kafka] section: an event stream to Kafka,
// off unless brokers are given.
type KafkaOptions struct {
	Brokers []string `toml:"brokers" yaml:"brokers"`
	// Topic gets best paths, and peer states unless PeerTopic is set.
	Topic     string `toml:"topic" yaml:"topic"`
	PeerTopic string `toml:"peer-topic" yaml:"peer-topic"`
	// Events: "all" (the default), "best-path" or "peer-state".
	Events string `toml:"events" yaml:"events"`
	// Acks: "all" (the default), "leader" or "none".
	Acks string `toml:"acks" yaml:"acks"`
	// Compression: "none", "gzip", "snappy", "lz4" (the default), "zstd".
	Compression string `toml:"compression" yaml:"compression"`
	// Buffer bounds the messages waiting for the broker; past it new
	// events are dropped and counted. Default 100,000.
	Buffer int `toml:"buffer" yaml:"buffer"`
	// DeliveryTimeout: a message not delivered by then is given up and
	// counted. Default 30s.
	DeliveryTimeout units.Duration `toml:"delivery-timeout" yaml:"delivery-timeout"`
	ClientID        string         `toml:"client-id" yaml:"client-id"`
	TLS             KafkaTLS       `toml:"tls" yaml:"tls"`
	SASL            KafkaSASL      `toml:"sasl" yaml:"sasl"`
}

// KafkaTLS turns on TLS to the brokers.
type KafkaTLS struct {
	Enabled            bool   `toml:"enabled" yaml:"enabled"`
	CAFile             string `toml:"ca-file" yaml:"ca-file"`
	CertFile           string `toml:"cert-file" yaml:"cert-file"`
	KeyFile            string `toml:"key-file" yaml:"key-file"`
	ServerName         string `toml:"server-name" yaml:"server-name"`
	InsecureSkipVerify bool   `toml:"insecure-skip-verify" yaml:"insecure-skip-verify"`
}

// KafkaSASL authenticates to the brokers.
type KafkaSASL struct {
	Mechanism string `toml:"mechanism" yaml:"mechanism"` // "plain", "scram-sha-256", "scram-sha-512"
	User      string `toml:"user" yaml:"user"`
	Password  string `toml:"password" yaml:"password"`
}

const (
	defaultKafkaTopic  = "edbgpd-events"
	defaultKafkaBuffer = 100_000
	// kafkaHandoff is the queue between GoBGP's watcher goroutine and the
	// encoder; when it is full the event is dropped, never waited for.
	kafkaHandoff = 8192
)

// kafkaLogger hands franz-go's warnings and errors to slog.
type kafkaLogger struct{ log *slog.Logger }

func (kafkaLogger) Level() kgo.LogLevel { return kgo.LogLevelWarn }

func (l kafkaLogger) Log(level kgo.LogLevel, msg string, keyvals ...any) {
	lvl := slog.LevelWarn
	if level == kgo.LogLevelError {
		lvl = slog.LevelError
	}
	l.log.Log(context.Background(), lvl, "kafka client: "+msg, keyvals...)
}

// kafkaOpts turns the options into franz-go options, checking them.
// Check tells what is wrong with o, before anything connects.
func (o KafkaOptions) Check() error {
	_, err := o.kafkaOpts()
	return err
}

func (o KafkaOptions) kafkaOpts() ([]kgo.Opt, error) {
	buffer := o.Buffer
	if buffer <= 0 {
		buffer = defaultKafkaBuffer
	}
	timeout := time.Duration(o.DeliveryTimeout)
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	opts := []kgo.Opt{
		kgo.SeedBrokers(o.Brokers...),
		kgo.MaxBufferedRecords(buffer),
		kgo.RecordDeliveryTimeout(timeout),
		kgo.ProducerLinger(5 * time.Millisecond),
	}
	if o.ClientID != "" {
		opts = append(opts, kgo.ClientID(o.ClientID))
	} else {
		opts = append(opts, kgo.ClientID("edbgpd"))
	}
	switch o.Acks {
	case "", "all":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "leader":
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "none":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, fmt.Errorf("kafka acks %q: want all, leader or none", o.Acks)
	}
	codecs := map[string]kgo.CompressionCodec{"": kgo.Lz4Compression(), "lz4": kgo.Lz4Compression(), "none": kgo.NoCompression(),
		"gzip": kgo.GzipCompression(), "snappy": kgo.SnappyCompression(), "zstd": kgo.ZstdCompression()}
	codec, ok := codecs[o.Compression]
	if !ok {
		return nil, fmt.Errorf("kafka compression %q: want none, gzip, snappy, lz4 or zstd", o.Compression)
	}
	opts = append(opts, kgo.ProducerBatchCompression(codec))
	switch o.Events {
	case "", "all", "best-path", "peer-state":
	default:
		return nil, fmt.Errorf("kafka events %q: want all, best-path or peer-state", o.Events)
	}
	if o.TLS.Enabled {
		cfg, err := o.TLS.config()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(cfg))
	}
	switch o.SASL.Mechanism {
	case "":
	case "plain":
		opts = append(opts, kgo.SASL(plain.Auth{User: o.SASL.User, Pass: o.SASL.Password}.AsMechanism()))
	case "scram-sha-256":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.SASL.User, Pass: o.SASL.Password}.AsSha256Mechanism()))
	case "scram-sha-512":
		opts = append(opts, kgo.SASL(scram.Auth{User: o.SASL.User, Pass: o.SASL.Password}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("kafka sasl mechanism %q: want plain, scram-sha-256 or scram-sha-512", o.SASL.Mechanism)
	}
	return opts, nil
}

func (t KafkaTLS) config() (*tls.Config, error) {
	cfg := &tls.Config{ServerName: t.ServerName, InsecureSkipVerify: t.InsecureSkipVerify, MinVersion: tls.VersionTLS12}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka tls: no certificate in %s", t.CAFile)
		}
	}
	if t.CertFile != "" || t.KeyFile != "" {
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("kafka tls: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// KafkaStats count what became of the events offered to the stream.
type KafkaStats struct {
	Delivered uint64 // acknowledged by the broker (or sent, with acks = none)
	Dropped   uint64 // not sent: the buffer was full (broker down or slow)
	Failed    uint64 // sent to the client but given up (delivery timeout, broker error)
}

type kafkaCounters struct{ delivered, dropped, failed atomic.Uint64 }

// Stats reads the counters; safe from any goroutine.
func (k *Kafka) Stats() KafkaStats {
	return KafkaStats{Delivered: k.stats.delivered.Load(), Dropped: k.stats.dropped.Load(), Failed: k.stats.failed.Load()}
}

// Kafka publishes events to Kafka without ever making the caller
// wait: events go through a bounded handoff to one encoder goroutine, then
// to franz-go's bounded buffer. Whatever does not fit is dropped (the
// newest events: those already buffered keep their order), counted and
// logged.
type Kafka struct {
	client     *kgo.Client
	topic      string
	peerTopic  string
	bestPaths  bool
	peerStates bool
	router     string
	stats      kafkaCounters
	log        *slog.Logger

	inMu   sync.RWMutex // push (read) against Close (write)
	closed bool
	in     chan event.Event
	done   chan struct{}

	lossy      atomic.Bool // events were lost since the last delivery
	lossMu     sync.Mutex
	lossLogged time.Time
	lossAtLog  uint64
}

// NewKafka connects (in the background: franz-go dials when it sends) to
// the brokers of o; router names this edbgpd in every message.
func NewKafka(o KafkaOptions, router string, log *slog.Logger) (*Kafka, error) {
	opts, err := o.kafkaOpts()
	if err != nil {
		return nil, err
	}
	log = log.With("kafka", o.Brokers)
	client, err := kgo.NewClient(append(opts, kgo.WithLogger(kafkaLogger{log}))...)
	if err != nil {
		return nil, fmt.Errorf("kafka: %w", err)
	}
	k := &Kafka{
		client:     client,
		topic:      o.Topic,
		peerTopic:  o.PeerTopic,
		bestPaths:  o.Events != "peer-state",
		peerStates: o.Events != "best-path",
		router:     router,
		in:         make(chan event.Event, kafkaHandoff),
		done:       make(chan struct{}),
		log:        log,
	}
	if k.topic == "" {
		k.topic = defaultKafkaTopic
	}
	if k.peerTopic == "" {
		k.peerTopic = k.topic
	}
	go k.run()
	return k, nil
}

var _ event.Sink = (*Kafka)(nil)

// Push offers ev to the stream. It never blocks.
func (k *Kafka) Push(ev event.Event) {
	if (ev.BestPath != nil && !k.bestPaths) || (ev.PeerState != nil && !k.peerStates) {
		return
	}
	k.inMu.RLock()
	defer k.inMu.RUnlock()
	if k.closed {
		return
	}
	select {
	case k.in <- ev:
	default:
		k.lost(&k.stats.dropped, "handoff full")
	}
}

func (k *Kafka) run() {
	defer close(k.done)
	ctx := context.Background()
	for ev := range k.in {
		rec, err := k.record(ev)
		if err != nil {
			k.log.Error("cannot encode event for kafka", "err", err)
			continue
		}
		k.client.TryProduce(ctx, rec, k.produced)
	}
}

// record is the message for ev: keyed by prefix or peer address, so that
// one prefix's (one peer's) events stay in order in one partition.
func (k *Kafka) record(ev event.Event) (*kgo.Record, error) {
	value, err := event.MarshalStream(ev, k.router)
	if err != nil {
		return nil, err
	}
	rec := &kgo.Record{Value: value, Headers: []kgo.RecordHeader{{Key: "router", Value: []byte(k.router)}}}
	if e := ev.BestPath; e != nil {
		rec.Topic, rec.Key = k.topic, []byte(e.Prefix)
	} else {
		rec.Topic, rec.Key = k.peerTopic, []byte(ev.PeerState.Peer.Address)
	}
	return rec, nil
}

func (k *Kafka) produced(_ *kgo.Record, err error) {
	switch {
	case err == nil:
		k.stats.delivered.Add(1)
		if k.lossy.Load() && k.lossy.CompareAndSwap(true, false) {
			k.log.Info("kafka delivers again", "dropped_total", k.stats.dropped.Load(), "failed_total", k.stats.failed.Load())
		}
	case errors.Is(err, kgo.ErrMaxBuffered):
		k.lost(&k.stats.dropped, "buffer full")
	case errors.Is(err, kgo.ErrClientClosed):
		k.lost(&k.stats.failed, "client closed")
	default:
		k.lost(&k.stats.failed, err.Error())
	}
}

// lost counts an event that will not reach Kafka, and logs at most every
// ten seconds how many went since the last report.
func (k *Kafka) lost(counter *atomic.Uint64, why string) {
	counter.Add(1)
	k.lossy.Store(true)
	k.lossMu.Lock()
	defer k.lossMu.Unlock()
	if time.Since(k.lossLogged) < 10*time.Second {
		return
	}
	total := k.stats.dropped.Load() + k.stats.failed.Load()
	k.log.Warn("events not delivered to kafka; BGP and scripts go on", "why", why,
		"since_last_report", total-k.lossAtLog, "dropped_total", k.stats.dropped.Load(), "failed_total", k.stats.failed.Load())
	k.lossLogged, k.lossAtLog = time.Now(), total
}

// Close sends what is buffered, waiting up to timeout, then disconnects.
func (k *Kafka) Close(timeout time.Duration) {
	k.inMu.Lock()
	k.closed = true
	close(k.in)
	k.inMu.Unlock()
	<-k.done
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := k.client.Flush(ctx); err != nil {
		k.log.Warn("kafka: not everything buffered was delivered before shutdown", "err", err, "buffered", k.client.BufferedProduceRecords())
	}
	k.client.Close()
}
