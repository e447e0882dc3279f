// Claims: the reasons share groups exist, measured side by side with a classic consumer group on one
// broker, with the real Java clients — KafkaConsumer (group.protocol=classic, manual commitSync after
// each poll) and KafkaShareConsumer (share.acknowledgement.mode=explicit, ACCEPT each record,
// commitSync after each poll). Every member is its own JVM, so a crash is a real SIGKILL.
//
//   java -cp "<kafka libs>/*" scripts/java/Claims.java BOOTSTRAP [--scenario all|throughput|hol|hol-wide|crash]
//        [--modes consumer,share,share-record-limit] [--session-timeout-ms 10000] [--prefix sharecheck-claims]
//        [--json FILE]
//
// Modes: consumer (a classic consumer group), share (a share group with the clients' defaults), and
// share-record-limit (Kafka 4.2+: share.acquire.mode=record_limit with max.poll.records=10, so a
// poll acquires at most 10 records and the rest stay available to the other members).
//
// Scenarios (each runs once with a consumer group and once with a share group, on a fresh topic):
//   throughput  2 partitions, 8 members, 4000 records produced once every member is in the group,
//               10 ms of processing each: records/s from the first record produced to the last
//               processed. A consumer group can use at most one member per partition.
//   hol         4 partitions, 4 members, 2000 records, 10 ms each, but 1 % (every 100th) take 100x
//               (1 s): time from the first produced to the last processed (head-of-line blocking).
//               Record i goes to partition i % 4, so every slow record lands in partition 3.
//   hol-wide    the same with 8 members: Kafka's share-group assignor (SimpleAssignor) gives a
//               partition to ceil(members / partitions) members, so only with more members than
//               partitions do two members share partition 3.
//   crash       4 partitions, 4 members, 100 records/s for 75 s, 10 ms each; at 15 s one member is
//               killed (SIGKILL, no leave): the longest time any partition's records went
//               unprocessed after the kill, and when every record produced was processed.
// In every scenario: records processed more than once, and records never processed.
// Defaults of both clients and of the broker are kept, except share.auto.offset.reset=earliest and
// auto.offset.reset=earliest, and the classic consumer's session.timeout.ms, which is set to
// --session-timeout-ms (default 10000): a share group's session timeout is the broker's
// group.share.session.timeout.ms (Kafka's default 45 s; scripts/kafka sets 10 s), a classic
// consumer's is its own session.timeout.ms (default 45 s), and a crash is only compared fairly
// when both wait as long. Give the broker's value here.
//
// Output: a line per run on stdout, then a table; --json writes the numbers. Exit 0 when every run
// completed (whatever the numbers), 1 when a run did not finish within its deadline, 2 when it could
// not run. Every blocking call has a timeout; topics and groups are deleted at the end.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.AcknowledgeType;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRebalanceListener;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.KafkaShareConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Claims {
    record Scenario(String name, int partitions, int members, int records, int ratePerS, long processingMs,
                    int slowEvery, long slowMs, long killAtMs) {}

    static final Scenario THROUGHPUT = new Scenario("throughput", 2, 8, 4000, 0, 10, 0, 0, -1);
    static final Scenario HOL = new Scenario("hol", 4, 4, 2000, 0, 10, 100, 1000, -1);
    static final Scenario HOL_WIDE = new Scenario("hol-wide", 4, 8, 2000, 0, 10, 100, 1000, -1);
    static final Scenario CRASH = new Scenario("crash", 4, 4, 7500, 100, 10, 0, 0, 15_000);

    public static void main(String[] args) throws Exception {
        if (args.length >= 1 && args[0].equals("--member")) {
            member(args);
            return;
        }
        if (args.length < 1 || args[0].startsWith("--")) {
            System.err.println("usage: Claims.java BOOTSTRAP [--scenario all|throughput|hol|hol-wide|crash] [--modes M,...] [--session-timeout-ms MS] [--prefix P] [--json FILE]");
            System.exit(2);
        }
        String bootstrap = args[0];
        String which = "all";
        String prefix = "sharecheck-claims";
        String json = null;
        List<String> modes = List.of("consumer", "share", "share-record-limit");
        String sessionTimeoutMs = "10000";
        for (int i = 1; i < args.length; i++) {
            switch (args[i]) {
                case "--modes" -> modes = List.of(args[++i].split(","));
                case "--session-timeout-ms" -> sessionTimeoutMs = args[++i];
                case "--scenario" -> which = args[++i];
                case "--prefix" -> prefix = args[++i];
                case "--json" -> json = args[++i];
                default -> { System.err.println("unknown argument " + args[i]); System.exit(2); }
            }
        }
        List<Scenario> scenarios = switch (which) {
            case "all" -> List.of(THROUGHPUT, HOL, HOL_WIDE, CRASH);
            case "hol-wide" -> List.of(HOL_WIDE);
            case "throughput" -> List.of(THROUGHPUT);
            case "hol" -> List.of(HOL);
            case "crash" -> List.of(CRASH);
            default -> { System.err.println("unknown scenario " + which); System.exit(2); yield List.of(); }
        };
        String stamp = Long.toString(System.currentTimeMillis() / 1000);
        Map<String, Map<String, Object>> results = new LinkedHashMap<>();
        boolean allFinished = true;
        try (Admin admin = admin(bootstrap)) {
            for (Scenario s : scenarios) {
                for (String mode : modes) {
                    if (!List.of("consumer", "share", "share-record-limit").contains(mode)) {
                        System.err.println("unknown mode " + mode);
                        System.exit(2);
                    }
                    String topic = prefix + "-" + stamp + "-" + s.name() + "-" + mode;
                    Map<String, Object> r;
                    try {
                        r = run(admin, bootstrap, topic, s, mode, sessionTimeoutMs);
                    } finally {
                        cleanup(admin, topic, mode);
                    }
                    results.put(s.name() + "/" + mode, r);
                    allFinished &= Boolean.TRUE.equals(r.get("finished"));
                    System.out.println("claims " + s.name() + " " + mode + ": " + r);
                }
            }
        }
        System.out.println();
        System.out.println("| scenario | measure | " + String.join(" | ", modes) + " |");
        System.out.println("|---|---|" + "---|".repeat(modes.size()));
        for (Scenario s : scenarios) {
            for (String k : List.of("records_per_s", "completion_s", "longest_stall_after_kill_s", "all_processed_after_kill_s",
                    "processed_twice", "never_processed", "members_that_processed")) {
                StringBuilder row = new StringBuilder("| " + s.name() + " | " + k + " |");
                boolean any = false;
                for (String mode : modes) {
                    Object v = results.getOrDefault(s.name() + "/" + mode, Map.of()).get(k);
                    any |= v != null;
                    row.append(' ').append(v == null ? "" : v).append(" |");
                }
                if (any) System.out.println(row);
            }
        }
        if (json != null) {
            StringBuilder b = new StringBuilder("{\n");
            int n = 0;
            for (var e : results.entrySet()) {
                b.append("  \"").append(e.getKey()).append("\": {");
                int m = 0;
                for (var f : e.getValue().entrySet()) {
                    Object v = f.getValue();
                    b.append(m++ == 0 ? "" : ", ").append('"').append(f.getKey()).append("\": ")
                        .append(v instanceof String ? "\"" + v + "\"" : String.valueOf(v));
                }
                b.append(n++ < results.size() - 1 ? "},\n" : "}\n");
            }
            Files.writeString(Path.of(json), b.append("}\n").toString());
        }
        System.exit(allFinished ? 0 : 1);
    }

    /** One scenario with one kind of group. */
    static Map<String, Object> run(Admin admin, String bootstrap, String topic, Scenario s, String mode,
                                   String sessionTimeoutMs) throws Exception {
        admin.createTopics(List.of(new NewTopic(topic, s.partitions(), (short) 1))).all().get(30, TimeUnit.SECONDS);
        String group = topic + "-g";
        if (mode.startsWith("share")) {
            ConfigResource res = new ConfigResource(ConfigResource.Type.GROUP, group);
            admin.incrementalAlterConfigs(Map.of(res, List.of(new AlterConfigOp(
                new ConfigEntry("share.auto.offset.reset", "earliest"), AlterConfigOp.OpType.SET))))
                .all().get(30, TimeUnit.SECONDS);
        }
        // Members: one JVM each, reporting on stdout.
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        // The members run this same file (from the repository's root, or -Dclaims.source=PATH).
        String source = System.getProperty("claims.source", "scripts/java/Claims.java");
        Map<Long, Integer> processed = new ConcurrentHashMap<>();
        Map<Integer, AtomicLong> lastByPartition = new ConcurrentHashMap<>();
        List<long[]> events = Collections.synchronizedList(new ArrayList<>()); // (t, partition, member)
        Set<Integer> ready = ConcurrentHashMap.newKeySet();
        Set<Integer> working = ConcurrentHashMap.newKeySet();
        List<Process> procs = new ArrayList<>();
        List<Thread> readers = new ArrayList<>();
        for (int m = 0; m < s.members(); m++) {
            ProcessBuilder pb = new ProcessBuilder(java, "-Xmx256m", "-XX:TieredStopAtLevel=1", "-cp",
                System.getProperty("java.class.path"), source, "--member", mode, bootstrap, topic, group,
                Long.toString(s.processingMs()), Integer.toString(s.slowEvery()), Long.toString(s.slowMs()),
                sessionTimeoutMs);
            pb.redirectError(ProcessBuilder.Redirect.DISCARD);
            Process p = pb.start();
            procs.add(p);
            final int no = m;
            Thread t = new Thread(() -> {
                try (BufferedReader r = new BufferedReader(new InputStreamReader(p.getInputStream(), StandardCharsets.UTF_8))) {
                    String line;
                    while ((line = r.readLine()) != null) {
                        if (line.equals("READY")) { ready.add(no); continue; }
                        String[] f = line.split(" ");
                        if (f.length == 3 && f[0].equals("P")) {
                            long id = Long.parseLong(f[2]);
                            int part = Integer.parseInt(f[1]);
                            long now = System.currentTimeMillis();
                            processed.merge(id, 1, Integer::sum);
                            lastByPartition.computeIfAbsent(part, k -> new AtomicLong()).set(now);
                            events.add(new long[] {now, part, no});
                            working.add(no);
                        }
                    }
                } catch (Exception e) { /* the member died */ }
            });
            t.setDaemon(true);
            t.start();
            readers.add(t);
        }
        Map<String, Object> r = new LinkedHashMap<>();
        try {
            long joinDeadline = System.currentTimeMillis() + 90_000;
            while (ready.size() < s.members() && System.currentTimeMillis() < joinDeadline) Thread.sleep(100);
            if (ready.size() < s.members()) {
                r.put("finished", false);
                r.put("error", "only " + ready.size() + " of " + s.members() + " members joined within 90 s");
                return r;
            }
            // Let the group settle (the classic group's initial rebalance delay, the share group's
            // assignment reaching every member).
            Thread.sleep(5_000);
            long start = System.currentTimeMillis();
            long killAt = -1;
            try (KafkaProducer<String, String> producer = producer(bootstrap)) {
                for (int i = 0; i < s.records(); i++) {
                    if (s.ratePerS() > 0) {
                        long due = start + (long) i * 1000 / s.ratePerS();
                        long wait = due - System.currentTimeMillis();
                        if (wait > 0) Thread.sleep(wait);
                    }
                    if (s.killAtMs() >= 0 && killAt < 0 && System.currentTimeMillis() - start >= s.killAtMs()) {
                        procs.get(0).destroyForcibly();
                        killAt = System.currentTimeMillis();
                    }
                    producer.send(new ProducerRecord<>(topic, i % s.partitions(), Integer.toString(i), Integer.toString(i)));
                }
                producer.flush();
            }
            long produced = System.currentTimeMillis();
            long deadline = produced + 180_000;
            while (System.currentTimeMillis() < deadline) {
                long done = 0;
                for (int i = 0; i < s.records(); i++) if (processed.containsKey((long) i)) done++;
                if (done == s.records()) break;
                Thread.sleep(50);
            }
            long end = System.currentTimeMillis();
            long never = 0, twice = 0;
            for (int i = 0; i < s.records(); i++) {
                Integer n = processed.get((long) i);
                if (n == null) never++;
                else if (n > 1) twice++;
            }
            long lastEvent;
            synchronized (events) {
                lastEvent = events.stream().mapToLong(e -> e[0]).max().orElse(end);
            }
            r.put("finished", never == 0);
            double secs = (lastEvent - start) / 1000.0;
            if (s.killAtMs() < 0) {
                r.put("records_per_s", Math.round(s.records() / Math.max(secs, 0.001)));
                r.put("completion_s", String.format("%.1f", secs));
            } else {
                // The longest time a partition went without a processed record after the kill.
                long stall = 0;
                synchronized (events) {
                    for (int p = 0; p < s.partitions(); p++) {
                        long prev = killAt;
                        for (long[] e : events) {
                            if (e[1] != p || e[0] < killAt) continue;
                            stall = Math.max(stall, e[0] - prev);
                            prev = e[0];
                        }
                    }
                }
                r.put("longest_stall_after_kill_s", String.format("%.1f", stall / 1000.0));
                r.put("all_processed_after_kill_s", String.format("%.1f", (lastEvent - killAt) / 1000.0));
                r.put("completion_s", String.format("%.1f", secs));
            }
            r.put("processed_twice", twice);
            r.put("never_processed", never);
            r.put("members_that_processed", working.size());
            return r;
        } finally {
            for (Process p : procs) {
                p.getOutputStream().close(); // members close cleanly when their stdin ends
            }
            for (Process p : procs) {
                if (!p.waitFor(30, TimeUnit.SECONDS)) p.destroyForcibly();
            }
        }
    }

    /** A member: polls, processes, commits or acknowledges; reports READY and each record. */
    static void member(String[] a) throws Exception {
        String mode = a[1], bootstrap = a[2], topic = a[3], group = a[4];
        long processingMs = Long.parseLong(a[5]);
        int slowEvery = Integer.parseInt(a[6]);
        long slowMs = Long.parseLong(a[7]);
        String sessionTimeoutMs = a.length > 8 ? a[8] : "45000";
        // The coordinator closes our stdin to end us.
        Thread stdin = new Thread(() -> {
            try { while (System.in.read() >= 0) { } } catch (Exception e) { }
        });
        stdin.setDaemon(true);
        stdin.start();
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.GROUP_ID_CONFIG, group);
        p.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        Duration poll = Duration.ofMillis(200);
        if (mode.equals("consumer")) {
            p.put(ConsumerConfig.GROUP_PROTOCOL_CONFIG, "classic");
            p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
            p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
            p.put(ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, Integer.parseInt(sessionTimeoutMs));
            try (KafkaConsumer<String, String> c = new KafkaConsumer<>(p)) {
                c.subscribe(List.of(topic), new ConsumerRebalanceListener() {
                    public void onPartitionsRevoked(Collection<TopicPartition> parts) { }
                    public void onPartitionsAssigned(Collection<TopicPartition> parts) {
                        System.out.println("READY");
                        System.out.flush();
                    }
                });
                while (stdin.isAlive()) {
                    ConsumerRecords<String, String> recs = c.poll(poll);
                    for (ConsumerRecord<String, String> rec : recs) {
                        work(rec, processingMs, slowEvery, slowMs);
                    }
                    if (!recs.isEmpty()) c.commitSync(Duration.ofSeconds(20));
                }
            }
        } else {
            p.put(ConsumerConfig.SHARE_ACKNOWLEDGEMENT_MODE_CONFIG, "explicit");
            if (mode.equals("share-record-limit")) {
                p.put("share.acquire.mode", "record_limit");
                p.put(ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 10);
            }
            try (KafkaShareConsumer<String, String> c = new KafkaShareConsumer<>(p)) {
                c.subscribe(List.of(topic));
                boolean said = false;
                while (stdin.isAlive()) {
                    ConsumerRecords<String, String> recs = c.poll(poll);
                    if (!said) { System.out.println("READY"); System.out.flush(); said = true; }
                    for (ConsumerRecord<String, String> rec : recs) {
                        work(rec, processingMs, slowEvery, slowMs);
                        c.acknowledge(rec, AcknowledgeType.ACCEPT);
                    }
                    if (!recs.isEmpty()) c.commitSync(Duration.ofSeconds(20));
                }
            }
        }
    }

    static void work(ConsumerRecord<String, String> rec, long processingMs, int slowEvery, long slowMs) throws InterruptedException {
        long id = Long.parseLong(rec.value());
        Thread.sleep(slowEvery > 0 && id % slowEvery == slowEvery - 1 ? slowMs : processingMs);
        System.out.println("P " + rec.partition() + " " + id);
        System.out.flush();
    }

    static Admin admin(String bootstrap) {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 20_000);
        return Admin.create(p);
    }

    static KafkaProducer<String, String> producer(String bootstrap) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20_000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 15_000);
        return new KafkaProducer<>(p);
    }

    /** Deletes the scenario's group and topic; a crashed member's group may take its session timeout to empty. */
    static void cleanup(Admin admin, String topic, String mode) {
        String group = topic + "-g";
        long deadline = System.currentTimeMillis() + 90_000;
        while (System.currentTimeMillis() < deadline) {
            try {
                if (mode.startsWith("share")) admin.deleteShareGroups(List.of(group)).all().get(20, TimeUnit.SECONDS);
                else admin.deleteConsumerGroups(List.of(group)).all().get(20, TimeUnit.SECONDS);
                break;
            } catch (Exception e) {
                String msg = String.valueOf(e.getMessage());
                if (msg.contains("GroupIdNotFound") || msg.contains("does not exist")) break;
                try { Thread.sleep(2_000); } catch (InterruptedException ie) { break; }
            }
        }
        try {
            admin.deleteTopics(List.of(topic)).all().get(30, TimeUnit.SECONDS);
        } catch (Exception e) {
            System.err.println("could not delete " + topic + ": " + e.getMessage());
        }
    }
}
