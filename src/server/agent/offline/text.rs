//! Case-insensitive matching that never slices a string at a wrong byte offset.
//!
//! Lower-casing can change a character's byte length (the Kelvin sign `K`, 3 bytes, becomes
//! `k`, 1 byte), so an offset found in `text.to_lowercase()` is not an offset in `text`. These
//! helpers walk `text` character by character and return slices of `text` itself.

/// `text` without `prefix`, compared case-insensitively (`prefix` is lower case).
pub fn strip_prefix_ci<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let mut wanted = prefix.chars();
    let mut pending: Vec<char> = Vec::new();
    for (i, c) in text.char_indices() {
        if pending.is_empty() && wanted.clone().next().is_none() {
            return Some(&text[i..]);
        }
        pending.extend(c.to_lowercase());
        while let Some(&p) = pending.first() {
            if wanted.next() != Some(p) {
                return None;
            }
            pending.remove(0);
        }
    }
    (pending.is_empty() && wanted.next().is_none()).then_some("")
}

/// `text` without `suffix`, compared case-insensitively (`suffix` is lower case).
pub fn strip_suffix_ci<'a>(text: &'a str, suffix: &str) -> Option<&'a str> {
    let mut wanted = suffix.chars().rev();
    let mut pending: Vec<char> = Vec::new();
    for (i, c) in text.char_indices().rev() {
        if pending.is_empty() && wanted.clone().next().is_none() {
            return Some(&text[..i + c.len_utf8()]);
        }
        pending.splice(0..0, c.to_lowercase());
        while let Some(&p) = pending.last() {
            if wanted.next() != Some(p) {
                return None;
            }
            pending.pop();
        }
    }
    (pending.is_empty() && wanted.next().is_none()).then_some("")
}

/// Splits at the first case-insensitive occurrence of `sep` (lower case); both sides trimmed.
pub fn split_ci(text: &str, sep: &str) -> Option<(String, String)> {
    text.char_indices().find_map(|(i, _)| {
        strip_prefix_ci(&text[i..], sep)
            .map(|rest| (text[..i].trim().to_string(), rest.trim().to_string()))
    })
}

/// Whether `text` is exactly `word`, or starts with it followed by a space.
pub fn starts_with_word<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let rest = strip_prefix_ci(text, word)?;
    if rest.is_empty() {
        Some(rest)
    } else {
        rest.strip_prefix(' ')
    }
}

/// Lower-case words of `text` (letters and digits), for whole-word title matching.
pub fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect()
}

pub fn unquote(text: &str) -> String {
    text.trim()
        .trim_matches(['"', '\'', '“', '”', '‘', '’'])
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_and_suffixes_survive_length_changing_case() {
        // U+212A KELVIN SIGN lowercases to ASCII "k".
        assert_eq!(strip_prefix_ci("\u{212A}eep milk", "keep "), Some("milk"));
        assert_eq!(
            strip_prefix_ci("Delete \u{212A}", "delete "),
            Some("\u{212A}")
        );
        assert_eq!(strip_suffix_ci("milk DONE", " done"), Some("milk"));
        assert_eq!(strip_suffix_ci("\u{212A} done", " done"), Some("\u{212A}"));
        assert_eq!(strip_prefix_ci("de", "delete"), None);
        assert_eq!(strip_prefix_ci("İstanbul", "i"), None);
        assert_eq!(
            split_ci("\u{212A}\u{212A} TO x", " to "),
            Some(("\u{212A}\u{212A}".into(), "x".into()))
        );
    }

    #[test]
    fn words_are_whole() {
        assert_eq!(
            words("Buy oat-milk, 2 L"),
            vec!["buy", "oat", "milk", "2", "l"]
        );
    }
}
