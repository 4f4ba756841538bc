package dev.eddy.bench;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicLong;
import java.util.concurrent.atomic.AtomicReference;
import java.util.concurrent.locks.LockSupport;
import org.HdrHistogram.Histogram;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.PartitionInfo;
import org.apache.kafka.common.TopicPartition;

/**
 * The latency probe: produces records at a fixed rate into the input topic
 * of a running application, each with CreateTime = now, while reading the
 * application's output topic (read_committed, so exactly-once outputs count
 * when their transaction commits) and recording, for every output record,
 * the time it was received minus its timestamp. Both Eddy and Kafka Streams
 * give an output the timestamp of the input record that caused it (a count,
 * that of the latest input it includes), so this is the end-to-end latency
 * from the input's send to the output's visibility.
 *
 * <p>Outputs of inputs sent in the first {@code --warmup-s} seconds are not
 * recorded (a JVM is still compiling its hot paths; start the probe once the
 * application has its partitions: {@code Watcher --wait-for assigned}). After sending,
 * it reads until every expected output has come (stateless: one per ok
 * payment) or nothing has come for {@code --drain-s} seconds. Prints
 * {@code sent=N received=M p50_ms=.. p99_ms=.. max_ms=.. tail_ms=..}, where
 * tail_ms is how long after the last input the last output came: far more
 * than a commit interval means the application did not keep up with the
 * rate, and its latencies are mostly queueing.
 *
 * <pre>
 * java -cp ... dev.eddy.bench.Probe --bootstrap B --input T --output T \
 *   --kind stateless|wordcount [--rate 5000] [--seconds 30] [--warmup-s 10] [--drain-s 5]
 * </pre>
 */
public final class Probe {
    private Probe() {}

    public static void main(String[] args) throws InterruptedException {
        Flags flags = new Flags("Probe", args);
        String bootstrap = flags.get("bootstrap", "127.0.0.1:9092");
        String input = flags.required("input");
        String output = flags.required("output");
        String kind = flags.required("kind");
        long rate = flags.getLong("rate", 5000);
        long seconds = flags.getLong("seconds", 30);
        long warmupS = flags.getLong("warmup-s", 10);
        long drainS = flags.getLong("drain-s", 5);
        int wordsPerLine = flags.getInt("words-per-line", 4);
        long seed = flags.getLong("seed", 7);
        flags.done();

        // Set once sending starts: outputs of inputs sent before it are not recorded.
        AtomicLong measureFrom = new AtomicLong(Long.MAX_VALUE);
        Histogram latencies = new Histogram(3_600_000L, 3);
        AtomicBoolean sending = new AtomicBoolean(true);
        AtomicLong expected = new AtomicLong(Long.MAX_VALUE);
        AtomicLong received = new AtomicLong();
        AtomicLong lastOutputMs = new AtomicLong();
        AtomicReference<Exception> failure = new AtomicReference<>();

        Thread reader = new Thread(() -> {
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(Clients.committedReader(bootstrap))) {
                List<TopicPartition> parts = new ArrayList<>();
                for (PartitionInfo p : consumer.partitionsFor(output)) {
                    parts.add(new TopicPartition(output, p.partition()));
                }
                consumer.assign(parts);
                consumer.seekToBeginning(parts);
                long lastSeen = System.nanoTime();
                while (true) {
                    var batch = consumer.poll(Duration.ofMillis(50));
                    long now = System.currentTimeMillis();
                    for (ConsumerRecord<byte[], byte[]> r : batch) {
                        if (r.timestamp() >= measureFrom.get()) {
                            latencies.recordValue(Math.max(0, now - r.timestamp()));
                            received.incrementAndGet();
                        }
                    }
                    if (!batch.isEmpty()) {
                        lastSeen = System.nanoTime();
                        lastOutputMs.set(now);
                    }
                    if (!sending.get()) {
                        if (received.get() >= expected.get()) {
                            return;
                        }
                        if (System.nanoTime() - lastSeen > drainS * 1_000_000_000L) {
                            return;
                        }
                    }
                }
            } catch (Exception e) {
                failure.set(e);
            }
        }, "reader");
        reader.start();

        long sent = 0;
        long measuredOk = 0;
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(Clients.producer(bootstrap, 0, 64 * 1024))) {
            // Ids far from the preloaded ones; a different seed.
            Payments.Generator payments = new Payments.Generator(seed, 1_000_000_000_000L);
            Words.Generator lines = new Words.Generator(seed, wordsPerLine);
            producer.partitionsFor(input); // the metadata, before the clock starts
            long start = System.nanoTime();
            long measuredFrom = System.currentTimeMillis() + warmupS * 1000;
            measureFrom.set(measuredFrom);
            long total = rate * (warmupS + seconds);
            while (sent < total && failure.get() == null) {
                long due = Math.min(total, (System.nanoTime() - start) * rate / 1_000_000_000L);
                for (; sent < due; sent++) {
                    long now = System.currentTimeMillis();
                    ProducerRecord<String, String> record;
                    if (kind.equals("stateless")) {
                        String key = payments.key();
                        long okBefore = payments.ok;
                        record = new ProducerRecord<>(input, null, now, key, payments.value());
                        if (now >= measuredFrom && payments.ok > okBefore) {
                            measuredOk++;
                        }
                    } else {
                        record = new ProducerRecord<>(input, null, now, null, lines.next());
                    }
                    producer.send(record, (meta, e) -> {
                        if (e != null) {
                            failure.compareAndSet(null, e);
                        }
                    });
                }
                LockSupport.parkNanos(500_000);
            }
        }
        if (kind.equals("stateless")) {
            expected.set(measuredOk);
        }
        long sendingEndedMs = System.currentTimeMillis();
        sending.set(false);
        reader.join();
        if (failure.get() != null) {
            System.err.println("Probe: " + failure.get());
            System.exit(1);
        }
        if (kind.equals("stateless") && received.get() < measuredOk) {
            System.err.printf("Probe: only %d of %d outputs came within %d s of the last%n",
                    received.get(), measuredOk, drainS);
        }
        // Outputs still coming long after the last input: the application
        // fell behind the rate, and the latencies are mostly queueing.
        long tailMs = Math.max(0, lastOutputMs.get() - sendingEndedMs);
        System.out.printf("sent=%d received=%d p50_ms=%d p99_ms=%d max_ms=%d tail_ms=%d%n", sent, received.get(),
                latencies.getValueAtPercentile(50), latencies.getValueAtPercentile(99), latencies.getMaxValue(), tailMs);
    }
}
