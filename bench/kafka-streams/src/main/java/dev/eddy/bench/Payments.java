package dev.eddy.bench;

import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.SplittableRandom;

/**
 * The stateless JSON pipeline: payments such as
 * {@code {"id":123,"customer":"c-17","status":"ok","amount":12.5,"currency":"EUR"}},
 * about 80% of them ok; the filter keeps those whose status is ok, and the
 * map converts the amount to US dollars with a fixed rate table, writing
 * {@code {"id":..,"customer":..,"usd":..}}. Eddy's twin of the logic is
 * {@code is_ok_json} and {@code to_usd} in plugins/bench/src/lib.rs; both
 * parse the JSON into a typed value.
 */
final class Payments {
    private Payments() {}

    /** A payment as the input carries it. */
    record Payment(long id, String customer, String status, double amount, String currency) {}

    /** A payment in US dollars, as the pipeline writes it. */
    record UsdPayment(long id, String customer, double usd) {}

    private static final ObjectMapper MAPPER =
            new ObjectMapper().configure(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES, false);

    private static final String[] CURRENCIES = {"USD", "EUR", "GBP", "JPY"};

    /** US dollars per unit of {@code currency}. */
    static double usdRate(String currency) {
        return switch (currency) {
            case "USD" -> 1.0;
            case "EUR" -> 1.08;
            case "GBP" -> 1.27;
            case "JPY" -> 0.0067;
            default -> throw new IllegalArgumentException("no rate for currency '" + currency + "'");
        };
    }

    static Payment parse(String json) {
        try {
            return MAPPER.readValue(json, Payment.class);
        } catch (IOException e) {
            throw new UncheckedIOException("not a payment: " + json, e);
        }
    }

    /** The filter: true if the payment's status is ok. */
    static boolean isOk(String json) {
        return "ok".equals(parse(json).status());
    }

    /** The map: the payment converted to US dollars. */
    static String toUsd(String json) {
        Payment p = parse(json);
        try {
            return MAPPER.writeValueAsString(new UsdPayment(p.id(), p.customer(), p.amount() * usdRate(p.currency())));
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Deterministic payments: the same seed gives the same sequence. Keys are
     * the customer, values the JSON text.
     */
    static final class Generator {
        private final SplittableRandom random;
        private long next;
        private String customer;
        /** How many of the generated payments are ok. */
        long ok;

        Generator(long seed, long firstId) {
            random = new SplittableRandom(seed);
            next = firstId;
        }

        /** The next payment's customer (its key); call {@link #value()} after it. */
        String key() {
            customer = "c-" + random.nextInt(1000);
            return customer;
        }

        /** The JSON text of the payment whose key {@link #key()} gave. */
        String value() {
            boolean isOk = random.nextInt(10) < 8;
            if (isOk) {
                ok++;
            }
            // Whole cents: amounts print with two decimals (12.50, 3.07).
            long cents = 1 + random.nextInt(100_000);
            String currency = CURRENCIES[random.nextInt(CURRENCIES.length)];
            return "{\"id\":" + next++ + ",\"customer\":\"" + customer + "\",\"status\":\""
                    + (isOk ? "ok" : "error") + "\",\"amount\":" + (cents / 100) + "." + (cents % 100 < 10 ? "0" : "")
                    + (cents % 100) + ",\"currency\":\"" + currency + "\"}";
        }
    }
}
