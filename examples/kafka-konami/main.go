// Command kafka-konami does what scripts/konami.lua does, outside the
// daemon: it reads edbgpd's event stream from Kafka, and unlocks a peer
// that sent the Konami code by adding it to the neighbor-set
// "konami-unlocked" through edbgpd's GoBGP API (see edbgpd.toml). Any
// language with a Kafka client and gRPC could do the same.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"

	api "github.com/osrg/gobgp/v3/api"
	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

type config struct {
	brokers, topic, group, api, router, set string
	grace                                   time.Duration
}

func main() {
	var c config
	flag.StringVar(&c.brokers, "brokers", "127.0.0.1:9092", "Kafka brokers, comma separated")
	flag.StringVar(&c.topic, "topic", "bgp-events", "edbgpd's topic")
	flag.StringVar(&c.group, "group", "kafka-konami", "consumer group")
	flag.StringVar(&c.api, "api", "127.0.0.1:50051", "edbgpd's GoBGP gRPC API")
	flag.StringVar(&c.router, "router", "", "act on events of this edbgpd router id only (empty: any)")
	flag.StringVar(&c.set, "neighbor-set", "konami-unlocked", "neighbor-set of unlocked peers")
	flag.DurationVar(&c.grace, "grace", time.Second, "wait this long after a session goes down for events from other partitions")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, c, slog.Default()); err != nil && ctx.Err() == nil {
		slog.Error("kafka-konami", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, c config, log *slog.Logger) error {
	conn, err := grpc.Dial(c.api, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	gobgp := api.NewGobgpApiClient(conn)
	cl, err := kgo.NewClient(kgo.SeedBrokers(strings.Split(c.brokers, ",")...), kgo.ConsumeTopics(c.topic),
		kgo.ConsumerGroup(c.group), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		return err
	}
	defer cl.Close()

	k := newKonami(c.router)
	var pending []decision
	due := map[decision]time.Time{}
	for {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		fetches := cl.PollFetches(pctx)
		cancel()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		fetches.EachRecord(func(r *kgo.Record) {
			var m message
			if err := json.Unmarshal(r.Value, &m); err != nil {
				log.Warn("not an edbgpd event", "err", err)
				return
			}
			if d := k.handle(m); d != nil {
				pending = append(pending, *d)
				due[*d] = time.Now().Add(c.grace)
			}
		})
		for len(pending) > 0 && time.Now().After(due[pending[0]]) {
			d := pending[0]
			pending = pending[1:]
			delete(due, d)
			unlock := k.entered(d)
			log.Info("konami", "peer", d.peer, "unlocked", unlock)
			if err := setUnlocked(ctx, gobgp, c.set, d.peer, unlock); err != nil {
				log.Error("cannot change the neighbor-set", "peer", d.peer, "err", err)
			}
		}
	}
}

// setUnlocked adds the peer to the neighbor-set or takes it out. The peer's
// session is down at this point: the new session gets the new policy.
func setUnlocked(ctx context.Context, c api.GobgpApiClient, set, peer string, unlock bool) error {
	ds := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: set, List: []string{peer + "/32"}}
	var err error
	if unlock {
		_, err = c.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: ds})
	} else {
		_, err = c.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: ds})
		if err != nil && strings.Contains(err.Error(), "not found") {
			err = nil // it was not unlocked
		}
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", set, peer, err)
	}
	return nil
}
