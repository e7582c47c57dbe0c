//! When tasks are due, in the user's time zone: the due day (and time) as written, the instant
//! it becomes overdue, the planning views' bounds, and the next occurrence of a repeating task
//! (an RFC 5545 RRULE subset, expanded by the `rrule` crate). Pure: the clock is an argument.

use chrono::{DateTime, Duration, LocalResult, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;

use crate::{
    model::{MAX_TAGS, MAX_TAG_CHARS},
    server::error::{AppError, AppResult},
};

/// A due day, with a time of day or for the whole day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Due {
    pub date: NaiveDate,
    pub time: Option<NaiveTime>,
}

impl Due {
    /// `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM` (seconds, if given, must be zero).
    pub fn parse(text: &str) -> AppResult<Self> {
        let text = text.trim();
        let invalid = || {
            AppError::validation(format!(
                "due must be a day (2026-03-13) or a day and a time (2026-03-13T17:00), got {text:?}"
            ))
        };
        if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
            return Ok(Self { date, time: None });
        }
        let at = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
            .map_err(|_| invalid())?;
        if at.and_utc().timestamp() % 60 != 0 {
            return Err(invalid());
        }
        Ok(Self {
            date: at.date(),
            time: Some(at.time()),
        })
    }

    /// As the API writes it.
    pub fn format(date: NaiveDate, time: Option<NaiveTime>) -> String {
        match time {
            Some(time) => format!("{}T{}", date.format("%Y-%m-%d"), time.format("%H:%M")),
            None => date.format("%Y-%m-%d").to_string(),
        }
    }
}

fn next_day(date: NaiveDate) -> NaiveDate {
    date.succ_opt().unwrap_or(date)
}

/// A wall-clock time in `zone` as an instant: the earlier one when the clock is set back, the
/// first one after a gap when it jumps forward.
pub fn local_instant(zone: Tz, at: NaiveDateTime) -> DateTime<Utc> {
    for minutes in [0, 30, 60, 90, 120] {
        match zone.from_local_datetime(&(at + Duration::minutes(minutes))) {
            LocalResult::Single(t) => return t.with_timezone(&Utc),
            LocalResult::Ambiguous(earlier, _) => return earlier.with_timezone(&Utc),
            LocalResult::None => continue,
        }
    }
    at.and_utc()
}

/// The user's zone (UTC until one is set).
pub fn zone_of(name: Option<&str>) -> Tz {
    name.and_then(|n| n.parse().ok()).unwrap_or(Tz::UTC)
}

/// A time zone as the settings accept it: an IANA name.
pub fn clean_zone(name: &str) -> AppResult<String> {
    let name = name.trim();
    name.parse::<Tz>()
        .map(|zone| zone.name().to_string())
        .map_err(|_| {
            AppError::validation(format!(
                "time_zone must be an IANA time zone such as Europe/Berlin, got {name:?}"
            ))
        })
}

/// The local day in `zone` at `now`.
pub fn today(zone: Tz, now: DateTime<Utc>) -> NaiveDate {
    now.with_timezone(&zone).date_naive()
}

/// Tags as stored: `#` dropped, lowercase, no duplicates, each 1..32 letters, digits, `-`, `_`.
pub fn clean_tags(tags: &[String]) -> AppResult<Vec<String>> {
    let mut clean: Vec<String> = Vec::new();
    for tag in tags {
        let tag = tag.trim().trim_start_matches('#').to_lowercase();
        let valid = !tag.is_empty()
            && tag.chars().count() <= MAX_TAG_CHARS
            && tag
                .chars()
                .all(|c| c.is_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(AppError::validation(format!(
                "a tag is 1 to {MAX_TAG_CHARS} letters, digits, '-' or '_', got {tag:?}"
            )));
        }
        if !clean.contains(&tag) {
            clean.push(tag);
        }
    }
    if clean.len() > MAX_TAGS {
        return Err(AppError::validation(format!(
            "a task has at most {MAX_TAGS} tags"
        )));
    }
    Ok(clean)
}

pub fn clean_priority(priority: u8) -> AppResult<u8> {
    if (1..=4).contains(&priority) {
        Ok(priority)
    } else {
        Err(AppError::validation(
            "priority is 1 (highest), 2, 3 or 4 (none)",
        ))
    }
}

/// The parts of an RRULE a task may use.
const RULE_PARTS: [&str; 5] = ["FREQ", "INTERVAL", "BYDAY", "BYMONTHDAY", "UNTIL"];
const FREQUENCIES: [&str; 4] = ["DAILY", "WEEKLY", "MONTHLY", "YEARLY"];

/// A repeat as stored, with the due date it starts from: upper case, an optional `RRULE:`
/// prefix dropped, only `RULE_PARTS`, a day-only UNTIL made the end of that day in `zone`
/// (RFC 5545 wants UTC with a zoned start), and checked by expanding it. Without a due date it
/// starts at its first occurrence on or after `today`.
pub fn clean_recurrence(
    rule: &str,
    due: Option<Due>,
    zone: Tz,
    today: NaiveDate,
) -> AppResult<(Due, String)> {
    let clean = normalize_rule(rule, zone)?;
    let invalid = |why: String| {
        AppError::validation(format!(
            "recurrence must be an RRULE such as FREQ=WEEKLY;BYDAY=MO ({why})"
        ))
    };
    let due = match due {
        Some(due) => due,
        None => {
            // Started the day before, so that today itself can be the first occurrence.
            let start = Due {
                date: today.pred_opt().unwrap_or(today),
                time: None,
            };
            expand_after(&clean, start, zone, start.date)
                .map_err(invalid)?
                .ok_or_else(|| AppError::validation("the repeat has no occurrence from today on"))?
        }
    };
    // Expanding it is the real check (BYDAY and BYMONTHDAY values, UNTIL before the start…).
    expand_after(&clean, due, zone, due.date).map_err(invalid)?;
    Ok((due, clean))
}

fn normalize_rule(rule: &str, zone: Tz) -> AppResult<String> {
    let text = rule.trim().to_uppercase();
    let text = text.strip_prefix("RRULE:").unwrap_or(&text);
    let invalid = |why: &str| {
        AppError::validation(format!(
            "recurrence must be an RRULE such as FREQ=WEEKLY;BYDAY=MO ({why})"
        ))
    };
    let mut parts: Vec<(String, String)> = Vec::new();
    for part in text.split(';').filter(|p| !p.is_empty()) {
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| invalid("each part is KEY=VALUE"))?;
        if !RULE_PARTS.contains(&key) {
            return Err(invalid(&format!(
                "{key} is not supported; use {}",
                RULE_PARTS.join(", ")
            )));
        }
        if parts.iter().any(|(k, _)| k == key) {
            return Err(invalid(&format!("{key} is given twice")));
        }
        let value = match key {
            "FREQ" if FREQUENCIES.contains(&value) => value.to_string(),
            "FREQ" => return Err(invalid("FREQ is DAILY, WEEKLY, MONTHLY or YEARLY")),
            "INTERVAL" => match value.parse::<u16>() {
                Ok(n) if (1..=366).contains(&n) => n.to_string(),
                _ => return Err(invalid("INTERVAL is 1 to 366")),
            },
            "UNTIL" => until_utc(value, zone).ok_or_else(|| invalid("UNTIL is a day, 20261231"))?,
            _ => value.to_string(),
        };
        parts.push((key.to_string(), value));
    }
    if !parts.iter().any(|(k, _)| k == "FREQ") {
        return Err(invalid("FREQ is required"));
    }
    Ok(parts
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(";"))
}

/// A day-only (or local) UNTIL as the end of that day in `zone`, in UTC.
fn until_utc(value: &str, zone: Tz) -> Option<String> {
    if value.ends_with('Z') && value.len() == 16 {
        return Some(value.to_string());
    }
    let day = NaiveDate::parse_from_str(value.get(..8)?, "%Y%m%d").ok()?;
    let end = local_instant(zone, day.and_hms_opt(23, 59, 59)?);
    Some(end.format("%Y%m%dT%H%M%SZ").to_string())
}

/// The first occurrence of `rule`, started at `due`, on a day after `after`; `None` once the
/// repeat is over (UNTIL).
pub fn next_occurrence(rule: &str, due: Due, zone: Tz, after: NaiveDate) -> Option<Due> {
    expand_after(rule, due, zone, after).ok().flatten()
}

fn expand_after(rule: &str, due: Due, zone: Tz, after: NaiveDate) -> Result<Option<Due>, String> {
    let rule_zone = rrule::Tz::Tz(zone);
    // A whole-day task repeats at noon: no clock change moves noon to another day.
    let time = due
        .time
        .unwrap_or(NaiveTime::from_hms_opt(12, 0, 0).unwrap_or(NaiveTime::MIN));
    let start = local_instant(zone, due.date.and_time(time)).with_timezone(&rule_zone);
    let set = rule
        .parse::<rrule::RRule<rrule::Unvalidated>>()
        .map_err(|err| err.to_string())?
        .build(start)
        .map_err(|err| err.to_string())?;
    let from =
        local_instant(zone, next_day(after).and_time(NaiveTime::MIN)).with_timezone(&rule_zone);
    let found = set.after(from).all(1);
    Ok(found.dates.first().map(|at| {
        let local = at.with_timezone(&zone);
        Due {
            date: local.date_naive(),
            time: due.time.map(|_| local.time()),
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn due_parses_days_and_times_and_refuses_the_rest() {
        assert_eq!(Due::parse("2026-03-13").unwrap().time, None);
        let due = Due::parse("2026-03-13T17:00").unwrap();
        assert_eq!(Due::format(due.date, due.time), "2026-03-13T17:00");
        for bad in [
            "",
            "tomorrow",
            "2026-02-30",
            "2026-03-13T25:00",
            "2026-03-13T17:00:30",
        ] {
            assert!(Due::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn local_times_in_a_clock_change_resolve() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let at = |s: &str| NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M").unwrap();
        assert_eq!(
            local_instant(berlin, at("2026-07-01T09:30")).to_rfc3339(),
            "2026-07-01T07:30:00+00:00"
        );
        // 02:30 does not exist on the day the clocks go forward: the first time after.
        assert_eq!(
            local_instant(berlin, at("2026-03-29T02:30")).to_rfc3339(),
            "2026-03-29T01:00:00+00:00"
        );
        // 02:30 happens twice when they go back: the first one.
        assert_eq!(
            local_instant(berlin, at("2026-10-25T02:30")).to_rfc3339(),
            "2026-10-25T00:30:00+00:00"
        );
    }

    #[test]
    fn repeats_move_to_their_next_occurrence() {
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let monday = Due::parse("2026-03-09").unwrap();
        let today = day("2026-03-09");
        let (_, rule) =
            clean_recurrence("rrule:freq=weekly;byday=mo", Some(monday), berlin, today).unwrap();
        assert_eq!(rule, "FREQ=WEEKLY;BYDAY=MO");
        let next = next_occurrence(&rule, monday, berlin, day("2026-03-09")).unwrap();
        assert_eq!(next.date, day("2026-03-16"));
        // Done late (on Wednesday): the next Monday after today.
        let next = next_occurrence(&rule, monday, berlin, day("2026-03-18")).unwrap();
        assert_eq!(next.date, day("2026-03-23"));
        // Every other Friday at 17:00, across the change to summer time.
        let friday = Due::parse("2026-03-20T17:00").unwrap();
        let (_, rule) = clean_recurrence(
            "FREQ=WEEKLY;INTERVAL=2;BYDAY=FR",
            Some(friday),
            berlin,
            today,
        )
        .unwrap();
        let next = next_occurrence(&rule, friday, berlin, friday.date).unwrap();
        assert_eq!(Due::format(next.date, next.time), "2026-04-03T17:00");
        // Monthly on the 1st, until a day: then it is over.
        let first = Due::parse("2026-01-01").unwrap();
        let (_, rule) = clean_recurrence(
            "FREQ=MONTHLY;BYMONTHDAY=1;UNTIL=20260215",
            Some(first),
            berlin,
            today,
        )
        .unwrap();
        assert!(rule.contains("UNTIL=20260215T225959Z"), "{rule}");
        assert_eq!(
            next_occurrence(&rule, first, berlin, first.date)
                .unwrap()
                .date,
            day("2026-02-01")
        );
        assert_eq!(
            next_occurrence(&rule, first, berlin, day("2026-02-01")),
            None
        );
        // No due date: the first Monday from today (a Wednesday).
        let (start, _) =
            clean_recurrence("FREQ=WEEKLY;BYDAY=MO", None, berlin, day("2026-03-11")).unwrap();
        assert_eq!(
            start,
            Due {
                date: day("2026-03-16"),
                time: None
            }
        );
        let (start, _) = clean_recurrence("FREQ=DAILY", None, berlin, day("2026-03-11")).unwrap();
        assert_eq!(
            start.date,
            day("2026-03-11"),
            "today itself can be the first"
        );
    }

    #[test]
    fn bad_repeats_and_tags_are_refused() {
        let zone = Tz::UTC;
        let due = Due::parse("2026-03-09").unwrap();
        for bad in [
            "",
            "FREQ=HOURLY",
            "FREQ=DAILY;COUNT=3",
            "FREQ=WEEKLY;BYDAY=XX",
            "BYDAY=MO",
            "FREQ=DAILY;INTERVAL=0",
        ] {
            assert!(
                clean_recurrence(bad, Some(due), zone, due.date).is_err(),
                "{bad}"
            );
        }
        assert_eq!(
            clean_tags(&["#Work".into(), "work".into(), "home".into()]).unwrap(),
            ["work", "home"]
        );
        assert!(clean_tags(&["two words".into()]).is_err());
        assert!(
            clean_tags(&vec!["t".to_string(); 11]).is_ok(),
            "duplicates count once"
        );
        let eleven: Vec<String> = (0..11).map(|i| format!("t{i}")).collect();
        assert!(clean_tags(&eleven).is_err());
        assert!(
            clean_priority(0).is_err() && clean_priority(5).is_err() && clean_priority(1).is_ok()
        );
    }

    #[test]
    fn views_are_bounded_by_the_day_in_the_users_zone() {
        // 23:30 UTC on 9 March is already 10 March in Berlin, still 9 March in New York.
        let now = DateTime::parse_from_rfc3339("2026-03-09T23:30:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            today("Europe/Berlin".parse().unwrap(), now),
            day("2026-03-10")
        );
        assert_eq!(
            today("America/New_York".parse().unwrap(), now),
            day("2026-03-09")
        );
        assert!(clean_zone("Mars/Olympus").is_err());
        assert_eq!(clean_zone(" Europe/Berlin ").unwrap(), "Europe/Berlin");
    }
}
