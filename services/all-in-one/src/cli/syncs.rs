//! `backflow syncs`: Reverse ETL syncs (a Reverse ETL model delivered to a destination
//! with a mode, a field mapping and a schedule): create, update, pause, resume, trigger,
//! reset, dry-run, delete, list, get; and `approve|reject|cancel <run>` for the runs a
//! sync made (the same calls as `backflow runs`). Flag rules: [`super::sync_args`].

use super::client::CliError;
use super::output::{cell, timestamp, Details, OutputFormat, Table, View};
use super::sync_args::{
    mappings, parse_map, parse_null_policy, NullPolicyArg, RunJson, ScheduleArgs, SyncJson,
};
use super::Ctx;
use backflow_proto::retl::v1 as pb;

/// The mapping flags, shared by create and update.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct MappingArgs {
    /// Column to field, repeatable: `email=email_address` (a bare `email` keeps the name).
    #[arg(long = "map", value_name = "COLUMN=FIELD", value_parser = parse_map)]
    pub maps: Vec<(String, String)>,
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
        self.maps.is_empty() && self.constants.is_empty()
    }
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
    /// Schedule runs again (ticks missed while paused do not fire).
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

fn details(sync: &SyncJson) -> String {
    let mut text = Details::new()
        .field("id", &sync.id)
        .field("name", &sync.name)
        .field("model", &sync.retl_model_id)
        .field("destination", &sync.destination_id)
        .field("mode", &sync.mode)
        .field("schedule", &sync.schedule)
        .field("paused", sync.paused.to_string())
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

fn run_details(run: &RunJson) -> String {
    Details::new()
        .field("run", &run.id)
        .field("sync", &run.sync_id)
        .field("status", &run.status)
        .field("trigger", &run.trigger)
        .field("cause", &run.cause_id)
        .field("dry run", run.dry_run.to_string())
        .field("queued", timestamp(run.queued_at_unix_ms))
        .field("approval reason", &run.approval_reason)
        .field("error", &run.error)
        .render()
}

/// `--watch`: the queued run (table output only, so JSON stays one document), then its
/// progress on stderr until it ends, and the run as it ended.
async fn watch_queued(ctx: &Ctx, run: RunJson) -> Result<(), CliError> {
    if ctx.format == OutputFormat::Table {
        ctx.print(&View::new(&run, run_details(&run)));
    }
    super::sync_runs::watch(ctx, &run.id).await
}

fn sync_of(sync: Option<pb::Sync>) -> Result<SyncJson, CliError> {
    sync.map(SyncJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the sync".into()))
}

fn run_of(run: Option<pb::Run>) -> Result<RunJson, CliError> {
    run.map(RunJson::from)
        .ok_or_else(|| CliError::Failed("the server answered without the run".into()))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.retl()?;
    let workspace_id = ctx.workspace();
    let print_sync = |sync: SyncJson| ctx.print(&View::new(&sync, details(&sync)));
    let print_run = |run: RunJson| ctx.print(&View::new(&run, run_details(&run)));
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
            print_sync(sync_of(api.done(call)?.sync)?);
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
            let sync = sync_of(api.done(call)?.sync)?;
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
                    s.paused.to_string(),
                ]);
            }
            ctx.print(&View::new(&syncs, table.render()));
        }
    }
    Ok(())
}
