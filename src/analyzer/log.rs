//! Typed log records shared by every log the builtin analyzer writes.
//!
//! A log is described once by a static [`LogSchema`] (Zeek's `#path`, field names and Zeek
//! type names); producers hand a [`LogSink`] one `Vec<Value>` per line, in schema order. The
//! writers (Zeek TSV and Zeek JSON lines) live in `writer.rs` and are the only code that knows
//! how a value is rendered, so escaping and number formatting are decided in one place.

use std::net::IpAddr;

/// One column of a log: its Zeek field name and Zeek type name (`time`, `string`, `addr`,
/// `port`, `count`, `int`, `double`, `interval`, `bool`, `enum`, `set[string]`,
/// `vector[string]`, `vector[interval]`, ...), exactly as they appear in `#fields`/`#types`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldSpec {
    pub name: &'static str,
    pub ty: &'static str,
}

/// A log file: `path` is the Zeek `#path` and the file stem (`conn` → `conn.log`).
#[derive(Debug)]
pub struct LogSchema {
    pub path: &'static str,
    pub fields: &'static [FieldSpec],
}

/// Shorthand for building schema tables: `field("ts", "time")`.
pub const fn field(name: &'static str, ty: &'static str) -> FieldSpec {
    FieldSpec { name, ty }
}

/// One field value. `Unset` renders as Zeek's unset field (`-` in TSV, omitted in JSON);
/// an empty `Str`/`Set`/`Vector` renders as Zeek's empty field (`(empty)` in TSV).
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Unset,
    Bool(bool),
    Count(u64),
    Int(i64),
    Double(f64),
    /// Seconds since the epoch; rendered with 6 decimals.
    Time(f64),
    /// Seconds; rendered with 6 decimals.
    Interval(f64),
    Str(String),
    Addr(IpAddr),
    Port(u16),
    Enum(&'static str),
    Set(Vec<Value>),
    Vector(Vec<Value>),
}

impl From<&str> for Value {
    fn from(s: &str) -> Self {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Self {
        Value::Str(s)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Unset, Into::into)
    }
}

/// Where finished log lines go. Implemented by the writer set of a job (one file per
/// `schema.path`, created on first use) and by test collectors.
pub trait LogSink {
    /// Writes one line of `schema`; `values.len() == schema.fields.len()`.
    fn write(&mut self, schema: &'static LogSchema, values: Vec<Value>);
}
