package dev.eddy.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.NewTopic;

/**
 * Creates or deletes the benchmark's topics in one JVM (Kafka's TopicCommand
 * takes one JVM per topic).
 *
 * <pre>
 * java -cp ... dev.eddy.bench.Topics --bootstrap B --create T1,T2 --partitions 4
 * java -cp ... dev.eddy.bench.Topics --bootstrap B --delete-prefix PREFIX
 * </pre>
 *
 * Deleting removes every topic whose name starts with the prefix (inputs,
 * outputs and both systems' internal topics of one benchmark run).
 */
public final class Topics {
    private Topics() {}

    public static void main(String[] args) throws InterruptedException, ExecutionException {
        Flags flags = new Flags("Topics", args);
        String bootstrap = flags.get("bootstrap", "127.0.0.1:9092");
        String create = flags.get("create", "");
        int partitions = flags.getInt("partitions", 4);
        String deletePrefix = flags.get("delete-prefix", "");
        flags.done();
        try (Admin admin = Admin.create(Clients.admin(bootstrap))) {
            if (!create.isEmpty()) {
                List<NewTopic> topics = new ArrayList<>();
                for (String name : create.split(",")) {
                    topics.add(new NewTopic(name, partitions, (short) -1));
                }
                admin.createTopics(topics).all().get();
            }
            if (!deletePrefix.isEmpty()) {
                Set<String> names = admin.listTopics().names().get();
                List<String> doomed = names.stream().filter(n -> n.startsWith(deletePrefix)).toList();
                if (!doomed.isEmpty()) {
                    admin.deleteTopics(doomed).all().get();
                }
                System.err.println("Topics: deleted " + doomed.size() + " topic(s) starting with " + deletePrefix);
            }
        }
    }
}
