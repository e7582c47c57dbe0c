//! Plain words about when, how often and how important, taken out of a new task's title:
//! "call the dentist on Friday at 5pm #health p1" is "Call the dentist", due Friday 17:00,
//! tagged health, priority 1. Dates resolve against the user's local now; a date or time that
//! has passed is asked about, never guessed.

use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, Weekday};

/// What the words said.
#[derive(Debug, Default, PartialEq)]
pub struct Planned {
    pub title: String,
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM`.
    pub due: Option<String>,
    pub priority: Option<u8>,
    pub tags: Vec<String>,
    pub recurrence: Option<String>,
    /// A question instead of a guess (the date has passed).
    pub question: Option<String>,
}

const WEEKDAYS: [(&str, Weekday); 14] = [
    ("monday", Weekday::Mon),
    ("tuesday", Weekday::Tue),
    ("wednesday", Weekday::Wed),
    ("thursday", Weekday::Thu),
    ("friday", Weekday::Fri),
    ("saturday", Weekday::Sat),
    ("sunday", Weekday::Sun),
    ("mon", Weekday::Mon),
    ("tue", Weekday::Tue),
    ("wed", Weekday::Wed),
    ("thu", Weekday::Thu),
    ("fri", Weekday::Fri),
    ("sat", Weekday::Sat),
    ("sun", Weekday::Sun),
];

const MONTHS: [&str; 12] = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

fn weekday(word: &str) -> Option<Weekday> {
    let word = word.trim_end_matches([',', '.']);
    WEEKDAYS
        .iter()
        .find(|(name, _)| *name == word || format!("{name}s") == word)
        .map(|(_, day)| *day)
}

fn month(word: &str) -> Option<u32> {
    let word = word.trim_end_matches([',', '.']);
    MONTHS
        .iter()
        .position(|m| {
            *m == word || (word.len() >= 3 && m.starts_with(word) && word.len() <= m.len())
        })
        .map(|i| i as u32 + 1)
}

/// "1st", "2nd", "12", "31st" → the day number.
fn day_number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches([',', '.']);
    let digits = ["st", "nd", "rd", "th"]
        .iter()
        .find_map(|s| digits.strip_suffix(s))
        .unwrap_or(digits);
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn code(day: Weekday) -> &'static str {
    ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][day.num_days_from_monday() as usize]
}

/// The first `day` on or after `from`.
fn on_or_after(from: NaiveDate, day: Weekday) -> NaiveDate {
    let ahead = (day.num_days_from_monday() + 7 - from.weekday().num_days_from_monday()) % 7;
    from + Duration::days(i64::from(ahead))
}

/// "5pm", "5:30pm", "17:00", "9", "noon", "midnight" (after "at").
fn time_of(words: &[&str]) -> Option<(NaiveTime, usize)> {
    let first = *words.first()?;
    match first {
        "noon" | "midday" => return Some((NaiveTime::from_hms_opt(12, 0, 0)?, 1)),
        "midnight" => return Some((NaiveTime::from_hms_opt(23, 59, 0)?, 1)),
        _ => {}
    }
    let (text, used) = match words.get(1) {
        Some(&suffix) if suffix == "am" || suffix == "pm" => (format!("{first}{suffix}"), 2),
        _ => (first.to_string(), 1),
    };
    let (clock, half) = if let Some(t) = text.strip_suffix("am") {
        (t, Some(false))
    } else if let Some(t) = text.strip_suffix("pm") {
        (t, Some(true))
    } else {
        (text.as_str(), None)
    };
    let (hour, minute) = match clock.split_once([':', '.']) {
        Some((h, m)) => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        None => (clock.parse::<u32>().ok()?, 0),
    };
    let hour = match half {
        Some(pm) if (1..=12).contains(&hour) => hour % 12 + if pm { 12 } else { 0 },
        Some(_) => return None,
        None if hour <= 23 => hour,
        None => return None,
    };
    Some((NaiveTime::from_hms_opt(hour, minute, 0)?, used))
}

/// Reads the words; every part it understood is taken out of the title.
pub fn plan(text: &str, now: NaiveDateTime) -> Planned {
    let today = now.date();
    let words: Vec<&str> = text.split_whitespace().collect();
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let low: Vec<&str> = lower.iter().map(String::as_str).collect();
    let mut keep = vec![true; words.len()];
    let mut planned = Planned::default();
    let mut date: Option<NaiveDate> = None;
    let mut time: Option<NaiveTime> = None;
    let mut month_day: Option<u32> = None;
    let mut i = 0;
    // Marks words i..i+n as understood (and a connector right before them).
    let take = |keep: &mut Vec<bool>, from: usize, n: usize| {
        for k in keep.iter_mut().skip(from).take(n) {
            *k = false;
        }
        if from > 0
            && ["on", "by", "at", "due", "for", "from", "next", "this", ","]
                .contains(&low[from - 1])
        {
            keep[from - 1] = false;
        }
    };
    while i < words.len() {
        let w = low[i];
        let next = low.get(i + 1).copied().unwrap_or("");
        let after = low.get(i + 2).copied().unwrap_or("");
        // Tags and priorities.
        if let Some(tag) = w.strip_prefix('#').filter(|t| !t.is_empty()) {
            planned
                .tags
                .push(tag.trim_end_matches([',', '.']).to_string());
            take(&mut keep, i, 1);
        } else if let Some(p) = w
            .strip_prefix('p')
            .and_then(|p| p.trim_end_matches(',').parse::<u8>().ok())
            .filter(|p| (1..=4).contains(p))
        {
            planned.priority = Some(p);
            take(&mut keep, i, 1);
        } else if w.trim_end_matches(',') == "urgent" || w == "urgently" || w == "asap" {
            planned.priority = Some(1);
            take(&mut keep, i, 1);
        } else if next.trim_end_matches(',') == "priority"
            && ["high", "top", "medium", "low"].contains(&w)
        {
            planned.priority = Some(match w {
                "top" => 1,
                "high" => 2,
                "medium" => 3,
                _ => 4,
            });
            take(&mut keep, i, 2);
            if i > 0 && low[i - 1] == "with" {
                keep[i - 1] = false;
            }
            i += 1;
        // Repeats.
        } else if w == "every" || w == "each" {
            let (rule, used) = match (next, after) {
                ("day", _) => ("FREQ=DAILY".to_string(), 2),
                ("weekday", _) => ("FREQ=WEEKLY;BYDAY=MO,TU,WE,TH,FR".to_string(), 2),
                ("week", _) => ("FREQ=WEEKLY".to_string(), 2),
                ("month", _) => ("FREQ=MONTHLY".to_string(), 2),
                ("year", _) => ("FREQ=YEARLY".to_string(), 2),
                ("other", d) if weekday(d).is_some() => {
                    let day = weekday(d).unwrap_or(Weekday::Mon);
                    (format!("FREQ=WEEKLY;INTERVAL=2;BYDAY={}", code(day)), 3)
                }
                ("other", "week") => ("FREQ=WEEKLY;INTERVAL=2".to_string(), 3),
                ("other", "day") => ("FREQ=DAILY;INTERVAL=2".to_string(), 3),
                ("other", "month") => ("FREQ=MONTHLY;INTERVAL=2".to_string(), 3),
                (d, _) if weekday(d).is_some() => {
                    let day = weekday(d).unwrap_or(Weekday::Mon);
                    (format!("FREQ=WEEKLY;BYDAY={}", code(day)), 2)
                }
                (n, unit) if n.parse::<u16>().is_ok() => {
                    let freq = match unit.trim_end_matches('s') {
                        "day" => "DAILY",
                        "week" => "WEEKLY",
                        "month" => "MONTHLY",
                        "year" => "YEARLY",
                        _ => "",
                    };
                    if freq.is_empty() {
                        i += 1;
                        continue;
                    }
                    (format!("FREQ={freq};INTERVAL={n}"), 3)
                }
                _ => {
                    i += 1;
                    continue;
                }
            };
            planned.recurrence = Some(rule);
            take(&mut keep, i, used);
            i += used;
            continue;
        } else if ["daily", "weekly", "monthly", "yearly", "annually"].contains(&w.trim_end_matches(','))
            // An adverb at the end ("back up the laptop monthly"), not a title's adjective
            // ("weekly review").
            && (next.is_empty()
                || next.starts_with('#')
                || ["at", "on", "from", "starting", "p1", "p2", "p3", "p4", "urgent"].contains(&next))
        {
            let freq = match w.trim_end_matches(',') {
                "annually" => "YEARLY".to_string(),
                other => other.to_uppercase(),
            };
            planned.recurrence = Some(format!("FREQ={freq}"));
            take(&mut keep, i, 1);
        } else if w == "the"
            && day_number(next).is_some()
            && planned.recurrence.as_deref() == Some("FREQ=MONTHLY")
            && i > 0
            && low[i - 1] == "on"
        {
            // "every month on the 1st"
            month_day = day_number(next);
            take(&mut keep, i, 2);
            i += 2;
            continue;
        // Days.
        } else if w == "today" || w == "tonight" {
            date = Some(today);
            if w == "tonight" && time.is_none() {
                time = NaiveTime::from_hms_opt(20, 0, 0);
            }
            take(&mut keep, i, 1);
        } else if w == "tomorrow" {
            date = Some(today + Duration::days(1));
            take(&mut keep, i, 1);
        } else if w == "in" && (next.parse::<i64>().is_ok() || next == "a" || next == "an") {
            let n = next.parse::<i64>().unwrap_or(1);
            let days = match after.trim_end_matches('s') {
                "day" => Some(n),
                "week" => Some(7 * n),
                _ => None,
            }
            // Within ten years (further is not a to-do, and not a date chrono can add).
            .filter(|d| (0..=3650).contains(d));
            if let Some(days) = days {
                date = Some(today + Duration::days(days));
                take(&mut keep, i, 3);
                i += 3;
                continue;
            }
        } else if (w == "end" || w == "the") && (next == "end" || next == "of") {
            // "by the end of the month", "end of the week"
            let rest: Vec<&str> = low[i..].iter().take(5).copied().collect();
            let phrase = rest.join(" ");
            let (target, used) = if phrase.starts_with("the end of the month") {
                (Some(last_of_month(today)), 5)
            } else if phrase.starts_with("end of the month")
                || phrase.starts_with("the end of month")
            {
                (Some(last_of_month(today)), 4)
            } else if phrase.starts_with("end of month") {
                (Some(last_of_month(today)), 3)
            } else if phrase.starts_with("the end of the week") {
                (Some(on_or_after(today, Weekday::Sun)), 5)
            } else if phrase.starts_with("end of the week") {
                (Some(on_or_after(today, Weekday::Sun)), 4)
            } else {
                (None, 0)
            };
            if let Some(target) = target {
                date = Some(target);
                take(&mut keep, i, used);
                i += used;
                continue;
            }
        } else if let Some(day) = weekday(w)
            .filter(|_| i > 0 && ["on", "by", "next", "this", "due"].contains(&low[i - 1]))
        {
            let mut target = on_or_after(today, day);
            if low[i - 1] == "next" && target == today {
                target += Duration::days(7);
            }
            date = Some(target);
            take(&mut keep, i, 1);
        } else if let Some((d, m)) = day_and_month(w, next, i > 0 && low[i - 1] == "on") {
            // "12 March", "on March 12", a year after them or not
            let (year, used) = year_of(after, today);
            date = NaiveDate::from_ymd_opt(year, m, d);
            if date.is_some() {
                take(&mut keep, i, used);
                i += used;
                continue;
            }
        // Times.
        } else if w == "at" {
            if let Some((at, used)) = time_of(&low[i + 1..]) {
                time = Some(at);
                take(&mut keep, i, used + 1);
                i += used + 1;
                continue;
            }
        } else if let Some((at, used)) = time_of(&low[i..])
            .filter(|_| w.ends_with("am") || w.ends_with("pm") || next == "am" || next == "pm")
        {
            time = Some(at);
            take(&mut keep, i, used);
            i += used;
            continue;
        }
        i += 1;
    }
    planned.title = tidy(&words, &keep);
    if let Some(rule) = planned.recurrence.as_mut() {
        if let Some(day) = month_day {
            rule.push_str(&format!(";BYMONTHDAY={day}"));
        }
    }
    // A repeat starts at its first occurrence from today (from tomorrow when today's time has
    // passed).
    if date.is_none() {
        if let Some(rule) = &planned.recurrence {
            let passed_today = time.is_some_and(|t| t <= now.time());
            date = Some(first_day(rule, today, passed_today));
        }
    }
    if time.is_some() && date.is_none() {
        date = Some(today);
    }
    if let Some(day) = date {
        let passed = day < today || (day == today && time.is_some_and(|t| t <= now.time()));
        if passed {
            planned.question = Some(past_question(day, time));
        }
        planned.due = Some(match time {
            Some(at) => format!("{}T{}", day.format("%Y-%m-%d"), at.format("%H:%M")),
            None => day.format("%Y-%m-%d").to_string(),
        });
    }
    planned
}

/// The first day on or after `today` (after it, with `skip_today`) that `rule` can fall on.
fn first_day(rule: &str, today: NaiveDate, skip_today: bool) -> NaiveDate {
    let part = |key: &str| {
        rule.split(';')
            .find_map(|p| p.strip_prefix(key)?.strip_prefix('='))
    };
    let fits = |day: NaiveDate| {
        part("BYDAY").is_none_or(|days| days.split(',').any(|d| d == code(day.weekday())))
            && part("BYMONTHDAY")
                .and_then(|d| d.parse::<u32>().ok())
                .is_none_or(|d| day.day() == d)
    };
    (i64::from(skip_today)..400)
        .map(|k| today + Duration::days(k))
        .find(|day| fits(*day))
        .unwrap_or(today)
}

/// (day, month) of "12 March", or of "March 12" right after "on".
fn day_and_month(first: &str, second: &str, after_on: bool) -> Option<(u32, u32)> {
    day_number(first).zip(month(second)).or_else(|| {
        month(first)
            .filter(|_| after_on)
            .zip(day_number(second))
            .map(|(m, d)| (d, m))
    })
}

/// The year a day-and-month without a year falls in (this one), or the one given.
fn year_of(word: &str, today: NaiveDate) -> (i32, usize) {
    match word.trim_end_matches([',', '.']).parse::<i32>() {
        Ok(year) if (2000..=2200).contains(&year) => (year, 3),
        _ => (today.year(), 2),
    }
}

fn last_of_month(day: NaiveDate) -> NaiveDate {
    let (y, m) = if day.month() == 12 {
        (day.year() + 1, 1)
    } else {
        (day.year(), day.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(day)
}

fn past_question(day: NaiveDate, time: Option<NaiveTime>) -> String {
    let when = match time {
        Some(at) => format!("{} at {}", day.format("%A %-d %B %Y"), at.format("%H:%M")),
        None => day.format("%A %-d %B %Y").to_string(),
    };
    format!(
        "{when} has already passed, so I haven't added anything. When should it be due? For \
         example \"tomorrow at 9am\" or \"on {} {}\".",
        day.format("%-d %B"),
        day.year() + 1
    )
}

/// The words left, without a dangling connector or punctuation, first letter upper case.
fn tidy(words: &[&str], keep: &[bool]) -> String {
    let mut left: Vec<&str> = words
        .iter()
        .zip(keep)
        .filter(|(_, k)| **k)
        .map(|(w, _)| *w)
        .collect();
    while let Some(last) = left.last() {
        let l = last.to_lowercase();
        if [
            "on", "by", "at", "due", "and", "with", "-", ",", "for", "every", "next", "this",
        ]
        .contains(&l.as_str())
        {
            left.pop();
        } else {
            break;
        }
    }
    let title = left.join(" ");
    let title = title.trim_end_matches([',', ';', ':', '-', ' ']).trim();
    let mut chars = title.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> NaiveDateTime {
        // Tuesday 10 March 2026, 10:00.
        NaiveDateTime::parse_from_str("2026-03-10T10:00", "%Y-%m-%dT%H:%M").unwrap()
    }

    #[test]
    fn words_about_when_leave_the_title() {
        let p = plan("call the dentist on Friday at 5pm #health p1", now());
        assert_eq!(p.title, "Call the dentist");
        assert_eq!(p.due.as_deref(), Some("2026-03-13T17:00"));
        assert_eq!(p.tags, ["health"]);
        assert_eq!(p.priority, Some(1));
        assert_eq!(p.question, None);
    }

    #[test]
    fn odd_words_never_panic() {
        for text in [
            "",
            "at",
            "every",
            "in",
            "on the",
            "#",
            "p",
            "at 25pm",
            "at 13pm",
            "every 0 days",
            "in 99999999999 days",
            "in -3 days",
            "on 31 february",
            "12 march 99999",
            "every other",
            "by the end of",
            "tonight at midnight",
            "on",
            "the 1st",
            "every month on the 99th",
        ] {
            let _ = plan(text, now());
        }
        assert_eq!(plan("in 99999999999 days", now()).due, None);
    }

    #[test]
    fn a_past_date_is_asked_about() {
        let p = plan("pay rent on 1 March", now());
        assert!(p.question.unwrap().contains("already passed"));
        let p = plan("stand-up today at 9am", now());
        assert!(p.question.is_some());
    }
}
