//! Typed log rows shared by every log the builtin analyzer writes.
//!
//! A log line is a row struct declared with [`log_row!`]: one named field per column, each of
//! a type that fixes its Zeek type ([`Time`], [`Interval`], [`Port`], `u64` for `count`,
//! `&str` for `string`, [`Enum`], [`Set`], [`Vector`], `Option<…>` where the column may be
//! unset). The same declaration yields the log's static [`LogSchema`] (Zeek's `#path`, field
//! names and Zeek type names), so the schema and the order in which values are written cannot
//! drift apart. The `uid` and `id.*` columns are one group, [`ConnId`], used by every log that
//! names a connection.
//!
//! A [`LogSink`] receives a row by reference and walks its values ([`LogRow::for_each_value`]);
//! values borrow from the row, so writing a line allocates nothing. The writers (Zeek TSV and
//! Zeek JSON lines) live in `writer.rs` and are the only code that knows how a [`Value`] is
//! rendered, so escaping and number formatting are decided in one place.

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

/// One field value as the writers see it, borrowed from the row being written. `Unset`
/// renders as Zeek's unset field (`-` in TSV, omitted in JSON); an empty `Str`/`Set`/`Vector`
/// renders as Zeek's empty field (`(empty)` in TSV).
#[derive(Clone, Copy)]
pub enum Value<'a> {
    Unset,
    Bool(bool),
    Count(u64),
    Int(i64),
    Double(f64),
    /// Seconds since the epoch; rendered with 6 decimals.
    Time(f64),
    /// Seconds; rendered with 6 decimals.
    Interval(f64),
    Str(&'a str),
    Addr(IpAddr),
    Port(u16),
    Enum(&'a str),
    Set(&'a dyn Elements),
    Vector(&'a dyn Elements),
}

/// The elements of a `set[…]` or `vector[…]` value.
pub trait Elements {
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Element `index` (< `len()`).
    fn value(&self, index: usize) -> Value<'_>;
}

/// A single-column type: its Zeek type name and its value.
pub trait Column {
    const ZEEK_TYPE: &'static str;
    fn value(&self) -> Value<'_>;
}

/// A type that fills one or more adjacent columns of a row: every [`Column`], and groups
/// such as [`ConnId`].
pub trait Columns {
    /// Zeek names of a group's columns; empty for a single column, which is named by the
    /// row field that holds it.
    const NAMES: &'static [&'static str];
    /// Zeek type names, one per column.
    const TYPES: &'static [&'static str];
    /// Hands each column's value to `out`, in order.
    fn emit(&self, out: &mut dyn FnMut(Value<'_>));
}

impl<T: Column> Columns for T {
    const NAMES: &'static [&'static str] = &[];
    const TYPES: &'static [&'static str] = &[T::ZEEK_TYPE];
    fn emit(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(self.value());
    }
}

/// Zeek `time`: seconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Time(pub f64);

/// Zeek `interval`: seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval(pub f64);

/// Zeek `port` (the transport protocol is implied by the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Port(pub u16);

/// Zeek `enum`: one of a fixed set of names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Enum(pub &'static str);

/// Zeek `set[T]` over borrowed elements (written in the order given).
pub struct Set<'a, T>(pub &'a [T]);

/// Zeek `vector[T]` over borrowed elements.
pub struct Vector<'a, T>(pub &'a [T]);

/// An element type of sets and vectors: the Zeek names of its containers.
pub trait Element: Column {
    const SET_TYPE: &'static str;
    const VECTOR_TYPE: &'static str;
}

macro_rules! scalar_columns {
    ($($ty:ty => $zeek:literal, |$v:ident| $value:expr;)*) => {$(
        impl Column for $ty {
            const ZEEK_TYPE: &'static str = $zeek;
            fn value(&self) -> Value<'_> {
                let $v = self;
                $value
            }
        }
    )*};
}

scalar_columns! {
    bool => "bool", |v| Value::Bool(*v);
    u64 => "count", |v| Value::Count(*v);
    i64 => "int", |v| Value::Int(*v);
    f64 => "double", |v| Value::Double(*v);
    Time => "time", |v| Value::Time(v.0);
    Interval => "interval", |v| Value::Interval(v.0);
    Port => "port", |v| Value::Port(v.0);
    IpAddr => "addr", |v| Value::Addr(*v);
    Enum => "enum", |v| Value::Enum(v.0);
    &str => "string", |v| Value::Str(v);
    String => "string", |v| Value::Str(v);
}

impl Element for &str {
    const SET_TYPE: &'static str = "set[string]";
    const VECTOR_TYPE: &'static str = "vector[string]";
}

impl Element for String {
    const SET_TYPE: &'static str = "set[string]";
    const VECTOR_TYPE: &'static str = "vector[string]";
}

impl Element for Enum {
    const SET_TYPE: &'static str = "set[enum]";
    const VECTOR_TYPE: &'static str = "vector[enum]";
}

impl Element for IpAddr {
    const SET_TYPE: &'static str = "set[addr]";
    const VECTOR_TYPE: &'static str = "vector[addr]";
}

impl Element for Interval {
    const SET_TYPE: &'static str = "set[interval]";
    const VECTOR_TYPE: &'static str = "vector[interval]";
}

impl<T: Element> Column for Set<'_, T> {
    const ZEEK_TYPE: &'static str = T::SET_TYPE;
    fn value(&self) -> Value<'_> {
        Value::Set(self)
    }
}

impl<T: Element> Column for Vector<'_, T> {
    const ZEEK_TYPE: &'static str = T::VECTOR_TYPE;
    fn value(&self) -> Value<'_> {
        Value::Vector(self)
    }
}

impl<T: Element> Elements for Set<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn value(&self, index: usize) -> Value<'_> {
        self.0[index].value()
    }
}

impl<T: Element> Elements for Vector<'_, T> {
    fn len(&self) -> usize {
        self.0.len()
    }
    fn value(&self, index: usize) -> Value<'_> {
        self.0[index].value()
    }
}

/// An optional column: `None` is Zeek's unset field.
impl<T: Column> Column for Option<T> {
    const ZEEK_TYPE: &'static str = T::ZEEK_TYPE;
    fn value(&self) -> Value<'_> {
        self.as_ref().map_or(Value::Unset, Column::value)
    }
}

/// The connection a line belongs to: the `uid` column and Zeek's `conn_id` record
/// (`id.orig_h`, `id.orig_p`, `id.resp_h`, `id.resp_p`), declared here once for every log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnId<'a> {
    pub uid: &'a str,
    pub orig_h: IpAddr,
    pub orig_p: u16,
    pub resp_h: IpAddr,
    pub resp_p: u16,
}

impl Columns for ConnId<'_> {
    const NAMES: &'static [&'static str] =
        &["uid", "id.orig_h", "id.orig_p", "id.resp_h", "id.resp_p"];
    const TYPES: &'static [&'static str] = &["string", "addr", "port", "addr", "port"];
    fn emit(&self, out: &mut dyn FnMut(Value<'_>)) {
        out(Value::Str(self.uid));
        out(Value::Addr(self.orig_h));
        out(Value::Port(self.orig_p));
        out(Value::Addr(self.resp_h));
        out(Value::Port(self.resp_p));
    }
}

/// One line of a log, as a [`LogSink`] receives it. Implemented by the rows [`log_row!`]
/// declares.
pub trait LogRow {
    fn schema(&self) -> &'static LogSchema;
    /// Hands every column's value to `out`, in schema order.
    fn for_each_value(&self, out: &mut dyn FnMut(Value<'_>));
}

/// Where finished log lines go. Implemented by the writer set of a job (one file per
/// `schema.path`, created on first use) and by test collectors.
pub trait LogSink {
    fn write(&mut self, row: &dyn LogRow);
    /// Whether lines of log `path` are kept; producers may skip work for logs that are not.
    fn wants(&self, _path: &str) -> bool {
        true
    }
}

/// What [`log_row!`] records of each row field: the field's Zeek name and the column
/// names/types of its type.
#[doc(hidden)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub names: &'static [&'static str],
    pub types: &'static [&'static str],
}

/// Number of columns of a row's fields.
#[doc(hidden)]
pub const fn width(columns: &[ColumnSpec]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < columns.len() {
        n += columns[i].types.len();
        i += 1;
    }
    n
}

/// The schema fields of a row's fields, groups spread out; `N` = [`width`].
#[doc(hidden)]
pub const fn flatten<const N: usize>(columns: &[ColumnSpec]) -> [FieldSpec; N] {
    let mut out = [FieldSpec { name: "", ty: "" }; N];
    let mut at = 0;
    let mut i = 0;
    while i < columns.len() {
        let c = &columns[i];
        let mut j = 0;
        while j < c.types.len() {
            let name = if c.names.is_empty() {
                c.name
            } else {
                c.names[j]
            };
            out[at] = FieldSpec {
                name,
                ty: c.types[j],
            };
            at += 1;
            j += 1;
        }
        i += 1;
    }
    assert!(at == N, "flatten: N is not the row's width");
    out
}

/// Declares a log's row struct and its static schema from one list of fields.
///
/// ```ignore
/// log_row! {
///     /// One conn.log line.
///     pub struct ConnRow<'a> => CONN_SCHEMA("conn") {
///         ts: Time,
///         id: ConnId<'a>,          // a group: uid, id.orig_h, …
///         proto: Enum,
///         aa as "AA": bool,        // Zeek name differs from the Rust name
///         answers: Option<Vector<'a, String>>,
///     }
/// }
/// ```
///
/// Each field is a column named after it (or after the `as` literal) whose Zeek type comes
/// from its Rust type ([`Columns`]); a group type spreads into its own named columns. The
/// row implements [`LogRow`]; the schema lists the columns in field order.
macro_rules! log_row {
    (
        $(#[$meta:meta])*
        $vis:vis struct $row:ident<$lt:lifetime> => $schema:ident($path:literal) {
            $(
                $(#[$field_meta:meta])*
                $field:ident $(as $zeek_name:literal)? : $ty:ty
            ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        $vis struct $row<$lt> {
            $( $(#[$field_meta])* pub $field: $ty, )+
        }

        impl<$lt> $row<$lt> {
            const COLUMNS: &'static [$crate::analyzer::log::ColumnSpec] = &[
                $(
                    $crate::analyzer::log::ColumnSpec {
                        name: $crate::analyzer::log::log_row!(@name $field $($zeek_name)?),
                        names: <$ty as $crate::analyzer::log::Columns>::NAMES,
                        types: <$ty as $crate::analyzer::log::Columns>::TYPES,
                    },
                )+
            ];
        }

        #[doc = concat!("The schema of `", $path, ".log`, from [`", stringify!($row), "`].")]
        $vis static $schema: $crate::analyzer::log::LogSchema = $crate::analyzer::log::LogSchema {
            path: $path,
            fields: &{
                const WIDTH: usize = $crate::analyzer::log::width(<$row<'static>>::COLUMNS);
                $crate::analyzer::log::flatten::<WIDTH>(<$row<'static>>::COLUMNS)
            },
        };

        impl $crate::analyzer::log::LogRow for $row<'_> {
            fn schema(&self) -> &'static $crate::analyzer::log::LogSchema {
                &$schema
            }
            fn for_each_value(
                &self,
                out: &mut dyn FnMut($crate::analyzer::log::Value<'_>),
            ) {
                $( $crate::analyzer::log::Columns::emit(&self.$field, out); )+
            }
        }
    };
    (@name $field:ident $zeek_name:literal) => { $zeek_name };
    (@name $field:ident) => { stringify!($field) };
}
pub(crate) use log_row;

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An owned copy of a [`Value`], for test collectors that keep rows after writing.
    #[derive(Debug, Clone, PartialEq)]
    pub(crate) enum OwnedValue {
        Unset,
        Bool(bool),
        Count(u64),
        Int(i64),
        Double(f64),
        Time(f64),
        Interval(f64),
        Str(String),
        Addr(IpAddr),
        Port(u16),
        Enum(String),
        Set(Vec<OwnedValue>),
        Vector(Vec<OwnedValue>),
    }

    impl From<Value<'_>> for OwnedValue {
        fn from(v: Value<'_>) -> Self {
            let items = |e: &dyn Elements| (0..e.len()).map(|i| e.value(i).into()).collect();
            match v {
                Value::Unset => OwnedValue::Unset,
                Value::Bool(b) => OwnedValue::Bool(b),
                Value::Count(c) => OwnedValue::Count(c),
                Value::Int(i) => OwnedValue::Int(i),
                Value::Double(d) => OwnedValue::Double(d),
                Value::Time(t) => OwnedValue::Time(t),
                Value::Interval(t) => OwnedValue::Interval(t),
                Value::Str(s) => OwnedValue::Str(s.to_owned()),
                Value::Addr(a) => OwnedValue::Addr(a),
                Value::Port(p) => OwnedValue::Port(p),
                Value::Enum(e) => OwnedValue::Enum(e.to_owned()),
                Value::Set(e) => OwnedValue::Set(items(e)),
                Value::Vector(e) => OwnedValue::Vector(items(e)),
            }
        }
    }

    /// Whether a value of this kind may appear in a column of Zeek type `ty` (unset fits
    /// any column).
    fn fits(v: &OwnedValue, ty: &str) -> bool {
        let inner = |prefix: &str| {
            ty.strip_prefix(prefix)
                .and_then(|t| t.strip_suffix(']'))
                .unwrap_or("")
        };
        match v {
            OwnedValue::Unset => true,
            OwnedValue::Bool(_) => ty == "bool",
            OwnedValue::Count(_) => ty == "count",
            OwnedValue::Int(_) => ty == "int",
            OwnedValue::Double(_) => ty == "double",
            OwnedValue::Time(_) => ty == "time",
            OwnedValue::Interval(_) => ty == "interval",
            OwnedValue::Str(_) => ty == "string",
            OwnedValue::Addr(_) => ty == "addr",
            OwnedValue::Port(_) => ty == "port",
            OwnedValue::Enum(_) => ty == "enum",
            OwnedValue::Set(items) => {
                let t = inner("set[");
                !t.is_empty() && items.iter().all(|i| i != &OwnedValue::Unset && fits(i, t))
            }
            OwnedValue::Vector(items) => {
                let t = inner("vector[");
                !t.is_empty() && items.iter().all(|i| i != &OwnedValue::Unset && fits(i, t))
            }
        }
    }

    /// The row's values, checked against its schema: one per field, each of a kind its
    /// Zeek type allows.
    pub(crate) fn checked_values(row: &dyn LogRow) -> Vec<OwnedValue> {
        let schema = row.schema();
        let mut values = Vec::new();
        row.for_each_value(&mut |v| values.push(OwnedValue::from(v)));
        assert_eq!(
            values.len(),
            schema.fields.len(),
            "{}: row width differs from its schema",
            schema.path
        );
        for (spec, v) in schema.fields.iter().zip(&values) {
            assert!(
                fits(v, spec.ty),
                "{}: column {} of type {} got {v:?}",
                schema.path,
                spec.name,
                spec.ty
            );
        }
        values
    }

    /// Asserts that every column of a fully set row carries a value of its Zeek type.
    pub(crate) fn assert_fully_set_row_matches_schema(row: &dyn LogRow) {
        let values = checked_values(row);
        for (spec, v) in row.schema().fields.iter().zip(&values) {
            assert!(
                v != &OwnedValue::Unset,
                "{}: column {} is unset; set every column so its kind is checked",
                row.schema().path,
                spec.name
            );
        }
    }

    log_row! {
        struct SampleRow<'a> => SAMPLE_SCHEMA("sample") {
            ts: Time,
            id: ConnId<'a>,
            kind: Enum,
            upper as "UPPER": Option<u64>,
            names: Vector<'a, String>,
        }
    }

    #[test]
    fn schema_comes_from_the_row_declaration() {
        let fields: Vec<(&str, &str)> = SAMPLE_SCHEMA
            .fields
            .iter()
            .map(|f| (f.name, f.ty))
            .collect();
        assert_eq!(SAMPLE_SCHEMA.path, "sample");
        assert_eq!(
            fields,
            [
                ("ts", "time"),
                ("uid", "string"),
                ("id.orig_h", "addr"),
                ("id.orig_p", "port"),
                ("id.resp_h", "addr"),
                ("id.resp_p", "port"),
                ("kind", "enum"),
                ("UPPER", "count"),
                ("names", "vector[string]"),
            ]
        );
    }

    #[test]
    fn row_values_follow_the_schema() {
        let names = ["a".to_string(), "b".to_string()];
        let row = SampleRow {
            ts: Time(1.5),
            id: ConnId {
                uid: "Cx",
                orig_h: "10.0.0.1".parse().expect("addr"),
                orig_p: 1,
                resp_h: "10.0.0.2".parse().expect("addr"),
                resp_p: 2,
            },
            kind: Enum("udp"),
            upper: Some(7),
            names: Vector(&names),
        };
        assert_fully_set_row_matches_schema(&row);
        let values = checked_values(&row);
        assert_eq!(values[1], OwnedValue::Str("Cx".into()));
        assert_eq!(values[7], OwnedValue::Count(7));
        assert_eq!(
            values[8],
            OwnedValue::Vector(vec![
                OwnedValue::Str("a".into()),
                OwnedValue::Str("b".into())
            ])
        );
        let unset = SampleRow { upper: None, ..row };
        assert_eq!(checked_values(&unset)[7], OwnedValue::Unset);
        assert_eq!(checked_values(&unset).len(), SAMPLE_SCHEMA.fields.len());
    }

    #[test]
    fn a_kind_outside_its_zeek_type_is_caught() {
        assert!(!fits(&OwnedValue::Count(1), "string"));
        assert!(!fits(
            &OwnedValue::Vector(vec![OwnedValue::Count(1)]),
            "vector[string]"
        ));
        assert!(fits(
            &OwnedValue::Set(vec![OwnedValue::Enum("x".into())]),
            "set[enum]"
        ));
    }
}
