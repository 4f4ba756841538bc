package dev.eddy.bench;

import java.util.HashMap;
import java.util.Map;

/**
 * Command-line flags of the benchmark's tools: {@code --name value} or
 * {@code --name=value}, each tool asking for the ones it knows. Unknown or
 * missing flags end the program with a message.
 */
final class Flags {
    private final String tool;
    private final Map<String, String> values = new HashMap<>();

    Flags(String tool, String[] args) {
        this.tool = tool;
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--")) {
                throw fail("unexpected argument '" + arg + "'");
            }
            int eq = arg.indexOf('=');
            if (eq > 0) {
                values.put(arg.substring(2, eq), arg.substring(eq + 1));
            } else if (i + 1 < args.length) {
                values.put(arg.substring(2), args[++i]);
            } else {
                throw fail("--" + arg.substring(2) + " needs a value");
            }
        }
    }

    /** The flag's value; the program ends if it is missing. */
    String required(String name) {
        String v = values.remove(name);
        if (v == null) {
            throw fail("--" + name + " is required");
        }
        return v;
    }

    /** The flag's value, or {@code fallback}. */
    String get(String name, String fallback) {
        String v = values.remove(name);
        return v == null ? fallback : v;
    }

    long getLong(String name, long fallback) {
        String v = values.remove(name);
        try {
            return v == null ? fallback : Long.parseLong(v);
        } catch (NumberFormatException e) {
            throw fail("--" + name + ": not a number: " + v);
        }
    }

    int getInt(String name, int fallback) {
        return Math.toIntExact(getLong(name, fallback));
    }

    /** Ends the program if a flag was given that no one asked for. */
    void done() {
        if (!values.isEmpty()) {
            throw fail("unknown flag(s): --" + String.join(", --", values.keySet()));
        }
    }

    private IllegalArgumentException fail(String message) {
        System.err.println(tool + ": " + message);
        System.exit(2);
        return new IllegalArgumentException(message);
    }
}
