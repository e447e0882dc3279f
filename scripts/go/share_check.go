// share_check: franz-go's share consumer (kgo, a Go client that shares no code with the Java client or
// librdkafka) as a third, independent witness of KIP-932 share-group behaviour on a broker: real Apache
// Kafka (4.2+) or the project's reference broker.
//
//	go run . BOOTSTRAP [--records N] [--topic T] [--group G] [--lock-ms MS] [--timeout-ms MS]
//	        [--renew auto|on|off] [--verbose]
//
// It runs the same round, asserts the same things and prints the same last line as
// scripts/java/ShareCheck.java and scripts/python/share_check.py (read ShareCheck.java's header for the
// rationale), plus a RENEW (KIP-1222, ShareAcknowledge v2):
//
//  1. Admin: create topic T (1 partition, RF 1; an existing topic is reused) and set group configs on
//     G (IncrementalAlterConfigs, resource type GROUP): share.auto.offset.reset=earliest and
//     share.record.lock.duration.ms=MS (default 5000).
//  2. A producer (acks=all, no idempotence) sends N records, key = i, value = "<run id>:<i>".
//  3. One share consumer polls and acknowledges each record by i:
//     first delivery:  i % 10 == 0 -> RELEASE; else i % 7 == 0 -> REJECT; else ACCEPT
//     second delivery: (only released records) i % 7 == 0 -> REJECT; else ACCEPT
//     with FlushAcks after every non-empty poll; every acknowledgement must be answered without error.
//  4. RENEW (when the broker serves ShareAcknowledge v2, or --renew on): one more record, which the
//     consumer holds for twice the lock duration, renewing it every third of it, then accepts. Every
//     renew and the accept must succeed, and a second consumer polling all along must not get it.
//  5. The second consumer in the same group must receive nothing of this run but a sentinel produced
//     after step 4.
//
// Assertions: delivered-all, delivery-count (first delivery 1, a released record comes back with 2),
// no-redelivery, commit-ok, totals, renew-keeps-lock, second-consumer.
//
// Output: progress on stderr; last line on stdout "sharecheck: PASS ..." or
// "sharecheck: FAIL <assertion>: ..." or "sharecheck: ERROR ...".
// Exit codes: 0 pass, 1 an assertion failed, 2 could not run (usage, setup failure).
// Every blocking call has a deadline; the whole run has --timeout-ms (default 120000).
// franz-go is pinned in go.mod (v1.22.3, the newest the Go module proxy served here on 2026-11-25; its
// share consumer has RENEW as AckRenew) with go.sum's checksums, fetched from the module proxy.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const (
	exitPass  = 0
	exitFail  = 1
	exitError = 2
)

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "sharecheck: [%6d ms] %s\n", time.Since(start).Milliseconds(), fmt.Sprintf(format, args...))
}

type assertionFailed struct{ name, detail string }

func (a *assertionFailed) Error() string { return a.name + ": " + a.detail }

type setupFailed struct{ msg string }

func (s *setupFailed) Error() string { return s.msg }

type check struct {
	bootstrap []string
	n         int
	topic     string
	group     string
	lockMs    int
	run       string
	deadline  time.Time
	verbose   bool
	renew     string

	deliveries []int
	done       []bool
	accepted   int
	rejected   int
	released   int
	violations []assertionFailed

	renewRan bool

	ackMu     sync.Mutex
	ackErrors []string
	acks      int
}

func (c *check) violation(name, detail string) {
	c.violations = append(c.violations, assertionFailed{name, detail})
}

func (c *check) firstViolation() error {
	v := c.violations[0]
	if len(c.violations) > 1 {
		v.detail += fmt.Sprintf(" (+%d more)", len(c.violations)-1)
	}
	return &v
}

// ctx is a context bounded by the run's deadline and at most `at most` from now.
func (c *check) ctx(atMost time.Duration) (context.Context, context.CancelFunc) {
	d := time.Until(c.deadline)
	if d > atMost {
		d = atMost
	}
	if d < 0 {
		d = 0
	}
	return context.WithTimeout(context.Background(), d)
}

func (c *check) indexOf(r *kgo.Record) int {
	v := string(r.Value)
	prefix := c.run + ":"
	if !strings.HasPrefix(v, prefix) {
		return -1
	}
	i, err := strconv.Atoi(v[len(prefix):])
	if err != nil || i < 1 || i > c.n {
		return -1
	}
	return i
}

func decide(i, delivery int) kgo.AckStatus {
	if delivery == 1 {
		if i%10 == 0 {
			return kgo.AckRelease
		}
		if i%7 == 0 {
			return kgo.AckReject
		}
		return kgo.AckAccept
	}
	if i%7 == 0 {
		return kgo.AckReject
	}
	return kgo.AckAccept
}

func (c *check) onAck(_ *kgo.Client, rs kgo.ShareAckResults) {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	c.acks++
	for _, r := range rs {
		if r.Err != nil {
			c.ackErrors = append(c.ackErrors, fmt.Sprintf("%s-%d: %v", r.Topic, r.Partition, r.Err))
		}
	}
}

// onSecondAck: the second consumer's acknowledgements are its own business (it releases what it
// gets while the first renews; a refused one is not the first consumer's failure).
func (c *check) onSecondAck(_ *kgo.Client, rs kgo.ShareAckResults) {
	for _, r := range rs {
		if r.Err != nil {
			logf("second consumer: acknowledgement refused: %s-%d: %v", r.Topic, r.Partition, r.Err)
		}
	}
}

// takeAckErrors returns and clears the acknowledgement errors seen so far.
func (c *check) takeAckErrors() []string {
	c.ackMu.Lock()
	defer c.ackMu.Unlock()
	out := c.ackErrors
	c.ackErrors = nil
	return out
}

func (c *check) admin() (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(c.bootstrap...), kgo.ClientID("sharecheck-admin"),
		kgo.RequestTimeoutOverhead(10*time.Second), kgo.DialTimeout(10*time.Second))
}

// servesRenew: the broker advertises ShareAcknowledge (79) v2.
func (c *check) servesRenew(cl *kgo.Client) (bool, error) {
	ctx, cancel := c.ctx(20 * time.Second)
	defer cancel()
	resp, err := kmsg.NewPtrApiVersionsRequest().RequestWith(ctx, cl)
	if err != nil {
		return false, err
	}
	for _, k := range resp.ApiKeys {
		if k.ApiKey == 79 {
			return k.MaxVersion >= 2, nil
		}
	}
	return false, nil
}

func (c *check) setup(cl *kgo.Client) error {
	ctx, cancel := c.ctx(20 * time.Second)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	t := kmsg.NewCreateTopicsRequestTopic()
	t.Topic = c.topic
	t.NumPartitions = 1
	t.ReplicationFactor = 1
	req.Topics = append(req.Topics, t)
	req.TimeoutMillis = 10000
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return &setupFailed{fmt.Sprintf("create topic %s: %v", c.topic, err)}
	}
	for _, rt := range resp.Topics {
		switch err := kerr.ErrorForCode(rt.ErrorCode); {
		case err == nil:
			logf("created topic %s", c.topic)
		case errors.Is(err, kerr.TopicAlreadyExists):
			logf("topic %s exists; reusing it", c.topic)
		default:
			return &setupFailed{fmt.Sprintf("create topic %s: %v", c.topic, err)}
		}
	}
	alter := kmsg.NewPtrIncrementalAlterConfigsRequest()
	res := kmsg.NewIncrementalAlterConfigsRequestResource()
	res.ResourceType = kmsg.ConfigResourceType(32) // GROUP
	res.ResourceName = c.group
	for _, kv := range [][2]string{
		{"share.auto.offset.reset", "earliest"},
		{"share.record.lock.duration.ms", strconv.Itoa(c.lockMs)},
	} {
		cfg := kmsg.NewIncrementalAlterConfigsRequestResourceConfig()
		cfg.Name = kv[0]
		v := kv[1]
		cfg.Value = &v
		cfg.Op = kmsg.IncrementalAlterConfigOpSet
		res.Configs = append(res.Configs, cfg)
	}
	alter.Resources = append(alter.Resources, res)
	aresp, err := alter.RequestWith(ctx, cl)
	if err != nil {
		return &setupFailed{fmt.Sprintf("set group configs on %s: %v", c.group, err)}
	}
	for _, r := range aresp.Resources {
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = ": " + *r.ErrorMessage
			}
			return &setupFailed{fmt.Sprintf("set group configs on %s: %v%s", c.group, err, msg)}
		}
	}
	logf("group %s: share.auto.offset.reset=earliest, share.record.lock.duration.ms=%d", c.group, c.lockMs)
	return nil
}

func (c *check) produce(values ...string) error {
	p, err := kgo.NewClient(kgo.SeedBrokers(c.bootstrap...), kgo.ClientID("sharecheck-producer"),
		kgo.RequiredAcks(kgo.AllISRAcks()), kgo.DisableIdempotentWrite(),
		kgo.DefaultProduceTopic(c.topic), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		return &setupFailed{fmt.Sprintf("producer: %v", err)}
	}
	defer p.Close()
	ctx, cancel := c.ctx(30 * time.Second)
	defer cancel()
	rs := make([]*kgo.Record, 0, len(values))
	for _, v := range values {
		key := v[strings.IndexByte(v, ':')+1:]
		rs = append(rs, &kgo.Record{Key: []byte(key), Value: []byte(v), Partition: 0})
	}
	if err := p.ProduceSync(ctx, rs...).FirstErr(); err != nil {
		return &setupFailed{fmt.Sprintf("produce to %s: %v", c.topic, err)}
	}
	return nil
}

func (c *check) consumer(id string, onAck func(*kgo.Client, kgo.ShareAckResults)) (*kgo.Client, error) {
	return kgo.NewClient(kgo.SeedBrokers(c.bootstrap...), kgo.ClientID(id),
		kgo.ShareGroup(c.group), kgo.ConsumeTopics(c.topic), kgo.ShareAckCallback(onAck),
		kgo.RequestTimeoutOverhead(10*time.Second), kgo.DialTimeout(10*time.Second))
}

func (c *check) flush(cl *kgo.Client, what string) {
	ctx, cancel := c.ctx(20 * time.Second)
	defer cancel()
	if err := cl.FlushAcks(ctx); err != nil {
		c.violation("commit-ok", fmt.Sprintf("%s: FlushAcks: %v", what, err))
	}
	for _, e := range c.takeAckErrors() {
		c.violation("commit-ok", fmt.Sprintf("%s: acknowledgement refused: %s", what, e))
	}
}

func (c *check) remaining() int {
	n := 0
	for i := 1; i <= c.n; i++ {
		if !c.done[i] {
			n++
		}
	}
	return n
}

// consume runs step 3 with consumer c1.
func (c *check) consume(c1 *kgo.Client) {
	for c.remaining() > 0 && time.Now().Before(c.deadline) {
		ctx, cancel := c.ctx(2 * time.Second)
		fetches := c1.PollRecords(ctx, 100)
		cancel()
		fetches.EachError(func(t string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				logf("poll error %s-%d: %v", t, p, err)
			}
		})
		got := 0
		fetches.EachRecord(func(r *kgo.Record) {
			i := c.indexOf(r)
			if i < 0 {
				r.Ack(kgo.AckAccept)
				return
			}
			got++
			c.deliveries[i]++
			d := c.deliveries[i]
			if c.done[i] {
				c.violation("no-redelivery", fmt.Sprintf("record %d delivered again (delivery %d) after it was accepted or rejected", i, d))
				r.Ack(kgo.AckAccept)
				return
			}
			if int(r.DeliveryCount()) != d {
				c.violation("delivery-count", fmt.Sprintf("record %d: delivery %d arrived with delivery count %d", i, d, r.DeliveryCount()))
			}
			status := decide(i, d)
			switch status {
			case kgo.AckAccept:
				c.accepted++
				c.done[i] = true
			case kgo.AckReject:
				c.rejected++
				c.done[i] = true
			case kgo.AckRelease:
				c.released++
			}
			if c.verbose {
				logf("record %d delivery %d (count %d) -> %v", i, d, r.DeliveryCount(), status)
			}
			r.Ack(status)
		})
		if got > 0 {
			c.flush(c1, "step 3")
		}
	}
}

// renewRound runs step 4: c1 holds one record for twice the lock duration by renewing it; a second
// consumer, started once c1 holds it (a kgo client fetches in the background from the start, and
// could otherwise take the record first), polls all along and must not get it. Returns the second
// consumer.
func (c *check) renewRound(c1 *kgo.Client) (*kgo.Client, error) {
	value := c.run + ":renew"
	if err := c.produce(value); err != nil {
		return nil, err
	}
	var held *kgo.Record
	for held == nil && time.Now().Before(c.deadline) {
		ctx, cancel := c.ctx(2 * time.Second)
		fetches := c1.PollRecords(ctx, 10)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			if string(r.Value) == value && held == nil {
				held = r
			} else {
				r.Ack(kgo.AckAccept)
			}
		})
	}
	c2, err := c.consumer("sharecheck-share-2", c.onSecondAck)
	if err != nil {
		return nil, &setupFailed{fmt.Sprintf("second consumer: %v", err)}
	}
	if held == nil {
		c.violation("renew-keeps-lock", "the record to renew was never delivered")
		return c2, nil
	}
	logf("renew: holding the record for %d ms, renewing every %d ms", 2*c.lockMs, c.lockMs/3)
	var stolen []string
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			ctx, cancel := c.ctx(500 * time.Millisecond)
			fetches := c2.PollRecords(ctx, 10)
			cancel()
			fetches.EachRecord(func(r *kgo.Record) {
				if strings.HasPrefix(string(r.Value), c.run+":") {
					stolen = append(stolen, fmt.Sprintf("%s (delivery count %d)", string(r.Value), r.DeliveryCount()))
				}
				r.Ack(kgo.AckRelease)
			})
		}
	}()
	until := time.Now().Add(time.Duration(2*c.lockMs) * time.Millisecond)
	for time.Now().Before(until) && time.Now().Before(c.deadline) {
		time.Sleep(time.Duration(c.lockMs/3) * time.Millisecond)
		held.Ack(kgo.AckRenew)
		c.flush(c1, "renew")
	}
	held.Ack(kgo.AckAccept)
	before := len(c.violations)
	c.flush(c1, "accept after renewing")
	close(stop)
	wg.Wait()
	if len(c.violations) > before {
		v := c.violations[before]
		c.violations[before] = assertionFailed{"renew-keeps-lock", "a record renewed for twice its lock duration could not be accepted: " + v.detail}
	}
	if len(stolen) > 0 {
		c.violation("renew-keeps-lock", "a second consumer got the record while it was being renewed: "+strings.Join(stolen, ", "))
	}
	if held.DeliveryCount() != 1 {
		c.violation("delivery-count", fmt.Sprintf("the renewed record arrived with delivery count %d", held.DeliveryCount()))
	}
	logf("renew: accepted after %d ms of renewing", 2*c.lockMs)
	return c2, nil
}

func (c *check) runCheck() error {
	adm, err := c.admin()
	if err != nil {
		return &setupFailed{fmt.Sprintf("client: %v", err)}
	}
	defer adm.Close()
	renew := c.renew == "on"
	if c.renew == "auto" {
		renew, err = c.servesRenew(adm)
		if err != nil {
			return &setupFailed{fmt.Sprintf("ApiVersions: %v", err)}
		}
	}
	if err := c.setup(adm); err != nil {
		return err
	}
	values := make([]string, c.n)
	for i := range values {
		values[i] = fmt.Sprintf("%s:%d", c.run, i+1)
	}
	if err := c.produce(values...); err != nil {
		return err
	}
	logf("produced %d records to %s", c.n, c.topic)
	c1, err := c.consumer("sharecheck-share-1", c.onAck)
	if err != nil {
		return &setupFailed{fmt.Sprintf("consumer: %v", err)}
	}
	defer c1.Close()
	c.consume(c1)
	if c.remaining() > 0 {
		var missing []string
		for i := 1; i <= c.n && len(missing) < 20; i++ {
			if !c.done[i] {
				missing = append(missing, fmt.Sprintf("%d(delivered %dx)", i, c.deliveries[i]))
			}
		}
		c.violation("delivered-all", fmt.Sprintf("%d of %d records never reached a final acknowledgement before the deadline: %s", c.remaining(), c.n, strings.Join(missing, ",")))
	}
	wantReleased := c.n / 10
	if c.released != wantReleased {
		c.violation("totals", fmt.Sprintf("released %d, the round releases %d", c.released, wantReleased))
	}
	var c2 *kgo.Client
	if renew {
		c.renewRan = true
		if c2, err = c.renewRound(c1); err != nil {
			return err
		}
	} else {
		logf("renew: skipped (the broker does not serve ShareAcknowledge v2)")
		if c2, err = c.consumer("sharecheck-share-2", c.onSecondAck); err != nil {
			return &setupFailed{fmt.Sprintf("second consumer: %v", err)}
		}
	}
	defer c2.Close()
	sentinel := c.run + ":sentinel"
	if err := c.produce(sentinel); err != nil {
		return err
	}
	// c1 leaves first, so the sentinel is c2's to get.
	c1.Close()
	gotSentinel := false
	var extra []string
	for !gotSentinel && time.Now().Before(c.deadline) {
		ctx, cancel := c.ctx(2 * time.Second)
		fetches := c2.PollRecords(ctx, 10)
		cancel()
		fetches.EachRecord(func(r *kgo.Record) {
			v := string(r.Value)
			switch {
			case v == sentinel:
				gotSentinel = true
			case strings.HasPrefix(v, c.run+":"):
				extra = append(extra, v)
			}
			r.Ack(kgo.AckAccept)
		})
	}
	c.flush(c2, "second consumer")
	if len(extra) > 0 {
		c.violation("second-consumer", "the second consumer received records of this run: "+strings.Join(extra, ", "))
	}
	if !gotSentinel {
		c.violation("second-consumer", "the second consumer never received the sentinel")
	}
	if len(c.violations) > 0 {
		return c.firstViolation()
	}
	return nil
}

func main() {
	fs := flag.NewFlagSet("share_check", flag.ContinueOnError)
	records := fs.Int("records", 30, "records to produce")
	topic := fs.String("topic", "", "topic (default sharecheck-<run id>)")
	group := fs.String("group", "", "share group (default sharecheck-<run id>)")
	lockMs := fs.Int("lock-ms", 5000, "share.record.lock.duration.ms for the group")
	timeoutMs := fs.Int("timeout-ms", 120000, "deadline of the whole run")
	renew := fs.String("renew", "auto", "RENEW round: auto (when the broker serves ShareAcknowledge v2), on, off")
	verbose := fs.Bool("verbose", false, "log every record")
	args := os.Args[1:]
	var positional []string
	for len(args) > 0 {
		if err := fs.Parse(args); err != nil {
			fmt.Println("sharecheck: ERROR usage: " + err.Error())
			os.Exit(exitError)
		}
		args = fs.Args()
		if len(args) > 0 {
			positional = append(positional, args[0])
			args = args[1:]
		}
	}
	if len(positional) != 1 || *records < 1 || *lockMs < 1000 || (*renew != "auto" && *renew != "on" && *renew != "off") {
		fmt.Println("sharecheck: ERROR usage: share_check BOOTSTRAP [--records N>=1] [--topic T] [--group G] [--lock-ms MS>=1000] [--timeout-ms MS] [--renew auto|on|off] [--verbose]")
		os.Exit(exitError)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	run := hex.EncodeToString(b)
	c := &check{
		bootstrap:  strings.Split(positional[0], ","),
		n:          *records,
		topic:      *topic,
		group:      *group,
		lockMs:     *lockMs,
		run:        run,
		deadline:   start.Add(time.Duration(*timeoutMs) * time.Millisecond),
		verbose:    *verbose,
		renew:      *renew,
		deliveries: make([]int, *records+1),
		done:       make([]bool, *records+1),
	}
	if c.topic == "" {
		c.topic = "sharecheck-" + run
	}
	if c.group == "" {
		c.group = "sharecheck-" + run
	}
	err := c.runCheck()
	var af *assertionFailed
	var sf *setupFailed
	switch {
	case err == nil:
		fmt.Printf("sharecheck: PASS franz-go share consumer: %d records, %d accepted, %d rejected, %d released and redelivered, renew %s, in %d ms\n",
			c.n, c.accepted, c.rejected, c.released, map[bool]string{true: "checked", false: "skipped"}[c.renewRan], time.Since(start).Milliseconds())
		os.Exit(exitPass)
	case errors.As(err, &af):
		fmt.Printf("sharecheck: FAIL %s: %s\n", af.name, af.detail)
		os.Exit(exitFail)
	case errors.As(err, &sf):
		fmt.Printf("sharecheck: ERROR %s\n", sf.msg)
		os.Exit(exitError)
	default:
		fmt.Printf("sharecheck: ERROR %v\n", err)
		os.Exit(exitError)
	}
}
