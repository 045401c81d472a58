//! A Reverse ETL model follows its dbt model across commits. When a new snapshot of
//! the connection lands, each Reverse ETL model is judged against it: the dbt model
//! still there, enabled, compiling, with every key column → ok at the new commit;
//! otherwise broken, with the reason and the commit. A later commit that repairs it
//! makes it ok again. Pure: the store feeds it the snapshot and applies the verdict.

use super::query::{breakage, relation_of, QueryMode};
use backflow_proto::catalog::v1 as pb;

/// What following needs to know about a Reverse ETL model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Followed<'a> {
    pub model_unique_id: &'a str,
    pub primary_key: &'a [String],
    pub query_mode: QueryMode,
    /// Checksum of the dbt model at the commit it follows now (to recognise a rename).
    pub previous_checksum: Option<&'a str>,
}

/// The verdict at one commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Usable at `commit_sha`, whose model renders `relation_name`.
    Ok {
        commit_sha: String,
        relation_name: String,
    },
    /// Not usable since `commit_sha` (the reason names no commit, so a model broken the
    /// same way at later commits keeps the commit that broke it).
    Broken { reason: String, commit_sha: String },
}

/// Judges a Reverse ETL model against the models of one commit.
pub fn judge(followed: &Followed<'_>, snapshot: &[pb::Model], commit_sha: &str) -> Verdict {
    let broken = |reason: String| Verdict::Broken {
        reason,
        commit_sha: commit_sha.to_string(),
    };
    let Some(model) = snapshot
        .iter()
        .find(|m| m.unique_id == followed.model_unique_id)
    else {
        let renamed = followed.previous_checksum.and_then(|checksum| {
            snapshot
                .iter()
                .find(|m| !checksum.is_empty() && m.checksum == checksum)
        });
        return broken(match renamed {
            Some(other) => format!(
                "dbt model {} was renamed to {}; create a reverse etl model from the new one",
                followed.model_unique_id, other.unique_id
            ),
            None => format!(
                "dbt model {} was removed or disabled",
                followed.model_unique_id
            ),
        });
    };
    if let Some(refusal) = breakage(model, followed.query_mode) {
        return broken(refusal.to_string());
    }
    if let Some(missing) = missing_key_column(model, followed.primary_key) {
        return broken(format!(
            "primary key column {missing:?} is no longer a column of dbt model {}",
            model.unique_id
        ));
    }
    Verdict::Ok {
        commit_sha: commit_sha.to_string(),
        relation_name: relation_of(model)
            .map(|relation| relation.rendered)
            .unwrap_or_default(),
    }
}

/// A key column the model's YAML no longer declares. Only YAML columns are known at
/// snapshot time; a model without any declares nothing to check against.
fn missing_key_column<'a>(model: &pb::Model, primary_key: &'a [String]) -> Option<&'a str> {
    if model.columns.is_empty() {
        return None;
    }
    primary_key
        .iter()
        .find(|key| {
            !model
                .columns
                .iter()
                .any(|column| column.name.eq_ignore_ascii_case(key))
        })
        .map(String::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(name: &str) -> pb::Column {
        pb::Column {
            name: name.into(),
            ..Default::default()
        }
    }

    fn customers() -> pb::Model {
        pb::Model {
            unique_id: "model.shop.customers".into(),
            name: "customers".into(),
            relation_name: "\"db\".\"s\".\"customers\"".into(),
            materialized: "table".into(),
            compiled_sql: "select 1 as id".into(),
            checksum: "c1".into(),
            columns: vec![column("id"), column("email")],
            ..Default::default()
        }
    }

    fn followed(key: &[String]) -> Followed<'_> {
        Followed {
            model_unique_id: "model.shop.customers",
            primary_key: key,
            query_mode: QueryMode::Relation,
            previous_checksum: Some("c1"),
        }
    }

    fn reason(verdict: Verdict) -> String {
        match verdict {
            Verdict::Broken { reason, .. } => reason,
            other => panic!("expected broken, got {other:?}"),
        }
    }

    const COMMIT: &str = "0123456789abcdef0123";

    #[test]
    fn a_present_model_is_ok_at_the_new_commit() {
        let key = vec!["id".to_string()];
        assert_eq!(
            judge(&followed(&key), &[customers()], COMMIT),
            Verdict::Ok {
                commit_sha: COMMIT.into(),
                relation_name: "\"db\".\"s\".\"customers\"".into()
            }
        );
    }

    #[test]
    fn a_removed_model_breaks_with_the_commit() {
        let key = vec!["id".to_string()];
        let verdict = judge(&followed(&key), &[], COMMIT);
        assert!(matches!(&verdict, Verdict::Broken { commit_sha, .. } if commit_sha == COMMIT));
        assert_eq!(
            reason(verdict),
            "dbt model model.shop.customers was removed or disabled"
        );
    }

    #[test]
    fn a_renamed_model_is_recognised_by_its_checksum_but_still_breaks() {
        let key = vec!["id".to_string()];
        let mut clients = customers();
        clients.unique_id = "model.shop.clients".into();
        let text = reason(judge(&followed(&key), &[clients], COMMIT));
        assert!(text.contains("renamed to model.shop.clients"), "{text}");
    }

    #[test]
    fn a_compile_failure_breaks() {
        let key = vec!["id".to_string()];
        let mut broken = customers();
        broken.compile_error = "unknown ref".into();
        let text = reason(judge(&followed(&key), &[broken], COMMIT));
        assert!(text.contains("does not compile: unknown ref"), "{text}");
    }

    #[test]
    fn a_dropped_key_column_breaks_and_naming_it() {
        let key = vec!["id".to_string()];
        let mut changed = customers();
        changed.columns.remove(0);
        let text = reason(judge(&followed(&key), &[changed], COMMIT));
        assert!(text.starts_with("primary key column \"id\""), "{text}");
    }

    #[test]
    fn key_columns_match_without_case_and_models_without_yaml_columns_pass() {
        let key = vec!["ID".to_string()];
        assert!(matches!(
            judge(&followed(&key), &[customers()], COMMIT),
            Verdict::Ok { .. }
        ));
        let mut bare = customers();
        bare.columns.clear();
        let key = vec!["anything".to_string()];
        assert!(matches!(
            judge(&followed(&key), &[bare], COMMIT),
            Verdict::Ok { .. }
        ));
    }

    #[test]
    fn compiled_sql_mode_breaks_when_the_sql_is_not_one_statement() {
        let key = vec!["id".to_string()];
        let mut f = followed(&key);
        f.query_mode = QueryMode::CompiledSql;
        let mut m = customers();
        m.compiled_sql.clear();
        let text = reason(judge(&f, &[m], COMMIT));
        assert!(text.contains("has no compiled sql"), "{text}");
    }
}
