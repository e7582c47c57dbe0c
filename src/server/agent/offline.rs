//! The built-in offline assistant (SPEC §8): a deterministic model that understands everyday
//! to-do phrasings and answers exactly like a remote model would, with tool calls that go
//! through the same loop and MCP tools, then a short confirmation. Stateless: each call reads
//! the latest user message and the tool results that follow it.

use serde_json::{json, Value};

use super::{ModelReply, PromptMessage, ToolCallRequest};

pub struct OfflineModel;

#[derive(Debug, PartialEq)]
enum TaskRef {
    Number(i32),
    Title(String),
}

#[derive(Debug, PartialEq)]
enum Intent {
    Add {
        title: String,
        description: Option<String>,
    },
    List(&'static str),
    Complete(TaskRef),
    Delete(TaskRef),
    Update {
        target: TaskRef,
        title: Option<String>,
        description: Option<String>,
    },
    Help,
}

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
            None => first_step(intent),
            Some((call, result))
                if call.name == "list_tasks" && done.len() == 1 && needs_lookup(&intent) =>
            {
                resolve_by_title(intent, result)
            }
            Some(_) => ModelReply::Text(confirm(&done)),
        }
    }
}

fn call(name: &str, arguments: Value) -> ModelReply {
    ModelReply::ToolCalls(vec![ToolCallRequest {
        id: format!("offline_{name}"),
        name: name.into(),
        arguments: arguments.to_string(),
    }])
}

fn first_step(intent: Intent) -> ModelReply {
    match intent {
        Intent::Add { title, description } => call(
            "add_task",
            json!({ "title": title, "description": description }),
        ),
        Intent::List(status) => call("list_tasks", json!({ "status": status })),
        Intent::Complete(TaskRef::Number(n)) => call("complete_task", json!({ "task_id": n })),
        Intent::Delete(TaskRef::Number(n)) => call("delete_task", json!({ "task_id": n })),
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
        Intent::Help => ModelReply::Text(help()),
    }
}

fn needs_lookup(intent: &Intent) -> bool {
    matches!(
        intent,
        Intent::Complete(TaskRef::Title(_))
            | Intent::Delete(TaskRef::Title(_))
            | Intent::Update {
                target: TaskRef::Title(_),
                ..
            }
    )
}

/// Picks the task whose title matches best: exact, then containing the words, then contained.
fn resolve_by_title(intent: Intent, listing: &Value) -> ModelReply {
    let wanted = match &intent {
        Intent::Complete(TaskRef::Title(t)) | Intent::Delete(TaskRef::Title(t)) => t.clone(),
        Intent::Update {
            target: TaskRef::Title(t),
            ..
        } => t.clone(),
        _ => return ModelReply::Text(help()),
    };
    let tasks = listing
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let norm = |s: &str| {
        s.to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let wanted_norm = norm(&wanted);
    let title_of = |t: &Value| norm(t.get("title").and_then(Value::as_str).unwrap_or_default());
    let pick = tasks
        .iter()
        .find(|t| title_of(t) == wanted_norm)
        .or_else(|| tasks.iter().find(|t| title_of(t).contains(&wanted_norm)))
        .or_else(|| {
            tasks
                .iter()
                .find(|t| !title_of(t).is_empty() && wanted_norm.contains(&title_of(t)))
        });
    let Some(id) = pick.and_then(|t| t.get("id")).and_then(Value::as_i64) else {
        return ModelReply::Text(format!(
            "I couldn't find a task matching \"{}\". Say \"show my tasks\" to see their numbers.",
            escape(&wanted)
        ));
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

/// Markdown-significant characters in user text are escaped so titles show as written.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '#'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn confirm(done: &[(ToolCallRequest, Value)]) -> String {
    let lines: Vec<String> = done
        .iter()
        .filter(|(call, result)| {
            !(call.name == "list_tasks" && done.len() > 1 && result.get("error").is_none())
        })
        .map(|(call, result)| {
            if let Some(error) = result.get("error").and_then(Value::as_str) {
                return format!("I couldn't do that: {}.", escape(error));
            }
            let id = result
                .get("task_id")
                .and_then(Value::as_i64)
                .unwrap_or_default();
            let title = escape(
                result
                    .get("title")
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
            );
            match call.name.as_str() {
                "add_task" => format!("Added task {id}: **{title}**."),
                "complete_task" => format!("Marked task {id} (**{title}**) as done."),
                "delete_task" => format!("Deleted task {id}: **{title}**."),
                "update_task" => format!("Updated task {id}: it is now **{title}**."),
                "list_tasks" => listing(call, result),
                other => format!("Ran {other}."),
            }
        })
        .collect();
    lines.join("\n\n")
}

fn listing(call: &ToolCallRequest, result: &Value) -> String {
    let status = serde_json::from_str::<Value>(&call.arguments)
        .ok()
        .and_then(|a| a.get("status").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_else(|| "all".into());
    let kind = match status.as_str() {
        "pending" => "pending ",
        "completed" => "completed ",
        _ => "",
    };
    let tasks = result
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tasks.is_empty() {
        return format!("You have no {kind}tasks.");
    }
    let mut out = format!(
        "You have {} {kind}task{}:\n\n| # | Task | Status |\n|---:|---|---|\n",
        tasks.len(),
        if tasks.len() == 1 { "" } else { "s" }
    );
    for task in &tasks {
        let done = task
            .get("completed")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let title = escape(
            task.get("title")
                .and_then(Value::as_str)
                .unwrap_or_default(),
        );
        let description = task
            .get("description")
            .and_then(Value::as_str)
            .map(|d| format!(" — {}", escape(d)))
            .unwrap_or_default();
        out.push_str(&format!(
            "| {} | {title}{description} | {} |\n",
            task.get("id").and_then(Value::as_i64).unwrap_or_default(),
            if done { "✓ done" } else { "○ pending" }
        ));
    }
    out
}

fn help() -> String {
    "I'm the offline assistant: I manage your to-do list. Try for example:\n\n\
     - **Add** a task to buy groceries\n\
     - **Show** my pending tasks (or: what have I completed?)\n\
     - **Mark** task 1 as done\n\
     - **Rename** task 1 to buy oat milk\n\
     - **Delete** task 2\n\n\
     ```text\nadd call the dentist\nlist my tasks\ncomplete task 1\n```"
        .into()
}

// ---- parsing ---------------------------------------------------------------------------------

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

fn parse(text: &str) -> Intent {
    let original = text.trim().trim_end_matches(['.', '!', '?']).trim();
    let mut rest = original.to_string();
    loop {
        let lower = rest.to_lowercase();
        let Some(prefix) = POLITE.iter().find(|p| lower.starts_with(*p)) else {
            break;
        };
        rest = rest[prefix.len()..]
            .trim_start_matches([',', ' '])
            .to_string();
    }
    let rest = rest.trim_start_matches([',', ' ']).to_string();
    let lower = rest.to_lowercase();
    let starts = |words: &[&str]| {
        words
            .iter()
            .find(|w| lower.starts_with(&format!("{w} ")) || lower == **w)
            .map(|w| w.len())
    };

    if let Some(n) = starts(&["rename", "change", "update", "edit", "modify"]) {
        return parse_update(rest[n..].trim());
    }
    if let Some(n) = starts(&[
        "delete",
        "remove",
        "cancel",
        "drop",
        "erase",
        "get rid of",
        "forget about",
        "forget",
    ]) {
        return Intent::Delete(task_ref(rest[n..].trim()));
    }
    if let Some(n) = starts(&[
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
    ]) {
        return Intent::Complete(task_ref(rest[n..].trim()));
    }
    if let Some(n) = starts(&[
        "remind me to",
        "remember to",
        "i need to",
        "i have to",
        "i must",
        "don't forget to",
    ]) {
        return add(rest[n..].trim());
    }
    if let Some(n) = starts(&[
        "add", "remember", "create", "new task", "put", "todo", "to-do", "note",
    ]) {
        return add(rest[n..].trim());
    }
    let listy = [
        "show", "list", "what", "which", "display", "tasks", "my tasks", "pending", "todo",
        "to-do", "to do",
    ];
    if listy.iter().any(|w| lower.starts_with(w))
        || lower.contains("my tasks")
        || lower.contains("task list")
    {
        let status = if ["complete", "done", "finished"]
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
        };
        return Intent::List(status);
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
        if let Some(subject) = lower.strip_suffix(suffix) {
            return Intent::Complete(task_ref(&rest[..subject.len()]));
        }
    }
    Intent::Help
}

fn add(text: &str) -> Intent {
    let mut title = text.to_string();
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
    if let Some(f) = fillers
        .iter()
        .find(|f| title.to_lowercase().starts_with(*f))
    {
        title = title[f.len()..].to_string();
    }
    for suffix in [
        " to my to-do list",
        " to my todo list",
        " to my list",
        " to the list",
        " to my tasks",
        " to the to-do list",
        " on my list",
    ] {
        if title.to_lowercase().ends_with(suffix) {
            title.truncate(title.len() - suffix.len());
        }
    }
    let (title, description) = match split_ci(&title, " with description ")
        .or_else(|| split_ci(&title, " description: "))
    {
        Some((t, d)) => (t, Some(unquote(&d))),
        None => (title, None),
    };
    let title = unquote(&title);
    if title.is_empty() {
        return Intent::Help;
    }
    let mut chars = title.chars();
    let title = match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => title,
    };
    Intent::Add { title, description }
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
    .find(|p| lower.starts_with(*p))
    .map(|p| target[p.len()..].to_string())
    .unwrap_or(target);
    let target = [
        "'s description",
        " description",
        "'s title",
        " title",
        "'s name",
        " name",
    ]
    .iter()
    .find(|s| target.to_lowercase().ends_with(*s))
    .map(|s| target[..target.len() - s.len()].to_string())
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
        target: task_ref(&target),
        title,
        description,
    }
}

/// "task 3", "#3", "number 3", "3", or else a title ("buy milk").
fn task_ref(text: &str) -> TaskRef {
    let mut t = text.trim().to_string();
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
        if t.to_lowercase().ends_with(suffix) {
            t.truncate(t.len() - suffix.len());
        }
    }
    let lower = t.to_lowercase();
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
    .find(|p| lower.starts_with(*p))
    .map(|p| t[p.len()..].trim().to_string())
    .unwrap_or_else(|| t.clone());
    let digits = stripped.trim_start_matches('#');
    match digits.parse::<i32>() {
        Ok(n) => TaskRef::Number(n),
        Err(_) => TaskRef::Title(unquote(&stripped)),
    }
}

fn unquote(text: &str) -> String {
    text.trim()
        .trim_matches(['"', '\'', '“', '”', '‘', '’'])
        .trim()
        .to_string()
}

/// Splits at the first case-insensitive occurrence of `sep`.
fn split_ci(text: &str, sep: &str) -> Option<(String, String)> {
    let i = text.to_lowercase().find(sep)?;
    // Lower-casing can change byte lengths for some scripts; fall back to no split then.
    if !text.is_char_boundary(i) || !text.is_char_boundary(i + sep.len()) {
        return None;
    }
    Some((
        text[..i].trim().to_string(),
        text[i + sep.len()..].trim().to_string(),
    ))
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
}
