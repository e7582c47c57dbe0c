//! From the user's words to an intent. Only what the user named is acted on: a verb without a
//! task ("delete", "forget it") becomes a question, never a guess.

use super::text::{split_ci, starts_with_word, strip_prefix_ci, strip_suffix_ci, unquote};

#[derive(Debug, PartialEq)]
pub enum TaskRef {
    Number(i32),
    Title(String),
    /// No task named ("delete", "remove it", "done with that"): ask which one.
    Unnamed,
}

#[derive(Debug, PartialEq)]
pub enum Intent {
    Add {
        title: String,
        description: Option<String>,
    },
    List(&'static str),
    /// "what's due today?", "what's overdue?", "what's due this week?": a planning view.
    Due(&'static str),
    Complete(TaskRef),
    Delete(TaskRef),
    /// "delete tasks 2 and 3": several deletes in one round (decided one by one or together).
    DeleteMany(Vec<i32>),
    Update {
        target: TaskRef,
        title: Option<String>,
        description: Option<String>,
    },
    /// "undo that": undo the assistant's newest change (of task `task`, if named); `confirm`
    /// ("undo it anyway") even if the task changed since.
    Undo {
        task: Option<i64>,
        confirm: bool,
    },
    /// Words it did not understand: a short list of what it does.
    Help,
    /// A question about the assistant itself ("help", "what can you do?"): how it works and
    /// everything it understands, with examples. No tool is called.
    Explain,
}

/// Questions about the assistant itself, matched on the whole (lower-cased) message.
const EXPLAIN: [&str; 24] = [
    "help",
    "help me",
    "?",
    "what can you do",
    "what can you help with",
    "what can you help me with",
    "what can i do",
    "what can i say",
    "what can i ask",
    "what do you do",
    "what do you understand",
    "what are you",
    "who are you",
    "how does this work",
    "how does it work",
    "how do you work",
    "how do i use this",
    "how do i use you",
    "how to use this",
    "how can you help",
    "how can you help me",
    "commands",
    "instructions",
    "examples",
];

const POLITE: [&str; 14] = [
    "please ",
    "pls ",
    "can you ",
    "could you ",
    "would you ",
    "will you ",
    "hey ",
    "hi ",
    "ok ",
    "okay ",
    "assistant ",
    "now ",
    "also ",
    "and ",
];

const UPDATE_VERBS: [&str; 5] = ["rename", "change", "update", "edit", "modify"];
const DELETE_VERBS: [&str; 8] = [
    "delete",
    "remove",
    "cancel",
    "drop",
    "erase",
    "get rid of",
    "forget about",
    "forget",
];
const COMPLETE_VERBS: [&str; 19] = [
    "mark",
    "complete",
    "finish",
    "check off",
    "tick off",
    "i finished",
    "i completed",
    "i've finished",
    "i've completed",
    "i have finished",
    "i have completed",
    "i did",
    "i've done",
    "i have done",
    "done with",
    "finished",
    "completed",
    "done",
    "close",
];
const ADD_VERBS: [&str; 14] = [
    "remind me to",
    "remember to",
    "i need to",
    "i have to",
    "i must",
    "don't forget to",
    "add",
    "remember",
    "create",
    "new task",
    "put",
    "todo",
    "to-do",
    "note",
];

/// Words that point at a task without naming it.
const PRONOUNS: [&str; 12] = [
    "it", "that", "this", "them", "those", "these", "one", "that one", "this one", "the task",
    "a task", "task",
];

fn after_verb<'a>(text: &'a str, verbs: &[&str]) -> Option<&'a str> {
    verbs
        .iter()
        .find_map(|verb| starts_with_word(text, verb))
        .map(str::trim)
}

pub fn parse(text: &str) -> Intent {
    let mut rest = text.trim().trim_end_matches(['.', '!', '?']).trim();
    while let Some(stripped) = POLITE.iter().find_map(|p| strip_prefix_ci(rest, p)) {
        rest = stripped.trim_start_matches([',', ' ']);
    }
    let rest = rest.trim_start_matches([',', ' ']);
    let lower = rest.to_lowercase();
    if rest.is_empty() || EXPLAIN.contains(&lower.as_str()) {
        return Intent::Explain;
    }

    if let Some(undo) = parse_undo(&lower) {
        return undo;
    }
    if let Some(target) = after_verb(rest, &UPDATE_VERBS) {
        return parse_update(target);
    }
    if let Some(target) = after_verb(rest, &DELETE_VERBS) {
        if let Some(numbers) = task_numbers(target) {
            return Intent::DeleteMany(numbers);
        }
        return Intent::Delete(task_ref(target));
    }
    if let Some(target) = after_verb(rest, &COMPLETE_VERBS) {
        return Intent::Complete(task_ref(target));
    }
    if let Some(title) = after_verb(rest, &ADD_VERBS) {
        return add(title);
    }
    if let Some(view) = due_view(&lower) {
        return Intent::Due(view);
    }
    let listy = [
        "show", "list", "what", "which", "display", "tasks", "my tasks", "pending", "todo",
        "to-do", "to do",
    ];
    if listy.iter().any(|w| lower.starts_with(w))
        || lower.contains("my tasks")
        || lower.contains("task list")
    {
        return Intent::List(list_status(&lower));
    }
    // "task 3 is done", "buy milk is finished"
    for suffix in [
        " is done",
        " is finished",
        " is complete",
        " is completed",
        " done",
        " finished",
    ] {
        if let Some(subject) = strip_suffix_ci(rest, suffix) {
            return Intent::Complete(task_ref(subject));
        }
    }
    Intent::Help
}

/// "undo that", "undo it anyway", "undo task 3", "revert that", "take that back".
fn parse_undo(lower: &str) -> Option<Intent> {
    let lower = lower
        .trim_start_matches("yes")
        .trim_start_matches([',', ' ']);
    let rest = [
        "undo",
        "revert",
        "take that back",
        "take it back",
        "put it back",
    ]
    .iter()
    .find_map(|verb| starts_with_word(lower, verb))?;
    let task = rest
        .split(|c: char| !c.is_ascii_digit())
        .find(|part| !part.is_empty())
        .and_then(|n| n.parse().ok());
    Some(Intent::Undo {
        task,
        confirm: rest.contains("anyway"),
    })
}

/// The planning view a question asks for, if it asks for one.
fn due_view(lower: &str) -> Option<&'static str> {
    let asks = [
        "what",
        "which",
        "show",
        "list",
        "anything",
        "is there",
        "do i have",
        "any",
        "due",
    ]
    .iter()
    .any(|w| lower.starts_with(w) || lower.contains(&format!(" {w} ")));
    if !asks {
        return None;
    }
    if ["overdue", "past due", "late", "missed"]
        .iter()
        .any(|w| lower.contains(w))
    {
        Some("overdue")
    } else if [
        "this week",
        "next 7 days",
        "next seven days",
        "coming up",
        "upcoming",
        "the week",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        Some("week")
    } else if lower.contains("today") || lower.contains("tonight") {
        Some("today")
    } else {
        None
    }
}

fn list_status(lower: &str) -> &'static str {
    if ["complete", "done", "finished"]
        .iter()
        .any(|w| lower.contains(w))
    {
        "completed"
    } else if [
        "pending",
        "left",
        "remaining",
        "open",
        "outstanding",
        "incomplete",
        "not done",
        "to do",
        "todo",
        "still",
    ]
    .iter()
    .any(|w| lower.contains(w))
    {
        "pending"
    } else {
        "all"
    }
}

fn add(text: &str) -> Intent {
    let fillers = [
        "a new task to ",
        "a new task: ",
        "a new task ",
        "a task to ",
        "a task: ",
        "a task called ",
        "a task named ",
        "a task ",
        "task to ",
        "task: ",
        "task called ",
        "task named ",
        "task ",
        "an item ",
        "called ",
        "named ",
        "to ",
        ": ",
    ];
    let mut title = fillers
        .iter()
        .find_map(|f| strip_prefix_ci(text, f))
        .unwrap_or(text);
    for suffix in [
        " to my to-do list",
        " to my todo list",
        " to my list",
        " to the list",
        " to my tasks",
        " to the to-do list",
        " on my list",
    ] {
        if let Some(stripped) = strip_suffix_ci(title, suffix) {
            title = stripped;
        }
    }
    let (title, description) =
        match split_ci(title, " with description ").or_else(|| split_ci(title, " description: ")) {
            Some((t, d)) => (t, Some(unquote(&d))),
            None => (title.to_string(), None),
        };
    let title = unquote(&title);
    let mut chars = title.chars();
    let Some(first) = chars.next() else {
        return Intent::Help;
    };
    Intent::Add {
        title: first.to_uppercase().collect::<String>() + chars.as_str(),
        description,
    }
}

fn parse_update(text: &str) -> Intent {
    // "task 2 to X", "the description of task 3 to Y", "buy milk to buy oat milk"
    let Some((target, value)) = split_ci(text, " to ").or_else(|| split_ci(text, " into ")) else {
        return Intent::Help;
    };
    let lower = target.to_lowercase();
    let describe =
        lower.contains("description") || lower.contains("details") || lower.contains("note");
    let target = [
        "the description of ",
        "description of ",
        "the details of ",
        "the title of ",
        "title of ",
        "the name of ",
        "name of ",
    ]
    .iter()
    .find_map(|p| strip_prefix_ci(&target, p))
    .unwrap_or(&target);
    let target = [
        "'s description",
        " description",
        "'s title",
        " title",
        "'s name",
        " name",
    ]
    .iter()
    .find_map(|s| strip_suffix_ci(target, s))
    .unwrap_or(target);
    let value = unquote(&value);
    if value.is_empty() {
        return Intent::Help;
    }
    let (title, description) = if describe {
        (None, Some(value))
    } else {
        (Some(value), None)
    };
    Intent::Update {
        target: task_ref(target),
        title,
        description,
    }
}

/// Two or more task numbers: "tasks 2 and 3", "task 1, task 4 & #5" (`None` otherwise).
fn task_numbers(text: &str) -> Option<Vec<i32>> {
    let lower = text.to_lowercase().replace([',', '&'], " and ");
    let mut numbers = Vec::new();
    for part in lower
        .split(" and ")
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let part = ["tasks ", "task ", "numbers ", "number "]
            .iter()
            .find_map(|p| part.strip_prefix(p))
            .unwrap_or(part);
        numbers.push(part.trim().trim_start_matches('#').parse::<i32>().ok()?);
    }
    numbers.dedup();
    (numbers.len() > 1).then_some(numbers)
}

/// "task 3", "#3", "number 3", "3", a title ("buy milk"), or nothing usable ("it", "").
pub fn task_ref(text: &str) -> TaskRef {
    let mut t = text.trim();
    for suffix in [
        " as done",
        " as complete",
        " as completed",
        " as finished",
        " done",
        " complete",
        " completed",
        " off",
        " from my list",
        " from the list",
        " off my list",
    ] {
        if let Some(stripped) = strip_suffix_ci(t, suffix) {
            t = stripped;
        }
    }
    let is_pronoun = |s: &str| {
        let s = s.trim().to_lowercase();
        s.is_empty() || PRONOUNS.contains(&s.as_str()) || ["as done", "off"].contains(&s.as_str())
    };
    if is_pronoun(t) {
        return TaskRef::Unnamed;
    }
    let stripped = [
        "the task ",
        "my task ",
        "task number ",
        "task no. ",
        "task #",
        "task ",
        "number ",
        "no. ",
        "#",
        "the ",
        "my ",
    ]
    .iter()
    .find_map(|p| strip_prefix_ci(t, p))
    .map(str::trim)
    .unwrap_or(t);
    if let Ok(n) = stripped.trim_start_matches('#').parse::<i32>() {
        return TaskRef::Number(n);
    }
    let title = unquote(stripped);
    if is_pronoun(&title) || super::text::words(&title).is_empty() {
        TaskRef::Unnamed
    } else {
        TaskRef::Title(title)
    }
}
