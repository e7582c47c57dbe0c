//! The built-in offline assistant (SPEC §8): a deterministic model that understands everyday
//! to-do phrasings and answers exactly like a remote model would, with tool calls that go
//! through the same loop and MCP tools, then a short confirmation. Stateless: each call reads
//! the latest user message and the tool results that follow it. It acts only on a task the user
//! named unambiguously; otherwise it asks.

mod parse;
mod reply;
mod resolve;
mod text;
mod when;

use serde_json::{json, Value};

use super::{ModelReply, PromptMessage, ToolCallRequest};
use parse::{parse, Intent, TaskRef};
use reply::{confirm, explain, help, not_found, which_of, which_task};
use resolve::{find_by_title, Lookup};

pub struct OfflineModel;

impl OfflineModel {
    pub fn complete(&self, prompt: &[PromptMessage]) -> ModelReply {
        let Some(last_user) = prompt
            .iter()
            .rposition(|m| matches!(m, PromptMessage::User(_)))
        else {
            return ModelReply::Text(help());
        };
        let PromptMessage::User(text) = &prompt[last_user] else {
            return ModelReply::Text(help());
        };
        let done = tool_results(&prompt[last_user + 1..]);
        let intent = parse(text);
        match done.last() {
            None => first_step(intent, local_now(prompt)),
            Some((call, result))
                if call.name == "list_tasks" && done.len() == 1 && needs_lookup(&intent) =>
            {
                resolve_by_title(intent, result)
            }
            Some(_) => ModelReply::Text(confirm(&done)),
        }
    }
}

/// The user's local time as the system prompt tells it (the server's UTC clock otherwise).
fn local_now(prompt: &[PromptMessage]) -> chrono::NaiveDateTime {
    prompt
        .iter()
        .find_map(|m| match m {
            PromptMessage::System(text) => {
                let (_, after) = text.split_once(super::prompt::NOW_MARKER)?;
                chrono::NaiveDateTime::parse_from_str(after.get(..16)?, "%Y-%m-%dT%H:%M").ok()
            }
            _ => None,
        })
        .unwrap_or_else(|| chrono::Utc::now().naive_utc())
}

/// A new task with the dates, repeats, priorities and tags its words give (or a question when
/// its date has passed).
fn add_call(title: &str, description: Option<String>, now: chrono::NaiveDateTime) -> ModelReply {
    let planned = when::plan(title, now);
    if let Some(question) = planned.question {
        return ModelReply::Text(question);
    }
    if planned.title.is_empty() {
        return ModelReply::Text(help());
    }
    let mut arguments = json!({ "title": planned.title, "description": description });
    for (key, value) in [
        ("due", planned.due.map(Value::from)),
        ("priority", planned.priority.map(Value::from)),
        ("recurrence", planned.recurrence.map(Value::from)),
        (
            "tags",
            (!planned.tags.is_empty()).then(|| Value::from(planned.tags)),
        ),
    ] {
        if let Some(value) = value {
            arguments[key] = value;
        }
    }
    call("add_task", arguments)
}

fn call(name: &str, arguments: Value) -> ModelReply {
    ModelReply::ToolCalls(vec![ToolCallRequest {
        id: format!("offline_{name}"),
        name: name.into(),
        arguments: arguments.to_string(),
    }])
}

/// The verb used when asking the user which task they mean.
fn verb_of(intent: &Intent) -> &'static str {
    match intent {
        Intent::Complete(_) => "mark as done",
        Intent::Delete(_) | Intent::DeleteMany(_) => "delete",
        _ => "change",
    }
}

fn target_of(intent: &Intent) -> Option<&TaskRef> {
    match intent {
        Intent::Complete(target) | Intent::Delete(target) | Intent::Update { target, .. } => {
            Some(target)
        }
        _ => None,
    }
}

fn first_step(intent: Intent, now: chrono::NaiveDateTime) -> ModelReply {
    if target_of(&intent) == Some(&TaskRef::Unnamed) {
        return ModelReply::Text(which_task(verb_of(&intent)));
    }
    match intent {
        Intent::Add { title, description } => add_call(&title, description, now),
        Intent::List(status) => call("list_tasks", json!({ "status": status })),
        Intent::Due(view) => call("list_tasks", json!({ "view": view })),
        Intent::Complete(TaskRef::Number(n)) => call("complete_task", json!({ "task_id": n })),
        Intent::Delete(TaskRef::Number(n)) => call("delete_task", json!({ "task_id": n })),
        Intent::DeleteMany(numbers) => ModelReply::ToolCalls(
            numbers
                .iter()
                .map(|n| ToolCallRequest {
                    id: format!("offline_delete_task_{n}"),
                    name: "delete_task".into(),
                    arguments: json!({ "task_id": n }).to_string(),
                })
                .collect(),
        ),
        Intent::Update {
            target: TaskRef::Number(n),
            title,
            description,
        } => call(
            "update_task",
            json!({ "task_id": n, "title": title, "description": description }),
        ),
        // A task named by title: look the number up first.
        Intent::Complete(_) | Intent::Delete(_) | Intent::Update { .. } => {
            call("list_tasks", json!({ "status": "all" }))
        }
        Intent::Undo { task, confirm } => call(
            "undo_change",
            json!({ "task_id": task, "confirm": confirm }),
        ),
        Intent::Help => ModelReply::Text(help()),
        Intent::Explain => ModelReply::Text(explain()),
    }
}

fn needs_lookup(intent: &Intent) -> bool {
    matches!(target_of(intent), Some(TaskRef::Title(_)))
}

/// Acts on the one task whose title matches; asks when none or several do.
fn resolve_by_title(intent: Intent, listing: &Value) -> ModelReply {
    let Some(TaskRef::Title(wanted)) = target_of(&intent) else {
        return ModelReply::Text(help());
    };
    let id = match find_by_title(wanted, listing) {
        Lookup::Found(id) => id,
        Lookup::Ambiguous(candidates) => {
            return ModelReply::Text(which_of(verb_of(&intent), wanted, &candidates))
        }
        Lookup::NotFound => return ModelReply::Text(not_found(wanted)),
    };
    match intent {
        Intent::Complete(_) => call("complete_task", json!({ "task_id": id })),
        Intent::Delete(_) => call("delete_task", json!({ "task_id": id })),
        Intent::Update {
            title, description, ..
        } => call(
            "update_task",
            json!({ "task_id": id, "title": title, "description": description }),
        ),
        _ => ModelReply::Text(help()),
    }
}

/// (call, parsed result) pairs in order.
fn tool_results(after_user: &[PromptMessage]) -> Vec<(ToolCallRequest, Value)> {
    let mut calls: Vec<ToolCallRequest> = Vec::new();
    let mut done = Vec::new();
    for message in after_user {
        match message {
            PromptMessage::Assistant { tool_calls, .. } => calls.extend(tool_calls.iter().cloned()),
            PromptMessage::Tool { call_id, content } => {
                if let Some(call) = calls.iter().find(|c| &c.id == call_id) {
                    done.push((
                        call.clone(),
                        serde_json::from_str(content).unwrap_or(Value::Null),
                    ));
                }
            }
            _ => {}
        }
    }
    done
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_of(t: &str) -> Intent {
        Intent::Add {
            title: t.into(),
            description: None,
        }
    }

    #[test]
    fn everyday_phrasings() {
        let cases: Vec<(&str, Intent)> = vec![
            ("Add a task to buy groceries", add_of("Buy groceries")),
            ("please add buy milk to my list", add_of("Buy milk")),
            ("Remember to call mum", add_of("Call mum")),
            ("remind me to water the plants", add_of("Water the plants")),
            ("Create a task called \"Pay rent\"", add_of("Pay rent")),
            (
                "add a task: renew passport with description before June",
                Intent::Add {
                    title: "Renew passport".into(),
                    description: Some("before June".into()),
                },
            ),
            ("Show my tasks", Intent::List("all")),
            ("list everything", Intent::List("all")),
            ("What's pending?", Intent::List("pending")),
            ("what do I still have to do", Intent::List("pending")),
            ("What have I completed?", Intent::List("completed")),
            ("show completed tasks", Intent::List("completed")),
            ("Mark task 3 as done", Intent::Complete(TaskRef::Number(3))),
            ("complete #2", Intent::Complete(TaskRef::Number(2))),
            ("I finished task 1", Intent::Complete(TaskRef::Number(1))),
            (
                "done with buy milk",
                Intent::Complete(TaskRef::Title("buy milk".into())),
            ),
            ("task 4 is done", Intent::Complete(TaskRef::Number(4))),
            (
                "mark buy milk as complete",
                Intent::Complete(TaskRef::Title("buy milk".into())),
            ),
            ("Delete task 2", Intent::Delete(TaskRef::Number(2))),
            ("delete tasks 2 and 3", Intent::DeleteMany(vec![2, 3])),
            (
                "remove task 1, task 4 & #5",
                Intent::DeleteMany(vec![1, 4, 5]),
            ),
            ("delete 7 and 8", Intent::DeleteMany(vec![7, 8])),
            (
                "undo that",
                Intent::Undo {
                    task: None,
                    confirm: false,
                },
            ),
            (
                "yes, undo it anyway",
                Intent::Undo {
                    task: None,
                    confirm: true,
                },
            ),
            (
                "undo task 3",
                Intent::Undo {
                    task: Some(3),
                    confirm: false,
                },
            ),
            (
                "remove buy milk",
                Intent::Delete(TaskRef::Title("buy milk".into())),
            ),
            (
                "cancel the dentist",
                Intent::Delete(TaskRef::Title("dentist".into())),
            ),
            (
                "Rename task 1 to Buy oat milk",
                Intent::Update {
                    target: TaskRef::Number(1),
                    title: Some("Buy oat milk".into()),
                    description: None,
                },
            ),
            (
                "change buy milk to buy oat milk",
                Intent::Update {
                    target: TaskRef::Title("buy milk".into()),
                    title: Some("buy oat milk".into()),
                    description: None,
                },
            ),
            (
                "update the description of task 2 to bring ID",
                Intent::Update {
                    target: TaskRef::Number(2),
                    title: None,
                    description: Some("bring ID".into()),
                },
            ),
            ("hello there", Intent::Help),
            ("help", Intent::Explain),
            ("What can you do?", Intent::Explain),
            ("how does this work?", Intent::Explain),
            ("Please help!", Intent::Explain),
            ("can you help me", Intent::Explain),
        ];
        for (text, expected) in cases {
            assert_eq!(parse(text), expected, "{text}");
        }
    }

    #[test]
    fn title_lookup_goes_through_list_tasks() {
        let prompt = vec![PromptMessage::User("remove buy milk".into())];
        let ModelReply::ToolCalls(calls) = OfflineModel.complete(&prompt) else {
            panic!("expected a tool call")
        };
        assert_eq!(calls[0].name, "list_tasks");
        let mut prompt = prompt;
        prompt.push(PromptMessage::Assistant {
            content: None,
            tool_calls: calls.clone(),
        });
        prompt.push(PromptMessage::Tool {
            call_id: calls[0].id.clone(),
            content: json!({ "tasks": [{ "id": 4, "title": "Walk dog" }, { "id": 7, "title": "Buy milk" }] }).to_string(),
        });
        let ModelReply::ToolCalls(calls) = OfflineModel.complete(&prompt) else {
            panic!("expected a tool call")
        };
        assert_eq!(calls[0].name, "delete_task");
        assert_eq!(calls[0].arguments, json!({ "task_id": 7 }).to_string());
    }

    #[test]
    fn user_text_is_escaped_in_replies() {
        let call = ToolCallRequest {
            id: "1".into(),
            name: "add_task".into(),
            arguments: "{}".into(),
        };
        let text = confirm(&[(
            call,
            json!({ "task_id": 1, "status": "created", "title": "<img src=x onerror=alert(1)> *bold*" }),
        )]);
        let html = crate::server::markdown::render(&text);
        assert!(
            html.contains("&lt;img src=x onerror=alert(1)&gt; *bold*"),
            "shown as written: {html}"
        );
        assert!(!html.contains("<img") && !html.contains("<em>"), "{html}");
    }

    /// The first step of a turn for `text`, and the second after a listing of `tasks`.
    fn steps(text: &str, tasks: Value) -> (ModelReply, Option<ModelReply>) {
        let prompt = vec![PromptMessage::User(text.into())];
        let first = OfflineModel.complete(&prompt);
        let ModelReply::ToolCalls(calls) = &first else {
            return (first, None);
        };
        let mut prompt = prompt;
        prompt.push(PromptMessage::Assistant {
            content: None,
            tool_calls: calls.clone(),
        });
        prompt.push(PromptMessage::Tool {
            call_id: calls[0].id.clone(),
            content: tasks.to_string(),
        });
        let second = OfflineModel.complete(&prompt);
        (first, Some(second))
    }

    fn kitchen() -> Value {
        json!({ "tasks": [
            { "id": 1, "title": "Edit the kitchen list" },
            { "id": 2, "title": "Buy milk" },
            { "id": 3, "title": "Buy oat milk" },
        ] })
    }

    fn is_text(reply: &ModelReply, containing: &str) -> bool {
        matches!(reply, ModelReply::Text(t) if t.contains(containing))
    }

    #[test]
    fn a_bare_verb_asks_which_task() {
        for text in [
            "delete",
            "cancel",
            "done",
            "close",
            "finished",
            "remove it",
            "forget it",
            "Delete it.",
            "mark it as done",
            "complete that",
            "please remove this one",
            "done with it",
            "get rid of them",
            "delete the task",
            "it is done",
        ] {
            let (first, second) = steps(text, kitchen());
            assert!(second.is_none(), "{text}: no tool call at all");
            assert!(is_text(&first, "Which task"), "{text}");
        }
    }

    #[test]
    fn titles_match_whole_words_and_ambiguity_asks() {
        // "it" is a substring of "Edit" and "kitchen": never a match.
        let (_, second) = steps("remove kitchen", kitchen());
        let Some(ModelReply::ToolCalls(calls)) = second else {
            panic!("kitchen names task 1")
        };
        assert_eq!(calls[0].arguments, json!({ "task_id": 1 }).to_string());
        let (_, second) = steps("delete milk", kitchen());
        assert!(is_text(second.as_ref().unwrap(), "Several tasks match"));
        let (_, second) = steps("delete buy milk", kitchen());
        let Some(ModelReply::ToolCalls(calls)) = second else {
            panic!("the exact title wins")
        };
        assert_eq!(calls[0].arguments, json!({ "task_id": 2 }).to_string());
        let (_, second) = steps("delete bread", kitchen());
        assert!(is_text(second.as_ref().unwrap(), "couldn't find"));
    }

    /// Random text from fragments that have broken parsers before: case changes that alter
    /// byte length, combining marks, quotes, verbs and separators in odd places.
    #[test]
    fn no_input_panics_or_acts_on_an_unnamed_task() {
        use rand::{rngs::StdRng, Rng, SeedableRng};
        let fragments = [
            "delete",
            "remove",
            "done",
            "mark",
            "rename",
            "add",
            " to ",
            " into ",
            " as done",
            "task",
            "#",
            "3",
            "it",
            "\u{212A}",
            "K",
            "\u{0130}",
            "\u{1E9E}",
            "ß",
            "e\u{301}",
            "ﬃ",
            "\u{2126}",
            "Ⱥ",
            "🙂",
            "\u{200D}",
            "\"",
            "“",
            " ",
            "  ",
            ".",
            "?",
            "please ",
            "with description ",
            "description: ",
            "the ",
            "of ",
            "'s title",
            "\0",
            "\n",
            "Σ",
        ];
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for _ in 0..20_000 {
            let n = rng.gen_range(1..8);
            let text: String = (0..n)
                .map(|_| fragments[rng.gen_range(0..fragments.len())])
                .collect();
            let (first, second) = steps(&text, kitchen());
            if let Some(ModelReply::ToolCalls(calls)) = &second {
                let arguments: Value = serde_json::from_str(&calls[0].arguments).unwrap();
                if let Some(id) = arguments.get("task_id").and_then(Value::as_i64) {
                    // A lookup by title picked a task: the title must name it by whole words.
                    let ModelReply::ToolCalls(first_calls) = &first else {
                        unreachable!()
                    };
                    assert_eq!(first_calls[0].name, "list_tasks", "{text:?}");
                    assert!((1..=3).contains(&id), "{text:?}");
                    let title = kitchen()["tasks"][(id - 1) as usize]["title"].to_string();
                    let named = text::words(&title);
                    assert!(
                        text::words(&text).iter().any(|w| named.contains(w)),
                        "{text:?} acted on task {id}"
                    );
                }
            }
        }
    }
}
