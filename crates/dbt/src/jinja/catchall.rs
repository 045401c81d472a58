//! Jinja2's implicit `varargs` and `kwargs` inside macros, which minijinja lacks. A macro
//! whose body mentions them gets two extra parameters; calls to it move surplus positional
//! arguments into `varargs` and unknown keyword arguments into `kwargs`.

use minijinja::value::{Kwargs, Value};

/// Declared parameter names when the macro body uses `varargs`/`kwargs`, else `None`.
pub fn catch_all_params(signature: &str, body: &str) -> Option<Vec<String>> {
    if !mentions(body, "varargs") && !mentions(body, "kwargs") {
        return None;
    }
    let inner = signature
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.rfind(')').map(|i| &s[..i]))
        .unwrap_or("");
    Some(
        split_top_level(inner)
            .iter()
            .map(|p| p.split('=').next().unwrap_or("").trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
    )
}

/// Adds `varargs` and `kwargs` parameters to a `{% macro name(...) %}` tag.
pub fn extend_open_tag(tag: &str, params: &[String]) -> String {
    let Some(close) = tag.rfind(')') else {
        return tag.to_string();
    };
    let sep = if params.is_empty() { "" } else { ", " };
    format!(
        "{}{sep}varargs=none, kwargs=none{}",
        &tag[..close],
        &tag[close..]
    )
}

/// Rearranges call arguments for a macro declared with `params` plus `varargs`/`kwargs`.
pub fn pack_args(params: &[String], args: &[Value]) -> Vec<Value> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) => match Kwargs::try_from(last.clone()) {
            Ok(kw) => (rest, Some(kw)),
            Err(_) => (args, None),
        },
        None => (args, None),
    };
    let n = positional.len().min(params.len());
    let mut out: Vec<Value> = positional[..n].to_vec();
    let varargs: Vec<Value> = positional[n..].to_vec();
    let mut named: Vec<(String, Value)> = Vec::new();
    let mut extra: Vec<(String, Value)> = Vec::new();
    if let Some(kw) = kwargs {
        for key in kw.args() {
            let Ok(v) = kw.get::<Value>(key) else {
                continue;
            };
            if key == "caller" || params.iter().any(|p| p == key) {
                named.push((key.to_string(), v));
            } else {
                extra.push((key.to_string(), v));
            }
        }
    }
    named.push(("varargs".into(), Value::from(varargs)));
    named.push(("kwargs".into(), Value::from_iter(extra)));
    out.push(Value::from(named.into_iter().collect::<Kwargs>()));
    out
}

fn mentions(text: &str, word: &str) -> bool {
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        let is_ident = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        !is_ident(before) && !is_ident(after)
    })
}

fn split_top_level(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start, mut quote) = (0i32, 0, None);
    for (i, c) in s.char_indices() {
        match (quote, c) {
            (Some(q), _) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '(' | '[' | '{') => depth += 1,
            (None, ')' | ']' | '}') => depth -= 1,
            (None, ',') if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_packs() {
        let params = catch_all_params("(alias, sep=', ')", "{{ varargs | join }}").unwrap();
        assert_eq!(params, vec!["alias".to_string(), "sep".to_string()]);
        assert!(catch_all_params("(a)", "{{ my_kwargs }}").is_none());
        assert_eq!(
            extend_open_tag("{% macro m(a) -%}", &params),
            "{% macro m(a, varargs=none, kwargs=none) -%}"
        );
        let args = [Value::from("t"), Value::from("x"), Value::from("y")];
        let packed = pack_args(&params, &args);
        assert_eq!(packed.len(), 3);
    }
}
