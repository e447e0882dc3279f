// Prints the current leader of one partition: `KAFKA_LEADER=<node id>` on stdout, and the leader's
// address, replica list and ISR on stderr. Run by `scripts/kafka leader TOPIC P` with the
// broker's own jars on the class path (Java single-file source launch, no build step).
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartitionInfo;

public class Leader {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: Leader BOOTSTRAP TOPIC PARTITION");
            System.exit(2);
        }
        int partition = Integer.parseInt(args[2]);
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "15000");
        try (Admin admin = Admin.create(p)) {
            Map<String, TopicDescription> d;
            try {
                d = admin.describeTopics(List.of(args[1])).allTopicNames().get(20, TimeUnit.SECONDS);
            } catch (ExecutionException e) {
                System.err.println("cannot describe topic " + args[1] + ": " + e.getCause().getMessage());
                System.exit(1);
                return;
            } catch (TimeoutException e) {
                System.err.println("no answer describing topic " + args[1] + " within 20 s");
                System.exit(1);
                return;
            }
            TopicDescription t = d.get(args[1]);
            if (partition < 0 || partition >= t.partitions().size()) {
                System.err.println("topic " + args[1] + " has " + t.partitions().size() + " partition(s), not " + partition);
                System.exit(1);
            }
            TopicPartitionInfo info = t.partitions().get(partition);
            Node leader = info.leader();
            if (leader == null || leader.isEmpty()) {
                System.err.println(args[1] + "-" + partition + " has no leader now");
                System.exit(1);
            }
            System.err.println(args[1] + "-" + partition + ": leader node " + leader.id() + " (" + leader.host() + ":" + leader.port()
                + "), replicas " + info.replicas().stream().map(Node::id).toList()
                + ", isr " + info.isr().stream().map(Node::id).toList());
            System.out.println("KAFKA_LEADER=" + leader.id());
        }
    }
}
