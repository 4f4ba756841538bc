//! Words: splits lines of text into words, each keyed by the word itself (the
//! input of a word count). Ships its topology in code: `lines` → `words`.

use eddy_sdk::{OwnedRecord, Plugin, Record, Registry, Result, Topology};

/// The words of a line: lowercased, split on anything that is not a letter,
/// digit or apostrophe.
pub fn words(line: &str) -> impl Iterator<Item = String> + '_ {
    line.split(|c: char| !(c.is_alphanumeric() || c == '\''))
        .map(|w| w.trim_matches('\''))
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
}

fn split_words(rec: &Record) -> Result<Vec<OwnedRecord>> {
    words(rec.value_str()?).map(|w| OwnedRecord::new(w.clone(), w)).collect()
}

struct Words;

impl Plugin for Words {
    fn register(r: &mut Registry) {
        r.flat_map("split_words", split_words).doc("one record per word, keyed by the word");
    }

    fn topology() -> Option<Topology> {
        Some(
            Topology::new()
                .source("lines", &["lines"])
                .value_serde("string")
                .flat_map("split", "split_words")
                .to("words-out", "words")
                .key_serde("string")
                .value_serde("string"),
        )
    }
}

eddy_sdk::export_plugin!(Words);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_punctuation_and_lowercases() {
        let got: Vec<_> = words("The cat's hat -- THE hat!").collect();
        assert_eq!(got, ["the", "cat's", "hat", "the", "hat"]);
    }

    #[test]
    fn keys_each_word_by_itself() {
        let line = OwnedRecord::new(None::<String>, "a b").unwrap().encode();
        let out = split_words(&line.record()).unwrap();
        assert_eq!(out[1].key.as_deref(), Some(&b"b"[..]));
        assert_eq!(out[1].value.as_deref(), Some(&b"b"[..]));
    }
}
