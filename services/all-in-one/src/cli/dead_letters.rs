//! `backflow dead-letters`: messages a consumer could not handle (deliveries exhausted
//! or rejected), kept by each service with their error. `list` shows them, `replay ID`
//! publishes one again once its cause is fixed (the consumer still handles it at most
//! once). Operator data: the calls need an operator token.

use super::client::{CliError, Service};
use super::output::{cell, timestamp, Details, Table, View};
use super::Ctx;
use backflow_proto::ops::v1 as pb;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List dead letters, newest first.
    List {
        /// Only this service's (credentials, git-sync, model-catalog,
        /// dbt-cloud-listener, retl-scheduler); default every service.
        #[arg(long)]
        service: Option<String>,
        /// Also list the ones already replayed.
        #[arg(long)]
        all: bool,
        /// At most this many per service.
        #[arg(long, default_value_t = 100)]
        limit: i32,
    },
    /// Publish a dead letter again, after fixing what made it fail.
    Replay {
        id: String,
        /// The service that holds it (default: every service is searched).
        #[arg(long)]
        service: Option<String>,
    },
}

/// `--output json` shape of a dead letter (payload as base64, like grpcurl).
#[derive(Debug, Serialize)]
pub struct DeadLetterJson {
    pub id: String,
    pub service: String,
    pub consumer: String,
    pub subject: String,
    pub message_id: String,
    pub payload_base64: String,
    pub headers: BTreeMap<String, String>,
    pub error: String,
    pub reason: String,
    pub delivery_count: i64,
    pub created_at_unix_ms: i64,
    pub replayed_at_unix_ms: i64,
    pub replay_count: i64,
}

impl From<pb::DeadLetter> for DeadLetterJson {
    fn from(letter: pb::DeadLetter) -> Self {
        use base64::Engine as _;
        Self {
            id: letter.id,
            service: letter.service,
            consumer: letter.consumer,
            subject: letter.subject,
            message_id: letter.message_id,
            payload_base64: base64::engine::general_purpose::STANDARD.encode(&letter.payload),
            headers: letter.headers.into_iter().collect(),
            error: letter.error,
            reason: letter.reason,
            delivery_count: letter.delivery_count,
            created_at_unix_ms: letter.created_at_ms,
            replayed_at_unix_ms: letter.replayed_at_ms,
            replay_count: letter.replay_count,
        }
    }
}

/// Where a service's dead letters are asked for (its own address when one is set).
fn service_of(name: Option<&str>) -> Result<Option<Service>, CliError> {
    let Some(name) = name else { return Ok(None) };
    match name.replace('_', "-").as_str() {
        "credentials" => Ok(Some(Service::Credentials)),
        "git-sync" => Ok(Some(Service::GitSync)),
        "model-catalog" => Ok(Some(Service::ModelCatalog)),
        "dbt-cloud-listener" => Ok(Some(Service::DbtCloudListener)),
        "retl-scheduler" => Ok(Some(Service::RetlScheduler)),
        _ => Err(CliError::Usage(format!(
            "unknown service {name:?}: expected credentials, git-sync, model-catalog, dbt-cloud-listener or retl-scheduler"
        ))),
    }
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    match command {
        Command::List {
            service,
            all,
            limit,
        } => {
            let mut api = ctx.client.dead_letters(service_of(service.as_deref())?)?;
            let call = api
                .inner
                .list_dead_letters(pb::ListDeadLettersRequest {
                    service: service.unwrap_or_default(),
                    include_replayed: all,
                    limit,
                })
                .await;
            let letters: Vec<DeadLetterJson> = api
                .done(call)?
                .dead_letters
                .into_iter()
                .map(DeadLetterJson::from)
                .collect();
            let mut table = Table::new(&[
                "id",
                "service",
                "consumer",
                "subject",
                "reason",
                "deliveries",
                "created",
                "replayed",
                "error",
            ]);
            for l in &letters {
                table.row(vec![
                    l.id.clone(),
                    l.service.clone(),
                    l.consumer.clone(),
                    cell(&l.subject),
                    l.reason.clone(),
                    l.delivery_count.to_string(),
                    timestamp(l.created_at_unix_ms),
                    if l.replay_count > 0 {
                        format!("{}x", l.replay_count)
                    } else {
                        "-".into()
                    },
                    cell(&l.error),
                ]);
            }
            ctx.print(&View::new(&letters, table.render()));
        }
        Command::Replay { id, service } => {
            let mut api = ctx.client.dead_letters(service_of(service.as_deref())?)?;
            let call = api
                .inner
                .replay_dead_letter(pb::ReplayDeadLetterRequest {
                    service: service.unwrap_or_default(),
                    id,
                })
                .await;
            let letter = api
                .done(call)?
                .dead_letter
                .map(DeadLetterJson::from)
                .ok_or_else(|| {
                    CliError::Failed("the server answered without the dead letter".into())
                })?;
            let text = Details::new()
                .field("replayed", &letter.id)
                .field("service", &letter.service)
                .field("consumer", &letter.consumer)
                .field("subject", &letter.subject)
                .field("message id", &letter.message_id)
                .field("replays", letter.replay_count.to_string())
                .render();
            ctx.print(&View::new(&letter, text));
        }
    }
    Ok(())
}
