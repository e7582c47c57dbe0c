//! What the offline assistant says: confirmations of tool results, listings, questions, help.
//! User text is escaped so titles show as written (SPEC §10).

use serde_json::Value;

use super::super::ToolCallRequest;

/// Markdown-significant characters in user text are escaped so titles show as written.
pub fn escape(text: &str) -> String {
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

/// The question asked when the user gave a verb but no task ("delete", "remove it").
pub fn which_task(verb: &str) -> String {
    format!(
        "Which task should I {verb}? Tell me its number or its title, for example \
         \"{verb} task 2\". Say \"show my tasks\" to see them."
    )
}

/// The question asked when a title fits several tasks.
pub fn which_of(verb: &str, wanted: &str, candidates: &[(i64, String)]) -> String {
    let list: Vec<String> = candidates
        .iter()
        .map(|(id, title)| format!("- task {id}: **{}**", escape(title)))
        .collect();
    format!(
        "Several tasks match \"{}\":\n\n{}\n\nWhich one should I {verb}? Say its number, for \
         example \"{verb} task {}\".",
        escape(wanted),
        list.join("\n"),
        candidates.first().map(|c| c.0).unwrap_or(1)
    )
}

pub fn not_found(wanted: &str) -> String {
    format!(
        "I couldn't find a task matching \"{}\". Say \"show my tasks\" to see their numbers.",
        escape(wanted)
    )
}

pub fn confirm(done: &[(ToolCallRequest, Value)]) -> String {
    let lines: Vec<String> = done
        .iter()
        .filter(|(call, result)| {
            !(call.name == "list_tasks" && done.len() > 1 && result.get("error").is_none())
        })
        .map(|(call, result)| {
            if result.get("declined").and_then(Value::as_bool) == Some(true) {
                return "OK, I left it as it is: nothing was changed.".to_string();
            }
            if call.name == "undo_change" {
                if let Some(detail) = result.get("detail").and_then(Value::as_str) {
                    return format!("Undone. {}", escape(detail));
                }
                if let Some(error) = result.get("error").and_then(Value::as_str) {
                    let hint = if error.contains("changed since") {
                        " Say **undo it anyway** to put it back all the same."
                    } else {
                        ""
                    };
                    return format!("I couldn't undo that: {}.{hint}", escape(error));
                }
            }
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
                "add_task" => format!("Added task {id}: **{title}**{}.", planning_of(result)),
                "complete_task" => match result.get("next_due").and_then(Value::as_str) {
                    Some(next) => format!(
                        "Marked task {id} (**{title}**) as done; it repeats, next on {}.",
                        due_in_words(next)
                    ),
                    None => format!("Marked task {id} (**{title}**) as done."),
                },
                "delete_task" => format!("Deleted task {id}: **{title}**."),
                "update_task" => format!("Updated task {id}: it is now **{title}**."),
                "list_tasks" => listing(call, result),
                other => format!("Ran {other}."),
            }
        })
        .collect();
    lines.join("\n\n")
}

/// ", due Friday 13 March at 17:00" when the task has a due date.
fn planning_of(result: &Value) -> String {
    result
        .get("due")
        .and_then(Value::as_str)
        .map(|due| format!(", due {}", due_in_words(due)))
        .unwrap_or_default()
}

/// "2026-03-13T17:00" as "Friday 13 March at 17:00".
pub fn due_in_words(due: &str) -> String {
    let day = chrono::NaiveDate::parse_from_str(due.get(..10).unwrap_or(due), "%Y-%m-%d");
    match (day, due.get(11..16)) {
        (Ok(day), Some(time)) => format!("{} at {time}", day.format("%A %-d %B")),
        (Ok(day), None) => day.format("%A %-d %B").to_string(),
        _ => due.to_string(),
    }
}

fn listing(call: &ToolCallRequest, result: &Value) -> String {
    let arguments = serde_json::from_str::<Value>(&call.arguments).unwrap_or(Value::Null);
    let status = arguments
        .get("status")
        .and_then(Value::as_str)
        .unwrap_or("all");
    let view = arguments.get("view").and_then(Value::as_str);
    let kind = match (view, status) {
        (Some("today"), _) => "tasks due today",
        (Some("overdue"), _) => "overdue tasks",
        (Some("week" | "upcoming"), _) => "tasks due this week",
        (_, "pending") => "pending tasks",
        (_, "completed") => "completed tasks",
        _ => "tasks",
    };
    let tasks = result
        .get("tasks")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if tasks.is_empty() {
        return format!("You have no {kind}.");
    }
    if view.is_some() {
        let lines: Vec<String> = tasks
            .iter()
            .map(|t| {
                format!(
                    "- task {}: **{}**{}",
                    t.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    escape(t.get("title").and_then(Value::as_str).unwrap_or_default()),
                    t.get("due")
                        .and_then(Value::as_str)
                        .map(|d| format!(", due {}", due_in_words(d)))
                        .unwrap_or_default()
                )
            })
            .collect();
        return format!("You have {} {kind}:\n\n{}", tasks.len(), lines.join("\n"));
    }
    let kind = kind.trim_end_matches("tasks");
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

/// How the assistant works and everything it understands (an answer to "help").
pub fn explain() -> String {
    "I'm the offline assistant. I keep your to-do list: tell me in plain words what to add, \
     show, finish, rename or delete, and I change your tasks with the same tools any AI \
     client uses. Everything is saved, so this conversation and your tasks are here on any \
     device.\n\n\
     | To… | say for example |\n\
     |---|---|\n\
     | add a task | *add buy groceries*, *remind me to call mum*, *I need to pay rent* |\n\
     | see your tasks | *show my tasks*, *what's pending?*, *what have I completed?* |\n\
     | finish one | *mark task 1 as done*, *I finished buy groceries*, *task 2 is done* |\n\
     | change one | *rename task 1 to buy oat milk*, *update task 2 description to before noon* |\n\
     | delete one | *delete task 3*, *remove buy milk* |\n\n\
     Tasks are named by their number (as in the list) or by words of their title; when a name \
     fits several tasks, I ask which one you mean."
        .into()
}

pub fn help() -> String {
    "I'm the offline assistant: I manage your to-do list. Try for example:\n\n\
     - **Add** a task to buy groceries\n\
     - **Show** my pending tasks (or: what have I completed?)\n\
     - **Mark** task 1 as done\n\
     - **Rename** task 1 to buy oat milk\n\
     - **Delete** task 2\n\n\
     ```text\nadd call the dentist\nlist my tasks\ncomplete task 1\n```"
        .into()
}
