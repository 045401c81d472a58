//! The flags of `backflow syncs create|update` turned into request parts, and the
//! JSON shapes syncs and runs print as. Pure, so the flag rules are tested without a
//! server: `--map COLUMN[=FIELD]`, `--constant FIELD=VALUE`, `--null-policy
//! FIELD=send-null|omit|reject` (the field, or the column feeding it), one schedule
//! flag (`--manual`, `--every 15m`, `--cron EXPR [--time-zone TZ]`,
//! `--after-dbt-job ACCOUNT:JOB`, `--after-dbt-core-run [PROJECT]`). Runs print as
//! `sync_runs::SyncRunJson`, the one shape of a run.

use super::names;
use backflow_proto::retl::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;

/// `--null-policy` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NullPolicyArg {
    SendNull,
    Omit,
    Reject,
}

impl NullPolicyArg {
    fn to_proto(self) -> pb::NullPolicy {
        match self {
            Self::SendNull => pb::NullPolicy::SendNull,
            Self::Omit => pb::NullPolicy::OmitField,
            Self::Reject => pb::NullPolicy::RejectRecord,
        }
    }
}

/// `FIELD=POLICY` of `--null-policy`.
pub fn parse_null_policy(text: &str) -> Result<(String, NullPolicyArg), String> {
    let (field, policy) = super::parse_key_value(text)?;
    let policy = match policy.trim() {
        "send-null" | "null" => NullPolicyArg::SendNull,
        "omit" => NullPolicyArg::Omit,
        "reject" => NullPolicyArg::Reject,
        other => {
            return Err(format!(
                "null policy {other:?} is not one of send-null, omit, reject"
            ))
        }
    };
    Ok((field, policy))
}

/// `COLUMN=FIELD` of `--map`; a bare `COLUMN` feeds the field of the same name.
pub fn parse_map(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        None if !text.trim().is_empty() => Ok((text.trim().to_string(), text.trim().to_string())),
        Some((column, field)) if !column.trim().is_empty() && !field.trim().is_empty() => {
            Ok((column.trim().to_string(), field.trim().to_string()))
        }
        _ => Err(format!("expected COLUMN=FIELD or COLUMN, got {text:?}")),
    }
}

/// `15m`, `1h`, `90s`, `2d` or plain seconds, as seconds.
pub fn parse_every(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let value: i64 = digits
        .parse()
        .map_err(|_| format!("expected a duration like 15m, 1h or 300, got {text:?}"))?;
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "unknown duration unit {unit:?} in {text:?} (use s, m, h or d)"
            ))
        }
    };
    let seconds = value
        .checked_mul(factor)
        .ok_or_else(|| format!("duration {text:?} is too long"))?;
    if seconds < 60 {
        return Err(format!(
            "a sync runs at most once a minute: {text:?} is shorter than 1m"
        ));
    }
    Ok(seconds)
}

/// `ACCOUNT:JOB` of `--after-dbt-job`.
pub fn parse_dbt_job(text: &str) -> Result<(i64, i64), String> {
    let parse = |part: &str| part.trim().parse::<i64>().ok();
    match text.split_once(':').map(|(a, j)| (parse(a), parse(j))) {
        Some((Some(account), Some(job))) => Ok((account, job)),
        _ => Err(format!("expected ACCOUNT_ID:JOB_ID, got {text:?}")),
    }
}

/// The schedule flags of one command line.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ScheduleArgs {
    /// Run only when triggered.
    #[arg(long, conflicts_with_all = ["every", "cron", "after_dbt_job", "after_dbt_core_run"])]
    pub manual: bool,
    /// Run every DURATION (`15m`, `1h`, `2d`; at least a minute).
    #[arg(long, value_name = "DURATION", value_parser = parse_every, conflicts_with_all = ["cron", "after_dbt_job", "after_dbt_core_run"])]
    pub every: Option<i64>,
    /// Run on a five-field cron expression (`0 9 * * 1-5`).
    #[arg(long, value_name = "EXPR", conflicts_with_all = ["after_dbt_job", "after_dbt_core_run"])]
    pub cron: Option<String>,
    /// IANA time zone of `--cron` (default UTC).
    #[arg(long, value_name = "ZONE", requires = "cron")]
    pub time_zone: Option<String>,
    /// Run after dbt Cloud job JOB of account ACCOUNT succeeds.
    #[arg(long, value_name = "ACCOUNT:JOB", value_parser = parse_dbt_job, conflicts_with = "after_dbt_core_run")]
    pub after_dbt_job: Option<(i64, i64)>,
    /// Run after a dbt Core run notified to Backflow (`backflow dbt-run notify`) rebuilt
    /// the sync's model; with PROJECT, only runs of that dbt project.
    #[arg(long, value_name = "PROJECT", num_args = 0..=1, default_missing_value = "")]
    pub after_dbt_core_run: Option<String>,
}

impl ScheduleArgs {
    /// The schedule named, if any.
    pub fn to_proto(&self) -> Option<pb::Schedule> {
        use pb::schedule::Kind;
        let kind = if self.manual {
            Kind::Manual(true)
        } else if let Some(seconds) = self.every {
            Kind::IntervalSeconds(seconds)
        } else if let Some(expression) = &self.cron {
            Kind::Cron(pb::CronSchedule {
                expression: expression.clone(),
                time_zone: self.time_zone.clone().unwrap_or_default(),
            })
        } else if let Some((account_id, job_id)) = self.after_dbt_job {
            Kind::AfterDbtCloudJob(pb::DbtCloudJobSchedule { account_id, job_id })
        } else if let Some(project_name) = &self.after_dbt_core_run {
            Kind::AfterDbtCoreRun(pb::DbtCoreRunSchedule {
                project_name: project_name.trim().to_string(),
            })
        } else {
            return None;
        };
        Some(pb::Schedule { kind: Some(kind) })
    }
}

/// Mappings from the flags, in order (`--map`s, then `--constant`s), with null policies
/// applied by field (or by the column feeding it).
pub fn mappings(
    maps: &[(String, String)],
    constants: &[(String, String)],
    null_policies: &[(String, NullPolicyArg)],
) -> Result<Vec<pb::FieldMapping>, String> {
    let mut out: Vec<pb::FieldMapping> = maps
        .iter()
        .map(|(column, field)| pb::FieldMapping {
            source_column: column.clone(),
            destination_field: field.clone(),
            constant: None,
            null_policy: pb::NullPolicy::SendNull as i32,
        })
        .collect();
    out.extend(constants.iter().map(|(field, value)| pb::FieldMapping {
        source_column: String::new(),
        destination_field: field.clone(),
        constant: Some(value.clone()),
        null_policy: pb::NullPolicy::SendNull as i32,
    }));
    for (name, policy) in null_policies {
        let index = out
            .iter()
            .position(|m| m.constant.is_none() && m.destination_field == *name)
            .or_else(|| {
                out.iter()
                    .position(|m| m.constant.is_none() && m.source_column == *name)
            })
            .ok_or_else(|| format!("--null-policy {name}: no --map names that field or column"))?;
        out[index].null_policy = policy.to_proto() as i32;
    }
    Ok(out)
}

/// The schedule as people read it.
pub fn schedule_text(schedule: &Option<pb::Schedule>) -> String {
    use pb::schedule::Kind;
    match schedule.as_ref().and_then(|s| s.kind.as_ref()) {
        None | Some(Kind::Manual(_)) => "manual".into(),
        Some(Kind::IntervalSeconds(seconds)) => match seconds {
            s if s % 86_400 == 0 => format!("every {}d", s / 86_400),
            s if s % 3600 == 0 => format!("every {}h", s / 3600),
            s if s % 60 == 0 => format!("every {}m", s / 60),
            s => format!("every {s}s"),
        },
        Some(Kind::Cron(cron)) => format!("cron {:?} {}", cron.expression, cron.time_zone),
        Some(Kind::AfterDbtCloudJob(job)) => {
            format!("after dbt cloud job {}:{}", job.account_id, job.job_id)
        }
        Some(Kind::AfterDbtCoreRun(run)) if run.project_name.is_empty() => {
            "after a dbt core run".into()
        }
        Some(Kind::AfterDbtCoreRun(run)) => {
            format!("after a dbt core run of {}", run.project_name)
        }
    }
}

/// `--output json` shape of one mapping.
#[derive(Debug, Serialize, PartialEq)]
pub struct MappingJson {
    pub source_column: String,
    pub destination_field: String,
    pub constant: Option<String>,
    pub null_policy: String,
}

/// `--output json` shape of a sync.
#[derive(Debug, Serialize)]
pub struct SyncJson {
    pub id: String,
    pub workspace_id: String,
    pub name: String,
    pub retl_model_id: String,
    pub destination_id: String,
    pub mode: String,
    pub schedule: String,
    pub paused: bool,
    /// Why Backflow paused it by itself (a webhook endpoint gone); empty otherwise.
    pub paused_reason: String,
    pub mappings: Vec<MappingJson>,
    pub destination_options: BTreeMap<String, String>,
    pub max_delete_share: f64,
    pub allow_empty_extract: bool,
    pub diff_strategy: String,
    pub max_record_attempts: i32,
    pub only_if_model_rebuilt: bool,
    pub version: i64,
    pub created_at_unix_ms: i64,
    pub updated_at_unix_ms: i64,
}

impl From<pb::Sync> for SyncJson {
    fn from(sync: pb::Sync) -> Self {
        let guards = sync.guards.unwrap_or_default();
        Self {
            schedule: schedule_text(&sync.schedule),
            id: sync.id,
            workspace_id: sync.workspace_id,
            name: sync.name,
            retl_model_id: sync.retl_model_id,
            destination_id: sync.destination_id,
            mode: names::sync_mode(sync.mode),
            paused: sync.paused,
            paused_reason: sync.paused_reason,
            mappings: sync
                .mappings
                .into_iter()
                .map(|m| MappingJson {
                    source_column: m.source_column,
                    destination_field: m.destination_field,
                    constant: m.constant,
                    null_policy: names::null_policy(m.null_policy),
                })
                .collect(),
            destination_options: sync.destination_options.into_iter().collect(),
            max_delete_share: guards.max_delete_share,
            allow_empty_extract: guards.allow_empty_extract,
            diff_strategy: names::diff_strategy(sync.diff_strategy),
            max_record_attempts: sync.max_record_attempts,
            only_if_model_rebuilt: sync.only_if_model_rebuilt,
            version: sync.version,
            created_at_unix_ms: sync.created_at_unix_ms,
            updated_at_unix_ms: sync.updated_at_unix_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    #[test]
    fn maps_constants_and_null_policies_make_mappings() {
        let built = mappings(
            &[pair("email", "email_address"), pair("name", "name")],
            &[pair("source", "backflow")],
            &[
                ("email_address".to_string(), NullPolicyArg::Omit),
                ("name".to_string(), NullPolicyArg::Reject),
            ],
        );
        let built = built.unwrap_or_else(|err| panic!("{err}"));
        assert_eq!(built.len(), 3);
        assert_eq!(built[0].source_column, "email");
        assert_eq!(built[0].destination_field, "email_address");
        assert_eq!(built[0].null_policy, pb::NullPolicy::OmitField as i32);
        assert_eq!(built[1].null_policy, pb::NullPolicy::RejectRecord as i32);
        assert_eq!(built[2].constant.as_deref(), Some("backflow"));
        assert!(built[2].source_column.is_empty());
        // by column too; an unknown name is an error
        let by_column = mappings(
            &[pair("email", "Email")],
            &[],
            &[("email".to_string(), NullPolicyArg::Omit)],
        );
        assert!(by_column.is_ok_and(|m| m[0].null_policy == pb::NullPolicy::OmitField as i32));
        assert!(mappings(&[], &[], &[("x".to_string(), NullPolicyArg::Omit)]).is_err());
    }

    #[test]
    fn flag_values_parse() {
        assert_eq!(parse_map("email=Email"), Ok(pair("email", "Email")));
        assert_eq!(parse_map("email"), Ok(pair("email", "email")));
        assert!(parse_map("=x").is_err() && parse_map("x=").is_err());
        assert_eq!(parse_every("15m"), Ok(900));
        assert_eq!(parse_every("2h"), Ok(7200));
        assert_eq!(parse_every("1d"), Ok(86_400));
        assert_eq!(parse_every("300"), Ok(300));
        assert!(parse_every("5w").is_err() && parse_every("m").is_err());
        assert_eq!(
            parse_every("30s"),
            Err("a sync runs at most once a minute: \"30s\" is shorter than 1m".into())
        );
        assert!(parse_every("0").is_err() && parse_every("1m").is_ok());
        assert_eq!(parse_dbt_job("42:123"), Ok((42, 123)));
        assert!(parse_dbt_job("42").is_err());
        assert_eq!(
            parse_null_policy("email=omit"),
            Ok(("email".to_string(), NullPolicyArg::Omit))
        );
        assert!(parse_null_policy("email=drop").is_err());
    }

    #[test]
    fn schedules_read_like_their_flags() {
        let every = ScheduleArgs {
            every: Some(900),
            ..Default::default()
        };
        assert_eq!(schedule_text(&every.to_proto()), "every 15m");
        let cron = ScheduleArgs {
            cron: Some("0 9 * * 1-5".into()),
            time_zone: Some("Europe/Berlin".into()),
            ..Default::default()
        };
        assert_eq!(
            schedule_text(&cron.to_proto()),
            "cron \"0 9 * * 1-5\" Europe/Berlin"
        );
        assert_eq!(ScheduleArgs::default().to_proto(), None);
        let dbt = ScheduleArgs {
            after_dbt_job: Some((1, 2)),
            ..Default::default()
        };
        assert_eq!(schedule_text(&dbt.to_proto()), "after dbt cloud job 1:2");
        let core = ScheduleArgs {
            after_dbt_core_run: Some(" shop ".into()),
            ..Default::default()
        };
        assert_eq!(
            schedule_text(&core.to_proto()),
            "after a dbt core run of shop"
        );
        let any = ScheduleArgs {
            after_dbt_core_run: Some(String::new()),
            ..Default::default()
        };
        assert_eq!(schedule_text(&any.to_proto()), "after a dbt core run");
    }
}
