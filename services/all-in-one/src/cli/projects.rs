//! `backflow projects`: the catalog's view of each Git connection's dbt project:
//! its status (ok / failing / never synced) with the last run's error and the
//! commit it tried, the latest synced commit and how many models it has.

use super::client::CliError;
use super::output::{cell, short_sha, timestamp, Details, Table, View};
use super::{names, Ctx};
use backflow_proto::catalog::v1 as pb;
use serde::Serialize;

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// The workspace's projects, one per connection.
    List,
    /// One project, by connection id.
    Get {
        #[arg(value_name = "CONNECTION_ID")]
        id: String,
    },
}

/// `--output json` shape of a project.
#[derive(Debug, Serialize)]
pub struct ProjectJson {
    pub connection_id: String,
    pub workspace_id: String,
    pub name: String,
    pub repository_url: String,
    pub branch: String,
    pub default_schema: String,
    pub latest_commit_sha: String,
    pub model_count: i64,
    pub deleted: bool,
    pub updated_at_unix_ms: i64,
    /// `never-synced`, `ok`, `failing`
    pub status: String,
    pub last_run_id: String,
    pub last_error: String,
    pub last_attempted_commit: String,
    pub error_count: i64,
}

impl From<pb::Project> for ProjectJson {
    fn from(project: pb::Project) -> Self {
        Self {
            connection_id: project.connection_id,
            workspace_id: project.workspace_id,
            name: project.name,
            repository_url: project.repository_url,
            branch: project.branch,
            default_schema: project.default_schema,
            latest_commit_sha: project.latest_commit_sha,
            model_count: project.model_count,
            deleted: project.deleted,
            updated_at_unix_ms: project.updated_at_unix_ms,
            status: names::project_status(project.status),
            last_run_id: project.last_run_id,
            last_error: project.last_error,
            last_attempted_commit: project.last_attempted_commit,
            error_count: project.error_count,
        }
    }
}

fn details(project: &ProjectJson) -> Details {
    Details::new()
        .field("connection", &project.connection_id)
        .field("name", &project.name)
        .field("repository", &project.repository_url)
        .field("branch", &project.branch)
        .field("default schema", &project.default_schema)
        .field("status", &project.status)
        .field("last run", &project.last_run_id)
        .field("last error", &project.last_error)
        .field("last attempted", &project.last_attempted_commit)
        .field("latest commit", &project.latest_commit_sha)
        .field("models", project.model_count.to_string())
        .field("errors", project.error_count.to_string())
        .field("deleted", if project.deleted { "yes" } else { "no" })
        .field("updated", timestamp(project.updated_at_unix_ms))
}

pub async fn run(ctx: &Ctx, command: Command) -> Result<(), CliError> {
    let mut api = ctx.client.catalog()?;
    let workspace_id = ctx.workspace();
    match command {
        Command::List => {
            let call = api
                .inner
                .list_projects(pb::ListProjectsRequest { workspace_id })
                .await;
            let projects: Vec<ProjectJson> = api
                .done(call)?
                .projects
                .into_iter()
                .map(ProjectJson::from)
                .collect();
            let mut table = Table::new(&[
                "connection",
                "name",
                "branch",
                "status",
                "commit",
                "models",
                "errors",
                "last error",
            ]);
            for p in &projects {
                table.row(vec![
                    p.connection_id.clone(),
                    cell(&p.name),
                    cell(&p.branch),
                    p.status.clone(),
                    short_sha(&p.latest_commit_sha),
                    p.model_count.to_string(),
                    p.error_count.to_string(),
                    cell(&p.last_error),
                ]);
            }
            ctx.print(&View::new(&projects, table.render()));
        }
        Command::Get { id } => {
            let call = api
                .inner
                .get_project(pb::GetProjectRequest {
                    workspace_id,
                    connection_id: id,
                })
                .await;
            let project = api
                .done(call)?
                .project
                .map(ProjectJson::from)
                .ok_or_else(|| {
                    CliError::Failed("the server answered without the project".into())
                })?;
            let text = details(&project).render();
            ctx.print(&View::new(&project, text));
        }
    }
    Ok(())
}
