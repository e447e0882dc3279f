// Grants (or lists) the ACLs a sharecheck run needs on a cluster with an authorizer: the least privilege
// of docs/real-kafka.md, "Least privilege". Used by .ci/run's ACL arm.
//
//   java -cp "$KAFKA_LIBS/*" scripts/java/Acls.java BOOTSTRAP ADMIN_PROPERTIES PRINCIPAL PREFIX [--except TYPE:OP]...
//
// ADMIN_PROPERTIES: client properties of a principal allowed to create ACLs (a super user). PRINCIPAL: who
// runs sharecheck (User:sharecheck). PREFIX: the run's --prefix; topic and group rights are PREFIXED on it.
// --except TOPIC:CREATE (say) leaves one out, to check that sharecheck names what is missing. Every ACL of
// PRINCIPAL is removed first, so each call states the whole set. Exit 0, or 1 with the reason.

import java.io.Reader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AccessControlEntryFilter;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclBindingFilter;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourcePatternFilter;
import org.apache.kafka.common.resource.ResourceType;

public class Acls {
    /** The least privilege of a run: resource type, operation. Topics and groups are PREFIXED on the prefix. */
    static final String[][] NEEDED = {
        // Describe (topics, groups) and DescribeConfigs (groups) are implied by the rights below.
        {"TOPIC", "CREATE"}, {"TOPIC", "DELETE"}, {"TOPIC", "READ"}, {"TOPIC", "WRITE"}, {"TOPIC", "ALTER"},
        {"GROUP", "READ"}, {"GROUP", "DELETE"}, {"GROUP", "ALTER_CONFIGS"},
        {"CLUSTER", "DESCRIBE_CONFIGS"},
    };

    public static void main(String[] args) throws Exception {
        if (args.length < 4) {
            System.err.println("usage: Acls.java BOOTSTRAP ADMIN_PROPERTIES PRINCIPAL PREFIX [--except TYPE:OP]...");
            System.exit(64);
        }
        Set<String> except = new TreeSet<>();
        for (int i = 4; i < args.length; i++) {
            if (!args[i].equals("--except") || i + 1 >= args.length) {
                System.err.println("Acls: unknown argument " + args[i]);
                System.exit(64);
            }
            except.add(args[++i].toUpperCase());
        }
        Properties props = new Properties();
        try (Reader r = Files.newBufferedReader(Path.of(args[1]))) {
            props.load(r);
        }
        props.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        props.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "30000");
        String principal = args[2], prefix = args[3];
        try (Admin admin = Admin.create(props)) {
            AclBindingFilter mine = new AclBindingFilter(ResourcePatternFilter.ANY,
                new AccessControlEntryFilter(principal, null, AclOperation.ANY, AclPermissionType.ANY));
            admin.deleteAcls(List.of(mine)).all().get(30, TimeUnit.SECONDS);
            List<AclBinding> grant = new ArrayList<>();
            for (String[] n : NEEDED) {
                if (except.contains(n[0] + ":" + n[1])) {
                    System.out.println("left out: " + n[0] + " " + n[1]);
                    continue;
                }
                ResourceType type = ResourceType.valueOf(n[0]);
                ResourcePattern pattern = type == ResourceType.CLUSTER
                    ? new ResourcePattern(type, "kafka-cluster", PatternType.LITERAL)
                    : new ResourcePattern(type, prefix, PatternType.PREFIXED);
                grant.add(new AclBinding(pattern,
                    new AccessControlEntry(principal, "*", AclOperation.valueOf(n[1]), AclPermissionType.ALLOW)));
            }
            admin.createAcls(grant).all().get(30, TimeUnit.SECONDS);
            // The authorizer applies ACLs from the metadata log: wait until they read back.
            long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(30);
            AclBindingFilter back = new AclBindingFilter(ResourcePatternFilter.ANY,
                new AccessControlEntryFilter(principal, null, AclOperation.ANY, AclPermissionType.ANY));
            while (admin.describeAcls(back).values().get(30, TimeUnit.SECONDS).size() != grant.size()) {
                if (System.nanoTime() > deadline) throw new IllegalStateException("the ACLs do not read back within 30 s");
                Thread.sleep(100);
            }
            for (AclBinding b : grant) {
                System.out.println("granted: " + principal + " " + b.entry().operation() + " on "
                    + b.pattern().resourceType() + " " + b.pattern().patternType() + " " + b.pattern().name());
            }
        } catch (Exception e) {
            System.err.println("Acls: " + e);
            System.exit(1);
        }
    }
}
