package org.apache.kafka.test;

import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.kstream.internals.Change;
import org.apache.kafka.streams.state.ValueAndTimestamp;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.KeyValueTimestamp;

import java.io.FileWriter;
import java.io.IOException;
import java.util.Collection;

/** Writes one JSON object per line to the file named by env EDDY_REC (or nowhere). */
public final class EddyRec {
    private static FileWriter out;
    static {
        final String f = System.getenv("EDDY_REC");
        if (f != null) {
            try { out = new FileWriter(f, true); } catch (IOException e) { throw new RuntimeException(e); }
        }
    }
    private EddyRec() {}

    public static synchronized void log(final String json) {
        if (out == null) return;
        try { out.write(json); out.write('\n'); out.flush(); } catch (IOException e) { throw new RuntimeException(e); }
    }

    public static String str(final String s) {
        if (s == null) return "null";
        final StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static String val(final Object o) {
        if (o == null) return "null";
        if (o instanceof String) return str((String) o);
        if (o instanceof Integer || o instanceof Long || o instanceof Short) return o.toString();
        if (o instanceof Number) return str(o.toString());
        if (o instanceof Boolean) return o.toString();
        if (o instanceof Windowed) {
            final Windowed<?> w = (Windowed<?>) o;
            return "{\"windowed\":true,\"key\":" + val(w.key()) + ",\"start\":" + w.window().start() + ",\"end\":" + w.window().end() + "}";
        }
        if (o instanceof Change) {
            final Change<?> c = (Change<?>) o;
            return "{\"change\":true,\"new\":" + val(c.newValue) + ",\"old\":" + val(c.oldValue) + "}";
        }
        if (o instanceof ValueAndTimestamp) {
            final ValueAndTimestamp<?> v = (ValueAndTimestamp<?>) o;
            return "{\"vat\":true,\"value\":" + val(v.value()) + ",\"ts\":" + v.timestamp() + "}";
        }
        if (o instanceof KeyValueTimestamp) {
            final KeyValueTimestamp<?, ?> k = (KeyValueTimestamp<?, ?>) o;
            return "{\"key\":" + val(k.key()) + ",\"value\":" + val(k.value()) + ",\"timestamp\":" + k.timestamp() + "}";
        }
        if (o instanceof KeyValue) {
            final KeyValue<?, ?> k = (KeyValue<?, ?>) o;
            return "{\"key\":" + val(k.key) + ",\"value\":" + val(k.value) + "}";
        }
        if (o instanceof Collection) {
            final StringBuilder b = new StringBuilder("[");
            boolean first = true;
            for (Object x : (Collection<?>) o) { if (!first) b.append(','); first = false; b.append(val(x)); }
            return b.append(']').toString();
        }
        return "{\"class\":" + str(o.getClass().getName()) + ",\"toString\":" + str(o.toString()) + "}";
    }
}
