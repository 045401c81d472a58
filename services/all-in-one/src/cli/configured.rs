//! Warehouse sources and destinations are the same kind of workspace object: a kind,
//! non-secret settings, a credential in the credentials service and the outcome of the
//! newest test. Their commands render them alike; this module is that shared rendering,
//! so the two listings cannot drift apart.

use super::output::{cell, Details, Table, View};
use super::Ctx;
use std::collections::BTreeMap;

/// One row of a `list`.
pub struct Listed<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub kind: &'a str,
    pub settings: &'a BTreeMap<String, String>,
    pub credential_id: &'a str,
    /// The newest test's one-line summary; `None` when never tested.
    pub last_test: Option<String>,
}

/// The `list` table: id, name, kind, settings (`k=v,...`), credential, last test.
pub fn list_table<'a>(rows: impl IntoIterator<Item = Listed<'a>>) -> String {
    let mut table = Table::new(&["id", "name", "kind", "settings", "credential", "last test"]);
    for row in rows {
        let settings: Vec<String> = row
            .settings
            .iter()
            .map(|(key, value)| format!("{key}={value}"))
            .collect();
        table.row(vec![
            row.id.to_string(),
            cell(row.name),
            row.kind.to_string(),
            cell(&settings.join(",")),
            cell(row.credential_id),
            cell(&row.last_test.unwrap_or_else(|| "never tested".into())),
        ]);
    }
    table.render()
}

/// `setting <key>` lines after the other details.
pub fn with_settings(mut details: Details, settings: &BTreeMap<String, String>) -> Details {
    for (key, value) in settings {
        details = details.field(&format!("setting {key}"), value.clone());
    }
    details
}

/// What `delete` prints: `{"deleted": id}` or `deleted <noun> <id>`.
pub fn print_deleted(ctx: &Ctx, noun: &str, id: &str) {
    let done = serde_json::json!({ "deleted": id });
    ctx.print(&View::new(&done, format!("deleted {noun} {id}")));
}
