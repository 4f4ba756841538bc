package dev.eddy.bench;

import java.time.Duration;
import java.time.Instant;
import java.util.Arrays;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * The Kafka Streams side of the benchmark: one of two topologies, run until
 * the process gets SIGTERM (scripts/bench-kafka.sh stops it once the
 * progress watcher says the input is done).
 *
 * <ul>
 *   <li>{@code stateless}: filter (status ok) and mapValues (to US dollars)
 *       over JSON payments, see {@link Payments};
 *   <li>{@code wordcount}: flatMapValues (split into lowercase words),
 *       groupBy(word) (through a repartition topic), count() in a RocksDB
 *       store, toStream().to(output).
 * </ul>
 *
 * <pre>
 * java -cp ... dev.eddy.bench.StreamsApp --bootstrap 127.0.0.1:9092 \
 *   --topology stateless|wordcount --guarantee at_least_once|exactly_once_v2 \
 *   --threads 1 --application-id ID --input T --output T --state-dir DIR
 * </pre>
 *
 * The commit interval is 100 ms for both guarantees (Eddy's default; Kafka
 * Streams' own default is 30 s at least once and 100 ms exactly once); the
 * record cache and every other setting keep Kafka Streams' defaults.
 */
public final class StreamsApp {
    private StreamsApp() {}

    public static void main(String[] args) throws InterruptedException {
        Flags flags = new Flags("StreamsApp", args);
        String bootstrap = flags.get("bootstrap", "127.0.0.1:9092");
        String topology = flags.required("topology");
        String guarantee = flags.get("guarantee", StreamsConfig.AT_LEAST_ONCE);
        int threads = flags.getInt("threads", 1);
        String applicationId = flags.required("application-id");
        String input = flags.required("input");
        String output = flags.required("output");
        String stateDir = flags.required("state-dir");
        long commitIntervalMs = flags.getLong("commit-interval-ms", 100);
        flags.done();

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, guarantee);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, threads);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, commitIntervalMs);
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir);
        props.put(StreamsConfig.DEFAULT_KEY_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);
        props.put(StreamsConfig.DEFAULT_VALUE_SERDE_CLASS_CONFIG, Serdes.StringSerde.class);

        Topology built = switch (topology) {
            case "stateless" -> stateless(input, output);
            case "wordcount" -> wordcount(input, output);
            default -> {
                System.err.println("StreamsApp: --topology must be stateless or wordcount, not " + topology);
                System.exit(2);
                yield null;
            }
        };

        KafkaStreams streams = new KafkaStreams(built, props);
        CountDownLatch stopped = new CountDownLatch(1);
        int[] exitCode = {0};
        streams.setStateListener((now, before) -> {
            System.err.println("[" + Instant.now() + "] StreamsApp " + applicationId + ": " + before + " -> " + now);
            if (now == KafkaStreams.State.ERROR) {
                exitCode[0] = 1;
                stopped.countDown();
            }
        });
        streams.setUncaughtExceptionHandler(e -> {
            System.err.println("StreamsApp " + applicationId + ": stream thread failed: " + e);
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse
                    .SHUTDOWN_CLIENT;
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            streams.close(Duration.ofSeconds(30));
            stopped.countDown();
        }, "shutdown"));
        streams.start();
        stopped.await();
        if (exitCode[0] != 0) {
            streams.close(Duration.ofSeconds(30));
            System.exit(exitCode[0]);
        }
    }

    static Topology stateless(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
                .filter((k, v) -> Payments.isOk(v))
                .mapValues(Payments::toUsd)
                .to(output, Produced.with(Serdes.String(), Serdes.String()));
        return builder.build();
    }

    static Topology wordcount(String input, String output) {
        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> lines = builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()));
        lines.flatMapValues(line -> Arrays.asList(Words.split(line)))
                .groupBy((k, word) -> word, Grouped.with("words", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("word-counts"))
                .toStream()
                .to(output, Produced.with(Serdes.String(), Serdes.Long()));
        return builder.build();
    }
}
