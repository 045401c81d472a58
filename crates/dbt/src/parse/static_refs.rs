//! Literal `ref()` / `source()` calls read straight from a node's text. When the parse-time
//! render of a node fails part-way, the calls after the failure were never recorded, yet dbt
//! (whose render or static parser got through) knows them: depends_on must not lose them.
//! Only calls inside Jinja tags with string-literal arguments are taken.

use crate::jinja::context::RefCall;
use regex::Regex;
use std::sync::OnceLock;

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn tag_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| Regex::new(r"(?s)\{\{.*?\}\}|\{%.*?%\}").expect("static regex"))
}

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn ref_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(
            r#"\bref\(\s*(?:'([^']*)'|"([^"]*)")\s*(?:,\s*(?:'([^']*)'|"([^"]*)")\s*)?(?:,\s*(?:v|version)\s*=\s*(?:'([^']*)'|"([^"]*)"|([0-9.]+))\s*)?\)"#,
        )
        .expect("static regex")
    })
}

#[allow(clippy::expect_used)] // a constant pattern: it compiles or every test fails
fn source_re() -> &'static Regex {
    static RE: OnceLock<Regex> = OnceLock::new();
    RE.get_or_init(|| {
        Regex::new(r#"\bsource\(\s*(?:'([^']*)'|"([^"]*)")\s*,\s*(?:'([^']*)'|"([^"]*)")\s*\)"#)
            .expect("static regex")
    })
}

fn pick(c: &regex::Captures<'_>, groups: &[usize]) -> Option<String> {
    groups
        .iter()
        .find_map(|&g| c.get(g))
        .map(|m| m.as_str().to_string())
}

/// Literal ref and source calls inside the Jinja tags of `text`, in order of appearance.
pub fn literal_calls(text: &str) -> (Vec<RefCall>, Vec<(String, String)>) {
    let mut refs = Vec::new();
    let mut sources = Vec::new();
    for tag in tag_re().find_iter(text) {
        let t = tag.as_str();
        for c in ref_re().captures_iter(t) {
            let first = pick(&c, &[1, 2]).unwrap_or_default();
            let second = pick(&c, &[3, 4]);
            let version = pick(&c, &[5, 6, 7]);
            let call = match second {
                Some(name) => RefCall {
                    package: Some(first),
                    name,
                    version,
                },
                None => RefCall {
                    package: None,
                    name: first,
                    version,
                },
            };
            refs.push(call);
        }
        for c in source_re().captures_iter(t) {
            if let (Some(s), Some(tb)) = (pick(&c, &[1, 2]), pick(&c, &[3, 4])) {
                sources.push((s, tb));
            }
        }
    }
    (refs, sources)
}

/// Adds the literal calls of `text` that `refs` / `sources` do not have yet.
pub fn complete(text: &str, refs: &mut Vec<RefCall>, sources: &mut Vec<(String, String)>) {
    let (more_refs, more_sources) = literal_calls(text);
    for r in more_refs {
        if !refs.contains(&r) {
            refs.push(r);
        }
    }
    for s in more_sources {
        if !sources.contains(&s) {
            sources.push(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_calls_in_tags_only() {
        let text = "select ref('not_in_tag') {{ ref('a') }} {{ ref(\"pkg\", 'b', v=2) }}\n\
                    {% set x = source('s', \"t\") %} {{ ref(var('dyn')) }}";
        let (refs, sources) = literal_calls(text);
        assert_eq!(
            refs,
            vec![
                RefCall {
                    package: None,
                    name: "a".into(),
                    version: None
                },
                RefCall {
                    package: Some("pkg".into()),
                    name: "b".into(),
                    version: Some("2".into())
                },
            ]
        );
        assert_eq!(sources, vec![("s".to_string(), "t".to_string())]);
    }

    #[test]
    fn complete_keeps_recorded_order_and_dedups() {
        let mut refs = vec![RefCall {
            package: None,
            name: "b".into(),
            version: None,
        }];
        let mut sources = Vec::new();
        complete("{{ ref('a') }}{{ ref('b') }}", &mut refs, &mut sources);
        assert_eq!(
            refs.iter().map(|r| r.name.as_str()).collect::<Vec<_>>(),
            ["b", "a"]
        );
    }
}
