// Readiness check and warm-up for a freshly started Kafka broker (used by scripts/kafka start).
//
//   java -cp "<broker libs>/*" scripts/java/Warmup.java BOOTSTRAP [--timeout-ms MS] [--brokers N]
//
// 1. Admin.describeFeatures: require the finalized feature share.version >= 1 (KIP-932 share groups on);
//    prints the level. With --brokers N also waits until describeCluster lists N brokers.
// 2. One full share round trip: create topic (1 partition, RF 1 or N), set the group config
//    share.auto.offset.reset=earliest (IncrementalAlterConfigs on ConfigResource.Type.GROUP), produce one
//    record, poll it with a KafkaShareConsumer in explicit acknowledgement mode, ACCEPT it, commitSync.
//    This also creates __consumer_offsets and __share_group_state, so later tests skip first-use latency.
//
// Exit 0 on success; otherwise 1 with a one-line reason on stderr ("warmup: FAILED: ...").
// Uses only kafka-clients (present in the broker's libs folder); works with the 4.1+ client APIs.

import java.time.Duration;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.FeatureMetadata;
import org.apache.kafka.clients.admin.FinalizedVersionRange;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicIdPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Warmup {
    static final String TOPIC = "sharecheck-warmup";
    static final String GROUP = "sharecheck-warmup";

    static long deadline;
    /** A broker formatted with share.version=0: ready once it answers describeFeatures, with no round trip. */
    static boolean shareDisabled = false;

    /** What the current wait is for; named in the timeout message. */
    static String waitingFor = "start";

    /** Client security properties (`--command-config`), added to every client's. */
    static final Properties security = new Properties();

    public static void main(String[] args) {
        if (args.length < 1 || args[0].startsWith("-")) {
            fail("usage: Warmup BOOTSTRAP [--timeout-ms MS] [--brokers N] [--share-disabled] [--command-config FILE]");
        }
        String bootstrap = args[0];
        long timeoutMs = 90_000;
        int brokers = 1;
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--timeout-ms" -> timeoutMs = Long.parseLong(value(args, ++i));
                case "--brokers" -> brokers = Integer.parseInt(value(args, ++i));
                case "--share-disabled" -> shareDisabled = true;
                case "--command-config" -> {
                    String file = value(args, ++i);
                    try (java.io.Reader r = java.nio.file.Files.newBufferedReader(java.nio.file.Path.of(file))) {
                        security.load(r);
                    } catch (java.io.IOException e) {
                        fail("cannot read --command-config " + file + ": " + e);
                    }
                }
                default -> fail("unknown argument " + args[i]);
            }
        }
        deadline = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(timeoutMs);
        try {
            run(bootstrap, brokers);
        } catch (Exception e) {
            fail(describe(e));
        }
        log("OK");
        System.exit(0);
    }

    static void run(String bootstrap, int brokers) throws Exception {
        Properties ap = new Properties();
        ap.putAll(security);
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        ap.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        ap.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, 200);
        Admin admin = Admin.create(ap);
        try {
            // 1. share.version finalized (retry: the broker may not have published features yet)
            short level = -1;
            waitingFor = "the finalized feature share.version >= 1 (describeFeatures)";
            while (true) {
                try {
                    FeatureMetadata fm = admin.describeFeatures().featureMetadata().get(step(), TimeUnit.MILLISECONDS);
                    FinalizedVersionRange r = fm.finalizedFeatures().get("share.version");
                    level = r == null ? 0 : r.maxVersionLevel();
                    if (level >= 1) break;
                    if (shareDisabled) break;
                    waitingFor = "share.version >= 1, but the broker finalizes " + (level == 0 ? "no share.version"
                            : "share.version=" + level) + " (finalized: " + fm.finalizedFeatures().keySet() + ")";
                    checkDeadline(waitingFor);
                } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                    waitingFor = "describeFeatures to succeed (last error: " + describe(e) + ")";
                    checkDeadline(waitingFor);
                }
                Thread.sleep(250);
            }
            log("share.version=" + level);
            System.out.println("share.version=" + level);
            if (shareDisabled) {
                if (level != 0) fail("share.version=" + level + ", but --share-disabled expects share groups off");
                return;
            }

            if (brokers > 1) {
                waitingFor = brokers + " brokers in describeCluster";
                while (true) {
                    try {
                        int n = admin.describeCluster().nodes().get(step(), TimeUnit.MILLISECONDS).size();
                        if (n >= brokers) { log("brokers=" + n); break; }
                        waitingFor = "describeCluster to list " + brokers + " brokers (it lists " + n + ")";
                        checkDeadline(waitingFor);
                    } catch (ExecutionException | java.util.concurrent.TimeoutException e) {
                        waitingFor = "describeCluster to succeed (last error: " + describe(e) + ")";
                        checkDeadline(waitingFor);
                    }
                    Thread.sleep(250);
                }
            }

            // 2. topic + group config
            waitingFor = "creating topic " + TOPIC;
            try {
                admin.createTopics(List.of(new NewTopic(TOPIC, 1, (short) Math.min(brokers, 3))))
                        .all().get(step(), TimeUnit.MILLISECONDS);
            } catch (ExecutionException e) {
                if (!(e.getCause() instanceof TopicExistsException)) throw e;
            }
            waitingFor = "setting share.auto.offset.reset=earliest on group " + GROUP;
            ConfigResource group = new ConfigResource(ConfigResource.Type.GROUP, GROUP);
            admin.incrementalAlterConfigs(Map.of(group, List.of(new AlterConfigOp(
                    new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET))))
                    .all().get(step(), TimeUnit.MILLISECONDS);
            log("topic and group config ready");
        } finally {
            admin.close(Duration.ofSeconds(2)); // close() alone waits for pending calls
        }

        // 3. produce one record carrying a nonce
        waitingFor = "producing to " + TOPIC;
        String nonce = UUID.randomUUID().toString();
        Properties pp = new Properties();
        pp.putAll(security);
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20_000);
        pp.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        pp.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        pp.put(ProducerConfig.LINGER_MS_CONFIG, 0);
        KafkaProducer<String, String> producer =
                new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer());
        try {
            producer.send(new ProducerRecord<>(TOPIC, "warmup", nonce)).get(step(), TimeUnit.MILLISECONDS);
        } finally {
            producer.close(Duration.ofSeconds(2));
        }
        log("produced 1 record");

        // 4. share round trip
        Properties cp = new Properties();
        cp.putAll(security);
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, GROUP);
        cp.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
        cp.put(ConsumerConfig.CLIENT_ID_CONFIG, "sharecheck-warmup");
        KafkaShareConsumer<String, String> consumer =
                new KafkaShareConsumer<>(cp, new StringDeserializer(), new StringDeserializer());
        try {
            waitingFor = "the share consumer to receive the produced record";
            consumer.subscribe(List.of(TOPIC));
            boolean got = false;
            int polls = 0;
            while (!got) {
                checkDeadline("the produced record was not delivered to the share consumer after " + polls + " polls");
                var records = consumer.poll(Duration.ofMillis(Math.min(1000, remainingMs())));
                polls++;
                for (ConsumerRecord<String, String> r : records) {
                    // Earlier warm-ups on a reused broker may have left records; accept them all.
                    consumer.acknowledge(r, AcknowledgeType.ACCEPT);
                    if (nonce.equals(r.value())) got = true;
                }
                if (!records.isEmpty()) {
                    Map<TopicIdPartition, Optional<KafkaException>> res =
                            consumer.commitSync(Duration.ofMillis(Math.max(1, remainingMs())));
                    for (var e : res.entrySet()) {
                        if (e.getValue().isPresent()) {
                            throw new IllegalStateException("commitSync failed for " + e.getKey() + ": "
                                    + describe(e.getValue().get()));
                        }
                    }
                }
            }
            log("share round trip OK after " + polls + " polls");
        } finally {
            consumer.close(Duration.ofSeconds(10));
        }
    }

    static long remainingMs() {
        return Math.max(0, TimeUnit.NANOSECONDS.toMillis(deadline - System.nanoTime()));
    }

    /** Timeout for one blocking step: what is left, at most 20 s, at least 1 ms. */
    static long step() {
        checkDeadline(waitingFor);
        return Math.max(1, Math.min(20_000, remainingMs()));
    }

    static void checkDeadline(String what) {
        if (remainingMs() <= 0) throw new IllegalStateException("timed out: " + what);
    }

    static String value(String[] args, int i) {
        if (i >= args.length) fail("missing value for " + args[i - 1]);
        return args[i];
    }

    static String describe(Throwable e) {
        Throwable c = e;
        while ((c instanceof ExecutionException || c instanceof KafkaException && c.getCause() != null)
                && c.getCause() != null && c.getCause() != c) {
            c = c.getCause();
        }
        String msg = c.getMessage();
        return c.getClass().getSimpleName() + (msg == null ? "" : ": " + msg.replace('\n', ' '));
    }

    static void log(String s) {
        System.err.println("warmup: " + s);
    }

    static void fail(String reason) {
        System.err.println("warmup: FAILED: " + reason);
        System.exit(1);
    }
}
