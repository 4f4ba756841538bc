package dev.eddy.bench;

import java.io.IOException;
import java.io.PrintWriter;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * Summarizes an output topic for the correctness checks: reads it (only
 * committed records) up to its end offsets and prints
 * {@code records=N keys=K sum_last=S}, where S sums the last value per key
 * read as a big-endian 64-bit count (Kafka's LongSerializer, what both word
 * counts write). With {@code --counts FILE} it also writes the last count per
 * key, one {@code key count} line per key, sorted by key.
 *
 * <pre>
 * java -cp ... dev.eddy.bench.Summary --bootstrap B --topic T [--counts FILE]
 * </pre>
 */
public final class Summary {
    private Summary() {}

    public static void main(String[] args) throws IOException {
        Flags flags = new Flags("Summary", args);
        String bootstrap = flags.get("bootstrap", "127.0.0.1:9092");
        String topic = flags.required("topic");
        String counts = flags.get("counts", "");
        flags.done();

        long records = 0;
        Map<String, Long> last = new TreeMap<>();
        try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Clients.committedReader(bootstrap))) {
            List<TopicPartition> parts = new ArrayList<>();
            for (PartitionInfo p : consumer.partitionsFor(topic)) {
                parts.add(new TopicPartition(topic, p.partition()));
            }
            consumer.assign(parts);
            consumer.seekToBeginning(parts);
            // With read_committed these are the last stable offsets.
            Map<TopicPartition, Long> ends = consumer.endOffsets(parts);
            while (parts.stream().anyMatch(tp -> consumer.position(tp) < ends.get(tp))) {
                for (ConsumerRecord<byte[], byte[]> r : consumer.poll(Duration.ofMillis(200))) {
                    records++;
                    if (r.key() != null && r.value() != null && r.value().length == 8) {
                        last.put(new String(r.key(), StandardCharsets.UTF_8), ByteBuffer.wrap(r.value()).getLong());
                    }
                }
            }
        }
        long sum = last.values().stream().mapToLong(Long::longValue).sum();
        if (!counts.isEmpty()) {
            try (PrintWriter out = new PrintWriter(Files.newBufferedWriter(Path.of(counts)))) {
                last.forEach((k, v) -> out.println(k + " " + v));
            }
        }
        System.out.println("records=" + records + " keys=" + last.size() + " sum_last=" + sum);
    }
}
