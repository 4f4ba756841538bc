package dev.eddy.bench;

import java.nio.file.Files;
import java.time.Instant;
import java.util.List;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ExecutionException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.GroupState;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.errors.GroupIdNotFoundException;

/**
 * Waits until a consumer group has processed everything: its committed
 * offsets have reached the end offsets of every partition of the input
 * topics, of every other topic it has committed offsets for, and of its
 * repartition topics ({@code <group>-*-repartition}, as both Kafka Streams
 * and Eddy name them, even before the group has committed offsets on them).
 * Works for both systems, since each uses its application id as the group.
 * Prints {@code done} and exits 0; exits 1 after the timeout, 3 if the
 * process {@code --pid} (the application) is gone first.
 *
 * <pre>
 * java -cp ... dev.eddy.bench.Watcher --bootstrap B --group G --input T[,T...] \
 *   [--pid PID] [--interval-ms 100] [--timeout-s 3600] [--wait-for done|assigned]
 * </pre>
 *
 * With {@code --expect-records N} it also waits until the input topics hold
 * N records (the end offsets of a preloaded topic never move, so this only
 * guards against watching a topic that is still being loaded).
 *
 * <p>With {@code --wait-for assigned} it waits for something else: until the
 * group is stable and its members hold partitions (an application has
 * started and is ready for input), then prints {@code assigned}.
 * EDDY_BENCH_WATCH_VERBOSE set: the progress on stderr once a second.
 */
public final class Watcher {
    private Watcher() {}

    public static void main(String[] args) throws InterruptedException, ExecutionException {
        Flags flags = new Flags("Watcher", args);
        String bootstrap = flags.get("bootstrap", "127.0.0.1:9092");
        String group = flags.required("group");
        Set<String> inputs = new TreeSet<>(Set.of(flags.required("input").split(",")));
        long pid = flags.getLong("pid", 0);
        long intervalMs = flags.getLong("interval-ms", 100);
        long timeoutS = flags.getLong("timeout-s", 3600);
        long expectRecords = flags.getLong("expect-records", 0);
        String waitFor = flags.get("wait-for", "done");
        flags.done();
        if (!waitFor.equals("done") && !waitFor.equals("assigned")) {
            System.err.println("Watcher: --wait-for must be done or assigned");
            System.exit(2);
        }
        boolean verbose = System.getenv("EDDY_BENCH_WATCH_VERBOSE") != null;

        long deadline = System.nanoTime() + timeoutS * 1_000_000_000L;
        Map<String, Integer> partitionCounts = new HashMap<>();
        long lastReport = 0;
        try (Admin admin = Admin.create(Clients.admin(bootstrap))) {
            while (waitFor.equals("assigned")) {
                String state = assignment(admin, group);
                if (state == null) {
                    System.out.println("assigned");
                    return;
                }
                check(pid, deadline, group, state);
                Thread.sleep(intervalMs);
            }
            while (true) {
                Map<TopicPartition, OffsetAndMetadata> committed =
                        admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
                Set<String> topics = new TreeSet<>(inputs);
                committed.keySet().forEach(tp -> topics.add(tp.topic()));
                for (String name : admin.listTopics().names().get()) {
                    if (name.startsWith(group + "-") && name.endsWith("-repartition")) {
                        topics.add(name);
                    }
                }
                Set<String> unknown = new HashSet<>(topics);
                unknown.removeAll(partitionCounts.keySet());
                if (!unknown.isEmpty()) {
                    for (TopicDescription d : admin.describeTopics(unknown).allTopicNames().get().values()) {
                        partitionCounts.put(d.name(), d.partitions().size());
                    }
                }
                Map<TopicPartition, OffsetSpec> ask = new HashMap<>();
                for (String t : topics) {
                    for (int p = 0; p < partitionCounts.get(t); p++) {
                        ask.put(new TopicPartition(t, p), OffsetSpec.latest());
                    }
                }
                var ends = admin.listOffsets(ask).all().get();
                long behind = 0;
                long inputEnd = 0;
                for (var e : ends.entrySet()) {
                    OffsetAndMetadata c = committed.get(e.getKey());
                    long at = c == null ? 0 : c.offset();
                    behind += Math.max(0, e.getValue().offset() - at);
                    if (inputs.contains(e.getKey().topic())) {
                        inputEnd += e.getValue().offset();
                    }
                }
                if (behind == 0 && inputEnd >= expectRecords) {
                    System.out.println("done");
                    return;
                }
                String report = "behind by " + behind + " records over " + topics;
                if (verbose && System.nanoTime() - lastReport > 1_000_000_000L) {
                    System.err.println("[" + Instant.now() + "] Watcher " + group + ": " + report);
                    lastReport = System.nanoTime();
                }
                check(pid, deadline, group, report);
                Thread.sleep(intervalMs);
            }
        }
    }

    /** Ends the program if the application is gone or time is up; {@code report} says how far it got. */
    private static void check(long pid, long deadline, String group, String report) {
        if (pid != 0 && !alive(pid)) {
            System.err.println("Watcher " + group + ": process " + pid + " is gone; " + report);
            System.exit(3);
        }
        if (System.nanoTime() > deadline) {
            System.err.println("Watcher " + group + ": timed out; " + report);
            System.exit(1);
        }
    }

    /** Null once the group is stable with partitions assigned; else what it is now. */
    private static String assignment(Admin admin, String group) throws InterruptedException, ExecutionException {
        ConsumerGroupDescription d;
        try {
            d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
        } catch (ExecutionException e) {
            if (e.getCause() instanceof GroupIdNotFoundException) {
                return "no group yet";
            }
            throw e;
        }
        int assigned = d.members().stream().mapToInt(m -> m.assignment().topicPartitions().size()).sum();
        if (d.groupState() == GroupState.STABLE && assigned > 0) {
            return null;
        }
        return "group " + d.groupState() + ", " + d.members().size() + " member(s), " + assigned + " partition(s) assigned";
    }

    /** Whether process {@code pid} runs (and is not a zombie). */
    private static boolean alive(long pid) {
        try {
            String stat = Files.readString(Path.of("/proc/" + pid + "/stat"));
            return stat.charAt(stat.lastIndexOf(')') + 2) != 'Z';
        } catch (java.io.IOException e) {
            return false;
        }
    }
}
