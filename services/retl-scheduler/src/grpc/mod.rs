//! The gRPC edge of the Reverse ETL scheduler: decodes requests into domain types,
//! calls [`Scheduler`], and maps [`RetlError`] to status codes in one place.
//! The one `RetlSchedulerService` impl lives here and delegates by resource:
//! [`syncs`] (sync lifecycle beyond create/get/list/pause/resume/trigger),
//! [`runs`] (runs: get, watch, cancel, approve, reject, record errors) and
//! [`destinations`].

pub mod destinations;
pub mod runs;
pub mod syncs;

use crate::error::RetlError;
use crate::run::RunRecord;
use crate::schedule::Schedule;
use crate::scheduler::Scheduler;
use crate::sync::SyncRecord;
use backflow_proto::retl::v1 as pb;
use pb::retl_scheduler_service_server::{RetlSchedulerService, RetlSchedulerServiceServer};
use pb::schedule::Kind;
use tonic::{Request, Response, Status};

pub const SERVICE_NAME: &str = "backflow.retl.v1.RetlSchedulerService";

#[derive(Debug, Clone)]
pub struct RetlSchedulerGrpc {
    scheduler: Scheduler,
}

impl RetlSchedulerGrpc {
    pub fn new(scheduler: Scheduler) -> Self {
        Self { scheduler }
    }

    pub fn into_server(self) -> RetlSchedulerServiceServer<Self> {
        RetlSchedulerServiceServer::new(self)
    }
}

/// Request errors reach callers through platform's one mapping
/// ([`backflow_platform::request_error::to_status`]).
impl backflow_platform::request_error::RequestError for RetlError {
    const SERVICE: &'static str = "retl-scheduler";

    fn kind(&self) -> backflow_platform::request_error::RequestErrorKind {
        use backflow_platform::request_error::RequestErrorKind as Kind;
        match self {
            RetlError::InvalidArgument(_) => Kind::InvalidArgument,
            RetlError::NotFound(_)
            | RetlError::DestinationNotFound(_)
            | RetlError::RunNotFound(_)
            | RetlError::ModelNotFound(_) => Kind::NotFound,
            RetlError::AlreadyExists(_) | RetlError::DestinationExists(_) => Kind::AlreadyExists,
            RetlError::FailedPrecondition(_) => Kind::FailedPrecondition,
            RetlError::Unavailable(_) => Kind::Unavailable,
            _ => Kind::Internal,
        }
    }
}

impl From<RetlError> for Status {
    fn from(error: RetlError) -> Self {
        backflow_platform::request_error::to_status(&error)
    }
}

/// The schedule a request carries; `None` if it has no kind set.
pub fn schedule_from_wire(schedule: Option<pb::Schedule>) -> Option<Schedule> {
    Some(match schedule?.kind? {
        Kind::Manual(_) => Schedule::Manual,
        Kind::IntervalSeconds(seconds) => Schedule::Interval { seconds },
        Kind::Cron(cron) => Schedule::Cron {
            expression: cron.expression,
            time_zone: cron.time_zone,
        },
        Kind::AfterDbtCloudJob(job) => Schedule::AfterDbtCloudJob {
            account_id: job.account_id,
            job_id: job.job_id,
        },
        Kind::AfterDbtCoreRun(run) => Schedule::AfterDbtCoreRun {
            project_name: run.project_name,
        },
    })
}

fn schedule_to_wire(schedule: Schedule) -> pb::Schedule {
    let kind = match schedule {
        Schedule::Manual => Kind::Manual(true),
        Schedule::Interval { seconds } => Kind::IntervalSeconds(seconds),
        Schedule::Cron {
            expression,
            time_zone,
        } => Kind::Cron(pb::CronSchedule {
            expression,
            time_zone,
        }),
        Schedule::AfterDbtCloudJob { account_id, job_id } => {
            Kind::AfterDbtCloudJob(pb::DbtCloudJobSchedule { account_id, job_id })
        }
        Schedule::AfterDbtCoreRun { project_name } => {
            Kind::AfterDbtCoreRun(pb::DbtCoreRunSchedule { project_name })
        }
    };
    pb::Schedule { kind: Some(kind) }
}

pub(crate) fn sync_of(record: SyncRecord) -> pb::Sync {
    pb::Sync {
        id: record.id,
        workspace_id: record.workspace_id,
        name: record.name,
        retl_model_id: record.retl_model_id,
        destination_id: record.destination_id,
        mode: record.mode as i32,
        mappings: record
            .mappings
            .into_iter()
            .map(syncs::mapping_to_wire)
            .collect(),
        schedule: Some(schedule_to_wire(record.schedule)),
        paused: record.paused,
        created_at_unix_ms: record.created_at_ms,
        destination_options: record.destination_options.into_iter().collect(),
        guards: Some(pb::SyncGuards {
            max_delete_share: record.guards.max_delete_share,
            allow_empty_extract: record.guards.allow_empty_extract,
        }),
        diff_strategy: record.diff_strategy as i32,
        max_record_attempts: record.max_record_attempts,
        only_if_model_rebuilt: record.only_if_model_rebuilt,
        updated_at_unix_ms: record.updated_at_ms,
        version: record.version,
        paused_reason: record.paused_reason,
    }
}

pub(crate) fn run_of(record: RunRecord) -> pb::Run {
    crate::store::runs::run_to_proto(record)
}

#[tonic::async_trait]
impl RetlSchedulerService for RetlSchedulerGrpc {
    async fn create_sync(
        &self,
        request: Request<pb::CreateSyncRequest>,
    ) -> Result<Response<pb::CreateSyncResponse>, Status> {
        let record = self
            .scheduler
            .create_sync(syncs::new_sync_of(request.into_inner())?)
            .await?;
        Ok(Response::new(pb::CreateSyncResponse {
            sync: Some(sync_of(record)),
        }))
    }

    async fn get_sync(
        &self,
        request: Request<pb::GetSyncRequest>,
    ) -> Result<Response<pb::GetSyncResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .scheduler
            .get_sync(&request.workspace_id, &request.sync_id)
            .await?;
        Ok(Response::new(pb::GetSyncResponse {
            sync: Some(sync_of(record)),
        }))
    }

    async fn list_syncs(
        &self,
        request: Request<pb::ListSyncsRequest>,
    ) -> Result<Response<pb::ListSyncsResponse>, Status> {
        let records = self
            .scheduler
            .list_syncs(&request.into_inner().workspace_id)
            .await?;
        Ok(Response::new(pb::ListSyncsResponse {
            syncs: records.into_iter().map(sync_of).collect(),
        }))
    }

    async fn pause_sync(
        &self,
        request: Request<pb::PauseSyncRequest>,
    ) -> Result<Response<pb::PauseSyncResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .scheduler
            .set_paused(&request.workspace_id, &request.sync_id, true)
            .await?;
        Ok(Response::new(pb::PauseSyncResponse {
            sync: Some(sync_of(record)),
        }))
    }

    async fn resume_sync(
        &self,
        request: Request<pb::ResumeSyncRequest>,
    ) -> Result<Response<pb::ResumeSyncResponse>, Status> {
        let request = request.into_inner();
        let record = self
            .scheduler
            .set_paused(&request.workspace_id, &request.sync_id, false)
            .await?;
        Ok(Response::new(pb::ResumeSyncResponse {
            sync: Some(sync_of(record)),
        }))
    }

    async fn trigger_sync(
        &self,
        request: Request<pb::TriggerSyncRequest>,
    ) -> Result<Response<pb::TriggerSyncResponse>, Status> {
        let request = request.into_inner();
        let run = self
            .scheduler
            .trigger(&request.workspace_id, &request.sync_id)
            .await?;
        Ok(Response::new(pb::TriggerSyncResponse {
            run: Some(run_of(run)),
        }))
    }

    async fn list_runs(
        &self,
        request: Request<pb::ListRunsRequest>,
    ) -> Result<Response<pb::ListRunsResponse>, Status> {
        let request = request.into_inner();
        let runs = self
            .scheduler
            .list_runs(&request.workspace_id, &request.sync_id, request.limit)
            .await?;
        Ok(Response::new(pb::ListRunsResponse {
            runs: runs.into_iter().map(run_of).collect(),
        }))
    }

    async fn update_sync(
        &self,
        request: Request<pb::UpdateSyncRequest>,
    ) -> Result<Response<pb::UpdateSyncResponse>, Status> {
        syncs::update_sync(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_sync(
        &self,
        request: Request<pb::DeleteSyncRequest>,
    ) -> Result<Response<pb::DeleteSyncResponse>, Status> {
        syncs::delete_sync(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn reset_sync_state(
        &self,
        request: Request<pb::ResetSyncStateRequest>,
    ) -> Result<Response<pb::ResetSyncStateResponse>, Status> {
        syncs::reset_sync_state(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn dry_run_sync(
        &self,
        request: Request<pb::DryRunSyncRequest>,
    ) -> Result<Response<pb::DryRunSyncResponse>, Status> {
        syncs::dry_run_sync(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_run(
        &self,
        request: Request<pb::GetRunRequest>,
    ) -> Result<Response<pb::GetRunResponse>, Status> {
        runs::get_run(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn cancel_run(
        &self,
        request: Request<pb::CancelRunRequest>,
    ) -> Result<Response<pb::CancelRunResponse>, Status> {
        runs::cancel_run(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn approve_run(
        &self,
        request: Request<pb::ApproveRunRequest>,
    ) -> Result<Response<pb::ApproveRunResponse>, Status> {
        runs::approve_run(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn reject_run(
        &self,
        request: Request<pb::RejectRunRequest>,
    ) -> Result<Response<pb::RejectRunResponse>, Status> {
        runs::reject_run(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_run_record_errors(
        &self,
        request: Request<pb::ListRunRecordErrorsRequest>,
    ) -> Result<Response<pb::ListRunRecordErrorsResponse>, Status> {
        runs::list_run_record_errors(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn create_destination(
        &self,
        request: Request<pb::CreateDestinationRequest>,
    ) -> Result<Response<pb::CreateDestinationResponse>, Status> {
        destinations::create_destination(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn get_destination(
        &self,
        request: Request<pb::GetDestinationRequest>,
    ) -> Result<Response<pb::GetDestinationResponse>, Status> {
        destinations::get_destination(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn list_destinations(
        &self,
        request: Request<pb::ListDestinationsRequest>,
    ) -> Result<Response<pb::ListDestinationsResponse>, Status> {
        destinations::list_destinations(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn update_destination(
        &self,
        request: Request<pb::UpdateDestinationRequest>,
    ) -> Result<Response<pb::UpdateDestinationResponse>, Status> {
        destinations::update_destination(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn delete_destination(
        &self,
        request: Request<pb::DeleteDestinationRequest>,
    ) -> Result<Response<pb::DeleteDestinationResponse>, Status> {
        destinations::delete_destination(self, request.into_inner())
            .await
            .map(Response::new)
    }

    async fn test_destination(
        &self,
        request: Request<pb::TestDestinationRequest>,
    ) -> Result<Response<pb::TestDestinationResponse>, Status> {
        destinations::test_destination(self, request.into_inner())
            .await
            .map(Response::new)
    }

    type WatchRunStream = runs::WatchRunStream;

    async fn watch_run(
        &self,
        request: Request<pb::WatchRunRequest>,
    ) -> Result<Response<Self::WatchRunStream>, Status> {
        runs::watch_run(self, request.into_inner())
            .await
            .map(Response::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_round_trip_through_the_wire() {
        for schedule in [
            Schedule::Manual,
            Schedule::Interval { seconds: 600 },
            Schedule::Cron {
                expression: "0 9 * * 1-5".into(),
                time_zone: "Europe/Berlin".into(),
            },
            Schedule::AfterDbtCloudJob {
                account_id: 1,
                job_id: 2,
            },
            Schedule::AfterDbtCoreRun {
                project_name: "shop".into(),
            },
        ] {
            let wire = schedule_to_wire(schedule.clone());
            assert_eq!(schedule_from_wire(Some(wire)), Some(schedule));
        }
    }

    #[test]
    fn missing_schedule_kind_is_no_schedule() {
        assert_eq!(schedule_from_wire(None), None);
        assert_eq!(schedule_from_wire(Some(pb::Schedule { kind: None })), None);
    }
}
