//! Short names for proto enum values, used in tables and in `--output json` alike:
//! `SYNC_STATUS_SUCCEEDED` is `succeeded`, `SECRET_KIND_GIT_TOKEN` is `git-token`.
//! A value this binary does not know yet prints as `unknown(<n>)`, never a panic.

/// `SECRET_KIND_GIT_TOKEN` with prefix `SECRET_KIND_` → `git-token`.
pub fn short(full: &str, prefix: &str) -> String {
    full.strip_prefix(prefix)
        .unwrap_or(full)
        .to_ascii_lowercase()
        .replace('_', "-")
}

/// The short name of a proto enum value given as its `i32`.
pub fn of<E>(value: i32, prefix: &str) -> String
where
    E: TryFrom<i32> + ProtoName,
{
    match E::try_from(value) {
        Ok(known) => short(known.proto_name(), prefix),
        Err(_) => format!("unknown({value})"),
    }
}

/// The generated `as_str_name` of prost enums, as a trait.
pub trait ProtoName {
    fn proto_name(&self) -> &'static str;
}

macro_rules! proto_name {
    ($($ty:ty),* $(,)?) => {
        $(impl ProtoName for $ty {
            fn proto_name(&self) -> &'static str {
                self.as_str_name()
            }
        })*
    };
}

proto_name!(
    backflow_proto::credentials::v1::SecretKind,
    backflow_proto::gitsync::v1::GitProvider,
    backflow_proto::gitsync::v1::GitProtocol,
    backflow_proto::gitsync::v1::SyncStatus,
    backflow_proto::gitsync::v1::SyncTrigger,
    backflow_proto::catalog::v1::WarehouseKind,
    backflow_proto::catalog::v1::ProjectStatus,
    backflow_proto::catalog::v1::QueryMode,
    backflow_proto::catalog::v1::RetlModelStatus,
    backflow_proto::catalog::v1::ColumnOrigin,
    backflow_proto::retl::v1::SyncMode,
    backflow_proto::retl::v1::RunStatus,
    backflow_proto::retl::v1::RunTrigger,
    backflow_proto::retl::v1::DestinationKind,
    backflow_proto::retl::v1::NullPolicy,
    backflow_proto::retl::v1::DiffStrategy,
    backflow_proto::dbtcloud::v1::ConnectionProblem,
);

pub fn secret_kind(value: i32) -> String {
    of::<backflow_proto::credentials::v1::SecretKind>(value, "SECRET_KIND_")
}

pub fn provider(value: i32) -> String {
    of::<backflow_proto::gitsync::v1::GitProvider>(value, "GIT_PROVIDER_")
}

pub fn protocol(value: i32) -> String {
    of::<backflow_proto::gitsync::v1::GitProtocol>(value, "GIT_PROTOCOL_")
}

pub fn sync_status(value: i32) -> String {
    of::<backflow_proto::gitsync::v1::SyncStatus>(value, "SYNC_STATUS_")
}

pub fn sync_trigger(value: i32) -> String {
    of::<backflow_proto::gitsync::v1::SyncTrigger>(value, "SYNC_TRIGGER_")
}

pub fn warehouse_kind(value: i32) -> String {
    of::<backflow_proto::catalog::v1::WarehouseKind>(value, "WAREHOUSE_KIND_")
}

pub fn query_mode(value: i32) -> String {
    of::<backflow_proto::catalog::v1::QueryMode>(value, "QUERY_MODE_")
}

pub fn retl_model_status(value: i32) -> String {
    of::<backflow_proto::catalog::v1::RetlModelStatus>(value, "RETL_MODEL_STATUS_")
}

pub fn column_origin(value: i32) -> String {
    of::<backflow_proto::catalog::v1::ColumnOrigin>(value, "COLUMN_ORIGIN_")
}

pub fn project_status(value: i32) -> String {
    of::<backflow_proto::catalog::v1::ProjectStatus>(value, "PROJECT_STATUS_")
}

pub fn sync_mode(value: i32) -> String {
    of::<backflow_proto::retl::v1::SyncMode>(value, "SYNC_MODE_")
}

pub fn run_status(value: i32) -> String {
    of::<backflow_proto::retl::v1::RunStatus>(value, "RUN_STATUS_")
}

pub fn destination_kind(value: i32) -> String {
    of::<backflow_proto::retl::v1::DestinationKind>(value, "DESTINATION_KIND_")
}

pub fn null_policy(value: i32) -> String {
    of::<backflow_proto::retl::v1::NullPolicy>(value, "NULL_POLICY_")
}

pub fn diff_strategy(value: i32) -> String {
    of::<backflow_proto::retl::v1::DiffStrategy>(value, "DIFF_STRATEGY_")
}

pub fn connection_problem(value: i32) -> String {
    of::<backflow_proto::dbtcloud::v1::ConnectionProblem>(value, "CONNECTION_PROBLEM_")
}

#[cfg(test)]
mod tests {
    use super::*;
    use backflow_proto::credentials::v1::SecretKind;
    use backflow_proto::gitsync::v1::SyncStatus;

    #[test]
    fn enum_values_get_short_names() {
        assert_eq!(secret_kind(SecretKind::GitToken as i32), "git-token");
        assert_eq!(
            secret_kind(SecretKind::SshPrivateKey as i32),
            "ssh-private-key"
        );
        assert_eq!(sync_status(SyncStatus::Succeeded as i32), "succeeded");
        assert_eq!(sync_status(42), "unknown(42)");
    }
}
