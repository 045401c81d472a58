//! Python expression semantics minijinja lacks, by rewriting the expressions inside `{{ }}`
//! and `{% %}` before compiling (text outside Jinja delimiters is never touched):
//!
//! * tuples: `(a, b)`, `(a,)` and `()` become `__bf_tuple(...)`, a sequence that renders as
//!   Python does (`in {{ (1, 2) }}` gives `in (1, 2)`, not `[1, 2]`);
//! * unary `+` is dropped (minijinja's parser refuses it; on numbers it is the identity);
//! * binary `+`, `-`, `*`, `%` and unary `-` with a non-literal operand become `__bf_add`,
//!   `__bf_sub`, `__bf_mul`, `__bf_mod`, `__bf_neg` calls, so `date + timedelta`,
//!   `fmt % args` with a variable format and Python's modulo work ([`binop`]); literal-only
//!   arithmetic (`3 + 4`) keeps minijinja's operators;
//! * non-ASCII whitespace inside a tag (U+2029 PARAGRAPH SEPARATOR, ...) becomes a space, as
//!   Python's Jinja lexer treats it as whitespace.
//!
//! Operands are found with Jinja's precedence: comparisons, `and`/`or`/`not`, `if`/`else`,
//! `in`/`is`, `,`, `:` and `=` end an additive expression; `~` binds looser than `*`/`%` and
//! tighter than `+`/`-`; filters and calls stay with their operand.

use super::values::py_repr;
use minijinja::value::{Object, ObjectRepr, Value, ValueKind};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

pub const TUPLE_FN: &str = "__bf_tuple";

#[derive(Debug, Clone, Copy, PartialEq)]
enum Tok {
    Ws,
    Str,
    Num,
    Ident,
    /// a name after `.`: never a keyword
    Attr,
    Op,
    Open,
    Close,
}

fn tokenize(src: &str) -> Vec<(Tok, usize, usize)> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        let kind = if c == b'\'' || c == b'"' {
            i = string_end(b, i);
            Tok::Str
        } else if c.is_ascii_digit() {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric()
                    || b[i] == b'_'
                    || (b[i] == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit))
                    || ((b[i] == b'+' || b[i] == b'-') && matches!(b[i - 1], b'e' | b'E')))
            {
                i += 1;
            }
            Tok::Num
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            let ch = src[i..].chars().next().unwrap_or(' ');
            if ch.is_whitespace() {
                i += ch.len_utf8();
                Tok::Ws
            } else {
                while i < b.len() {
                    let ch = src[i..].chars().next().unwrap_or(' ');
                    if ch.is_alphanumeric() || ch == '_' {
                        i += ch.len_utf8();
                    } else {
                        break;
                    }
                }
                if i == start {
                    i += ch.len_utf8();
                }
                Tok::Ident
            }
        } else if c.is_ascii_whitespace() {
            while i < b.len() && b[i].is_ascii_whitespace() {
                i += 1;
            }
            Tok::Ws
        } else if matches!(c, b'(' | b'[' | b'{') {
            i += 1;
            Tok::Open
        } else if matches!(c, b')' | b']' | b'}') {
            i += 1;
            Tok::Close
        } else {
            let two = b.get(i..i + 2).unwrap_or(&[]);
            i += if matches!(
                two,
                b"**" | b"//" | b"==" | b"!=" | b"<=" | b">=" | b"%}" | b"}}"
            ) {
                2
            } else {
                1
            };
            Tok::Op
        };
        let after_dot = out
            .iter()
            .rev()
            .find(|t: &&(Tok, usize, usize)| t.0 != Tok::Ws)
            .is_some_and(|t| t.0 == Tok::Op && &src[t.1..t.2] == ".");
        let kind = if kind == Tok::Ident && after_dot {
            Tok::Attr
        } else {
            kind
        };
        out.push((kind, start, i));
    }
    out
}

fn string_end(b: &[u8], i: usize) -> usize {
    let q = b[i];
    let mut j = i + 1;
    while j < b.len() {
        if b[j] == b'\\' {
            j += 2;
            continue;
        }
        if b[j] == q {
            return j + 1;
        }
        j += 1;
    }
    b.len()
}

/// A token or a bracket group, with the source it covers.
enum Node {
    Tok(Tok, usize, usize),
    Group {
        open: usize,
        items: Vec<Node>,
        close: Option<(usize, usize)>,
    },
}

fn build(toks: &[(Tok, usize, usize)], pos: &mut usize) -> (Vec<Node>, Option<(usize, usize)>) {
    let mut out = Vec::new();
    while *pos < toks.len() {
        let (k, s, e) = toks[*pos];
        *pos += 1;
        match k {
            Tok::Open => {
                let (items, close) = build(toks, pos);
                out.push(Node::Group {
                    open: s,
                    items,
                    close,
                });
            }
            Tok::Close => return (out, Some((s, e))),
            _ => out.push(Node::Tok(k, s, e)),
        }
    }
    (out, None)
}

/// Words that end an operand wherever they stand (Jinja's operator keywords).
const KEYWORDS: &[&str] = &["and", "or", "not", "in", "is", "if", "else"];

/// Statement words, which end an operand only as a tag's first word (elsewhere they are
/// plain names: `{{ return(macro()) }}`).
const STATEMENTS: &[&str] = &[
    "set", "for", "do", "macro", "call", "filter", "elif", "with", "import", "from", "include",
    "extends", "block",
];

const BOUNDARY_OPS: &[&str] = &[",", ":", "=", "==", "!=", "<", ">", "<=", ">="];

/// The rewrite of one tag's inner text (`statement`: a `{% %}` tag, whose first word may be
/// a statement keyword; in `{{ }}` every word is a name).
pub fn rewrite(expr: &str, statement: bool) -> String {
    if statement {
        if let Some(set) = do_conditional(expr) {
            return rewrite(&set, statement);
        }
    }
    let needs = expr
        .bytes()
        .any(|c| matches!(c, b'+' | b'-' | b'*' | b'%' | b',' | b'(') || c >= 0x80);
    if !needs {
        return expr.to_string();
    }
    // whitespace control (`{{-`, `-%}`, `{%+`) is not part of the expression
    let lead = usize::from(expr.starts_with(['-', '+']));
    let trail = usize::from(expr.len() > lead && expr.ends_with(['-', '+']));
    let inner = &expr[lead..expr.len() - trail];
    if unchanged(inner) {
        return expr.to_string();
    }
    rewrite_tag(expr, lead, trail, statement)
}

/// The rewrite proper of `expr`, whose first `lead` and last `trail` bytes are whitespace
/// control markers.
fn rewrite_tag(expr: &str, lead: usize, trail: usize, statement: bool) -> String {
    let inner = &expr[lead..expr.len() - trail];
    let toks = tokenize(inner);
    let mut pos = 0;
    let (nodes, _) = build(&toks, &mut pos);
    let mut out = String::with_capacity(expr.len() + 16);
    out.push_str(&expr[..lead]);
    let refs: Vec<&Node> = nodes.iter().collect();
    emit_refs(inner, &refs, statement, &mut out);
    out.push_str(&expr[expr.len() - trail..]);
    out
}

/// A quick scan for the common case the rewrite leaves exactly as it is (most tags: calls
/// such as `ref('x')`, `config(k=v)`, `m(a, [b, c])`): ASCII only, no `+ - * % ~ /` outside
/// strings, no closing bracket without an opener, and every `(` opens a call (it follows a
/// name that is not a keyword, a literal or a closing bracket), so no tuple is made. The
/// full rewrite reproduces such input byte for byte (`fast_path_is_exact` checks it).
fn unchanged(inner: &str) -> bool {
    #[derive(Clone, Copy)]
    enum Last {
        Nothing,
        Word(usize, usize),
        Operand,
        Other,
    }
    let b = inner.as_bytes();
    let mut depth = 0usize;
    let mut last = Last::Nothing;
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'\'' | b'"' => {
                i = string_end(b, i);
                last = Last::Operand;
                continue;
            }
            b'+' | b'-' | b'*' | b'%' | b'~' | b'/' | 0x80.. => return false,
            b'(' => {
                let call = match last {
                    Last::Word(s, e) => {
                        let w = &inner[s..e];
                        !KEYWORDS.contains(&w) && !STATEMENTS.contains(&w)
                    }
                    Last::Operand => true,
                    Last::Nothing | Last::Other => false,
                };
                if !call {
                    return false;
                }
                depth += 1;
                last = Last::Other;
            }
            b'[' | b'{' => {
                depth += 1;
                last = Last::Other;
            }
            b')' | b']' | b'}' => {
                if depth == 0 {
                    return false;
                }
                depth -= 1;
                last = Last::Operand;
            }
            c if c.is_ascii_whitespace() => {}
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                    i += 1;
                }
                last = Last::Word(start, i);
                continue;
            }
            _ => last = Last::Other,
        }
        i += 1;
    }
    true
}

/// `{% do f(x) if cond %}`: Jinja's `do` takes any expression, minijinja's only a call, so a
/// conditional expression becomes an assignment to a throwaway name (evaluated the same way,
/// `f(x)` only when `cond` holds).
fn do_conditional(expr: &str) -> Option<String> {
    let body = expr.trim_start_matches(['-', '+']);
    let lead = &expr[..expr.len() - body.len()];
    let rest = body.trim_start().strip_prefix("do")?;
    if !rest.starts_with(|c: char| c.is_whitespace()) {
        return None;
    }
    let toks = tokenize(rest);
    let mut pos = 0;
    let (nodes, _) = build(&toks, &mut pos);
    let conditional = nodes
        .iter()
        .any(|n| matches!(n, Node::Tok(Tok::Ident, s, e) if &rest[*s..*e] == "if"));
    conditional.then(|| format!("{lead} set __bf_do ={rest}"))
}

fn text(src: &str, n: &Node, out: &mut String) {
    match n {
        Node::Tok(Tok::Ws, s, e) => {
            let t = &src[*s..*e];
            if t.is_ascii() {
                out.push_str(t);
            } else {
                out.push(' ');
            }
        }
        Node::Tok(_, s, e) => out.push_str(&src[*s..*e]),
        Node::Group { .. } => emit_group(src, n, false, out),
    }
}

fn emit_group(src: &str, n: &Node, as_tuple: bool, out: &mut String) {
    let Node::Group { open, items, close } = n else {
        return;
    };
    if as_tuple {
        out.push_str(TUPLE_FN);
        out.push('(');
        // drop a trailing comma: `(a,)`
        let last_sig = items.iter().rposition(|i| !is_ws(i));
        let trailing = last_sig.filter(|&p| is_op(src, &items[p], ","));
        let kept: Vec<&Node> = items
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != trailing)
            .map(|(_, n)| n)
            .collect();
        emit_refs(src, &kept, false, out);
        out.push(')');
    } else {
        out.push_str(&src[*open..*open + 1]);
        emit_level(src, items, out);
        if let Some((s, e)) = close {
            out.push_str(&src[*s..*e]);
        }
    }
}

fn is_ws(n: &Node) -> bool {
    matches!(n, Node::Tok(Tok::Ws, ..))
}

fn is_op(src: &str, n: &Node, op: &str) -> bool {
    matches!(n, Node::Tok(Tok::Op, s, e) if &src[*s..*e] == op)
}

fn is_keyword(src: &str, n: &Node) -> bool {
    matches!(n, Node::Tok(Tok::Ident, s, e) if KEYWORDS.contains(&&src[*s..*e]))
}

fn is_boundary(src: &str, n: &Node) -> bool {
    is_keyword(src, n)
        || matches!(n, Node::Tok(Tok::Op, s, e) if BOUNDARY_OPS.contains(&&src[*s..*e]))
}

/// Whether `n` ends an operand (so a following `+`/`-` is binary, a `(` a call).
fn ends_operand(src: &str, n: &Node) -> bool {
    match n {
        Node::Tok(Tok::Ident, ..) => !is_keyword(src, n),
        Node::Tok(Tok::Str | Tok::Num | Tok::Attr, ..) | Node::Group { .. } => true,
        _ => false,
    }
}

fn emit_level(src: &str, nodes: &[Node], out: &mut String) {
    let refs: Vec<&Node> = nodes.iter().collect();
    emit_refs(src, &refs, false, out);
}

/// One bracket level: segments between boundaries, each rewritten for arithmetic.
fn emit_refs(src: &str, nodes: &[&Node], top: bool, out: &mut String) {
    // `{% call(a, b) m() %}` parameters and `{% for (a, b) in ... %}` targets stay as written
    let first = nodes.iter().position(|n| !is_ws(n)).filter(|_| top);
    let keep_first_group = first.is_some_and(|f| {
        matches!(nodes[f], Node::Tok(Tok::Ident, s, e) if matches!(&src[*s..*e], "call" | "for" | "set"))
    });
    let statement = first.filter(
        |&f| matches!(nodes[f], Node::Tok(Tok::Ident, s, e) if STATEMENTS.contains(&&src[*s..*e])),
    );
    let mut seg: Vec<&Node> = Vec::new();
    let mut prev_sig: Option<&Node> = None;
    for (i, n) in nodes.iter().enumerate() {
        if is_boundary(src, n) || Some(i) == statement {
            emit_segment(src, &seg, out);
            seg.clear();
            text(src, n, out);
            prev_sig = Some(n);
            continue;
        }
        if keep_first_group
            && matches!(n, Node::Group { .. })
            && first.is_some_and(|f| i > f && prev_sig.is_some_and(|p| std::ptr::eq(p, nodes[f])))
        {
            emit_segment(src, &seg, out);
            seg.clear();
            out.push_str(&raw(src, n));
            prev_sig = Some(n);
            continue;
        }
        seg.push(n);
        if !is_ws(n) {
            prev_sig = Some(n);
        }
    }
    emit_segment(src, &seg, out);
}

fn raw(src: &str, n: &Node) -> String {
    let mut s = String::new();
    match n {
        Node::Group { open, items, close } => {
            s.push_str(&src[*open..*open + 1]);
            for i in items {
                s.push_str(&raw(src, i));
            }
            if let Some((a, b)) = close {
                s.push_str(&src[*a..*b]);
            }
        }
        Node::Tok(_, a, b) => s.push_str(&src[*a..*b]),
    }
    s
}

/// A piece of an expression with the operator that joins it to the previous piece.
struct Piece {
    op: Option<String>,
    text: String,
    literal: bool,
    /// a number literal (`7 % 3` keeps minijinja's `%`; `'x%s' % 1` does not)
    numeric: bool,
}

/// Splits `seg` at the binary operators in `ops` (at this level), rendering each piece with
/// `inner`. Leading/trailing whitespace stays outside.
fn split<'a>(src: &str, seg: &[&'a Node], ops: &[&str]) -> Vec<(Option<String>, Vec<&'a Node>)> {
    let mut pieces: Vec<(Option<String>, Vec<&Node>)> = vec![(None, Vec::new())];
    let mut prev: Option<&Node> = None;
    for &n in seg {
        let binary = prev.is_some_and(|p| ends_operand(src, p));
        if let Node::Tok(Tok::Op, s, e) = n {
            let op = &src[*s..*e];
            if binary && ops.contains(&op) {
                pieces.push((Some(op.to_string()), Vec::new()));
                prev = None;
                continue;
            }
        }
        if let Some(last) = pieces.last_mut() {
            last.1.push(n);
        }
        if !is_ws(n) {
            prev = Some(n);
        }
    }
    pieces
}

fn is_literal(src: &str, nodes: &[&Node]) -> bool {
    let sig: Vec<&&Node> = nodes.iter().filter(|n| !is_ws(n)).collect();
    match sig.as_slice() {
        [Node::Tok(Tok::Num | Tok::Str, ..)] => true,
        [op, Node::Tok(Tok::Num, ..)] => is_op(src, op, "-"),
        _ => false,
    }
}

fn emit_segment(src: &str, seg: &[&Node], out: &mut String) {
    if seg.is_empty() {
        return;
    }
    // whitespace around the segment stays outside any call
    let start = seg.iter().position(|n| !is_ws(n)).unwrap_or(seg.len());
    let end = seg.iter().rposition(|n| !is_ws(n)).map_or(start, |p| p + 1);
    for n in &seg[..start] {
        text(src, n, out);
    }
    if start < end {
        let piece = additive(src, &seg[start..end]).text;
        // `x in('a', 'b')`: a keyword must not run into a rewritten call's name
        let word = |c: char| c.is_alphanumeric() || c == '_';
        if out.ends_with(word) && piece.starts_with(word) {
            out.push(' ');
        }
        out.push_str(&piece);
    }
    for n in &seg[end.max(start)..] {
        text(src, n, out);
    }
}

fn fold(pieces: Vec<Piece>, call: impl Fn(&str) -> Option<&'static str>) -> Piece {
    let mut iter = pieces.into_iter();
    let Some(mut acc) = iter.next() else {
        return Piece {
            op: None,
            text: String::new(),
            literal: true,
            numeric: false,
        };
    };
    for p in iter {
        let op = p.op.clone().unwrap_or_default();
        let complete = !acc.text.trim().is_empty() && !p.text.trim().is_empty();
        let native = if op == "%" {
            acc.numeric && p.numeric
        } else {
            acc.literal && p.literal
        };
        match call(&op).filter(|_| complete && !native) {
            Some(f) => {
                acc = Piece {
                    op: None,
                    text: format!("{f}({}, {})", acc.text.trim(), p.text.trim()),
                    literal: false,
                    numeric: false,
                }
            }
            None => {
                acc = Piece {
                    op: None,
                    text: format!("{} {op} {}", acc.text.trim_end(), p.text.trim_start()),
                    literal: acc.literal && p.literal,
                    numeric: acc.numeric && p.numeric,
                }
            }
        }
    }
    acc
}

fn additive(src: &str, seg: &[&Node]) -> Piece {
    let parts = split(src, seg, &["+", "-"]);
    let pieces = parts
        .into_iter()
        .map(|(op, nodes)| Piece {
            op,
            ..concat(src, &nodes)
        })
        .collect();
    fold(pieces, |op| match op {
        "+" => Some("__bf_add"),
        "-" => Some("__bf_sub"),
        _ => None,
    })
}

fn concat(src: &str, seg: &[&Node]) -> Piece {
    let parts = split(src, seg, &["~"]);
    let pieces = parts
        .into_iter()
        .map(|(op, nodes)| Piece {
            op,
            ..multiplicative(src, &nodes)
        })
        .collect();
    fold(pieces, |_| None)
}

fn multiplicative(src: &str, seg: &[&Node]) -> Piece {
    let parts = split(src, seg, &["*", "/", "//", "%"]);
    let pieces = parts
        .into_iter()
        .map(|(op, nodes)| Piece {
            op,
            ..unary(src, &nodes)
        })
        .collect();
    fold(pieces, |op| match op {
        "%" => Some("__bf_mod"),
        "*" => Some("__bf_mul"),
        _ => None,
    })
}

/// A unary expression: drops unary `+`, turns `-x` (non-literal x) into `__bf_neg(x)`.
fn unary(src: &str, seg: &[&Node]) -> Piece {
    let sig: Vec<usize> = (0..seg.len()).filter(|&i| !is_ws(seg[i])).collect();
    if let Some(&f) = sig.first() {
        if is_op(src, seg[f], "+") {
            return unary(src, &seg[f + 1..]);
        }
        if is_op(src, seg[f], "-") && sig.len() > 1 {
            let rest = unary(src, &seg[f + 1..]);
            if rest.literal {
                return Piece {
                    op: None,
                    text: format!("-{}", rest.text.trim_start()),
                    literal: true,
                    numeric: rest.numeric,
                };
            }
            return Piece {
                op: None,
                text: format!("__bf_neg({})", rest.text.trim()),
                literal: false,
                numeric: false,
            };
        }
    }
    let mut text_out = String::new();
    let mut prev: Option<&Node> = None;
    for &n in seg {
        match n {
            Node::Group { open, items, .. } if src.as_bytes()[*open] == b'(' => {
                let callish = prev.is_some_and(|p| ends_operand(src, p));
                let sig_items: Vec<&Node> = items.iter().filter(|i| !is_ws(i)).collect();
                let tuple =
                    !callish && (sig_items.is_empty() || items.iter().any(|i| is_op(src, i, ",")));
                emit_group(src, n, tuple, &mut text_out);
            }
            _ => text(src, n, &mut text_out),
        }
        if !is_ws(n) {
            prev = Some(n);
        }
    }
    let sig: Vec<&&Node> = seg.iter().filter(|n| !is_ws(n)).collect();
    Piece {
        op: None,
        literal: is_literal(src, seg),
        numeric: matches!(sig.as_slice(), [Node::Tok(Tok::Num, ..)]),
        text: text_out,
    }
}

/// `__bf_tuple(...)`: a Python tuple.
pub fn tuple(args: minijinja::value::Rest<Value>) -> Value {
    Value::from_object(PyTuple(args.0))
}

/// A Python tuple: a sequence that renders as `(a, b)` / `(a,)`.
#[derive(Debug, Clone)]
pub struct PyTuple(pub Vec<Value>);

impl Object for PyTuple {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Seq
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let i = key.as_i64()?;
        let len = self.0.len() as i64;
        let i = if i < 0 { i + len } else { i };
        self.0.get(usize::try_from(i).ok()?).cloned()
    }

    fn enumerate(self: &Arc<Self>) -> minijinja::value::Enumerator {
        minijinja::value::Enumerator::Seq(self.0.len())
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&tuple_repr(&self.0))
    }
}

/// Python's `repr` of a tuple of `items`.
pub fn tuple_repr(items: &[Value]) -> String {
    let parts: Vec<String> = items.iter().map(py_repr).collect();
    match parts.len() {
        1 => format!("({},)", parts[0]),
        _ => format!("({})", parts.join(", ")),
    }
}

/// The arithmetic functions the rewrite calls.
pub fn binop(op: &'static str) -> impl Fn(&State<'_, '_>, Value, Value) -> Result<Value, Error> {
    move |state, a, b| match op {
        "+" => add(state, &a, &b),
        "-" => sub(state, &a, &b),
        "*" => mul(state, &a, &b),
        _ => modulo(state, &a, &b),
    }
}

fn ints(a: &Value, b: &Value) -> Option<(i64, i64)> {
    if a.kind() == ValueKind::Number
        && b.kind() == ValueKind::Number
        && a.is_integer()
        && b.is_integer()
    {
        Some((a.as_i64()?, b.as_i64()?))
    } else {
        None
    }
}

fn add(state: &State<'_, '_>, a: &Value, b: &Value) -> Result<Value, Error> {
    if let Some((x, y)) = ints(a, b) {
        if let Some(v) = x.checked_add(y) {
            return Ok(Value::from(v));
        }
    }
    if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
        if a.kind() == ValueKind::String && b.kind() == ValueKind::String {
            return Ok(Value::from(format!("{x}{y}")));
        }
    }
    if let Some(r) = super::pydatetime::add(a, b) {
        return r;
    }
    if let (Some(x), Some(y)) = (
        a.downcast_object_ref::<PyTuple>(),
        b.downcast_object_ref::<PyTuple>(),
    ) {
        return Ok(Value::from_object(PyTuple(
            x.0.iter().chain(&y.0).cloned().collect(),
        )));
    }
    native(state, "+", a, b)
}

fn sub(state: &State<'_, '_>, a: &Value, b: &Value) -> Result<Value, Error> {
    if let Some((x, y)) = ints(a, b) {
        if let Some(v) = x.checked_sub(y) {
            return Ok(Value::from(v));
        }
    }
    if let Some(r) = super::pydatetime::sub(a, b) {
        return r;
    }
    native(state, "-", a, b)
}

fn mul(state: &State<'_, '_>, a: &Value, b: &Value) -> Result<Value, Error> {
    if let Some((x, y)) = ints(a, b) {
        if let Some(v) = x.checked_mul(y) {
            return Ok(Value::from(v));
        }
    }
    if let Some(r) = super::pydatetime::mul(a, b) {
        return r;
    }
    native(state, "*", a, b)
}

/// Python's `%`: string formatting for a string on the left, else modulo with the sign of
/// the divisor.
fn modulo(state: &State<'_, '_>, a: &Value, b: &Value) -> Result<Value, Error> {
    if a.kind() == ValueKind::String {
        let fmt = a.as_str().unwrap_or_default().to_string();
        return super::percent::pyfmt(fmt, b.clone()).map(Value::from);
    }
    if let Some((x, y)) = ints(a, b) {
        if y == 0 {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                "integer division or modulo by zero",
            ));
        }
        let r = x.rem_euclid(y);
        return Ok(Value::from(if y < 0 && r != 0 { r + y } else { r }));
    }
    if a.kind() == ValueKind::Number && b.kind() == ValueKind::Number {
        let (x, y) = (f64::try_from(a.clone())?, f64::try_from(b.clone())?);
        if y == 0.0 {
            return Err(Error::new(ErrorKind::InvalidOperation, "float modulo"));
        }
        let r = x % y;
        return Ok(Value::from(if r != 0.0 && (r < 0.0) != (y < 0.0) {
            r + y
        } else {
            r
        }));
    }
    native(state, "%", a, b)
}

/// `-x`: timedeltas negate, everything else as minijinja does.
pub fn neg(state: &State<'_, '_>, a: Value) -> Result<Value, Error> {
    if let Some(r) = super::pydatetime::neg(&a) {
        return r;
    }
    if let Some(x) = a.as_i64().filter(|_| a.is_integer()) {
        if let Some(v) = x.checked_neg() {
            return Ok(Value::from(v));
        }
    }
    let expr = state.env().compile_expression("-a")?;
    expr.eval(minijinja::context! { a => a })
}

/// Everything else: minijinja's own operator (its results and errors).
fn native(state: &State<'_, '_>, op: &str, a: &Value, b: &Value) -> Result<Value, Error> {
    let source = format!("a {op} b");
    let expr = state.env().compile_expression(&source)?;
    expr.eval(minijinja::context! { a => a.clone(), b => b.clone() })
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn rewrites_tuples_unary_plus_and_operators() {
        assert_eq!(rewrite(" (1, 2) ", false), " __bf_tuple(1, 2) ");
        assert_eq!(rewrite(" (1,) ", false), " __bf_tuple(1) ");
        assert_eq!(rewrite(" f(1, 2) ", false), " f(1, 2) ");
        assert_eq!(
            rewrite(" x in ('a', 'b') ", false),
            " x in __bf_tuple('a', 'b') "
        );
        assert_eq!(rewrite(" +3 ", false), " 3 ");
        assert_eq!(rewrite(" 3 + 4 ", false), " 3 + 4 ");
        assert_eq!(
            rewrite(" d + delta(days=1) ", false),
            " __bf_add(d, delta(days=1)) "
        );
        assert_eq!(
            rewrite(" a + b - c ", false),
            " __bf_sub(__bf_add(a, b), c) "
        );
        assert_eq!(rewrite(" a ~ b + c ", false), " __bf_add(a ~ b, c) ");
        assert_eq!(
            rewrite(" fmt % (1, 2) ", false),
            " __bf_mod(fmt, __bf_tuple(1, 2)) "
        );
        assert_eq!(rewrite(" 7 % 3 ", false), " 7 % 3 ");
        assert_eq!(
            rewrite(" x if a + 1 > 2 else -y ", false),
            " x if __bf_add(a, 1) > 2 else __bf_neg(y) "
        );
        assert_eq!(rewrite("call(a, b) m(x)", true), "call(a, b) m(x)");
        assert_eq!(
            rewrite(" set x = (1, 2) ", true),
            " set x = __bf_tuple(1, 2) "
        );
        assert_eq!(
            rewrite(" for a, b in [(1, 2)] ", true),
            " for a, b in [__bf_tuple(1, 2)] "
        );
        assert_eq!(rewrite("\u{2029}z\u{2029}", false), " z ");
        assert_eq!(rewrite(" -1 ", false), " -1 ");
        assert_eq!(
            rewrite(" x | default(0) + 1 ", false),
            " __bf_add(x | default(0), 1) "
        );
        assert_eq!(rewrite(" return(macro()) ", false), " return(macro()) ");
        assert_eq!(
            rewrite(" macro(a, (1, 2)) ", false),
            " macro(a, __bf_tuple(1, 2)) "
        );
        assert_eq!(
            rewrite(" config.set('a', 1) ", false),
            " config.set('a', 1) "
        );
        assert_eq!(
            rewrite(" do x.append((1, 2)) ", true),
            " do x.append(__bf_tuple(1, 2)) "
        );
        assert_eq!(
            rewrite(" 'a' in('a', 'b') ", false),
            " 'a' in __bf_tuple('a', 'b') "
        );
        assert_eq!(
            rewrite("- do log(x) if q == [] -", true),
            "- set __bf_do = log(x) if q == [] -"
        );
        assert_eq!(rewrite(" do f(g(1)) ", true), " do f(g(1)) ");
    }

    /// Tags of every template we have (dbt's built-in and adapter macros, the conformance
    /// projects, the bench generator's output is made of the same calls) plus corner cases:
    /// wherever the fast path says "unchanged", the full rewrite gives the input back.
    #[test]
    fn fast_path_is_exact() {
        let mut texts: Vec<String> = vec![
            crate::jinja::BUILTIN_MACROS.to_string(),
            crate::jinja::BUILTIN_CROSS_DB_MACROS.to_string(),
        ];
        for a in crate::adapters::Adapter::ALL {
            texts.extend(a.spec().macros.iter().map(|(_, _, t)| t.to_string()));
        }
        let root =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../conformance/projects");
        let mut stack = vec![root];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    stack.push(p);
                } else if p.extension().is_some_and(|x| x == "sql" || x == "yml") {
                    texts.push(std::fs::read_to_string(&p).unwrap_or_default());
                }
            }
        }
        let mut tags: Vec<(String, bool)> = [
            "ref('a')",
            " x.y(1)[0](2) ",
            "(a)",
            " f (a, b) ",
            " in(1, 2) ",
            " x if(a, b) ",
            "a) b",
            " f(a)) ",
            " for (a, b) in x ",
            " call(a) m() ",
            " set(x) ",
            " 1.5(2) ",
            " 'a'(1) ",
            " x.in(1) ",
            " [1, (2, 3)] ",
            " {'a': (1,)} ",
            " f(x, (1)) ",
            " a\tb ",
            " not(a, b) ",
            " d['k'](1) ",
            " \"q\\\"\"(1) ",
            " f(']') ) ",
        ]
        .iter()
        .flat_map(|t| [(t.to_string(), false), (t.to_string(), true)])
        .collect();
        for t in &texts {
            let b = t.as_bytes();
            let mut i = 0;
            while i + 1 < b.len() {
                let close = match &b[i..i + 2] {
                    b"{{" => "}}",
                    b"{%" => "%}",
                    _ => {
                        i += 1;
                        continue;
                    }
                };
                let end = t[i + 2..].find(close).map_or(t.len(), |e| i + 2 + e);
                if let Some(inner) = t.get(i + 2..end) {
                    tags.push((inner.to_string(), close == "%}"));
                }
                i = end;
            }
        }
        let mut fast = 0;
        for (tag, statement) in &tags {
            let lead = usize::from(tag.starts_with(['-', '+']));
            let trail = usize::from(tag.len() > lead && tag.ends_with(['-', '+']));
            if super::unchanged(&tag[lead..tag.len() - trail]) {
                fast += 1;
                assert_eq!(
                    &super::rewrite_tag(tag, lead, trail, *statement),
                    tag,
                    "fast path wrong for {tag:?}"
                );
            }
        }
        assert!(
            fast > 1000,
            "only {fast} of {} tags took the fast path",
            tags.len()
        );
    }
}
