//! When a sync runs: by hand, every N seconds, on a cron expression in a time zone,
//! after a dbt Cloud job succeeds, or after a dbt Core run (any orchestrator, notified
//! to Backflow) rebuilt the sync's model. Validation and tick computation are pure so the
//! rules are tested without a clock or a database.
//!
//! Cron expressions have five fields (minute, hour, day of month, month, day of week)
//! with POSIX/Vixie semantics, so `1-5` in the last field is Monday to Friday; names
//! (`MON`, `JAN`), steps, `L`, `#` and the `@daily`-style nicknames are accepted.
//! Seconds are not: no sync runs more often than once a minute. An empty time zone
//! means UTC; others are IANA names such as `Europe/Berlin`.

use chrono::TimeZone;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;
use std::str::FromStr;

/// Shortest interval between scheduled runs.
pub const MIN_INTERVAL_SECONDS: i64 = 60;
/// Longest interval: a year.
pub const MAX_INTERVAL_SECONDS: i64 = 366 * 24 * 3600;
/// Time zone of a cron schedule given without one.
pub const DEFAULT_TIME_ZONE: &str = "UTC";

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Schedule {
    Manual,
    Interval {
        seconds: i64,
    },
    Cron {
        expression: String,
        time_zone: String,
    },
    AfterDbtCloudJob {
        account_id: i64,
        job_id: i64,
    },
    /// After a dbt Core run of `project_name` (empty: any project) rebuilt the model.
    AfterDbtCoreRun {
        project_name: String,
    },
}

/// Longest dbt project name a schedule names.
pub const MAX_PROJECT_NAME: usize = 256;

impl Schedule {
    /// Stable name of the kind, as stored.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Manual => "manual",
            Self::Interval { .. } => "interval",
            Self::Cron { .. } => "cron",
            Self::AfterDbtCloudJob { .. } => "after_dbt_cloud_job",
            Self::AfterDbtCoreRun { .. } => "after_dbt_core_run",
        }
    }
}

/// Checks a schedule and returns it normalized (trimmed cron, default time zone).
pub fn validate(schedule: Schedule) -> Result<Schedule, String> {
    match schedule {
        Schedule::Manual => Ok(Schedule::Manual),
        Schedule::Interval { seconds } => {
            if !(MIN_INTERVAL_SECONDS..=MAX_INTERVAL_SECONDS).contains(&seconds) {
                return Err(format!(
                    "schedule.interval_seconds must be between {MIN_INTERVAL_SECONDS} and {MAX_INTERVAL_SECONDS}, got {seconds}"
                ));
            }
            Ok(Schedule::Interval { seconds })
        }
        Schedule::Cron {
            expression,
            time_zone,
        } => {
            let expression = expression.trim().to_string();
            parse_cron(&expression)?;
            let time_zone = match time_zone.trim() {
                "" => DEFAULT_TIME_ZONE.to_string(),
                name => parse_time_zone(name)?.name().to_string(),
            };
            Ok(Schedule::Cron {
                expression,
                time_zone,
            })
        }
        Schedule::AfterDbtCloudJob { account_id, job_id } => {
            if account_id <= 0 {
                return Err(format!(
                    "schedule.after_dbt_cloud_job.account_id must be positive, got {account_id}"
                ));
            }
            if job_id <= 0 {
                return Err(format!(
                    "schedule.after_dbt_cloud_job.job_id must be positive, got {job_id}"
                ));
            }
            Ok(Schedule::AfterDbtCloudJob { account_id, job_id })
        }
        Schedule::AfterDbtCoreRun { project_name } => {
            let project_name = project_name.trim().to_string();
            let valid = project_name.len() <= MAX_PROJECT_NAME
                && project_name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!(
                    "schedule.after_dbt_core_run.project_name {project_name:?} is not a dbt project name (letters, digits and _; empty for any project)"
                ));
            }
            Ok(Schedule::AfterDbtCoreRun { project_name })
        }
    }
}

fn parse_cron(expression: &str) -> Result<Cron, String> {
    if expression.is_empty() {
        return Err("schedule.cron.expression is required".into());
    }
    let parser = CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build();
    parser
        .parse(expression)
        .map_err(|err| {
            // croner's own words are capitalized and end with a period
            let why = err.to_string().to_lowercase();
            format!(
                "schedule.cron.expression {expression:?} is not a valid five-field cron expression (minute hour day-of-month month day-of-week): {}",
                why.trim_end_matches('.')
            )
        })
}

fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, String> {
    chrono_tz::Tz::from_str(name).map_err(|_| {
        format!(
            "schedule.cron.time_zone {name:?} is not an IANA time zone (like \"Europe/Berlin\")"
        )
    })
}

/// The first cron tick strictly after `after_ms`, in unix ms, or `None` if the
/// expression never fires again (e.g. `0 0 30 2 *`) or is invalid.
pub fn next_cron_tick(expression: &str, time_zone: &str, after_ms: i64) -> Option<i64> {
    let cron = parse_cron(expression).ok()?;
    let zone = match time_zone {
        "" => chrono_tz::UTC,
        name => parse_time_zone(name).ok()?,
    };
    let after = zone.timestamp_millis_opt(after_ms).single()?;
    cron.find_next_occurrence(&after, false)
        .ok()
        .map(|tick| tick.timestamp_millis())
}

/// The first tick of `schedule` strictly after `after_ms`, in unix ms: interval ticks
/// are `anchor_ms + k * interval` (k ≥ 1, so a new schedule first fires one interval
/// after its anchor); cron ticks follow the expression in its time zone. `None` for
/// schedules without ticks (manual, after a dbt job) and cron expressions that never fire.
pub fn next_tick(schedule: &Schedule, anchor_ms: i64, after_ms: i64) -> Option<i64> {
    match schedule {
        Schedule::Interval { seconds } if *seconds > 0 => {
            let step = seconds.checked_mul(1000)?;
            let k = if after_ms < anchor_ms {
                1
            } else {
                (after_ms - anchor_ms) / step + 1
            };
            anchor_ms.checked_add(k.checked_mul(step)?)
        }
        Schedule::Cron {
            expression,
            time_zone,
        } => next_cron_tick(expression, time_zone, after_ms),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cron(expression: &str, time_zone: &str) -> Result<Schedule, String> {
        validate(Schedule::Cron {
            expression: expression.into(),
            time_zone: time_zone.into(),
        })
    }

    #[test]
    fn manual_is_always_valid() {
        assert_eq!(validate(Schedule::Manual), Ok(Schedule::Manual));
    }

    #[test]
    fn interval_must_be_at_least_a_minute() {
        assert!(validate(Schedule::Interval { seconds: 60 }).is_ok());
        assert!(validate(Schedule::Interval { seconds: 3600 }).is_ok());
        for seconds in [-1, 0, 59, MAX_INTERVAL_SECONDS + 1] {
            let error = validate(Schedule::Interval { seconds }).err();
            assert!(
                error.is_some_and(|e| e.contains("interval_seconds")),
                "{seconds}"
            );
        }
    }

    #[test]
    fn cron_expressions_are_checked() {
        for expression in [
            "0 9 * * 1-5",
            "*/15 * * * *",
            "0 0 1 JAN *",
            "@daily",
            " 5 4 * * SUN ",
        ] {
            assert!(cron(expression, "").is_ok(), "{expression}");
        }
        for expression in [
            "",
            "* * * *",
            "0 0 * * * *",
            "61 * * * *",
            "0 25 * * *",
            "nonsense",
            "0 9 * * MOO",
        ] {
            let error = cron(expression, "UTC").err();
            assert!(
                error.is_some_and(|e| e.contains("schedule.cron.expression")),
                "{expression}"
            );
        }
    }

    #[test]
    fn cron_time_zone_defaults_to_utc_and_must_exist() {
        assert_eq!(
            cron(" 0 9 * * * ", ""),
            Ok(Schedule::Cron {
                expression: "0 9 * * *".into(),
                time_zone: "UTC".into()
            })
        );
        assert!(cron("0 9 * * *", "Europe/Berlin").is_ok());
        assert!(cron("0 9 * * *", "America/New_York").is_ok());
        for zone in ["Mars/Olympus", "CEST+2", "europe berlin"] {
            let error = cron("0 9 * * *", zone).err();
            assert!(error.is_some_and(|e| e.contains("time_zone")), "{zone}");
        }
    }

    #[test]
    fn dbt_job_needs_account_and_job() {
        assert!(validate(Schedule::AfterDbtCloudJob {
            account_id: 1,
            job_id: 2
        })
        .is_ok());
        assert!(validate(Schedule::AfterDbtCloudJob {
            account_id: 0,
            job_id: 2
        })
        .is_err_and(|e| e.contains("account_id")));
        assert!(validate(Schedule::AfterDbtCloudJob {
            account_id: 1,
            job_id: -2
        })
        .is_err_and(|e| e.contains("job_id")));
    }

    #[test]
    fn dbt_core_run_names_a_project_or_none() {
        assert_eq!(
            validate(Schedule::AfterDbtCoreRun {
                project_name: " shop ".into()
            }),
            Ok(Schedule::AfterDbtCoreRun {
                project_name: "shop".into()
            })
        );
        assert!(validate(Schedule::AfterDbtCoreRun {
            project_name: String::new()
        })
        .is_ok());
        assert!(validate(Schedule::AfterDbtCoreRun {
            project_name: "my-shop".into()
        })
        .is_err_and(|e| e.contains("project_name")));
        let core = Schedule::AfterDbtCoreRun {
            project_name: "shop".into(),
        };
        assert_eq!(core.kind(), "after_dbt_core_run");
        assert_eq!(next_tick(&core, 0, 0), None);
    }

    #[test]
    fn next_tick_follows_the_time_zone_and_posix_weekdays() {
        // 2024-01-05 is a Friday; 12:00 UTC.
        let friday_noon_utc = 1_704_456_000_000;
        // weekdays at 09:00 Berlin (UTC+1 in winter): next is Monday 08:00 UTC.
        let next = next_cron_tick("0 9 * * 1-5", "Europe/Berlin", friday_noon_utc);
        assert_eq!(next, Some(1_704_700_800_000));
        // hourly in UTC: 13:00 the same day.
        assert_eq!(
            next_cron_tick("0 * * * *", "", friday_noon_utc),
            Some(friday_noon_utc + 3_600_000)
        );
        assert_eq!(next_cron_tick("not cron", "UTC", friday_noon_utc), None);
        assert_eq!(next_cron_tick("0 0 30 2 *", "UTC", friday_noon_utc), None);
    }
}
#[cfg(test)]
mod dst_tests {
    //! Cron ticks across daylight-saving changes: a local time the spring change skips
    //! fires at the first instant after the gap (like Vixie cron); one the autumn change
    //! repeats fires once (its first occurrence); hourly schedules fire every real hour.
    use super::*;

    fn utc(text: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|d| d.timestamp_millis())
            .unwrap_or_else(|err| panic!("{text}: {err}"))
    }

    /// The next `count` ticks after `from`, as UTC RFC 3339 texts.
    fn ticks(expression: &str, zone: &str, from: &str, count: usize) -> Vec<String> {
        let mut after = utc(from);
        let mut out = Vec::new();
        for _ in 0..count {
            let Some(next) = next_cron_tick(expression, zone, after) else {
                break;
            };
            out.push(
                chrono::DateTime::from_timestamp_millis(next)
                    .map(|d| d.format("%Y-%m-%dT%H:%MZ").to_string())
                    .unwrap_or_default(),
            );
            after = next;
        }
        out
    }

    #[test]
    fn berlin_spring_forward_fires_a_skipped_time_after_the_gap() {
        // 2026-03-29 02:00 CET → 03:00 CEST: 02:30 does not exist that night.
        assert_eq!(
            ticks("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 3),
            [
                "2026-03-29T01:00Z",
                "2026-03-30T00:30Z",
                "2026-03-31T00:30Z"
            ]
        );
        // a time outside the gap just moves one hour earlier in UTC
        assert_eq!(
            ticks("0 9 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T07:00Z", "2026-03-30T07:00Z"]
        );
    }

    #[test]
    fn berlin_fall_back_fires_a_repeated_time_once() {
        // 2026-10-25 03:00 CEST → 02:00 CET: 02:30 happens twice, fires once.
        assert_eq!(
            ticks("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T00:30Z",
                "2026-10-26T01:30Z",
                "2026-10-27T01:30Z"
            ]
        );
        // hourly: every real hour, the repeated 02:00 included, none doubled
        assert_eq!(
            ticks("0 * * * *", "Europe/Berlin", "2026-10-24T23:00:00Z", 4),
            [
                "2026-10-25T00:00Z",
                "2026-10-25T01:00Z",
                "2026-10-25T02:00Z",
                "2026-10-25T03:00Z"
            ]
        );
    }

    #[test]
    fn new_york_spring_forward_and_fall_back() {
        // 2026-03-08 02:00 EST → 03:00 EDT
        assert_eq!(
            ticks("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T07:00Z", "2026-03-09T06:30Z"]
        );
        assert_eq!(
            ticks("0 9 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-07T14:00Z",
                "2026-03-08T13:00Z",
                "2026-03-09T13:00Z"
            ]
        );
        // 2026-11-01 02:00 EDT → 01:00 EST: 01:30 happens twice, fires once.
        assert_eq!(
            ticks("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 3),
            [
                "2026-11-01T05:30Z",
                "2026-11-02T06:30Z",
                "2026-11-03T06:30Z"
            ]
        );
    }

    #[test]
    fn interval_ticks_count_from_the_anchor_in_real_time() {
        let anchor = utc("2026-10-25T00:10:00Z");
        let hour = Schedule::Interval { seconds: 3600 };
        assert_eq!(next_tick(&hour, anchor, anchor), Some(anchor + 3_600_000));
        assert_eq!(
            next_tick(&hour, anchor, anchor + 3_600_000),
            Some(anchor + 7_200_000)
        );
        assert_eq!(
            next_tick(&hour, anchor, anchor + 5 * 3_600_000 + 1),
            Some(anchor + 6 * 3_600_000)
        );
        assert_eq!(
            next_tick(&hour, anchor, anchor - 10),
            Some(anchor + 3_600_000)
        );
        assert_eq!(next_tick(&Schedule::Manual, anchor, anchor), None);
    }
}
