//! Calling windows: whether a campaign may start a call at an instant, judged in the
//! campaign's IANA time zone (daylight-saving changes included, via jiff's bundled tzdb, so
//! no binary depends on the image's zoneinfo files). The gateway's dialer asks
//! [`CallingWindow::is_open`]; the operator and the gateway's API validate a schedule with
//! [`CallingWindow::new`], so all three read `HH:MM` and time zones the same way.
//!
//! A window whose end is earlier than its start spans midnight; it belongs to the day it
//! opens on, so a Friday 22:00–02:00 window allows Saturday 01:30 even when Saturday is
//! not a calling day.

use std::sync::LazyLock;

use jiff::Timestamp;
use jiff::civil::Weekday as CivilWeekday;
use jiff::tz::{TimeZone, TimeZoneDatabase};

use crate::campaign::{Schedule, SpecError, Weekday};

/// A schedule that cannot be evaluated.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WindowError {
    /// The time zone is not in the time-zone database.
    #[error("unknown time zone {0:?}")]
    TimeZone(String),
    /// A window bound is not `HH:MM`.
    #[error("window time {0:?} is not HH:MM")]
    Time(String),
}

/// The bundled copy of the IANA database.
static TZDB: LazyLock<TimeZoneDatabase> = LazyLock::new(TimeZoneDatabase::bundled);

/// Whether `name` is a zone of the IANA time-zone database.
pub fn is_known_time_zone(name: &str) -> bool {
    time_zone(name).is_some()
}

fn time_zone(name: &str) -> Option<TimeZone> {
    if name.is_empty() {
        return None;
    }
    TZDB.get(name).ok()
}

/// The minute of the day of `HH:MM` on a 24-hour clock, exactly two digits each (the CRD's
/// pattern `^([01][0-9]|2[0-3]):[0-5][0-9]$`).
pub fn minute_of_day(text: &str) -> Result<u16, WindowError> {
    let bad = || WindowError::Time(text.to_owned());
    let (hours, minutes) = text.split_once(':').ok_or_else(bad)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(hours) || !two_digits(minutes) {
        return Err(bad());
    }
    let hours: u16 = hours.parse().map_err(|_| bad())?;
    let minutes: u16 = minutes.parse().map_err(|_| bad())?;
    if hours > 23 || minutes > 59 {
        return Err(bad());
    }
    Ok(hours * 60 + minutes)
}

/// A schedule resolved once (time zone looked up, bounds parsed) and checked many times.
#[derive(Debug, Clone)]
pub struct CallingWindow {
    zone: TimeZone,
    start_minute: u16,
    end_minute: u16,
    days: Vec<Weekday>,
}

fn weekday(day: CivilWeekday) -> Weekday {
    match day {
        CivilWeekday::Monday => Weekday::Mon,
        CivilWeekday::Tuesday => Weekday::Tue,
        CivilWeekday::Wednesday => Weekday::Wed,
        CivilWeekday::Thursday => Weekday::Thu,
        CivilWeekday::Friday => Weekday::Fri,
        CivilWeekday::Saturday => Weekday::Sat,
        CivilWeekday::Sunday => Weekday::Sun,
    }
}

impl CallingWindow {
    /// Resolves a campaign schedule.
    pub fn new(schedule: &Schedule) -> Result<Self, WindowError> {
        let zone = time_zone(&schedule.time_zone)
            .ok_or_else(|| WindowError::TimeZone(schedule.time_zone.clone()))?;
        Ok(Self {
            zone,
            start_minute: minute_of_day(&schedule.window_start)?,
            end_minute: minute_of_day(&schedule.window_end)?,
            days: schedule.days.clone(),
        })
    }

    fn day_allowed(&self, day: CivilWeekday) -> bool {
        self.days.is_empty() || self.days.contains(&weekday(day))
    }

    /// Whether a call may start at `now_ms` (Unix milliseconds).
    pub fn is_open(&self, now_ms: i64) -> bool {
        let Ok(instant) = Timestamp::from_millisecond(now_ms) else {
            return false;
        };
        let local = instant.to_zoned(self.zone.clone());
        let minute =
            u16::from(local.hour().unsigned_abs()) * 60 + u16::from(local.minute().unsigned_abs());
        let today = local.weekday();
        if self.start_minute < self.end_minute {
            return self.day_allowed(today)
                && (self.start_minute..self.end_minute).contains(&minute);
        }
        // Spans midnight: the evening part belongs to today, the early-morning part to the
        // day before.
        if minute >= self.start_minute {
            self.day_allowed(today)
        } else if minute < self.end_minute {
            self.day_allowed(today.previous())
        } else {
            false
        }
    }
}

impl Schedule {
    /// The window's bounds differ, are `HH:MM` and the time zone is known; returns the
    /// resolved [`CallingWindow`].
    pub fn validate(&self) -> Result<CallingWindow, SpecError> {
        if self.window_start == self.window_end {
            return Err(SpecError::new(
                "schedule.windowEnd",
                "invalid_window",
                "windowStart and windowEnd must differ",
            ));
        }
        CallingWindow::new(self).map_err(|e| {
            let field = match &e {
                WindowError::TimeZone(_) => "schedule.timeZone",
                WindowError::Time(text) if *text == self.window_start => "schedule.windowStart",
                WindowError::Time(_) => "schedule.windowEnd",
            };
            SpecError::new(field, "invalid_schedule", e.to_string())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> i64 {
        text.parse::<Timestamp>().unwrap().as_millisecond()
    }

    fn window(zone: &str, start: &str, end: &str, days: Vec<Weekday>) -> CallingWindow {
        CallingWindow::new(&Schedule {
            time_zone: zone.into(),
            window_start: start.into(),
            window_end: end.into(),
            days,
        })
        .unwrap()
    }

    #[test]
    fn the_window_is_judged_in_the_campaign_time_zone() {
        // 09:00–17:00 in New York (EST, UTC-5 in January) on weekdays.
        let w = window("America/New_York", "09:00", "17:00", vec![Weekday::Mon]);
        // Monday 2026-01-05 13:59 UTC = 08:59 local: closed; 14:00 UTC = 09:00: open.
        assert!(!w.is_open(at("2026-01-05T13:59:00Z")));
        assert!(w.is_open(at("2026-01-05T14:00:00Z")));
        assert!(w.is_open(at("2026-01-05T21:59:59Z")));
        assert!(!w.is_open(at("2026-01-05T22:00:00Z")));
        // Tuesday is not a calling day.
        assert!(!w.is_open(at("2026-01-06T15:00:00Z")));
    }

    #[test]
    fn daylight_saving_moves_the_window_in_utc() {
        // Summer (EDT, UTC-4): 09:00 local is 13:00 UTC.
        let w = window("America/New_York", "09:00", "17:00", vec![]);
        assert!(w.is_open(at("2026-07-06T13:00:00Z")));
        assert!(!w.is_open(at("2026-01-05T13:00:00Z")));
    }

    #[test]
    fn a_window_spanning_midnight_belongs_to_the_day_it_opens() {
        let w = window("Europe/Berlin", "22:00", "02:00", vec![Weekday::Fri]);
        // Friday 2026-01-09 22:30 Berlin (21:30 UTC): open.
        assert!(w.is_open(at("2026-01-09T21:30:00Z")));
        // Saturday 01:30 Berlin (00:30 UTC): still Friday's window.
        assert!(w.is_open(at("2026-01-10T00:30:00Z")));
        // Saturday 22:30: Saturday's window is not allowed.
        assert!(!w.is_open(at("2026-01-10T21:30:00Z")));
        // Friday 03:00: between windows.
        assert!(!w.is_open(at("2026-01-09T02:00:00Z")));
    }

    #[test]
    fn bad_schedules_are_named() {
        let schedule = |zone: &str, start: &str| Schedule {
            time_zone: zone.into(),
            window_start: start.into(),
            window_end: "17:00".into(),
            days: vec![],
        };
        assert_eq!(
            CallingWindow::new(&schedule("Mars/Olympus", "09:00")).unwrap_err(),
            WindowError::TimeZone("Mars/Olympus".into())
        );
        assert_eq!(
            CallingWindow::new(&schedule("UTC", "9:00")).unwrap_err(),
            WindowError::Time("9:00".into())
        );
        for bad in ["+9:00", "24:00", "09:60", "0900", "09:0", ""] {
            assert_eq!(
                minute_of_day(bad),
                Err(WindowError::Time(bad.into())),
                "{bad}"
            );
        }
        assert_eq!(minute_of_day("23:59"), Ok(23 * 60 + 59));
        assert!(!is_known_time_zone(""));
        assert!(is_known_time_zone("Europe/Berlin"));
    }
}
