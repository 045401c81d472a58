//! Ephemeral model injection, as dbt 1.7's compiler does it: every ephemeral model a node
//! references (recursively) becomes a `__dbt__cte__<name>` CTE at the top of the node's SQL.

/// One injected CTE: the ephemeral node's id and its ` name as (\n<sql>\n)` text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectedCte {
    pub id: String,
    pub sql: String,
}

/// Adds ctes keeping the first occurrence of each id.
pub fn extend_ctes(into: &mut Vec<InjectedCte>, new: &[InjectedCte]) {
    for c in new {
        if !into.iter().any(|x| x.id == c.id) {
            into.push(c.clone());
        }
    }
}

/// The CTE text dbt builds for an ephemeral model.
pub fn cte_sql(name: &str, pre_injected_sql: &str) -> String {
    format!(" __dbt__cte__{name} as (\n{pre_injected_sql}\n)")
}

/// Injects CTEs into `sql` like dbt's `inject_ctes_into_sql`: after an existing leading `with`
/// (followed by `, `), or as a new `with` before the first token.
pub fn inject_ctes(sql: &str, ctes: &[InjectedCte]) -> String {
    if ctes.is_empty() {
        return sql.to_string();
    }
    let joined = ctes
        .iter()
        .map(|c| c.sql.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let first = first_token_start(sql);
    let Some(first) = first else {
        return format!("{sql}with{joined} ");
    };
    if let Some(with_end) = with_keyword_end(sql, first) {
        // [with][ws][ctes][, ][rest]: the ctes go before the next non-whitespace token
        let rest_start = sql[with_end..]
            .find(|c: char| !c.is_whitespace())
            .map_or(sql.len(), |i| with_end + i);
        return format!(
            "{}{}{joined}, {}",
            &sql[..with_end],
            &sql[with_end..rest_start],
            &sql[rest_start..]
        );
    }
    format!("{}with{joined} {}", &sql[..first], &sql[first..])
}

/// Byte offset of the first non-whitespace character (comments count as tokens, as in sqlparse).
fn first_token_start(sql: &str) -> Option<usize> {
    sql.find(|c: char| !c.is_whitespace())
}

/// If the first significant keyword (skipping comments) is `WITH` (optionally `RECURSIVE`),
/// returns the byte offset right after it.
fn with_keyword_end(sql: &str, mut i: usize) -> Option<usize> {
    let bytes = sql.as_bytes();
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if bytes[i..].starts_with(b"--") {
            i = sql[i..].find('\n').map_or(sql.len(), |p| i + p + 1);
        } else if bytes[i..].starts_with(b"/*") {
            i = sql[i..].find("*/").map_or(sql.len(), |p| i + p + 2);
        } else {
            break;
        }
    }
    let word_end = sql[i..]
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(sql.len(), |p| i + p);
    if !sql[i..word_end].eq_ignore_ascii_case("with") {
        return None;
    }
    let after = &sql[word_end..];
    let trimmed = after.trim_start();
    let rec_start = word_end + (after.len() - trimmed.len());
    let rec_end = trimmed
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .map_or(sql.len(), |p| rec_start + p);
    if sql[rec_start..rec_end].eq_ignore_ascii_case("recursive") {
        return Some(rec_end);
    }
    Some(word_end)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cte(name: &str, sql: &str) -> InjectedCte {
        InjectedCte {
            id: format!("model.p.{name}"),
            sql: cte_sql(name, sql),
        }
    }

    #[test]
    fn injects_new_with_keeping_leading_whitespace() {
        let out = inject_ctes("\n\nselect 1", &[cte("e", "select 2")]);
        assert_eq!(out, "\n\nwith __dbt__cte__e as (\nselect 2\n) select 1");
    }

    #[test]
    fn injects_into_existing_with() {
        let out = inject_ctes("with a as (select 1) select * from a", &[cte("e", "x")]);
        assert_eq!(
            out,
            "with  __dbt__cte__e as (\nx\n), a as (select 1) select * from a"
        );
    }

    #[test]
    fn odd_input_never_panics() {
        for sql in [
            "",
            " ",
            "\u{a0}é select",
            "-- é\n/* ü */ with x as (select 1) select 1",
            "/*",
        ] {
            let _ = inject_ctes(sql, &[cte("e", "x")]);
        }
    }

    #[test]
    fn keeps_first_occurrence() {
        let mut all = vec![cte("a", "1")];
        extend_ctes(&mut all, &[cte("a", "2"), cte("b", "3")]);
        assert_eq!(all.len(), 2);
        assert_eq!(all[0].sql, cte_sql("a", "1"));
    }
}
