//! Columns of a relation (from the catalog, or from an `information_schema.columns`-
//! shaped view such as Redshift's `svv_columns`) and of a query (prepared — parsed and
//! described by the server — but never executed).

use std::collections::HashMap;

use futures::future::BoxFuture;

use sqlx::postgres::{PgRow, PgTypeKind};
use sqlx::{Column as _, Executor, PgConnection, Row, TypeInfo};

use super::types::{decimal_or_text, numeric_decoder, oid, plan_column, ColumnPlan, TypeFacts};
use super::{sql, DescribeSource};
use crate::{RelationRef, WarehouseError};

/// The plans of the columns `select * from (<sql>) as backflow_q` returns.
pub(crate) fn query_plans<'a>(
    conn: &'a mut PgConnection,
    sql_text: &'a str,
) -> BoxFuture<'a, Result<Vec<ColumnPlan>, sqlx::Error>> {
    Box::pin(query_plans_inner(conn, sql_text))
}

async fn query_plans_inner(
    conn: &mut PgConnection,
    sql_text: &str,
) -> Result<Vec<ColumnPlan>, sqlx::Error> {
    let wrapped = sql::describe_wrapper(sql_text);
    let statement = conn.prepare(&wrapped).await?;
    struct Raw {
        name: String,
        oid: u32,
        type_name: String,
        is_array: bool,
        is_composite: bool,
        origin: Option<(u32, i16)>,
    }
    let raw: Vec<Raw> = sqlx::Statement::columns(&statement)
        .iter()
        .map(|c| {
            let t = c.type_info();
            Raw {
                name: c.name().to_string(),
                oid: t.oid().map(|o| o.0).unwrap_or(0),
                type_name: t.name().to_lowercase(),
                is_array: matches!(t.kind(), PgTypeKind::Array(_)),
                is_composite: matches!(t.kind(), PgTypeKind::Composite(_)),
                origin: c
                    .relation_id()
                    .zip(c.relation_attribute_no())
                    .map(|(r, a)| (r.0, a)),
            }
        })
        .collect();
    let pairs: Vec<(u32, i16)> = raw.iter().filter_map(|r| r.origin).collect();
    let mut types: Vec<u32> = raw.iter().map(|r| r.oid).filter(|o| *o != 0).collect();
    types.sort_unstable();
    types.dedup();
    let facts_sql = sql::column_facts(&pairs, &types);
    let mut attrs: HashMap<(u32, i16), (u32, i32, bool, String)> = HashMap::new();
    let mut type_names: HashMap<u32, String> = HashMap::new();
    if !facts_sql.is_empty() {
        for row in sqlx::query(&facts_sql).fetch_all(&mut *conn).await? {
            let kind: String = row.try_get(0)?;
            let id = row.try_get::<i64, _>(1)? as u32;
            let full: String = row.try_get(6)?;
            if kind == "a" {
                let attnum = row.try_get::<i32, _>(2)? as i16;
                let typ = row.try_get::<i64, _>(3)? as u32;
                attrs.insert((id, attnum), (typ, row.try_get(4)?, row.try_get(5)?, full));
            } else {
                type_names.insert(id, full);
            }
        }
    }
    Ok(raw
        .into_iter()
        .map(|r| {
            // the table column's typmod only when the query did not change its type
            let attr = r
                .origin
                .and_then(|o| attrs.get(&o))
                .filter(|a| a.0 == r.oid);
            let (typmod, not_null, full) = match attr {
                Some((_, m, nn, f)) => (*m, *nn, f.clone()),
                None => (
                    -1,
                    false,
                    type_names
                        .get(&r.oid)
                        .cloned()
                        .unwrap_or_else(|| r.type_name.clone()),
                ),
            };
            let mut plan = plan_column(
                &r.name,
                full,
                !not_null,
                TypeFacts {
                    oid: r.oid,
                    typmod,
                    name: &r.type_name,
                    is_array: r.is_array,
                    is_composite: r.is_composite,
                },
            );
            plan.origin = r.origin;
            plan
        })
        .collect())
}

/// The plans of a relation's columns, in ordinal order.
pub(crate) fn relation_plans<'a>(
    conn: &'a mut PgConnection,
    source: DescribeSource,
    relation: &'a RelationRef,
) -> BoxFuture<'a, Result<Result<Vec<ColumnPlan>, WarehouseError>, sqlx::Error>> {
    Box::pin(relation_plans_inner(conn, source, relation))
}

async fn relation_plans_inner(
    conn: &mut PgConnection,
    source: DescribeSource,
    relation: &RelationRef,
) -> Result<Result<Vec<ColumnPlan>, WarehouseError>, sqlx::Error> {
    let current: String = sqlx::query_scalar(sql::CURRENT_DATABASE)
        .fetch_one(&mut *conn)
        .await?;
    if !relation.database.is_empty() && relation.database != current {
        return Ok(Err(unknown(relation)));
    }
    let plans = match source {
        DescribeSource::Catalog => {
            let rows = sqlx::query(sql::DESCRIBE_RELATION_CATALOG)
                .bind(&relation.schema)
                .bind(&relation.identifier)
                .fetch_all(&mut *conn)
                .await?;
            if rows.first().map(|r| r.try_get::<bool, _>(8)).transpose()? == Some(false) {
                return Ok(Err(WarehouseError::MissingPrivilege {
                    detail: format!("no select privilege on {}", relation.rendered),
                }));
            }
            rows.iter()
                .map(catalog_plan)
                .collect::<Result<Vec<_>, _>>()?
        }
        DescribeSource::ColumnsView(view) => {
            let rows = sqlx::query(&sql::describe_relation_view(view))
                .bind(&relation.schema)
                .bind(&relation.identifier)
                .fetch_all(&mut *conn)
                .await?;
            rows.iter().map(view_plan).collect::<Result<Vec<_>, _>>()?
        }
    };
    if plans.is_empty() {
        return Ok(Err(unknown(relation)));
    }
    Ok(Ok(plans))
}

fn unknown(relation: &RelationRef) -> WarehouseError {
    WarehouseError::UnknownRelation {
        name: relation.rendered.clone(),
    }
}

fn catalog_plan(row: &PgRow) -> Result<ColumnPlan, sqlx::Error> {
    let name: String = row.try_get(0)?;
    let full: String = row.try_get(1)?;
    let type_name: String = row.try_get(5)?;
    Ok(plan_column(
        &name,
        full,
        !row.try_get::<bool, _>(4)?,
        TypeFacts {
            oid: row.try_get::<i64, _>(2)? as u32,
            typmod: row.try_get(3)?,
            name: &type_name,
            is_array: row.try_get(6)?,
            is_composite: row.try_get(7)?,
        },
    ))
}

fn view_plan(row: &PgRow) -> Result<ColumnPlan, sqlx::Error> {
    let name: String = row.try_get(0)?;
    let data_type: String = row.try_get(1)?;
    let char_len: Option<i32> = row.try_get(2)?;
    let precision: Option<i32> = row.try_get(3)?;
    let scale: Option<i32> = row.try_get(4)?;
    let nullable: bool = row.try_get(5)?;
    let lower = data_type.to_lowercase();
    let type_oid = oid_of_type_name(&lower);
    let mut plan = plan_column(
        &name,
        type_name_with_modifiers(&lower, char_len, precision, scale),
        nullable,
        TypeFacts {
            oid: type_oid,
            typmod: -1,
            name: &lower,
            is_array: lower == "array",
            is_composite: false,
        },
    );
    if type_oid == oid::NUMERIC {
        // information_schema reports numeric_precision 32/64 for other types; only numeric's counts
        plan.decoder = match (precision, scale) {
            (Some(p), Some(s)) => decimal_or_text(p, s),
            _ => numeric_decoder(-1),
        };
        plan.column.data_type = super::types::data_type(plan.decoder);
    }
    Ok(plan)
}

/// Type names as `information_schema.columns.data_type` (and `svv_columns`) spell them.
pub(crate) fn oid_of_type_name(name: &str) -> u32 {
    match name {
        "boolean" => oid::BOOL,
        "smallint" => oid::INT2,
        "integer" => oid::INT4,
        "bigint" => oid::INT8,
        "real" => oid::FLOAT4,
        "double precision" => oid::FLOAT8,
        "numeric" | "decimal" => oid::NUMERIC,
        "character varying" | "varchar" => oid::VARCHAR,
        "character" | "char" | "bpchar" => oid::BPCHAR,
        "text" => oid::TEXT,
        "name" => oid::NAME,
        "uuid" => oid::UUID,
        "json" => oid::JSON,
        "jsonb" => oid::JSONB,
        "super" => oid::REDSHIFT_SUPER,
        "date" => oid::DATE,
        "timestamp without time zone" | "timestamp" => oid::TIMESTAMP,
        "timestamp with time zone" | "timestamptz" => oid::TIMESTAMPTZ,
        "time without time zone" | "time" => oid::TIME,
        "bytea" => oid::BYTEA,
        _ => 0,
    }
}

fn type_name_with_modifiers(
    name: &str,
    char_len: Option<i32>,
    precision: Option<i32>,
    scale: Option<i32>,
) -> String {
    match (name, char_len, precision, scale) {
        ("character varying" | "character", Some(n), _, _) => format!("{name}({n})"),
        ("numeric", _, Some(p), Some(s)) => format!("numeric({p},{s})"),
        _ => name.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redshift_type_names_map_to_oids() {
        assert_eq!(oid_of_type_name("super"), oid::REDSHIFT_SUPER);
        assert_eq!(oid_of_type_name("character varying"), oid::VARCHAR);
        assert_eq!(
            oid_of_type_name("timestamp with time zone"),
            oid::TIMESTAMPTZ
        );
        assert_eq!(oid_of_type_name("geometry"), 0);
        assert_eq!(
            type_name_with_modifiers("character varying", Some(20), None, None),
            "character varying(20)"
        );
        assert_eq!(
            type_name_with_modifiers("numeric", None, Some(12), Some(2)),
            "numeric(12,2)"
        );
    }
}
