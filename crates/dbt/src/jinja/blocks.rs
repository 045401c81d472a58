//! Lexical pre-processing of dbt Jinja files: finds the top-level blocks dbt understands
//! (`macro`, `test`, `docs`, `snapshot`, `materialization`) without rendering, and rewrites
//! `{% set x = ... %}` so lists and dicts bound to names are mutable like Python's.

/// A top-level block found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// `macro`, `test`, `docs`, `snapshot` or `materialization`
    pub kind: String,
    pub name: String,
    /// byte offset of the opening `{%`
    pub start: usize,
    /// byte offset just past the closing `%}` of the end tag
    pub end: usize,
    /// byte range of the body between the opening and end tags
    pub body: (usize, usize),
    /// 1-based line of the opening tag
    pub line: usize,
    /// text between the block name and the closing `%}`, e.g. `(a, b=2)`
    pub signature: String,
}

/// An unterminated or malformed block, with the line where it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct BlockError {
    pub line: usize,
    pub message: String,
}

/// One `{% ... %}` tag: byte range and the trimmed inner text.
#[derive(Debug, Clone)]
struct Tag<'a> {
    start: usize,
    end: usize,
    inner: &'a str,
}

/// Iterates over `{% %}` tags, skipping `{# #}` comments, `{{ }}` expressions and raw blocks,
/// respecting quotes inside tags.
fn tags(src: &str) -> Vec<Tag<'_>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_raw = false;
    while i + 1 < bytes.len() {
        if bytes[i] != b'{' {
            i += 1;
            continue;
        }
        match bytes[i + 1] {
            b'#' => {
                i = src[i + 2..]
                    .find("#}")
                    .map_or(bytes.len(), |p| i + 2 + p + 2);
            }
            b'{' if !in_raw => i = skip_delimited(src, i + 2, "}}"),
            b'%' => {
                let end = skip_delimited(src, i + 2, "%}");
                let inner_end = end.saturating_sub(2).max(i + 2);
                let inner = src[i + 2..inner_end].trim_matches(|c: char| c == '-' || c == '+');
                let inner = inner.trim();
                let word = inner.split_whitespace().next().unwrap_or("");
                if in_raw {
                    if word == "endraw" {
                        in_raw = false;
                    }
                } else if word == "raw" {
                    in_raw = true;
                } else {
                    out.push(Tag {
                        start: i,
                        end,
                        inner,
                    });
                }
                i = end;
            }
            _ => i += 1,
        }
    }
    out
}

/// Returns the index just past `close`, skipping quoted strings.
fn skip_delimited(src: &str, from: usize, close: &str) -> usize {
    let bytes = src.as_bytes();
    let mut i = from;
    let mut quote: Option<u8> = None;
    while i < bytes.len() {
        let c = bytes[i];
        match quote {
            Some(q) => {
                if c == b'\\' {
                    i += 1;
                } else if c == q {
                    quote = None;
                }
            }
            None => {
                if c == b'\'' || c == b'"' {
                    quote = Some(c);
                } else if bytes[i..].starts_with(close.as_bytes()) {
                    return i + close.len();
                }
            }
        }
        i += 1;
    }
    bytes.len()
}

fn line_of(src: &str, offset: usize) -> usize {
    src.as_bytes()[..offset.min(src.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

const BLOCK_KINDS: [&str; 5] = ["macro", "test", "docs", "snapshot", "materialization"];

/// Finds top-level dbt blocks. Blocks do not nest in dbt, so the first matching end tag closes.
pub fn find_blocks(src: &str) -> Result<Vec<Block>, BlockError> {
    let all = tags(src);
    let mut blocks = Vec::new();
    let mut open: Option<(&Tag<'_>, &str, String, String)> = None;
    for tag in &all {
        let mut words = tag.inner.splitn(2, char::is_whitespace);
        let word = words.next().unwrap_or("");
        let rest = words.next().unwrap_or("").trim();
        if let Some((start_tag, kind, name, signature)) = &open {
            if word == format!("end{kind}") {
                blocks.push(Block {
                    kind: kind.to_string(),
                    name: name.clone(),
                    start: start_tag.start,
                    end: tag.end,
                    body: (start_tag.end, tag.start),
                    line: line_of(src, start_tag.start),
                    signature: signature.clone(),
                });
                open = None;
            }
            continue;
        }
        if let Some(kind) = BLOCK_KINDS.iter().find(|k| **k == word) {
            let name_end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            let name = rest[..name_end].to_string();
            if name.is_empty() {
                return Err(BlockError {
                    line: line_of(src, tag.start),
                    message: format!("{kind} block without a name"),
                });
            }
            open = Some((tag, kind, name, rest[name_end..].trim().to_string()));
        }
    }
    if let Some((tag, kind, name, _)) = open {
        return Err(BlockError {
            line: line_of(src, tag.start),
            message: format!("unclosed {kind} block '{name}': missing {{% end{kind} %}}"),
        });
    }
    Ok(blocks)
}

/// Name of the mutable-container wrapper function registered in the environment.
pub const MUT_FN: &str = "__bf_mut";

/// Rewrites `{% set name = expr %}` into `{% set name = __bf_mut(expr) %}` so list and dict
/// values get Python's mutability (`append`, `update`, ...). Line structure is preserved.
pub fn wrap_mutable_sets(src: &str) -> String {
    let mut out = String::with_capacity(src.len() + 64);
    let mut last = 0;
    for tag in tags(src) {
        let Some(rewrite) = rewrite_set(&src[tag.start..tag.end]) else {
            continue;
        };
        out.push_str(&src[last..tag.start]);
        out.push_str(&rewrite);
        last = tag.end;
    }
    out.push_str(&src[last..]);
    out
}

fn rewrite_set(tag: &str) -> Option<String> {
    let open_len = if tag.starts_with("{%-") || tag.starts_with("{%+") {
        3
    } else {
        2
    };
    let close_len = if tag.ends_with("-%}") || tag.ends_with("+%}") {
        3
    } else {
        2
    };
    if tag.len() < open_len + close_len {
        return None;
    }
    let inner = &tag[open_len..tag.len() - close_len];
    let trimmed = inner.trim_start();
    let after_set = trimmed.strip_prefix("set")?;
    if !after_set.starts_with(char::is_whitespace) {
        return None;
    }
    let eq = find_assign(after_set)?;
    let target = after_set[..eq].trim();
    if target.is_empty() || !target.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return None;
    }
    let expr = after_set[eq + 1..].trim();
    if expr.trim().is_empty() {
        return None;
    }
    let lead = &inner[..inner.len() - trimmed.len()];
    let trail = &inner[inner.trim_end().len()..];
    Some(format!(
        "{}{lead}set {target} = {MUT_FN}({expr}){trail}{}",
        &tag[..open_len],
        &tag[tag.len() - close_len..]
    ))
}

/// Finds the first `=` that is an assignment (not `==`, `!=`, `<=`, `>=`), outside quotes.
fn find_assign(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut quote: Option<u8> = None;
    for i in 0..b.len() {
        let c = b[i];
        if let Some(q) = quote {
            if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            b'\'' | b'"' => quote = Some(c),
            b'=' => {
                let prev = if i > 0 { b[i - 1] } else { b' ' };
                let next = b.get(i + 1).copied().unwrap_or(b' ');
                if next != b'=' && !matches!(prev, b'=' | b'!' | b'<' | b'>') {
                    return Some(i);
                }
                return None;
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_macros_with_lines() {
        let src = "{% macro a(x) -%}\n{{ x }}\n{%- endmacro %}\n\n{% macro b() %}y{% endmacro %}";
        let blocks = find_blocks(src).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].name, "a");
        assert_eq!(blocks[0].signature, "(x)");
        assert_eq!(blocks[1].line, 5);
        assert_eq!(&src[blocks[1].body.0..blocks[1].body.1], "y");
    }

    #[test]
    fn unclosed_block_is_an_error_with_line() {
        let err = find_blocks("\n\n{% macro broken() %}\nselect 1\n").unwrap_err();
        assert_eq!(err.line, 3);
    }

    #[test]
    fn comments_and_strings_are_skipped() {
        let src = "{# {% macro nope() %} #}{% macro yes(a='%}') %}{% endmacro %}";
        let blocks = find_blocks(src).unwrap();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].name, "yes");
    }

    #[test]
    fn multibyte_text_never_panics() {
        for src in [
            "é{%",
            "{% set é = 'ü' %}",
            "{{ 'é' }}{% macro m() %}ü{% endmacro %}",
            "{#é",
            "{%-é-%}",
        ] {
            let _ = find_blocks(src);
            let _ = wrap_mutable_sets(src);
        }
    }

    #[test]
    fn set_rewrite() {
        assert_eq!(
            wrap_mutable_sets("{%- set cols = [] -%}x"),
            "{%- set cols = __bf_mut([]) -%}x"
        );
        assert_eq!(
            wrap_mutable_sets("{% set a, b = f() %}"),
            "{% set a, b = f() %}"
        );
        assert_eq!(
            wrap_mutable_sets("{% set ns.x = 1 %}"),
            "{% set ns.x = 1 %}"
        );
        assert_eq!(
            wrap_mutable_sets("{% set x %}b{% endset %}"),
            "{% set x %}b{% endset %}"
        );
        assert_eq!(
            wrap_mutable_sets("{% set d = {'a': 1} %}"),
            "{% set d = __bf_mut({'a': 1}) %}"
        );
    }
}
