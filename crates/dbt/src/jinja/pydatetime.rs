//! Python's `datetime` and `pytz` as dbt's Jinja context exposes them (`modules.datetime`,
//! `modules.pytz`, `run_started_at`): dates, datetimes (naive or tz-aware), timedeltas and
//! time zones, with the methods real projects call (`strftime`, `isoformat`, `replace`,
//! `astimezone`, `weekday`, `strptime`, `timedelta(days=)`, `total_seconds`, ...) and
//! Python's `str()` rendering. minijinja has no operator overloading: [`add`] / [`sub`] /
//! [`mul`] / [`neg`] implement Python's date arithmetic, reached through the operator
//! rewrite of `exprs.rs` (`d + timedelta(days=1)` becomes `__bf_add(...)`).

use chrono::{
    DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone, Timelike,
};
use chrono_tz::Tz;
use minijinja::value::{from_args, DynObject, Kwargs, Object, Value};
use minijinja::{Error, ErrorKind, State};
use std::sync::Arc;

fn err(msg: impl Into<String>) -> Error {
    Error::new(ErrorKind::InvalidOperation, msg.into())
}

/// A time zone: a pytz zone by name, or UTC.
#[derive(Debug, Clone, PartialEq)]
pub struct PyTz {
    pub name: String,
    tz: Option<Tz>,
}

impl PyTz {
    pub fn utc() -> Self {
        Self {
            name: "UTC".into(),
            tz: Some(Tz::UTC),
        }
    }

    fn named(name: &str) -> Result<Self, Error> {
        let tz: Tz = name
            .parse()
            .map_err(|_| err(format!("unknown time zone: '{name}'")))?;
        Ok(Self {
            name: name.to_string(),
            tz: Some(tz),
        })
    }

    /// UTC offset (seconds) of this zone at the UTC instant `utc`.
    fn offset_at(&self, utc: NaiveDateTime) -> i32 {
        match self.tz {
            Some(tz) => tz.offset_from_utc_datetime(&utc).fix().local_minus_utc(),
            None => 0,
        }
    }
}

impl Object for PyTz {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "zone" => Some(Value::from(self.name.as_str())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            // pytz's `tz.localize(naive)`: the same wall time, in this zone
            "localize" => {
                let (dt,): (Value,) = from_args(args)?;
                let d = as_dt(&dt)?;
                let utc = d.local - Duration::seconds(i64::from(self.offset_at(d.local)));
                let off = self.offset_at(utc);
                Ok(Value::from_object(PyDateTime {
                    local: d.local,
                    kind: Kind::DateTime,
                    tz: Some(((**self).clone(), off)),
                }))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Date,
    DateTime,
}

/// A `date` or a `datetime` (naive, or aware with its zone and UTC offset in seconds).
#[derive(Debug, Clone, PartialEq)]
pub struct PyDateTime {
    /// wall-clock time in its zone
    local: NaiveDateTime,
    kind: Kind,
    tz: Option<(PyTz, i32)>,
}

/// dbt's `run_started_at`, frozen (UTC, aware) so outputs are reproducible.
pub fn run_started_at() -> Value {
    let local = NaiveDate::from_ymd_opt(2024, 7, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .unwrap_or_default();
    Value::from_object(PyDateTime {
        local,
        kind: Kind::DateTime,
        tz: Some((PyTz::utc(), 0)),
    })
}

fn as_dt(v: &Value) -> Result<PyDateTime, Error> {
    v.downcast_object_ref::<PyDateTime>()
        .cloned()
        .ok_or_else(|| err(format!("expected a date or datetime, got {v}")))
}

fn offset_str(secs: i32, colon: bool) -> String {
    let sign = if secs < 0 { '-' } else { '+' };
    let a = secs.abs();
    if colon {
        format!("{sign}{:02}:{:02}", a / 3600, (a % 3600) / 60)
    } else {
        format!("{sign}{:02}{:02}", a / 3600, (a % 3600) / 60)
    }
}

impl PyDateTime {
    fn utc(&self) -> NaiveDateTime {
        match &self.tz {
            Some((_, off)) => self.local - Duration::seconds(i64::from(*off)),
            None => self.local,
        }
    }

    /// Python's `strftime` (the directives dbt projects use).
    fn strftime(&self, fmt: &str) -> String {
        let mut out = String::new();
        let mut chars = fmt.chars();
        let l = &self.local;
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('z') => {
                    if let Some((_, off)) = &self.tz {
                        out.push_str(&offset_str(*off, false));
                    }
                }
                Some('Z') => {
                    if let Some((tz, off)) = &self.tz {
                        let abbr = tz
                            .tz
                            .map(|t| t.offset_from_utc_datetime(&self.utc()).to_string())
                            .unwrap_or_else(|| offset_str(*off, false));
                        out.push_str(&abbr);
                    }
                }
                Some('f') => out.push_str(&format!("{:06}", l.nanosecond() / 1000)),
                Some(
                    d @ ('Y' | 'y' | 'm' | 'd' | 'H' | 'M' | 'S' | 'j' | 'a' | 'A' | 'b' | 'B'
                    | 'p' | 'I' | 'U' | 'W' | 'w' | 'G' | 'V' | 'u'),
                ) => out.push_str(&l.format(&format!("%{d}")).to_string()),
                Some('%') => out.push('%'),
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }

    fn isoformat(&self, sep: &str) -> String {
        match self.kind {
            Kind::Date => self.strftime("%Y-%m-%d"),
            Kind::DateTime => {
                let mut s = format!(
                    "{}{sep}{}",
                    self.strftime("%Y-%m-%d"),
                    self.strftime("%H:%M:%S")
                );
                if self.local.nanosecond() >= 1000 {
                    s.push_str(&self.strftime(".%f"));
                }
                if let Some((_, off)) = &self.tz {
                    s.push_str(&offset_str(*off, true));
                }
                s
            }
        }
    }

    fn with_local(&self, local: NaiveDateTime) -> Self {
        let mut out = self.clone();
        out.local = local;
        if let Some((tz, off)) = &mut out.tz {
            // keep the zone; recompute its offset at the new wall time
            let guess = local - Duration::seconds(i64::from(*off));
            *off = tz.offset_at(guess);
        }
        out
    }

    fn replace(&self, kwargs: &Kwargs) -> Result<Self, Error> {
        let l = self.local;
        let get = |k: &str, cur: u32| -> Result<u32, Error> {
            Ok(kwargs.get::<Option<u32>>(k)?.unwrap_or(cur))
        };
        let year = kwargs.get::<Option<i32>>("year")?.unwrap_or(l.year());
        let date = NaiveDate::from_ymd_opt(year, get("month", l.month())?, get("day", l.day())?)
            .ok_or_else(|| err("day is out of range for month"))?;
        let time = NaiveTime::from_hms_micro_opt(
            get("hour", l.hour())?,
            get("minute", l.minute())?,
            get("second", l.second())?,
            get("microsecond", l.nanosecond() / 1000)?,
        )
        .ok_or_else(|| err("time field out of range"))?;
        let mut out = self.with_local(date.and_time(time));
        if kwargs.has("tzinfo") {
            let tz: Value = kwargs.get("tzinfo")?;
            out.tz = match tz.downcast_object_ref::<PyTz>() {
                Some(t) => {
                    let off = t.offset_at(out.local);
                    Some((t.clone(), off))
                }
                None => None,
            };
        }
        Ok(out)
    }

    fn astimezone(&self, tz: Option<&PyTz>) -> PyDateTime {
        let utc = self.utc();
        let tz = tz.cloned().unwrap_or_else(PyTz::utc);
        let off = tz.offset_at(utc);
        PyDateTime {
            local: utc + Duration::seconds(i64::from(off)),
            kind: Kind::DateTime,
            tz: Some((tz, off)),
        }
    }
}

impl Object for PyDateTime {
    /// `<`, `>`, `==` between dates/datetimes, as Python orders them
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        let other = other.downcast_ref::<Self>()?;
        Some(self.utc().cmp(&other.utc()))
    }

    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let l = &self.local;
        Some(match key.as_str()? {
            "year" => Value::from(l.year()),
            "month" => Value::from(l.month()),
            "day" => Value::from(l.day()),
            "hour" if self.kind == Kind::DateTime => Value::from(l.hour()),
            "minute" if self.kind == Kind::DateTime => Value::from(l.minute()),
            "second" if self.kind == Kind::DateTime => Value::from(l.second()),
            "microsecond" if self.kind == Kind::DateTime => Value::from(l.nanosecond() / 1000),
            "tzinfo" if self.kind == Kind::DateTime => match &self.tz {
                Some((tz, _)) => Value::from_object(tz.clone()),
                None => Value::from(()),
            },
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let obj = |d: PyDateTime| Ok(Value::from_object(d));
        match method {
            "strftime" => {
                let (fmt,): (String,) = from_args(args)?;
                Ok(Value::from(self.strftime(&fmt)))
            }
            "isoformat" => {
                let (sep,): (Option<String>,) = from_args(args)?;
                Ok(Value::from(self.isoformat(sep.as_deref().unwrap_or("T"))))
            }
            "date" => obj(PyDateTime {
                local: self.local.date().and_time(NaiveTime::MIN),
                kind: Kind::Date,
                tz: None,
            }),
            "weekday" => Ok(Value::from(self.local.weekday().num_days_from_monday())),
            "isoweekday" => Ok(Value::from(self.local.weekday().number_from_monday())),
            "toordinal" => Ok(Value::from(self.local.num_days_from_ce())),
            "timestamp" => Ok(Value::from(
                self.utc().and_utc().timestamp_micros() as f64 / 1e6,
            )),
            "replace" => {
                let (kwargs,): (Kwargs,) = from_args(args)?;
                obj(self.replace(&kwargs)?)
            }
            "astimezone" => {
                let (tz,): (Option<Value>,) = from_args(args)?;
                let tz = tz.as_ref().and_then(|t| t.downcast_object_ref::<PyTz>());
                obj(self.astimezone(tz))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.isoformat(" "))
    }
}

/// A `timedelta`, as microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PyTimeDelta(i64);

impl PyTimeDelta {
    fn parts(&self) -> (i64, i64, i64) {
        let day = 86_400_000_000;
        let days = self.0.div_euclid(day);
        let rest = self.0.rem_euclid(day);
        (days, rest / 1_000_000, rest % 1_000_000)
    }
}

impl Object for PyTimeDelta {
    fn custom_cmp(self: &Arc<Self>, other: &DynObject) -> Option<std::cmp::Ordering> {
        Some(self.0.cmp(&other.downcast_ref::<Self>()?.0))
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        let (d, s, us) = self.parts();
        Some(match key.as_str()? {
            "days" => Value::from(d),
            "seconds" => Value::from(s),
            "microseconds" => Value::from(us),
            _ => return None,
        })
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        _args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "total_seconds" => Ok(Value::from(self.0 as f64 / 1e6)),
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }

    fn render(self: &Arc<Self>, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (d, s, us) = self.parts();
        if d != 0 {
            write!(f, "{d} day{}, ", if d.abs() == 1 { "" } else { "s" })?;
        }
        write!(f, "{}:{:02}:{:02}", s / 3600, (s % 3600) / 60, s % 60)?;
        if us != 0 {
            write!(f, ".{us:06}")?;
        }
        Ok(())
    }
}

fn num(v: &Value) -> Result<f64, Error> {
    f64::try_from(v.clone()).map_err(|_| err(format!("expected a number, got {v}")))
}

/// `timedelta(days=0, seconds=0, microseconds=0, milliseconds=0, minutes=0, hours=0, weeks=0)`
fn timedelta(args: &[Value]) -> Result<Value, Error> {
    const UNITS: [(&str, f64); 7] = [
        ("days", 86_400e6),
        ("seconds", 1e6),
        ("microseconds", 1.0),
        ("milliseconds", 1e3),
        ("minutes", 60e6),
        ("hours", 3_600e6),
        ("weeks", 604_800e6),
    ];
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Kwargs::try_from(last.clone()).ok()),
        _ => (args, None),
    };
    let mut micros = 0f64;
    for (v, (_, unit)) in positional.iter().zip(UNITS) {
        micros += num(v)? * unit;
    }
    if let Some(kw) = kwargs {
        for key in kw.args() {
            let unit = UNITS
                .iter()
                .find(|(k, _)| *k == key)
                .map(|(_, u)| *u)
                .ok_or_else(|| err(format!("timedelta() got an unexpected keyword '{key}'")))?;
            micros += num(&kw.get::<Value>(key)?)? * unit;
        }
    }
    Ok(Value::from_object(PyTimeDelta(micros.round() as i64)))
}

/// `date(y, m, d)` / `datetime(y, m, d, H=0, M=0, S=0, us=0, tzinfo=None)`.
fn construct(kind: Kind, args: &[Value]) -> Result<Value, Error> {
    let (positional, kwargs) = match args.split_last() {
        Some((last, rest)) if last.is_kwargs() => (rest, Kwargs::try_from(last.clone()).ok()),
        _ => (args, None),
    };
    let names = [
        "year",
        "month",
        "day",
        "hour",
        "minute",
        "second",
        "microsecond",
    ];
    let mut f = [0i64; 7];
    for (i, v) in positional.iter().enumerate().take(7) {
        f[i] = i64::try_from(v.clone())?;
    }
    let mut tz = None;
    if let Some(kw) = &kwargs {
        for (i, n) in names.iter().enumerate() {
            if let Some(v) = kw.get::<Option<i64>>(n)? {
                f[i] = v;
            }
        }
        if kw.has("tzinfo") {
            let t: Value = kw.get("tzinfo")?;
            tz = t.downcast_object_ref::<PyTz>().cloned();
        }
    }
    let small = |v: i64| u32::try_from(v).map_err(|_| err("date field out of range"));
    let date = NaiveDate::from_ymd_opt(
        i32::try_from(f[0]).map_err(|_| err("year out of range"))?,
        small(f[1])?,
        small(f[2])?,
    )
    .ok_or_else(|| err("day is out of range for month"))?;
    let time =
        NaiveTime::from_hms_micro_opt(small(f[3])?, small(f[4])?, small(f[5])?, small(f[6])?)
            .ok_or_else(|| err("time field out of range"))?;
    let local = date.and_time(time);
    Ok(Value::from_object(PyDateTime {
        local,
        kind,
        tz: tz.map(|t| {
            let off = t.offset_at(local);
            (t, off)
        }),
    }))
}

/// Python's `datetime.strptime(text, format)` for the common directives.
fn strptime(text: &str, fmt: &str) -> Result<Value, Error> {
    let cfmt = fmt.replace("%f", "%6f");
    let local = NaiveDateTime::parse_from_str(text, &cfmt)
        .or_else(|_| NaiveDate::parse_from_str(text, &cfmt).map(|d| d.and_time(NaiveTime::MIN)))
        .map_err(|_| err(format!("time data '{text}' does not match format '{fmt}'")))?;
    let tz = if fmt.contains("%z") {
        DateTime::<FixedOffset>::parse_from_str(text, &cfmt)
            .ok()
            .map(|d| {
                (
                    PyTz {
                        name: d.offset().to_string(),
                        tz: None,
                    },
                    d.offset().local_minus_utc(),
                )
            })
    } else {
        None
    };
    Ok(Value::from_object(PyDateTime {
        local,
        kind: Kind::DateTime,
        tz,
    }))
}

/// `modules.datetime.date` / `.datetime` / `.timedelta` (callable, with class methods).
#[derive(Debug)]
struct Ctor(&'static str);

impl Object for Ctor {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn call(self: &Arc<Self>, _state: &State<'_, '_>, args: &[Value]) -> Result<Value, Error> {
        match self.0 {
            "date" => construct(Kind::Date, args),
            "datetime" => construct(Kind::DateTime, args),
            _ => timedelta(args),
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        let frozen = as_dt(&run_started_at())?;
        match (self.0, method) {
            ("date", "today") => Ok(Value::from_object(PyDateTime {
                kind: Kind::Date,
                tz: None,
                ..frozen
            })),
            ("datetime", "now") => {
                let (tz,): (Option<Value>,) = from_args(args)?;
                match tz.as_ref().and_then(|t| t.downcast_object_ref::<PyTz>()) {
                    Some(t) => Ok(Value::from_object(frozen.astimezone(Some(t)))),
                    None => Ok(Value::from_object(PyDateTime { tz: None, ..frozen })),
                }
            }
            ("datetime", "utcnow" | "today") => {
                Ok(Value::from_object(PyDateTime { tz: None, ..frozen }))
            }
            ("datetime", "strptime") => {
                let (text, fmt): (String, String) = from_args(args)?;
                strptime(&text, &fmt)
            }
            ("datetime" | "date", "fromisoformat") => {
                let (text,): (String,) = from_args(args)?;
                strptime(
                    &text,
                    if text.len() > 10 {
                        "%Y-%m-%dT%H:%M:%S"
                    } else {
                        "%Y-%m-%d"
                    },
                )
            }
            ("datetime", "combine") => {
                let (d, t): (Value, Value) = from_args(args)?;
                let (d, t) = (as_dt(&d)?, as_dt(&t)?);
                Ok(Value::from_object(PyDateTime {
                    local: d.local.date().and_time(t.local.time()),
                    kind: Kind::DateTime,
                    tz: t.tz,
                }))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `modules.datetime`.
#[derive(Debug)]
pub struct DatetimeModule;

impl Object for DatetimeModule {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "date" => Some(Value::from_object(Ctor("date"))),
            "datetime" => Some(Value::from_object(Ctor("datetime"))),
            "timedelta" => Some(Value::from_object(Ctor("timedelta"))),
            "timezone" => Some(Value::from_iter([("utc", Value::from_object(PyTz::utc()))])),
            _ => None,
        }
    }
}

/// `modules.pytz`: `timezone(name)` and `utc`.
#[derive(Debug)]
pub struct PytzModule;

impl Object for PytzModule {
    fn is_true(self: &Arc<Self>) -> bool {
        true
    }

    fn get_value(self: &Arc<Self>, key: &Value) -> Option<Value> {
        match key.as_str()? {
            "utc" | "UTC" => Some(Value::from_object(PyTz::utc())),
            _ => None,
        }
    }

    fn call_method(
        self: &Arc<Self>,
        _state: &State<'_, '_>,
        method: &str,
        args: &[Value],
    ) -> Result<Value, Error> {
        match method {
            "timezone" => {
                let (name,): (String,) = from_args(args)?;
                Ok(Value::from_object(PyTz::named(&name)?))
            }
            _ => Err(Error::from(ErrorKind::UnknownMethod)),
        }
    }
}

/// `a + b` where one side is a date/datetime/timedelta (`None` when neither is).
pub fn add(a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    let td = |v: &Value| v.downcast_object_ref::<PyTimeDelta>().copied();
    let dt = |v: &Value| v.downcast_object_ref::<PyDateTime>().cloned();
    match (dt(a), td(a), dt(b), td(b)) {
        (Some(d), _, _, Some(t)) | (_, Some(t), Some(d), _) => Some(shift(&d, t.0)),
        (_, Some(x), _, Some(y)) => Some(Ok(Value::from_object(PyTimeDelta(x.0 + y.0)))),
        _ => None,
    }
}

/// `a - b` where one side is a date/datetime/timedelta (`None` when neither is).
pub fn sub(a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    let td = |v: &Value| v.downcast_object_ref::<PyTimeDelta>().copied();
    let dt = |v: &Value| v.downcast_object_ref::<PyDateTime>().cloned();
    match (dt(a), td(a), dt(b), td(b)) {
        (Some(d), _, _, Some(t)) => Some(shift(&d, -t.0)),
        (Some(x), _, Some(y), _) => {
            let micros = (x.utc() - y.utc()).num_microseconds().unwrap_or(0);
            Some(Ok(Value::from_object(PyTimeDelta(micros))))
        }
        (_, Some(x), _, Some(y)) => Some(Ok(Value::from_object(PyTimeDelta(x.0 - y.0)))),
        _ => None,
    }
}

/// `timedelta * n` / `n * timedelta` (`None` when neither side is a timedelta).
pub fn mul(a: &Value, b: &Value) -> Option<Result<Value, Error>> {
    let td = |v: &Value| v.downcast_object_ref::<PyTimeDelta>().copied();
    let n = |v: &Value| v.as_i64().filter(|_| v.is_integer());
    match (td(a), n(b), n(a), td(b)) {
        (Some(t), Some(k), _, _) | (_, _, Some(k), Some(t)) => Some(
            t.0.checked_mul(k)
                .map(|m| Value::from_object(PyTimeDelta(m)))
                .ok_or_else(|| err("timedelta out of range")),
        ),
        _ => None,
    }
}

/// `-timedelta` (`None` for anything else).
pub fn neg(a: &Value) -> Option<Result<Value, Error>> {
    let t = a.downcast_object_ref::<PyTimeDelta>()?;
    Some(Ok(Value::from_object(PyTimeDelta(-t.0))))
}

fn shift(d: &PyDateTime, micros: i64) -> Result<Value, Error> {
    let micros = if d.kind == Kind::Date {
        // a date moves by whole days only
        micros.div_euclid(86_400_000_000) * 86_400_000_000
    } else {
        micros
    };
    let local = d
        .local
        .checked_add_signed(Duration::microseconds(micros))
        .ok_or_else(|| err("date value out of range"))?;
    Ok(Value::from_object(d.with_local(local)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(src: &str) -> String {
        let mut env = minijinja::Environment::new();
        env.add_global(
            "modules",
            Value::from_iter([
                ("datetime", Value::from_object(DatetimeModule)),
                ("pytz", Value::from_object(PytzModule)),
            ]),
        );
        env.add_global("run_started_at", run_started_at());
        env.render_str(src, ())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    #[test]
    fn renders_like_python() {
        assert_eq!(
            render("{{ modules.datetime.datetime(2020, 1, 2, 3, 4, 5) }}"),
            "2020-01-02 03:04:05"
        );
        assert_eq!(
            render("{{ modules.datetime.date(2020, 1, 2) }}"),
            "2020-01-02"
        );
        assert_eq!(render("{{ run_started_at }}"), "2024-07-01 00:00:00+00:00");
        assert_eq!(
            render("{{ modules.datetime.timedelta(days=1, hours=2) }}"),
            "1 day, 2:00:00"
        );
    }

    #[test]
    fn time_zones_and_methods() {
        assert_eq!(
            render("{{ run_started_at.astimezone(modules.pytz.timezone('America/New_York')).isoformat() }}"),
            "2024-06-30T20:00:00-04:00"
        );
        assert_eq!(
            render("{{ modules.datetime.date(2024, 7, 1).weekday() }}"),
            "0"
        );
        assert_eq!(
            render("{{ modules.datetime.datetime.strptime('2020-03-04', '%Y-%m-%d').strftime('%d/%m/%Y') }}"),
            "04/03/2020"
        );
    }

    #[test]
    fn arithmetic() {
        let d = construct(
            Kind::Date,
            &[Value::from(2020), Value::from(2), Value::from(28)],
        )
        .unwrap_or_default();
        let t = timedelta(&[Value::from(2)]).unwrap_or_default();
        let r = add(&d, &t).and_then(Result::ok).map(|v| v.to_string());
        assert_eq!(r.as_deref(), Some("2020-03-01"));
        let back = sub(&d, &d).and_then(Result::ok).map(|v| v.to_string());
        assert_eq!(back.as_deref(), Some("0:00:00"));
    }
}
