// Moves the leadership of every partition of one topic to the next replica, again and again, for a
// while: each round reorders each partition's replicas (AlterPartitionReassignments with the same
// replica set, rotated) and elects the preferred leader (ElectLeaders). Pointed at
// `__share_group_state` on a cluster of several nodes it moves every share coordinator shard while a
// workload runs, so that WriteShareGroupState meets NOT_COORDINATOR and is retried. Run by
// `scripts/kafka churn TOPIC --seconds S` with the broker's own jars on the class path. Prints
// `CHURN_MOVES=<leader moves seen>` at the end (stderr: one line per round).
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Properties;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewPartitionReassignment;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.ElectionType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.TopicPartitionInfo;

public class Churn {
    public static void main(String[] args) throws Exception {
        if (args.length != 4) {
            System.err.println("usage: Churn BOOTSTRAP TOPIC SECONDS INTERVAL_MS");
            System.exit(2);
        }
        String topic = args[1];
        long end = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[2]));
        long interval = Long.parseLong(args[3]);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        int moves = 0;
        int rounds = 0;
        try (Admin admin = Admin.create(p)) {
            while (System.nanoTime() < end) {
                Map<Integer, Integer> before = leaders(admin, topic);
                Map<TopicPartition, Optional<NewPartitionReassignment>> plan = new HashMap<>();
                TopicDescription t = admin.describeTopics(List.of(topic)).allTopicNames().get(20, TimeUnit.SECONDS).get(topic);
                for (TopicPartitionInfo info : t.partitions()) {
                    List<Integer> replicas = info.replicas().stream().map(Node::id).collect(Collectors.toList());
                    if (replicas.size() < 2) {
                        System.err.println(topic + "-" + info.partition() + " has one replica: nothing to move to");
                        System.exit(1);
                    }
                    replicas.add(replicas.remove(0));
                    plan.put(new TopicPartition(topic, info.partition()), Optional.of(new NewPartitionReassignment(replicas)));
                }
                admin.alterPartitionReassignments(plan).all().get(20, TimeUnit.SECONDS);
                Set<TopicPartition> all = plan.keySet();
                try {
                    admin.electLeaders(ElectionType.PREFERRED, all).all().get(20, TimeUnit.SECONDS);
                } catch (ExecutionException e) {
                    // ELECTION_NOT_NEEDED for partitions already led by their preferred replica.
                    System.err.println("elect: " + e.getCause().getMessage());
                }
                Map<Integer, Integer> after = leaders(admin, topic);
                int moved = 0;
                for (Map.Entry<Integer, Integer> e : after.entrySet()) {
                    if (!e.getValue().equals(before.get(e.getKey()))) {
                        moved++;
                    }
                }
                moves += moved;
                rounds++;
                System.err.println("round " + rounds + ": " + moved + " of " + after.size() + " leaders moved");
                Thread.sleep(interval);
            }
        }
        System.out.println("CHURN_MOVES=" + moves);
    }

    static Map<Integer, Integer> leaders(Admin admin, String topic) throws Exception {
        TopicDescription t = admin.describeTopics(List.of(topic)).allTopicNames().get(20, TimeUnit.SECONDS).get(topic);
        Map<Integer, Integer> out = new HashMap<>();
        for (TopicPartitionInfo info : t.partitions()) {
            out.put(info.partition(), info.leader() == null ? -1 : info.leader().id());
        }
        return out;
    }
}
