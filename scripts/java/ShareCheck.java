// ShareCheck: the real Java client (kafka-clients KafkaShareConsumer) as a witness of KIP-932 share-group
// behaviour on a broker: real Apache Kafka (4.1+) or the project's reference broker.
//
//   java -cp "<broker libs>/*" scripts/java/ShareCheck.java BOOTSTRAP
//        [--records N] [--topic T] [--group G] [--lock-ms MS] [--timeout-ms MS] [--verbose]
//
// What it does
//   1. Admin: create topic T (1 partition, RF 1; an existing topic is reused) and set group configs on G
//      (IncrementalAlterConfigs, resource type GROUP): share.auto.offset.reset=earliest and
//      share.record.lock.duration.ms=MS (default 5000; --lock-ms 0 leaves the lock duration alone).
//      This happens before the consumer subscribes, so records produced before the join are delivered.
//   2. KafkaProducer (acks=all, idempotence off, so no InitProducerId is needed) sends N records,
//      key = i, value = "<run id>:<i>" for i = 1..N.
//   3. One KafkaShareConsumer (share.acknowledgement.mode=explicit) polls and acknowledges each record by i:
//        first delivery:   i % 10 == 0 -> RELEASE;  else i % 7 == 0 -> REJECT;  else ACCEPT
//        second delivery:  (only released records)  i % 7 == 0 -> REJECT;  else ACCEPT
//      and calls commitSync after every non-empty poll.
//   4. A second consumer in the same group must receive nothing of this run but a sentinel record produced
//      after step 3 (the sentinel proves the consumer was assigned and fetching, so "nothing else" is not
//      vacuous; the share partition acquires from its first AVAILABLE offset, so any leftover
//      AVAILABLE record of the run would come with or before the sentinel).
//
// Assertions (KIP-932 delivery count and acknowledgement semantics)
//   delivered-all        every one of the N records is delivered (within the deadline)
//   delivery-count       first delivery has deliveryCount() == 1; a released record comes back with 2
//   no-redelivery        an accepted or rejected record is never delivered again
//   commit-ok            commitSync reports no error for any partition
//   totals               accepted + rejected == N, nobody accepted twice
//   second-consumer      the second consumer sees only the sentinel
//
// Output: progress on stderr; last line on stdout "sharecheck: PASS ..." or "sharecheck: FAIL <assertion>: ...".
// Exit codes: 0 pass, 1 an assertion failed (includes "not delivered before the deadline"),
//             2 could not run (usage, topic/config/produce failure).
// Depends only on kafka-clients; every blocking call has a timeout; the whole run has --timeout-ms
// (default 120000).

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class ShareCheck {
    static final int EXIT_PASS = 0, EXIT_FAIL = 1, EXIT_ERROR = 2;

    /** A failed assertion: named, so the summary line is stable vocabulary. */
    static final class AssertionFailed extends RuntimeException {
        final String name;
        AssertionFailed(String name, String detail) {
            super(detail);
            this.name = name;
        }
    }

    /** Could not run the check at all (setup). */
    static final class SetupFailed extends RuntimeException {
        SetupFailed(String msg) {
            super(msg);
        }
    }

    // ---- options
    static String bootstrap;
    static int n = 100;
    static String topic;
    static String group;
    static long lockMs = 5000;
    static long timeoutMs = 120_000;
    static boolean verbose;

    static final String RUN = UUID.randomUUID().toString().substring(0, 8);
    static long deadline;
    static final long START = System.nanoTime();

    // ---- per-record bookkeeping, index 1..n
    static int[] deliveries;        // how many times delivered
    static AcknowledgeType[] last;  // last ack given
    static boolean[] done;          // reached ACCEPT or REJECT (acknowledged and committed)
    static int accepted, rejected, released, redelivered;
    /** Violations seen so far: "assertion-name: detail". The first one names the failure. */
    static final List<String> violations = new ArrayList<>();

    static void violation(String name, String detail) {
        violations.add(name + ": " + detail);
    }

    static AssertionFailed firstViolation() {
        String v = violations.get(0);
        int colon = v.indexOf(": ");
        return new AssertionFailed(v.substring(0, colon), v.substring(colon + 2)
                + (violations.size() > 1 ? " (+" + (violations.size() - 1) + " more)" : ""));
    }

    public static void main(String[] args) {
        try {
            parse(args);
        } catch (IllegalArgumentException e) {
            System.err.println("sharecheck: " + e.getMessage());
            System.err.println("usage: ShareCheck BOOTSTRAP [--records N] [--topic T] [--group G] [--lock-ms MS]"
                    + " [--timeout-ms MS] [--verbose]");
            System.out.println("sharecheck: ERROR usage: " + e.getMessage());
            System.exit(EXIT_ERROR);
        }
        deadline = START + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        deliveries = new int[n + 1];
        last = new AcknowledgeType[n + 1];
        done = new boolean[n + 1];
        log("run " + RUN + ": bootstrap=" + bootstrap + " topic=" + topic + " group=" + group + " records=" + n
                + " lock-ms=" + lockMs + " timeout-ms=" + timeoutMs);
        int code;
        try {
            setup();
            produce();
            consume();
            secondConsumer();
            checkTotals();
            System.out.println("sharecheck: PASS records=" + n + " accepted=" + accepted + " rejected=" + rejected
                    + " released=" + released + " redelivered=" + redelivered + " topic=" + topic + " group=" + group
                    + " elapsed_ms=" + elapsedMs());
            code = EXIT_PASS;
        } catch (AssertionFailed e) {
            for (String v : violations) log("violation: " + v);
            System.out.println("sharecheck: FAIL " + e.name + ": " + e.getMessage() + " (topic=" + topic + " group="
                    + group + " elapsed_ms=" + elapsedMs() + ")");
            code = EXIT_FAIL;
        } catch (SetupFailed e) {
            System.out.println("sharecheck: ERROR " + e.getMessage() + " (elapsed_ms=" + elapsedMs() + ")");
            code = EXIT_ERROR;
        } catch (Exception e) {
            System.out.println("sharecheck: ERROR unexpected " + describe(e) + " (elapsed_ms=" + elapsedMs() + ")");
            if (verbose) e.printStackTrace();
            code = EXIT_ERROR;
        }
        System.exit(code);
    }

    static void parse(String[] args) {
        if (args.length < 1 || args[0].startsWith("-")) throw new IllegalArgumentException("missing BOOTSTRAP");
        bootstrap = args[0];
        for (int i = 1; i < args.length; i++) {
            String a = args[i];
            if (a.equals("--verbose")) { verbose = true; continue; }
            if (i + 1 >= args.length) throw new IllegalArgumentException("missing value for " + a);
            String v = args[++i];
            try {
                switch (a) {
                    case "--records" -> n = Integer.parseInt(v);
                    case "--topic" -> topic = v;
                    case "--group" -> group = v;
                    case "--lock-ms" -> lockMs = Long.parseLong(v);
                    case "--timeout-ms" -> timeoutMs = Long.parseLong(v);
                    default -> throw new IllegalArgumentException("unknown argument " + a);
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("not a number for " + a + ": " + v);
            }
        }
        if (n < 1) throw new IllegalArgumentException("--records must be >= 1");
        if (lockMs < 0 || timeoutMs < 1) throw new IllegalArgumentException("bad --lock-ms/--timeout-ms");
        if (topic == null) topic = "sharecheck-" + RUN;
        if (group == null) group = "sharecheck-" + RUN;
    }

    // ---------------------------------------------------------------------------------------------- steps

    static void setup() throws Exception {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "sharecheck-admin");
        Admin admin = Admin.create(p);
        try {
            try {
                admin.createTopics(List.of(new NewTopic(topic, 1, (short) 1))).all().get(step(), TimeUnit.MILLISECONDS);
                log("created topic " + topic);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) {
                    throw new SetupFailed("create topic " + topic + ": " + describe(e));
                }
                log("topic " + topic + " exists; reusing it (records of other runs are accepted and ignored)");
            } catch (java.util.concurrent.TimeoutException e) {
                throw new SetupFailed("create topic " + topic + ": no answer within the step timeout");
            }
            List<AlterConfigOp> ops = new ArrayList<>();
            ops.add(new AlterConfigOp(new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET));
            if (lockMs > 0) {
                ops.add(new AlterConfigOp(new ConfigEntry("share.record.lock.duration.ms", Long.toString(lockMs)),
                        AlterConfigOp.OpType.SET));
            }
            ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
            try {
                admin.incrementalAlterConfigs(Map.of(res, ops)).all().get(step(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                String why = describe(e);
                throw new SetupFailed("set group configs " + names(ops) + " on " + group + ": " + why
                        + (why.contains("share.record.lock.duration.ms") ? " (the broker's"
                        + " group.share.min.record.lock.duration.ms, default 15000, bounds it; try --lock-ms 0)" : ""));
            } catch (java.util.concurrent.TimeoutException e) {
                throw new SetupFailed("set group configs on " + group + ": no answer within the step timeout");
            }
            log("group " + group + ": share.auto.offset.reset=earliest"
                    + (lockMs > 0 ? ", share.record.lock.duration.ms=" + lockMs : ""));
        } finally {
            admin.close(Duration.ofSeconds(2)); // close() alone waits for pending calls
        }
    }

    static KafkaProducer<String, String> producer() {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, false); // keep the protocol subset small (no InitProducerId)
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 1);
        p.put(ProducerConfig.RETRIES_CONFIG, 0);                // a retry could duplicate a record
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.CLIENT_ID_CONFIG, "sharecheck-producer");
        return new KafkaProducer<>(p, new StringSerializer(), new StringSerializer());
    }

    static void produce() throws Exception {
        KafkaProducer<String, String> producer = producer();
        try {
            List<Future<RecordMetadata>> futures = new ArrayList<>(n);
            for (int i = 1; i <= n; i++) {
                futures.add(producer.send(new ProducerRecord<>(topic, Integer.toString(i), RUN + ":" + i)));
            }
            producer.flush();
            long first = -1, lastOff = -1;
            for (int i = 0; i < n; i++) {
                try {
                    RecordMetadata md = futures.get(i).get(step(), TimeUnit.MILLISECONDS);
                    if (first < 0) first = md.offset();
                    lastOff = md.offset();
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    throw new SetupFailed("produce record " + (i + 1) + ": " + describe(e));
                }
            }
            log("produced " + n + " records at offsets " + first + ".." + lastOff);
        } finally {
            producer.close(Duration.ofSeconds(2));
        }
    }

    static KafkaShareConsumer<String, String> consumer(String clientId) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.CLIENT_ID_CONFIG, clientId);
        p.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        return new KafkaShareConsumer<>(p, new StringDeserializer(), new StringDeserializer());
    }

    /** Index i of a record of this run, or -1 for anything else (other runs, sentinel). */
    static int indexOf(ConsumerRecord<String, String> r) {
        String v = r.value();
        if (v == null || !v.startsWith(RUN + ":")) return -1;
        try {
            int i = Integer.parseInt(v.substring(RUN.length() + 1));
            return i >= 1 && i <= n ? i : -1;
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    static AcknowledgeType decide(int i, int delivery) {
        if (delivery == 1) {
            if (i % 10 == 0) return AcknowledgeType.RELEASE;
            if (i % 7 == 0) return AcknowledgeType.REJECT;
            return AcknowledgeType.ACCEPT;
        }
        return i % 7 == 0 ? AcknowledgeType.REJECT : AcknowledgeType.ACCEPT;
    }

    static int remaining() {
        int r = 0;
        for (int i = 1; i <= n; i++) if (!done[i]) r++;
        return r;
    }

    static void consume() {
        KafkaShareConsumer<String, String> c = consumer("sharecheck-1");
        int polls = 0, foreign = 0;
        long firstRecordAt = -1;
        try {
            c.subscribe(List.of(topic));
            while (remaining() > 0) {
                if (remainingMs() <= 0) {
                    throw new AssertionFailed("delivered-all", remaining() + " of " + n
                            + " records not delivered+acknowledged before the deadline (" + polls + " polls; "
                            + (firstRecordAt < 0 ? "no record was ever delivered" : "missing: " + missing()) + ")");
                }
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(Math.min(1000, remainingMs())));
                polls++;
                if (records.isEmpty()) continue;
                if (firstRecordAt < 0) {
                    firstRecordAt = elapsedMs();
                    log("first records after " + firstRecordAt + " ms (" + polls + " polls)");
                }
                List<Integer> pending = new ArrayList<>();
                for (ConsumerRecord<String, String> r : records) {
                    int i = indexOf(r);
                    if (i < 0) {
                        foreign++;
                        c.acknowledge(r, AcknowledgeType.ACCEPT);
                        continue;
                    }
                    int d = ++deliveries[i];
                    Optional<Short> dc = r.deliveryCount();
                    if (done[i]) {
                        violation("no-redelivery", "record " + i + " (offset " + r.offset() + ") delivered again after "
                                + last[i] + " with deliveryCount " + dc.orElse((short) -1));
                    } else if (dc.isEmpty() || dc.get() != d) {
                        violation("delivery-count", "record " + i + " (offset " + r.offset() + ") delivery #" + d
                                + " has deliveryCount " + (dc.isEmpty() ? "absent" : dc.get()) + ", expected " + d);
                    }
                    if (d > 2 && !done[i]) {
                        violation("no-redelivery", "record " + i + " delivered " + d + " times (it is released at most once)");
                    }
                    AcknowledgeType t = done[i] ? AcknowledgeType.ACCEPT : decide(i, d);
                    c.acknowledge(r, t);
                    last[i] = t;
                    if (verbose) log("offset " + r.offset() + " record " + i + " delivery " + d + " count "
                            + dc.orElse((short) -1) + " -> " + t);
                    if (d == 2) redelivered++;
                    if (t == AcknowledgeType.RELEASE) released++;
                    else if (!done[i]) pending.add(i);
                }
                Map<TopicIdPartition, Optional<KafkaException>> res =
                        c.commitSync(Duration.ofMillis(Math.max(1, Math.min(20_000, remainingMs()))));
                for (var e : res.entrySet()) {
                    if (e.getValue().isPresent()) {
                        String why = describe(e.getValue().get());
                        throw new AssertionFailed("commit-ok", "commitSync after poll " + polls + " failed for "
                                + e.getKey() + ": " + why + (why.contains("InvalidRecordState")
                                ? " (also what an ack gets after the " + lockMs + " ms acquisition lock expired,"
                                + " e.g. if this client stalled)" : ""));
                    }
                }
                for (int i : pending) {
                    done[i] = true;
                    if (last[i] == AcknowledgeType.ACCEPT) accepted++;
                    else rejected++;
                }
                if (!violations.isEmpty()) break;
            }
        } finally {
            closeQuietly(c);
        }
        if (foreign > 0) log("ignored " + foreign + " records that are not from this run (accepted them)");
        log("first consumer: " + accepted + " accepted, " + rejected + " rejected, " + released + " released, "
                + redelivered + " redelivered, " + polls + " polls, " + elapsedMs() + " ms");
        if (!violations.isEmpty()) throw firstViolation();
    }

    static void secondConsumer() throws Exception {
        String sentinel = RUN + ":sentinel";
        KafkaProducer<String, String> producer = producer();
        try {
            producer.send(new ProducerRecord<>(topic, "sentinel", sentinel)).get(step(), TimeUnit.MILLISECONDS);
        } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
            throw new SetupFailed("produce sentinel: " + describe(e));
        } finally {
            producer.close(Duration.ofSeconds(2));
        }
        KafkaShareConsumer<String, String> c = consumer("sharecheck-2");
        boolean sawSentinel = false;
        int polls = 0;
        try {
            c.subscribe(List.of(topic));
            long quietUntil = Long.MAX_VALUE; // after the sentinel: one more second of polling
            while (System.nanoTime() < quietUntil) {
                if (remainingMs() <= 0) {
                    throw new AssertionFailed("second-consumer", "the sentinel produced after the run was not"
                            + " delivered to a second consumer before the deadline (" + polls + " polls)");
                }
                ConsumerRecords<String, String> records = c.poll(Duration.ofMillis(Math.min(500, remainingMs())));
                polls++;
                for (ConsumerRecord<String, String> r : records) {
                    c.acknowledge(r, AcknowledgeType.ACCEPT);
                    if (sentinel.equals(r.value())) {
                        sawSentinel = true;
                        quietUntil = System.nanoTime() + TimeUnit.SECONDS.toNanos(1);
                    } else if (indexOf(r) > 0) {
                        violation("second-consumer", "second consumer got record " + indexOf(r) + " (offset " + r.offset()
                                + ", deliveryCount " + r.deliveryCount().orElse((short) -1) + ")");
                    }
                }
                if (!records.isEmpty()) {
                    c.commitSync(Duration.ofMillis(Math.max(1, Math.min(20_000, remainingMs()))));
                }
            }
        } finally {
            closeQuietly(c);
        }
        if (!violations.isEmpty()) throw firstViolation();
        log("second consumer: only the sentinel (" + polls + " polls)");
    }

    static void checkTotals() {
        int expectRejected = 0;
        for (int i = 1; i <= n; i++) if (i % 7 == 0) expectRejected++;
        int expectReleased = n / 10;
        if (accepted + rejected != n) {
            throw new AssertionFailed("totals", "accepted " + accepted + " + rejected " + rejected + " != " + n);
        }
        if (rejected != expectRejected || released != expectReleased || redelivered != expectReleased) {
            throw new AssertionFailed("totals", "rejected " + rejected + " (expected " + expectRejected
                    + "), released " + released + " (expected " + expectReleased + "), redelivered " + redelivered
                    + " (expected " + expectReleased + ")");
        }
        for (int i = 1; i <= n; i++) {
            int expect = i % 10 == 0 ? 2 : 1;
            if (deliveries[i] != expect) {
                throw new AssertionFailed("totals", "record " + i + " delivered " + deliveries[i] + " times, expected "
                        + expect);
            }
        }
    }

    // ---------------------------------------------------------------------------------------------- helpers

    static String names(List<AlterConfigOp> ops) {
        StringBuilder sb = new StringBuilder();
        for (AlterConfigOp op : ops) {
            sb.append(sb.length() == 0 ? "" : ",").append(op.configEntry().name()).append('=').append(op.configEntry().value());
        }
        return sb.toString();
    }

    static String missing() {
        StringBuilder sb = new StringBuilder();
        int shown = 0;
        for (int i = 1; i <= n && shown < 20; i++) {
            if (!done[i]) {
                sb.append(shown++ == 0 ? "" : ",").append(i).append("(delivered ").append(deliveries[i]).append("x)");
            }
        }
        return sb.toString();
    }

    static void closeQuietly(KafkaShareConsumer<String, String> c) {
        try {
            c.close(Duration.ofMillis(Math.max(1000, Math.min(10_000, remainingMs()))));
        } catch (Exception e) {
            log("close: " + describe(e));
        }
    }

    static long remainingMs() {
        return Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
    }

    static long elapsedMs() {
        return TimeUnit.NANOSECONDS.toMillis(System.nanoTime() - START);
    }

    /** Timeout for one blocking step: what is left of the deadline, at most 20 s. */
    static long step() {
        long r = remainingMs();
        if (r <= 0) throw new SetupFailed("deadline of " + timeoutMs + " ms passed during setup");
        return Math.min(20_000, r);
    }

    static String describe(Throwable e) {
        Throwable c = e;
        while ((c instanceof ExecutionException || c instanceof KafkaException) && c.getCause() != null
                && c.getCause() != c) {
            c = c.getCause();
        }
        String msg = c.getMessage();
        return c.getClass().getSimpleName() + (msg == null ? "" : ": " + msg.replace('\n', ' '));
    }

    static void log(String s) {
        System.err.printf("sharecheck: [%6d ms] %s%n", elapsedMs(), s);
    }
}
