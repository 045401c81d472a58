//! `backflow syncs`: Reverse ETL syncs (a Reverse ETL model delivered to a destination
//! with a mode, a field mapping and a schedule): create, update, pause, resume, trigger,
//! reset, dry-run, delete, list, get; and `approve|reject|cancel <run>` for the runs a
//! sync made (the same calls as `backflow runs`). Flag rules: [`super::sync_args`].

use super::client::CliError;
use super::output::{cell, timestamp, Details, OutputFormat, Table, View};
use super::sync_args::{
    mappings, parse_map, parse_null_policy, NullPolicyArg, ScheduleArgs, SyncJson,
};
use super::sync_runs::{self, SyncRunJson};
use super::Ctx;
use backflow_proto::retl::v1 as pb;

/// The mapping flags, shared by create and update.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MappingArgs {
    /// Column to field, repeatable: `email=email_address` (a bare `email` keeps the name).
    /// `syncs create` needs at least one `--map`, `--constant` or `--map-all`.
    #[arg(long = "map", value_name = "COLUMN=FIELD", value_parser = parse_map)]
    pub maps: Vec<(String, String)>,
    /// Map every column of the model except its primary key (the key is always sent as
    /// the record's key) to a field of the same name; `--map` flags rename or add to that.
    /// The mapping made is printed.
    #[arg(long)]
    pub map_all: bool,
    /// Field with a fixed value, repeatable: `source=backflow`.
    #[arg(long = "constant", value_name = "FIELD=VALUE", value_parser = super::parse_key_value)]
    pub constants: Vec<(String, String)>,
    /// What a NULL does to a mapped field: `email=send-null|omit|reject`.
    #[arg(long = "null-policy", value_name = "FIELD=POLICY", value_parser = parse_null_policy)]
    pub null_policies: Vec<(String, NullPolicyArg)>,
}

impl MappingArgs {
    fn to_proto(&self) -> Result<Vec<pb::FieldMapping>, CliError> {
        mappings(&self.maps, &self.constants, &self.null_policies).map_err(CliError::Usage)
    }

    fn is_empty(&self) -> bool {
        self.maps.is_empty() && self.constants.is_empty() && !self.map_all
    }
}

/// What `syncs create` says when no mapping flag is given: a sync without a mapping would
/// send nothing but each record's key.
const NO_MAPPING: &str = "syncs create needs a field mapping: --map COLUMN[=FIELD] (repeatable) \
     for the columns to send, --constant FIELD=VALUE for fixed values, or --map-all to send \
     every model column under its own name (`backflow models columns` lists them)";

/// `--map-all`: every model column that is not a key column and not already fed by a
/// `--map`, as `COLUMN=COLUMN`, after the explicit maps.
pub fn map_all(
    columns: &[String],
    primary_key: &[String],
    maps: &[(String, String)],
) -> Vec<(String, String)> {
    let mut out = maps.to_vec();
    for column in columns {
        let named = maps.iter().any(|(from, to)| from == column || to == column);
        if !primary_key.contains(column) && !named {
            out.push((column.clone(), column.clone()));
        }
    }
    out
}

/// The columns of a Reverse ETL model's dbt model (at the commit it follows) and its key.
async fn model_columns(
    ctx: &Ctx,
    retl_model_id: &str,
) -> Result<(Vec<String>, Vec<String>), CliError> {
    use backflow_proto::catalog::v1 as catalog;
    let mut api = ctx.client.catalog()?;
    let call = api
        .inner
        .get_retl_model(catalog::GetRetlModelRequest {
            workspace_id: ctx.workspace(),
            retl_model_id: retl_model_id.to_string(),
        })
        .await;
    let model = api.done(call)?.model.ok_or_else(|| {
        CliError::Failed("the server answered without the reverse etl model".into())
    })?;
    let call = api
        .inner
        .describe_model_columns(catalog::DescribeModelColumnsRequest {
            workspace_id: ctx.workspace(),
            connection_id: model.connection_id.clone(),
            unique_id: model.model_unique_id.clone(),
            commit_sha: model.commit_sha.clone(),
            refresh: false,
        })
        .await;
    let columns = api
        .done(call)?
        .columns
        .into_iter()
        .map(|c| c.name)
        .collect();
    Ok((columns, model.primary_key))
}

/// Guard flags, shared by create and update.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct GuardArgs {
    /// Share of synced records a run may delete before it waits for approval (default 0.5).
    #[arg(long, value_name = "SHARE")]
    pub max_delete_share: Option<f64>,
    /// Let an empty extract after a non-empty one go ahead without approval.
    #[arg(long)]
    pub allow_empty_extract: bool,
}

impl GuardArgs {
    fn to_proto(&self) -> Option<pb::SyncGuards> {
        (self.max_delete_share.is_some() || self.allow_empty_extract).then(|| pb::SyncGuards {
            max_delete_share: self.max_delete_share.unwrap_or_default(),
            allow_empty_extract: self.allow_empty_extract,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mode {
    /// Added and updated records.
    Upsert,
    /// Added records only.
    Insert,
    /// Updated records only.
    Update,
    /// Added, updated and deleted records.
    Mirror,
}

impl Mode {
    fn to_proto(self) -> pb::SyncMode {
        match self {
            Mode::Upsert => pb::SyncMode::Upsert,
            Mode::Insert => pb::SyncMode::Insert,
            Mode::Update => pb::SyncMode::Update,
            Mode::Mirror => pb::SyncMode::Mirror,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Strategy {
    /// Warehouse-side when the source has a Backflow schema, else Backflow-side.
    Auto,
    Warehouse,
    Backflow,
}

impl Strategy {
    fn to_proto(self) -> pb::DiffStrategy {
        match self {
            Strategy::Auto => pb::DiffStrategy::Auto,
            Strategy::Warehouse => pb::DiffStrategy::Warehouse,
            Strategy::Backflow => pb::DiffStrategy::Backflow,
        }
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Create a sync (checked against the Reverse ETL model; schedule default: manual).
    /// It sends each record's key plus the fields its mapping names: give `--map`,
    /// `--constant` or `--map-all` (there is no silent default).
    Create {
        /// A name unique in the workspace.
        name: String,
        /// Reverse ETL model id (`backflow retl-models list`).
        #[arg(long = "model", value_name = "RETL_MODEL_ID")]
        retl_model_id: String,
        /// Destination id (`backflow destinations list`).
        #[arg(long = "destination", value_name = "DESTINATION_ID")]
        destination_id: String,
        #[arg(long, value_enum)]
        mode: Mode,
        #[command(flatten)]
        mapping: MappingArgs,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Destination option, repeatable: `object=contacts`, `event=Signed Up`.
        #[arg(long = "option", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        options: Vec<(String, String)>,
        #[command(flatten)]
        guards: GuardArgs,
        #[arg(long, value_enum)]
        diff_strategy: Option<Strategy>,
        /// Runs in a row a record may fail before it is given up (default 5).
        #[arg(long, value_name = "N")]
        max_record_attempts: Option<i32>,
        /// After a dbt job: run only when the job rebuilt the model and its tests passed.
        #[arg(long)]
        only_if_model_rebuilt: bool,
        /// Create it paused (dry runs still work).
        #[arg(long)]
        paused: bool,
    },
    /// Change a sync: only the given fields change; `--map` etc. merge by field.
    Update {
        sync_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long, value_enum)]
        mode: Option<Mode>,
        #[command(flatten)]
        mapping: MappingArgs,
        /// The given mappings replace all mappings.
        #[arg(long)]
        replace_mappings: bool,
        #[command(flatten)]
        schedule: ScheduleArgs,
        /// Option to set, repeatable; `key=` removes it.
        #[arg(long = "option", value_name = "KEY=VALUE", value_parser = super::parse_key_value)]
        options: Vec<(String, String)>,
        /// The given options replace all options.
        #[arg(long)]
        replace_options: bool,
        #[command(flatten)]
        guards: GuardArgs,
        #[arg(long, value_name = "N")]
        max_record_attempts: Option<i32>,
        #[arg(long, value_name = "BOOL")]
        only_if_model_rebuilt: Option<bool>,
        /// Where the diff state lives. If that changes, the next run starts from an empty
        /// state under the new strategy and sends every row again (as after `reset`).
        #[arg(long, value_enum)]
        diff_strategy: Option<Strategy>,
    },
    /// Stop scheduled runs (triggers are refused; dry runs still work).
    Pause { sync_id: String },
    /// Schedule runs again (ticks missed while paused do not fire); also after Backflow
    /// paused it because its webhook endpoint answered 410 Gone (fix the destination first).
    Resume { sync_id: String },
    /// Queue a run now.
    Trigger {
        sync_id: String,
        /// Follow the run until it ends (exit 1 unless it succeeds), like `sync-runs watch`.
        #[arg(long)]
        watch: bool,
    },
    /// Forget what was synced: the next run sends every row again.
    Reset { sync_id: String },
    /// Queue a run that reports what it would send, and sends nothing.
    DryRun {
        sync_id: String,
        /// Wait for it and show what it found (counts and a few records per change).
        #[arg(long)]
        watch: bool,
    },
    /// Delete a sync (refused while a run is running); its run history stays listed.
    Delete { sync_id: String },
    /// List the workspace's syncs.
    List,
    /// Show one sync with its mappings.
    Get { sync_id: String },
    /// Let a run that waits for approval go on delivering.
    Approve { run_id: String },
    /// End a run that waits for approval without delivering.
    Reject { run_id: String },
    /// Cancel a queued or running run.
    Cancel { run_id: String },
}

/// `true`, `false`, or `true (<why Backflow paused it>)`.
fn paused_text(sync: &SyncJson) -> String {
    if sync.paused && !sync.paused_reason.is_empty() {
        format!("true ({})", sync.paused_reason)
    } else {
        sync.paused.to_string()
    }
}

fn details(sync: &SyncJson) -> String {
    let mut text = Details::new()
        .field("id", &sync.id)
        .field("name", &sync.name)
        .field("model", &sync.retl_model_id)
        .field("destination", &sync.destination_id)
        .field("mode", &sync.mode)
        .field("schedule", &sync.schedule)
        .field("paused", paused_text(sync))
        .field(
            "diff strategy",
            match sync.diff_strategy.as_str() {
                "auto" | "unspecified" => {
                    "auto (warehouse-side when the model's postgres source has a backflow schema, else backflow-side)".to_string()
                }
                "warehouse" => "warehouse (state table and diff in the source's backflow schema)".to_string(),
                "backflow" => "backflow (state in backflow's object store)".to_string(),
                other => other.to_string(),
            },
        )
        .field("max delete share", sync.max_delete_share.to_string())
        .field("allow empty extract", sync.allow_empty_extract.to_string())
        .field("max record attempts", sync.max_record_attempts.to_string())
        .field(
            "only if model rebuilt",
            sync.only_if_model_rebuilt.to_string(),
        )
        .field("version", sync.version.to_string())
        .field("created", timestamp(sync.created_at_unix_ms))
        .field("updated", timestamp(sync.updated_at_unix_ms));
    for (key, value) in &sync.destination_options {
        text = text.field(&format!("option {key}"), value.clone());
    }
    let mut table = Table::new(&["field", "from", "if null"]);
    for m in &sync.mappings {
        let from = match &m.constant {
            Some(value) => format!("constant {value:?}"),
            None => format!("column {}", m.source_column),
        };
        let if_null = if m.constant.is_some() {
            "-".into()
        } else {
            m.null_policy.clone()
        };
        table.row(vec![cell(&m.destination_field), cell(&from), if_null]);
    }
    text.section("mappings", table.render()).render()
}

/// `--watch`: the queued run (table output only, so JSON stays one document), then its
/// progress on stderr until it ends, and the run as it ended.
async fn watch_queued(ctx: &Ctx, run: SyncRunJson) -> Result<(), CliError> {
    if ctx.format == OutputFormat::Table {
        ctx.print(&View::new(&run, sync_runs::details(&run).render()));
    }
    sync_runs::watch(ctx, &run.id).await
}

/// Request fields the scheduler's messages name, and the flags of `syncs create|update`.
const SYNC_FLAGS: [(&str, &str); 9] = [
    ("schedule.cron.expression ", "--cron "),
    ("schedule.cron.time_zone ", "--time-zone "),
    ("schedule.interval_seconds ", "--every (in seconds) "),
    (
        "schedule.after_dbt_core_run.project_name ",
        "--after-dbt-core-run ",
    ),
    ("guards.max_delete_share ", "--max-delete-share "),
    ("max_record_attempts ", "--max-record-attempts "),
    ("diff_strategy warehouse:", "--diff-strategy warehouse:"),
    ("destination_options has", "--option has"),
    ("source_column ", "column "),
];

/// A refused `syncs create|update` in the words of its flags: `mappings[1].destination_field
/// "f"` is `field "f"`, `schedule.cron.time_zone` is `--time-zone`.
fn in_flag_words(error: CliError) -> CliError {
    let CliError::Call { status, addr } = error else {
        return error;
    };
    let mut text = SYNC_FLAGS
        .iter()
        .fold(status.message().to_string(), |text, (field, flag)| {
            text.replace(field, flag)
        });
    // `mappings[3].destination_field "x"` → `field "x"`; `mappings[3].` → ``
    while let Some(start) = text.find("mappings[") {
        let rest = &text[start + "mappings[".len()..];
        let Some(close) = rest.find("].") else { break };
        if !rest[..close].chars().all(|c| c.is_ascii_digit()) {
            break;
        }
        let after = &rest[close + 2..];
        let after = after
            .strip_prefix("destination_field ")
            .map_or_else(|| after.to_string(), |tail| format!("field {tail}"));
        text = format!("{}{after}", &text[..start]);
    }
    CliError::Call {
        status: tonic::Status::new(status.code(), text),
        addr,
    }
}

fn sync_of(sync: Option<pb::Sync>) -> Result<SyncJson, CliError> {
    sync.map(SyncJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the sync".into()))
}

/// A run as every command prints it (`sync-runs get` shows the same shape).
fn run_of(run: Option<pb::Run>) -> Result<SyncRunJson, CliError> {
    run.map(SyncRunJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the run".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.retl()?;
    let workspace_id = ctx.workspace();
    let print_sync = |sync: SyncJson| ctx.print(&View::new(&sync, details(&sync)));
    let print_run =
        |run: SyncRunJson| ctx.print(&View::new(&run, sync_runs::details(&run).render()));
    match command {
        Command::Create {
            name,
            retl_model_id,
            destination_id,
            mode,
            mapping,
            schedule,
            options,
            guards,
            diff_strategy,
            max_record_attempts,
            only_if_model_rebuilt,
            paused,
        } => {
            if mapping.is_empty() {
                // a `--null-policy` naming nothing says so first
                mapping.to_proto()?;
                return Err(CliError::Usage(NO_MAPPING.into()));
            }
            let mut mapping = mapping;
            if mapping.map_all {
                let (columns, primary_key) = model_columns(ctx, &retl_model_id).await?;
                mapping.maps = map_all(&columns, &primary_key, &mapping.maps);
                if mapping.maps.is_empty() && mapping.constants.is_empty() {
                    return Err(CliError::Failed(format!(
                        "--map-all: reverse etl model {retl_model_id} has no columns besides its key ({}); map the key with --map",
                        primary_key.join(", ")
                    )));
                }
                let made: Vec<String> = mapping
                    .maps
                    .iter()
                    .map(|(column, field)| {
                        if column == field {
                            column.clone()
                        } else {
                            format!("{column}={field}")
                        }
                    })
                    .collect();
                eprintln!("note: --map-all maps {}", made.join(", "));
            }
            let request = pb::CreateSyncRequest {
                workspace_id,
                name,
                retl_model_id,
                destination_id,
                mode: mode.to_proto() as i32,
                mappings: mapping.to_proto()?,
                schedule: Some(schedule.to_proto().unwrap_or(pb::Schedule {
                    kind: Some(pb::schedule::Kind::Manual(true)),
                })),
                destination_options: options.into_iter().collect(),
                guards: guards.to_proto(),
                diff_strategy: diff_strategy
                    .map(|s| s.to_proto() as i32)
                    .unwrap_or_default(),
                max_record_attempts: max_record_attempts.unwrap_or_default(),
                only_if_model_rebuilt,
                paused,
            };
            let call = api.inner.create_sync(request).await;
            print_sync(sync_of(api.done(call).map_err(in_flag_words)?.sync)?);
        }
        Command::Update {
            sync_id,
            name,
            mode,
            mapping,
            replace_mappings,
            schedule,
            options,
            replace_options,
            guards,
            max_record_attempts,
            only_if_model_rebuilt,
            diff_strategy,
        } => {
            if mapping.map_all {
                return Err(CliError::Usage(
                    "--map-all is for syncs create; to change the mapping of a sync give --map/--constant (with --replace-mappings to drop the others)".into(),
                ));
            }
            if replace_mappings && mapping.is_empty() {
                return Err(CliError::Usage(
                    "--replace-mappings needs the new --map/--constant flags".into(),
                ));
            }
            let request = pb::UpdateSyncRequest {
                workspace_id,
                sync_id,
                name,
                mode: mode.map(|m| m.to_proto() as i32),
                mappings: mapping.to_proto()?,
                replace_mappings,
                schedule: schedule.to_proto(),
                destination_options: options.into_iter().collect(),
                replace_destination_options: replace_options,
                guards: guards.to_proto(),
                max_record_attempts,
                only_if_model_rebuilt,
                diff_strategy: diff_strategy.map(|s| s.to_proto() as i32),
            };
            let call = api.inner.update_sync(request).await;
            let strategy_given = diff_strategy.is_some();
            let sync = sync_of(api.done(call).map_err(in_flag_words)?.sync)?;
            if strategy_given {
                eprintln!(
                    "note: if the diff state now lives elsewhere (backflow-side or in the warehouse), the next run starts from an empty state and sends every row again, as after `backflow syncs reset`"
                );
            }
            print_sync(sync);
        }
        Command::Pause { sync_id } => {
            let call = api
                .inner
                .pause_sync(pb::PauseSyncRequest {
                    workspace_id,
                    sync_id,
                })
                .await;
            print_sync(sync_of(api.done(call)?.sync)?);
        }
        Command::Resume { sync_id } => {
            let call = api
                .inner
                .resume_sync(pb::ResumeSyncRequest {
                    workspace_id,
                    sync_id,
                })
                .await;
            print_sync(sync_of(api.done(call)?.sync)?);
        }
        Command::Reset { sync_id } => {
            let call = api
                .inner
                .reset_sync_state(pb::ResetSyncStateRequest {
                    workspace_id,
                    sync_id,
                })
                .await;
            print_sync(sync_of(api.done(call)?.sync)?);
        }
        Command::Get { sync_id } => {
            let call = api
                .inner
                .get_sync(pb::GetSyncRequest {
                    workspace_id,
                    sync_id,
                })
                .await;
            print_sync(sync_of(api.done(call)?.sync)?);
        }
        Command::Trigger { sync_id, watch } => {
            let call = api
                .inner
                .trigger_sync(pb::TriggerSyncRequest {
                    workspace_id,
                    sync_id,
                })
                .await;
            let run = run_of(api.done(call)?.run)?;
            if watch {
                return watch_queued(ctx, run).await;
            }
            print_run(run);
        }
        Command::DryRun { sync_id, watch } => {
            let call = api
                .inner
                .dry_run_sync(pb::DryRunSyncRequest {
                    workspace_id,
                    sync_id,
                })
                .await;
            let run = run_of(api.done(call)?.run)?;
            if watch {
                return watch_queued(ctx, run).await;
            }
            print_run(run);
        }
        Command::Approve { run_id } => {
            let call = api
                .inner
                .approve_run(pb::ApproveRunRequest {
                    workspace_id,
                    run_id,
                })
                .await;
            print_run(run_of(api.done(call)?.run)?);
        }
        Command::Reject { run_id } => {
            let call = api
                .inner
                .reject_run(pb::RejectRunRequest {
                    workspace_id,
                    run_id,
                })
                .await;
            print_run(run_of(api.done(call)?.run)?);
        }
        Command::Cancel { run_id } => {
            let call = api
                .inner
                .cancel_run(pb::CancelRunRequest {
                    workspace_id,
                    run_id,
                })
                .await;
            print_run(run_of(api.done(call)?.run)?);
        }
        Command::Delete { sync_id } => {
            let call = api
                .inner
                .delete_sync(pb::DeleteSyncRequest {
                    workspace_id,
                    sync_id: sync_id.clone(),
                })
                .await;
            api.done(call)?;
            let done = serde_json::json!({ "deleted": sync_id });
            ctx.print(&View::new(&done, format!("deleted sync {sync_id}")));
        }
        Command::List => {
            let call = api
                .inner
                .list_syncs(pb::ListSyncsRequest { workspace_id })
                .await;
            let syncs: Vec<SyncJson> = api
                .done(call)?
                .syncs
                .into_iter()
                .map(SyncJson::from)
                .collect();
            let mut table = Table::new(&[
                "id",
                "name",
                "model",
                "destination",
                "mode",
                "schedule",
                "paused",
            ]);
            for s in &syncs {
                table.row(vec![
                    s.id.clone(),
                    cell(&s.name),
                    s.retl_model_id.clone(),
                    s.destination_id.clone(),
                    s.mode.clone(),
                    cell(&s.schedule),
                    cell(&paused_text(s)),
                ]);
            }
            ctx.print(&View::new(&syncs, table.render()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn map_all_maps_every_non_key_column_once_after_the_explicit_maps() {
        let columns: Vec<String> = ["id", "email", "name", "score"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let key = vec!["id".to_string()];
        assert_eq!(
            map_all(&columns, &key, &[]),
            pairs(&[("email", "email"), ("name", "name"), ("score", "score")])
        );
        // a renamed column is not mapped a second time, nor is a field already fed
        assert_eq!(
            map_all(
                &columns,
                &key,
                &pairs(&[("email", "Email"), ("id", "name")])
            ),
            pairs(&[("email", "Email"), ("id", "name"), ("score", "score")])
        );
        assert!(map_all(&key, &key, &[]).is_empty());
    }

    #[test]
    fn a_sync_backflow_paused_says_why_in_both_outputs() {
        let reason = "destination hook answered 410 gone at 127.0.0.1:80 in run r-1 (gone); \
                      fix or replace the endpoint, then resume the sync";
        let mut sync = SyncJson::from(pb::Sync {
            paused: true,
            paused_reason: reason.into(),
            ..Default::default()
        });
        assert_eq!(paused_text(&sync), format!("true ({reason})"));
        assert!(details(&sync).contains(&format!("true ({reason})")));
        let json = serde_json::to_value(&sync).unwrap();
        assert_eq!(
            (&json["paused"], &json["paused_reason"]),
            (&serde_json::json!(true), &serde_json::json!(reason))
        );
        sync.paused_reason.clear();
        assert_eq!(paused_text(&sync), "true");
        sync.paused = false;
        assert_eq!(paused_text(&sync), "false");
    }

    #[test]
    fn refusals_name_the_flags() {
        let said = |message: &str| match in_flag_words(CliError::Call {
            status: tonic::Status::invalid_argument(message),
            addr: "a".into(),
        }) {
            CliError::Call { status, .. } => status.message().to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(
            said("invalid argument: mappings[1].destination_field \"f\" is mapped more than once"),
            "invalid argument: field \"f\" is mapped more than once"
        );
        assert_eq!(
            said("invalid argument: mappings[0].source_column \"x\" is not a column of reverse etl model m"),
            "invalid argument: column \"x\" is not a column of reverse etl model m"
        );
        assert_eq!(
            said("invalid argument: schedule.cron.time_zone \"Mars\" is not an IANA time zone"),
            "invalid argument: --time-zone \"Mars\" is not an IANA time zone"
        );
        assert_eq!(said("mappings[x].y"), "mappings[x].y");
    }

    #[test]
    fn a_create_without_a_mapping_says_how_to_map() {
        assert!(MappingArgs::default().is_empty());
        assert!(!MappingArgs {
            map_all: true,
            ..Default::default()
        }
        .is_empty());
        assert!(NO_MAPPING.contains("--map COLUMN[=FIELD]") && NO_MAPPING.contains("--map-all"));
        assert!(!NO_MAPPING.contains("  "), "{NO_MAPPING}");
    }
}
