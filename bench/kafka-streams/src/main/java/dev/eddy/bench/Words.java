package dev.eddy.bench;

import java.util.Arrays;
import java.util.Locale;
import java.util.SplittableRandom;
import java.util.regex.Pattern;

/**
 * The word count's input: lines of a few words drawn from a vocabulary of
 * 10,000 made-up lowercase words with a Zipf distribution (exponent 1: the
 * commonest word is about 10% of all words, as "the" is in English text),
 * deterministic for a seed. {@link #split} is the word count's splitter; on
 * these lines it gives what Eddy's {@code split_words} (plugins/words) gives.
 */
final class Words {
    private Words() {}

    /** How many distinct words there are. */
    static final int VOCABULARY = 10_000;

    private static final String CONSONANTS = "bcdfghjklmnprstvwxyz";
    private static final String VOWELS = "aeiou";
    private static final Pattern NON_WORD = Pattern.compile("[^\\p{L}\\p{N}']+");

    /** The word of rank {@code r}: one syllable under 100, else two. */
    static String word(int r) {
        return r < 100 ? syllable(r) : syllable(r % 100) + syllable(r / 100);
    }

    private static String syllable(int s) {
        return "" + CONSONANTS.charAt(s % 20) + VOWELS.charAt(s / 20);
    }

    /** The words of a line, lowercased. */
    static String[] split(String line) {
        return Arrays.stream(NON_WORD.split(line.toLowerCase(Locale.ROOT)))
                .filter(w -> !w.isEmpty())
                .toArray(String[]::new);
    }

    /** Deterministic lines of {@code wordsPerLine} words. */
    static final class Generator {
        private static final String[] WORDS = new String[VOCABULARY];
        private static final double[] CDF = new double[VOCABULARY];

        static {
            double sum = 0;
            for (int r = 0; r < VOCABULARY; r++) {
                WORDS[r] = word(r);
                sum += 1.0 / (r + 1);
                CDF[r] = sum;
            }
            for (int r = 0; r < VOCABULARY; r++) {
                CDF[r] /= sum;
            }
        }

        private final SplittableRandom random;
        private final int wordsPerLine;
        private final StringBuilder line = new StringBuilder();

        Generator(long seed, int wordsPerLine) {
            this.random = new SplittableRandom(seed);
            this.wordsPerLine = wordsPerLine;
        }

        String next() {
            line.setLength(0);
            for (int i = 0; i < wordsPerLine; i++) {
                if (i > 0) {
                    line.append(' ');
                }
                int r = Arrays.binarySearch(CDF, random.nextDouble());
                line.append(WORDS[Math.min(r < 0 ? -r - 1 : r, VOCABULARY - 1)]);
            }
            return line.toString();
        }
    }
}
