//! The task panel's sections and due dates in words, from the tasks and the user's local now
//! (both from the server, so the server-rendered page and the hydrated one agree). Pure and
//! shared by the server and the browser.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

use super::Task;

/// The user's tasks and their local now (`YYYY-MM-DDTHH:MM` in their time zone).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TaskBoard {
    pub local_now: String,
    /// The user's time zone, `None` until one is set (the browser then offers its own).
    #[serde(default)]
    pub time_zone: Option<String>,
    pub tasks: Vec<Task>,
}

/// The panel's sections, each in the order the tasks are due.
#[derive(Debug, Default, PartialEq)]
pub struct Sections {
    pub overdue: Vec<Task>,
    pub today: Vec<Task>,
    /// The next 7 days, one entry per day that has tasks.
    pub upcoming: Vec<(NaiveDate, Vec<Task>)>,
    /// Open tasks due later, or never.
    pub later: Vec<Task>,
    pub completed: Vec<Task>,
}

/// A due day, and its time if it has one.
pub type DueAt = (NaiveDate, Option<chrono::NaiveTime>);

/// A due date as the API writes it: the day, and the time if any.
pub fn parse_due(due: &str) -> Option<DueAt> {
    let date = NaiveDate::parse_from_str(due.get(..10)?, "%Y-%m-%d").ok()?;
    let time = due
        .get(11..16)
        .and_then(|t| chrono::NaiveTime::parse_from_str(t, "%H:%M").ok());
    Some((date, time))
}

pub fn parse_now(local_now: &str) -> Option<NaiveDateTime> {
    NaiveDateTime::parse_from_str(local_now.get(..16)?, "%Y-%m-%dT%H:%M").ok()
}

/// Whether an open task's due time has passed at `now`.
fn is_overdue(due: DueAt, now: NaiveDateTime) -> bool {
    match due {
        (date, Some(time)) => date.and_time(time) <= now,
        (date, None) => date < now.date(),
    }
}

/// Sorts the tasks into the panel's sections (`tag`: only tasks with it).
pub fn sections(board: &TaskBoard, tag: Option<&str>) -> Sections {
    let Some(now) = parse_now(&board.local_now) else {
        return Sections {
            later: board
                .tasks
                .iter()
                .filter(|t| !t.completed)
                .cloned()
                .collect(),
            completed: board
                .tasks
                .iter()
                .filter(|t| t.completed)
                .cloned()
                .collect(),
            ..Default::default()
        };
    };
    let today = now.date();
    let mut open: Vec<(Option<DueAt>, &Task)> = Vec::new();
    let mut out = Sections::default();
    for task in board
        .tasks
        .iter()
        .filter(|t| tag.is_none_or(|tag| t.tags.iter().any(|g| g == tag)))
    {
        if task.completed {
            out.completed.push(task.clone());
        } else {
            open.push((task.due.as_deref().and_then(parse_due), task));
        }
    }
    // By when they are due (whole days at the end of their day), then priority, then number.
    open.sort_by_key(|(due, task)| {
        let at = due.map(|(d, t)| {
            d.and_time(t.unwrap_or(chrono::NaiveTime::from_hms_opt(23, 59, 59).unwrap_or_default()))
        });
        (at.is_none(), at, task.priority, task.id)
    });
    for (due, task) in open {
        match due {
            Some(due) if is_overdue(due, now) => out.overdue.push(task.clone()),
            Some((date, _)) if date == today => out.today.push(task.clone()),
            Some((date, _)) if date > today && date <= today + Duration::days(7) => {
                match out.upcoming.last_mut() {
                    Some((day, tasks)) if *day == date => tasks.push(task.clone()),
                    _ => out.upcoming.push((date, vec![task.clone()])),
                }
            }
            _ => out.later.push(task.clone()),
        }
    }
    out
}

/// A due date in words, relative to `now`: "today", "tomorrow 17:00", "Fri", "13 Mar",
/// "overdue 2 days", "overdue since 09:00".
pub fn due_in_words(due: &str, now: NaiveDateTime) -> String {
    let Some((date, time)) = parse_due(due) else {
        return due.to_string();
    };
    let today = now.date();
    if is_overdue((date, time), now) {
        let days = (today - date).num_days();
        return match (days, time) {
            (0, Some(time)) => format!("overdue since {}", time.format("%H:%M")),
            (1, _) => "overdue 1 day".into(),
            (n, _) => format!("overdue {n} days"),
        };
    }
    let ahead = (date - today).num_days();
    let day = match ahead {
        0 => "today".to_string(),
        1 => "tomorrow".to_string(),
        2..=6 => date.format("%a").to_string(),
        _ if date.year() == today.year() => date.format("%-d %b").to_string(),
        _ => date.format("%-d %b %Y").to_string(),
    };
    match time {
        Some(time) => format!("{day} {}", time.format("%H:%M")),
        None => day,
    }
}

/// An upcoming day's heading: "Tomorrow", "Friday 13 March".
pub fn day_heading(date: NaiveDate, now: NaiveDateTime) -> String {
    if date == now.date() + Duration::days(1) {
        "Tomorrow".into()
    } else {
        date.format("%A %-d %B").to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn task(id: i32, due: Option<&str>, completed: bool) -> Task {
        Task {
            id,
            title: format!("t{id}"),
            description: None,
            completed,
            created_at: chrono::DateTime::default(),
            updated_at: chrono::DateTime::default(),
            due: due.map(String::from),
            priority: 4,
            tags: if id % 2 == 0 {
                vec!["even".into()]
            } else {
                vec![]
            },
            recurrence: None,
        }
    }

    fn now() -> NaiveDateTime {
        parse_now("2026-03-10T10:00").unwrap() // a Tuesday
    }

    #[test]
    fn tasks_fall_into_their_sections() {
        let board = TaskBoard {
            local_now: "2026-03-10T10:00".into(),
            time_zone: None,
            tasks: vec![
                task(1, Some("2026-03-09"), false),
                task(2, Some("2026-03-10T09:00"), false),
                task(3, Some("2026-03-10"), false),
                task(4, Some("2026-03-10T17:00"), false),
                task(5, Some("2026-03-11"), false),
                task(6, Some("2026-03-13T08:00"), false),
                task(7, Some("2026-03-13"), false),
                task(8, Some("2026-03-18"), false),
                task(9, None, false),
                task(10, Some("2026-03-01"), true),
            ],
        };
        let ids = |tasks: &[Task]| tasks.iter().map(|t| t.id).collect::<Vec<_>>();
        let s = sections(&board, None);
        assert_eq!(ids(&s.overdue), [1, 2]);
        assert_eq!(
            ids(&s.today),
            [4, 3],
            "timed first, the whole day at its end"
        );
        assert_eq!(s.upcoming.len(), 2);
        assert_eq!(ids(&s.upcoming[0].1), [5]);
        assert_eq!(ids(&s.upcoming[1].1), [6, 7]);
        assert_eq!(ids(&s.later), [8, 9]);
        assert_eq!(ids(&s.completed), [10]);
        let even = sections(&board, Some("even"));
        assert_eq!(ids(&even.overdue), [2]);
        assert_eq!(ids(&even.completed), [10]);
    }

    #[test]
    fn due_dates_read_as_words() {
        let now = now();
        assert_eq!(due_in_words("2026-03-10", now), "today");
        assert_eq!(due_in_words("2026-03-11T17:00", now), "tomorrow 17:00");
        assert_eq!(due_in_words("2026-03-13", now), "Fri");
        assert_eq!(due_in_words("2026-03-20", now), "20 Mar");
        assert_eq!(due_in_words("2027-01-02", now), "2 Jan 2027");
        assert_eq!(due_in_words("2026-03-08", now), "overdue 2 days");
        assert_eq!(due_in_words("2026-03-09T23:00", now), "overdue 1 day");
        assert_eq!(due_in_words("2026-03-10T09:00", now), "overdue since 09:00");
        assert_eq!(
            day_heading(NaiveDate::from_ymd_opt(2026, 3, 11).unwrap(), now),
            "Tomorrow"
        );
        assert_eq!(
            day_heading(NaiveDate::from_ymd_opt(2026, 3, 13).unwrap(), now),
            "Friday 13 March"
        );
    }
}
