//! Finding the task the user named by title, in the listing `list_tasks` returned. A title
//! matches by whole words; when several tasks match, the assistant asks instead of guessing.

use serde_json::Value;

use super::text::words;

/// What the title lookup found.
#[derive(Debug, PartialEq)]
pub enum Lookup {
    Found(i64),
    /// Several tasks match: (number, title) of each.
    Ambiguous(Vec<(i64, String)>),
    NotFound,
}

pub fn find_by_title(wanted: &str, listing: &Value) -> Lookup {
    let wanted = words(wanted);
    if wanted.is_empty() {
        return Lookup::NotFound;
    }
    let tasks: Vec<(i64, String)> = listing
        .get("tasks")
        .and_then(Value::as_array)
        .map(|tasks| {
            tasks
                .iter()
                .filter_map(|t| {
                    let id = t.get("id")?.as_i64()?;
                    let title = t.get("title")?.as_str()?.to_string();
                    Some((id, title))
                })
                .collect()
        })
        .unwrap_or_default();
    // The same words in the same order: the user typed the title.
    let exact: Vec<&(i64, String)> = tasks.iter().filter(|(_, t)| words(t) == wanted).collect();
    let candidates: Vec<&(i64, String)> = if exact.is_empty() {
        tasks
            .iter()
            .filter(|(_, title)| {
                let have = words(title);
                wanted.iter().all(|w| have.contains(w))
            })
            .collect()
    } else {
        exact
    };
    match candidates.as_slice() {
        [] => Lookup::NotFound,
        [(id, _)] => Lookup::Found(*id),
        several => Lookup::Ambiguous(several.iter().map(|c| (*c).clone()).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn listing() -> Value {
        json!({ "tasks": [
            { "id": 1, "title": "Buy milk" },
            { "id": 2, "title": "Buy oat milk" },
            { "id": 3, "title": "Edit the kitchen list" },
            { "id": 4, "title": "Call the dentist" },
        ] })
    }

    #[test]
    fn whole_words_only_and_ambiguity_is_reported() {
        assert_eq!(find_by_title("buy milk", &listing()), Lookup::Found(1));
        assert_eq!(find_by_title("oat milk", &listing()), Lookup::Found(2));
        assert_eq!(find_by_title("dentist", &listing()), Lookup::Found(4));
        // "it" is inside "kitchen" and "Edit", but not a word of any title.
        assert_eq!(find_by_title("it", &listing()), Lookup::NotFound);
        assert_eq!(
            find_by_title("milk", &listing()),
            Lookup::Ambiguous(vec![(1, "Buy milk".into()), (2, "Buy oat milk".into())])
        );
        assert_eq!(find_by_title("", &listing()), Lookup::NotFound);
    }
}
