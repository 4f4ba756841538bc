package dev.eddy.bench;

import java.util.concurrent.atomic.AtomicReference;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;

/**
 * Preloads an input topic (which must exist) with deterministic records as
 * fast as the Java producer goes: payments keyed by customer
 * ({@code --kind stateless}) or unkeyed lines of words ({@code --kind
 * wordcount}). Prints one line: {@code records=N ok=M words=W} (ok: the
 * payments the filter keeps; words: the words in all lines).
 *
 * <pre>
 * java -cp ... dev.eddy.bench.Loader --bootstrap B --topic T --kind stateless|wordcount \
 *   --records N [--words-per-line 4] [--seed 1]
 * </pre>
 */
public final class Loader {
    private Loader() {}

    public static void main(String[] args) {
        Flags flags = new Flags("Loader", args);
        String bootstrap = flags.get("bootstrap", "127.0.0.1:9092");
        String topic = flags.required("topic");
        String kind = flags.required("kind");
        long records = flags.getLong("records", 1_000_000);
        int wordsPerLine = flags.getInt("words-per-line", 4);
        long seed = flags.getLong("seed", 1);
        flags.done();
        if (!kind.equals("stateless") && !kind.equals("wordcount")) {
            System.err.println("Loader: --kind must be stateless or wordcount");
            System.exit(2);
        }

        AtomicReference<Exception> failure = new AtomicReference<>();
        long started = System.nanoTime();
        long ok = 0;
        try (KafkaProducer<String, String> producer =
                new KafkaProducer<>(Clients.producer(bootstrap, 20, 256 * 1024))) {
            Payments.Generator payments = new Payments.Generator(seed, 0);
            Words.Generator lines = new Words.Generator(seed, wordsPerLine);
            for (long i = 0; i < records && failure.get() == null; i++) {
                ProducerRecord<String, String> record = kind.equals("stateless")
                        ? new ProducerRecord<>(topic, payments.key(), payments.value())
                        : new ProducerRecord<>(topic, null, lines.next());
                producer.send(record, (meta, e) -> {
                    if (e != null) {
                        failure.compareAndSet(null, e);
                    }
                });
            }
            producer.flush();
            ok = payments.ok;
        }
        if (failure.get() != null) {
            System.err.println("Loader: producing to " + topic + " failed: " + failure.get());
            System.exit(1);
        }
        double secs = (System.nanoTime() - started) / 1e9;
        System.err.printf("Loader: %d records into %s in %.1f s%n", records, topic, secs);
        long words = kind.equals("wordcount") ? records * wordsPerLine : 0;
        System.out.println("records=" + records + " ok=" + ok + " words=" + words);
    }
}
