//! `backflow.ops.v1.DeadLetterService`: lists and replays the dead letters of the
//! services one server fronts. Each service port serves its own; the front door of
//! `backflow dev` serves all of them, and a request names the service it means
//! (`git_sync` or `git-sync`; empty = every one served here). The requests carry no
//! `workspace_id`, so the auth layer admits operator tokens only.

use crate::bus::Bus;
use crate::dead_letter::{DeadLetter, DeadLetterError, DeadLetters};
use backflow_proto::ops::v1 as pb;
use pb::dead_letter_service_server::{DeadLetterService, DeadLetterServiceServer};
use tonic::{Request, Response, Status};

/// Fully-qualified gRPC name, for health and reflection.
pub const SERVICE_NAME: &str = "backflow.ops.v1.DeadLetterService";

const DEFAULT_LIMIT: i64 = 100;

/// The dead letters of one service and the bus to replay them on.
#[derive(Debug, Clone)]
pub struct Target {
    pub store: DeadLetters,
    pub bus: Bus,
}

#[derive(Debug, Clone)]
pub struct DeadLetterGrpc {
    targets: Vec<Target>,
}

impl DeadLetterGrpc {
    pub fn new(targets: Vec<Target>) -> Self {
        Self { targets }
    }

    pub fn into_server(self) -> DeadLetterServiceServer<Self> {
        DeadLetterServiceServer::new(self)
    }

    /// The targets a request names; NOT_FOUND naming what is served when none match.
    fn select(&self, service: &str) -> Result<Vec<&Target>, Status> {
        let wanted = service.trim().replace('-', "_");
        if wanted.is_empty() {
            return Ok(self.targets.iter().collect());
        }
        let chosen: Vec<&Target> = self
            .targets
            .iter()
            .filter(|target| target.store.service() == wanted)
            .collect();
        if chosen.is_empty() {
            let served: Vec<&str> = self.targets.iter().map(|t| t.store.service()).collect();
            return Err(Status::not_found(format!(
                "service {service:?} is not served here (served: {})",
                served.join(", ")
            )));
        }
        Ok(chosen)
    }
}

fn status_of(error: DeadLetterError) -> Status {
    match &error {
        DeadLetterError::NotFound(_) => Status::not_found(error.to_string()),
        DeadLetterError::Bus(_) => Status::unavailable(error.to_string()),
        DeadLetterError::Storage(_) | DeadLetterError::Corrupt { .. } => {
            tracing::error!(%error, "dead-letter request failed");
            Status::internal("internal error")
        }
    }
}

fn to_pb(service: &str, letter: DeadLetter) -> pb::DeadLetter {
    pb::DeadLetter {
        id: letter.id,
        service: service.to_string(),
        consumer: letter.consumer,
        subject: letter.subject,
        message_id: letter.message_id,
        payload: letter.payload,
        headers: letter.headers.into_iter().collect(),
        error: letter.error,
        reason: letter.reason.as_str().to_string(),
        delivery_count: letter.delivery_count,
        created_at_ms: letter.created_at_ms,
        replayed_at_ms: letter.replayed_at_ms.unwrap_or(0),
        replay_count: letter.replay_count,
    }
}

#[tonic::async_trait]
impl DeadLetterService for DeadLetterGrpc {
    async fn list_dead_letters(
        &self,
        request: Request<pb::ListDeadLettersRequest>,
    ) -> Result<Response<pb::ListDeadLettersResponse>, Status> {
        let request = request.into_inner();
        let limit = if request.limit > 0 {
            i64::from(request.limit)
        } else {
            DEFAULT_LIMIT
        };
        let mut dead_letters = Vec::new();
        for target in self.select(&request.service)? {
            let letters = target
                .store
                .list(request.include_replayed, limit)
                .await
                .map_err(status_of)?;
            let service = target.store.service();
            dead_letters.extend(letters.into_iter().map(|letter| to_pb(service, letter)));
        }
        dead_letters.sort_by(|a, b| (b.created_at_ms, &b.id).cmp(&(a.created_at_ms, &a.id)));
        Ok(Response::new(pb::ListDeadLettersResponse { dead_letters }))
    }

    async fn replay_dead_letter(
        &self,
        request: Request<pb::ReplayDeadLetterRequest>,
    ) -> Result<Response<pb::ReplayDeadLetterResponse>, Status> {
        let request = request.into_inner();
        if request.id.trim().is_empty() {
            return Err(Status::invalid_argument("id: required"));
        }
        for target in self.select(&request.service)? {
            if target
                .store
                .get(&request.id)
                .await
                .map_err(status_of)?
                .is_none()
            {
                continue;
            }
            let letter = target
                .store
                .replay(&target.bus, &request.id)
                .await
                .map_err(status_of)?;
            return Ok(Response::new(pb::ReplayDeadLetterResponse {
                dead_letter: Some(to_pb(target.store.service(), letter)),
            }));
        }
        Err(Status::not_found(format!(
            "dead letter {} not found",
            request.id
        )))
    }
}
