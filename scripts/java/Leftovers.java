// Leftovers: what a sharecheck run left on a cluster, seen by Kafka's own Admin client (kafka-clients),
// not by sharecheck: the topics and the share groups whose names start with PREFIX.
//
//   java -cp "<broker libs>/*" scripts/java/Leftovers.java BOOTSTRAP PREFIX
//
// Prints one line per leftover and a count. Exit 0 when nothing with the prefix is left, 1 when something
// is, 3 when the cluster cannot be asked (within 30 s).

import java.util.List;
import java.util.Properties;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.ListGroupsOptions;

public class Leftovers {
    public static void main(String[] args) {
        if (args.length != 2 && args.length != 3) {
            System.err.println("usage: Leftovers.java BOOTSTRAP PREFIX [CLIENT_PROPERTIES]");
            System.exit(64);
        }
        String prefix = args[1];
        Properties props = new Properties();
        if (args.length == 3) {
            try (java.io.Reader r = java.nio.file.Files.newBufferedReader(java.nio.file.Path.of(args[2]))) {
                props.load(r);
            } catch (java.io.IOException e) {
                System.err.println("Leftovers: cannot read " + args[2] + ": " + e);
                System.exit(66);
            }
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        props.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "10000");
        try (Admin admin = Admin.create(props)) {
            TreeSet<String> topics = new TreeSet<>();
            for (String t : admin.listTopics().names().get(30, TimeUnit.SECONDS)) {
                if (t.startsWith(prefix)) topics.add(t);
            }
            TreeSet<String> groups = new TreeSet<>();
            for (GroupListing g : admin.listGroups(ListGroupsOptions.forShareGroups()).all().get(30, TimeUnit.SECONDS)) {
                if (g.groupId().startsWith(prefix)) groups.add(g.groupId());
            }
            for (String t : topics) System.out.println("topic " + t);
            for (String g : groups) System.out.println("share group " + g);
            System.out.println("leftovers with prefix " + prefix + ": " + topics.size() + " topic(s), "
                + groups.size() + " share group(s)");
            System.exit(topics.isEmpty() && groups.isEmpty() ? 0 : 1);
        } catch (Exception e) {
            System.err.println("Leftovers: cannot list " + args[0] + ": " + e);
            System.exit(3);
        }
    }
}
