//! A tiny scanner for `ref(...)` and `source(...)` calls written as plain text (test
//! arguments such as a relationships test's `to: ref('customers')`), without rendering.

/// One `ref`/`source` call with its positional string arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub func: String,
    pub args: Vec<String>,
    /// `v=` / `version=` of a ref
    pub version: Option<String>,
}

/// Every `ref(...)` / `source(...)` call in `text` whose arguments are literals.
pub fn find_calls(text: &str) -> Vec<Call> {
    let mut out = Vec::new();
    for func in ["ref", "source"] {
        let pattern = format!("{func}(");
        let mut from = 0;
        while let Some(pos) = text[from..].find(&pattern) {
            let start = from + pos;
            from = start + pattern.len();
            let boundary = text[..start]
                .chars()
                .next_back()
                .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '.'));
            if !boundary {
                continue;
            }
            let Some(end) = text[from..].find(')') else {
                break;
            };
            if let Some(call) = parse_args(func, &text[from..from + end]) {
                out.push(call);
            }
        }
    }
    out
}

fn parse_args(func: &str, inner: &str) -> Option<Call> {
    let mut call = Call {
        func: func.to_string(),
        args: Vec::new(),
        version: None,
    };
    for part in inner.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        match part.split_once('=') {
            Some((k, v)) if matches!(k.trim(), "v" | "version") => {
                call.version = Some(unquote(v.trim()).unwrap_or(v.trim()).to_string());
            }
            Some(_) => {}
            None => call.args.push(unquote(part)?.to_string()),
        }
    }
    Some(call)
}

fn unquote(s: &str) -> Option<&str> {
    let q = s.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    s.strip_prefix(q)?.strip_suffix(q)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_refs_and_sources() {
        let calls = find_calls("ref('customers')");
        assert_eq!(calls[0].args, vec!["customers".to_string()]);
        let calls = find_calls("ref(\"pkg\", 'm', v=2)");
        assert_eq!(calls[0].args.len(), 2);
        assert_eq!(calls[0].version.as_deref(), Some("2"));
        let calls = find_calls("source('erp', 'gl')");
        assert_eq!(calls[0].func, "source");
        assert!(find_calls("my_ref('x')").is_empty());
        assert!(find_calls("ref(").is_empty());
    }
}
