use super::*;

fn check(sql: &str) -> Result<String, WarehouseError> {
    single_statement(sql, Rules::GENERIC)
}

fn check_for(kind: WarehouseKind, sql: &str) -> Result<String, WarehouseError> {
    single_statement(sql, Rules::for_kind(kind))
}

fn refused_detail(r: Result<String, WarehouseError>) -> String {
    match r {
        Err(WarehouseError::NotSingleStatement { detail }) => detail,
        other => panic!("expected NotSingleStatement, got {other:?}"),
    }
}

#[test]
fn one_plain_statement_passes_unchanged() {
    assert_eq!(check("select 1").unwrap(), "select 1");
    assert_eq!(check("  select a from t  \n").unwrap(), "select a from t");
}

#[test]
fn second_statement_is_refused_with_its_position() {
    let d = refused_detail(check("select 1;\n  delete from t"));
    assert_eq!(
        d,
        "exactly one statement is allowed, but there is a `;` at line 1, column 9 followed by more sql"
    );
    let d = refused_detail(check("select 1\nfrom t; drop table t"));
    assert!(d.contains("line 2, column 7"), "{d}");
}

#[test]
fn trailing_semicolon_whitespace_and_comments_are_dropped() {
    assert_eq!(check("select 1;").unwrap(), "select 1");
    assert_eq!(check("select 1 ;  \n\t").unwrap(), "select 1");
    assert_eq!(check("select 1; -- done\n/* bye */ ").unwrap(), "select 1");
    // a comment before the `;` is kept (wrappers put the closing parenthesis on a new line)
    assert_eq!(check("select 1 -- x\n;").unwrap(), "select 1 -- x");
}

#[test]
fn two_semicolons_are_refused() {
    assert!(check("select 1;;").is_err());
}

#[test]
fn empty_and_comment_only_are_refused() {
    for sql in ["", "   ", ";", " ; ", "-- nothing\n", "/* nothing */;"] {
        let d = refused_detail(check(sql));
        assert!(d.starts_with("the query is empty"), "{sql:?}: {d}");
    }
}

#[test]
fn semicolons_in_single_quotes_with_doubled_quotes_pass() {
    assert_eq!(check("select 'a;b'").unwrap(), "select 'a;b'");
    assert_eq!(
        check("select 'it''s; fine'").unwrap(),
        "select 'it''s; fine'"
    );
    // a backslash does not escape in a standard string: the literal ends at the quote
    assert!(check(r"select 'C:\'; delete from t").is_err());
}

#[test]
fn e_strings_use_backslash_escapes() {
    assert!(check(r"select E'it\'s; fine'").is_ok());
    assert!(check(r"select e'a\\'; delete from t").is_err());
    // `e` ending a word is not a prefix
    assert!(check(r"select name'x'").is_ok());
}

#[test]
fn double_quoted_identifiers_pass() {
    assert!(check(r#"select 1 as "a;b""#).is_ok());
    assert!(check(r#"select 1 as "a"";b""#).is_ok());
}

#[test]
fn backticks_pass() {
    assert!(check("select 1 as `a;b`").is_ok());
    assert!(check_for(WarehouseKind::Databricks, "select `x;y` from `c`.`s`.`t`").is_ok());
}

#[test]
fn dollar_quotes_pass() {
    assert!(check("select $$a;b$$").is_ok());
    assert!(check("select $fn$ x; $$ y; $fn$").is_ok());
    assert!(check("select $fn$ x $fn$; delete from t").is_err());
    // `$1` is a parameter, not a quote
    assert!(check("select $1; select 2").is_err());
    // `a$b$` is an identifier with dollars
    assert!(check("select a$b$c from t").is_ok());
}

#[test]
fn comments_pass() {
    assert!(check("select 1 -- a; b\n from t").is_ok());
    assert!(check("select 1 /* a; b */ from t").is_ok());
    assert!(check("select 1 /* outer /* inner; */ still; */ from t").is_ok());
    assert!(check("select 1 -- a\n; delete from t").is_err());
}

#[test]
fn non_nesting_warehouses_end_comments_early() {
    let sql = "select 1 /* a /* b */ ; delete from t */";
    assert!(check_for(WarehouseKind::Postgres, sql).is_ok());
    assert!(check_for(WarehouseKind::Snowflake, sql).is_err());
}

#[test]
fn unterminated_quotes_and_comments_are_refused() {
    let d = refused_detail(check("select 'abc"));
    assert_eq!(
        d,
        "unterminated string literal starting at line 1, column 8"
    );
    assert!(refused_detail(check("select 1 /* x")).starts_with("unterminated comment"));
    assert!(refused_detail(check("select $$ x")).starts_with("unterminated dollar-quoted"));
    assert!(refused_detail(check("select \"x")).starts_with("unterminated double-quoted"));
}

#[test]
fn parentheses_must_balance_so_the_wrapper_holds() {
    let d = refused_detail(check("select 1) as q) to program 'x' --"));
    assert_eq!(
        d,
        "unbalanced `)` at line 1, column 9: exactly one statement is allowed"
    );
    assert!(check("select (1").is_err());
    assert!(check("select (select 1) as a, (')')").is_ok());
    assert!(refused_detail(check("select (1;)")).contains("inside parentheses"));
}

#[test]
fn dialect_string_rules_differ() {
    let sql = r"select 'a\'b; c'";
    assert!(check_for(WarehouseKind::Postgres, sql).is_err());
    assert!(check_for(WarehouseKind::Snowflake, sql).is_ok());
    assert!(check_for(WarehouseKind::Bigquery, sql).is_ok());
    assert!(check_for(WarehouseKind::Databricks, sql).is_ok());
    // BigQuery and Databricks: "..." is a string, backslash escapes inside it
    assert!(check_for(WarehouseKind::Bigquery, r#"select "a\"; b""#).is_ok());
    assert!(check_for(WarehouseKind::Bigquery, "select '''a ' ; b'''").is_ok());
    assert!(check_for(WarehouseKind::Bigquery, "select 1 # x; y\n").is_ok());
    assert!(check_for(WarehouseKind::Snowflake, "select 1 // x; y\n").is_ok());
    assert!(check_for(WarehouseKind::Snowflake, "select $$ a; b $$").is_ok());
}

#[test]
fn multibyte_text_reports_character_columns() {
    let d = refused_detail(check("select 'é'; x"));
    assert!(d.contains("line 1, column 11"), "{d}");
}
