import org.apache.kafka.common.serialization.*;
import org.apache.kafka.streams.*;
import org.apache.kafka.streams.kstream.*;
import org.apache.kafka.streams.test.TestRecord;
import java.time.Duration;
import java.util.*;

/** Replays the dsl-api.html join-semantics tables against kafka-streams 4.0.0 and prints JSON lines. */
public class DocTables {
    static String q(String s) { return s == null ? "null" : "\"" + s.replace("\"", "\\\"") + "\""; }

    // rows: {tsSeconds, side("L"/"R"), value or null}
    static final Object[][] ROWS_SS = {
        {1, "L", null}, {2, "R", null}, {3, "L", "A"}, {4, "R", "a"}, {5, "L", "B"}, {6, "R", "b"}, {7, "L", null}, {8, "R", null},
        {9, "L", "C"}, {10, "R", "c"}, {11, "R", null}, {12, "L", null}, {13, "R", null}, {14, "R", "d"}, {15, "L", "D"},
        {40, "L", "E"}, {60, "L", "F"}, {80, "R", "f"}, {100, "L", "G"}};
    static final Object[][] ROWS_T = {
        {1, "L", null}, {2, "R", null}, {3, "L", "A"}, {4, "R", "a"}, {5, "L", "B"}, {6, "R", "b"}, {7, "L", null}, {8, "R", null},
        {9, "L", "C"}, {10, "R", "c"}, {11, "R", null}, {12, "L", null}, {13, "R", null}, {14, "R", "d"}, {15, "L", "D"}};

    public static void main(String[] a) {
        for (String kind : new String[]{"ss-inner", "ss-left", "ss-outer", "tt-inner", "tt-left", "tt-outer", "st-inner", "st-left"}) {
            run(kind);
        }
    }

    static void run(String kind) {
        StreamsBuilder b = new StreamsBuilder();
        ValueJoiner<String, String, String> j = (l, r) -> "[" + l + ", " + r + "]";
        Consumed<String, String> c = Consumed.with(Serdes.String(), Serdes.String());
        Object[][] rows = kind.startsWith("ss") ? ROWS_SS : ROWS_T;
        if (kind.startsWith("ss")) {
            KStream<String, String> l = b.stream("left", c), r = b.stream("right", c);
            JoinWindows w = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(15), Duration.ofSeconds(5));
            StreamJoined<String, String, String> sj = StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
            KStream<String, String> o = kind.equals("ss-inner") ? l.join(r, j, w, sj) : kind.equals("ss-left") ? l.leftJoin(r, j, w, sj) : l.outerJoin(r, j, w, sj);
            o.to("output", Produced.with(Serdes.String(), Serdes.String()));
        } else if (kind.startsWith("tt")) {
            KTable<String, String> l = b.table("left", c), r = b.table("right", c);
            KTable<String, String> o = kind.equals("tt-inner") ? l.join(r, j) : kind.equals("tt-left") ? l.leftJoin(r, j) : l.outerJoin(r, j);
            o.toStream().to("output", Produced.with(Serdes.String(), Serdes.String()));
        } else {
            KStream<String, String> l = b.stream("left", c);
            KTable<String, String> r = b.table("right", c);
            KStream<String, String> o = kind.equals("st-inner") ? l.join(r, j) : l.leftJoin(r, j);
            o.to("output", Produced.with(Serdes.String(), Serdes.String()));
        }
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "doc-" + kind);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "dummy:0");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        try (TopologyTestDriver d = new TopologyTestDriver(b.build(), p)) {
            TestInputTopic<String, String> li = d.createInputTopic("left", new StringSerializer(), new StringSerializer());
            TestInputTopic<String, String> ri = d.createInputTopic("right", new StringSerializer(), new StringSerializer());
            TestOutputTopic<String, String> out = d.createOutputTopic("output", new StringDeserializer(), new StringDeserializer());
            int idx = 0;
            for (Object[] row : rows) {
                long ts = ((Integer) row[0]) * 1000L;
                (row[1].equals("L") ? li : ri).pipeInput("k", (String) row[2], ts);
                for (TestRecord<String, String> rec : out.readRecordsToList()) {
                    System.out.println("{\"kind\":\"" + kind + "\",\"caused-by\":" + idx + ",\"key\":" + q(rec.key()) + ",\"value\":" + q(rec.value()) + ",\"timestamp\":" + rec.timestamp() + "}");
                }
                idx++;
            }
        }
    }
}
