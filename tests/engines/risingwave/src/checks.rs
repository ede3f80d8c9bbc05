//! The checks: each calls fletch through RisingWave's client and compares what comes back with what RisingWave
//! (and the UDF's documented behaviour) expects.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Field, Schema};
use arrow_udf_runtime::remote::{Client, Error as UdfError};
use futures_util::StreamExt;

use crate::cols::{Col, describe_call, input_batch, no_column_batch};

/// What one check called, expected and got; `failure` is None when it passed.
pub struct Verdict {
    pub called: String,
    pub expected: String,
    pub got: String,
    pub failure: Option<String>,
}

pub type CheckFuture = Pin<Box<dyn Future<Output = Verdict> + Send>>;

pub struct Checks {
    client: Arc<Client>,
    pub list: Vec<(String, CheckFuture)>,
}

impl Checks {
    fn add<F, Fut>(&mut self, name: impl Into<String>, f: F)
    where
        F: FnOnce(Arc<Client>) -> Fut,
        Fut: Future<Output = Verdict> + Send + 'static,
    {
        self.list.push((name.into(), Box::pin(f(self.client.clone()))));
    }
}

/// Every UDF the checks call; the runner waits until the server lists them all.
pub const FUNCTIONS: &[&str] = &[
    "add_int64",
    "div_int64",
    "coalesce_int64",
    "echo_int64",
    "echo_utf8",
    "upper",
    "pi",
    "gcd",
    "py_coalesce",
    "py_upper",
    "py_add",
    "py_echo_utf8",
    "parse_raise",
    "parse_null",
    "parse_error_column",
    "parse_null_opt",
    "parse_error_column_opt",
    "series",
    "split_words",
    "series_raise",
    "labelled_series",
];

const LARGE_ROWS: usize = 300_000;

/// The gRPC status code of a failed call, wherever the client put the status.
fn code_of(e: &UdfError) -> Option<tonic::Code> {
    use arrow_udf_runtime::remote::arrow_flight::error::FlightError;
    match e {
        UdfError::Tonic(s) => Some(s.code()),
        UdfError::Flight(FlightError::Tonic(s)) => Some(s.code()),
        _ => None,
    }
}

fn show_err(e: &UdfError) -> String {
    let mut text = e.to_string().replace('\n', " | ");
    if let Some(code) = code_of(e) {
        text = format!("[gRPC {code:?}] {text}");
    }
    if text.contains("declared as non-nullable but contains null values") {
        format!(
            "{text}  [hint: fletch declared this output field non-nullable; arrow-rs, which RisingWave's client \
             decodes with, refuses a null in such a field]"
        )
    } else {
        text
    }
}

fn describe_batch(batch: &RecordBatch) -> String {
    let parts: Vec<String> = batch
        .schema()
        .fields()
        .iter()
        .zip(batch.columns())
        .map(|(f, a)| {
            let nullable = if f.is_nullable() { "" } else { " (declared not null)" };
            let values = Col::from_array(a.as_ref()).map(|c| c.describe()).unwrap_or_else(|e| e);
            format!("{:?}{nullable}: {values}", f.name())
        })
        .collect();
    format!("{} rows, columns {}", batch.num_rows(), parts.join("; "))
}

fn call_batch(args: &[Col], rows: usize) -> RecordBatch {
    if args.is_empty() { no_column_batch(rows) } else { input_batch(args) }
}

// ------------------------------------------------------------------------------------------------------------
// Scalar calls
// ------------------------------------------------------------------------------------------------------------

/// The error column a scalar call should come back with.
pub enum ErrorCol {
    /// One column only, as RisingWave expects when no row failed.
    Absent,
    /// A second utf8 column; per row, None for NULL or a text the message must contain.
    Present(Vec<Option<&'static str>>),
}

/// RisingWave's checks on a scalar answer (src/expr/core/src/expr/expr_udf.rs): the row count, at least one
/// column, the first column's type, and an optional second column that must be utf8.
fn engine_scalar_checks(out: &RecordBatch, rows: usize, ret: &DataType) -> Result<(), String> {
    if out.num_rows() != rows {
        return Err(format!("UDF returned {} rows, but expected {rows}", out.num_rows()));
    }
    let Some(first) = out.columns().first() else { return Err("UDF returned no columns".into()) };
    if !first.data_type().equals_datatype(ret) {
        return Err(format!("UDF returned {}, but expected {ret}", first.data_type()));
    }
    if let Some(errors) = out.columns().get(1)
        && errors.data_type() != &DataType::Utf8
    {
        return Err(format!("UDF returned errors column with invalid type: {}", errors.data_type()));
    }
    if out.num_columns() > 2 {
        return Err(format!("{} columns; RisingWave reads a value and at most an error column", out.num_columns()));
    }
    Ok(())
}

pub async fn scalar(
    client: &Client,
    name: &str,
    args: Vec<Col>,
    rows: usize,
    expected: Col,
    errors: ErrorCol,
) -> Verdict {
    let rows = if args.is_empty() { rows } else { args[0].len() };
    let called = describe_call("Client::call", name, &args, rows);
    let mut expected_text = format!("{name} {}", expected.describe());
    match &errors {
        ErrorCol::Absent => expected_text.push_str(", and no error column"),
        ErrorCol::Present(e) => {
            let cells: Vec<String> =
                e.iter().map(|c| c.map_or("NULL".to_owned(), |s| format!("a message containing {s:?}"))).collect();
            expected_text.push_str(&format!(", and an error column utf8 [{}]", cells.join(", ")));
        }
    }
    let input = call_batch(&args, rows);
    let out = match client.call(name, &input).await {
        Ok(out) => out,
        Err(e) => {
            let got = format!("error: {}", show_err(&e));
            return Verdict { called, expected: expected_text, got, failure: Some("the call failed".into()) };
        }
    };
    let got = describe_batch(&out);
    let failure = (|| {
        engine_scalar_checks(&out, rows, &expected.data_type())?;
        let value = Col::from_array(out.column(0).as_ref())?;
        if let Some(d) = Col::diff(&expected, &value) {
            return Err(format!("values: {d}"));
        }
        match (&errors, out.num_columns()) {
            (ErrorCol::Absent, 1) => {}
            (ErrorCol::Absent, _) => {
                return Err("an error column came back although no row failed (RisingWave's strict mode panics on \
                            an all-NULL error column)"
                    .into());
            }
            (ErrorCol::Present(_), 1) => return Err("no error column came back".into()),
            (ErrorCol::Present(want), _) => {
                let Col::Str(msgs) = Col::from_array(out.column(1).as_ref())? else { unreachable!("checked utf8") };
                for (row, (w, m)) in want.iter().zip(&msgs).enumerate() {
                    match (w, m) {
                        (None, None) => {}
                        (Some(w), Some(m)) if m.contains(w) => {}
                        _ => return Err(format!("error column row {row}: expected {w:?}, got {m:?}")),
                    }
                }
            }
        }
        Ok(())
    })()
    .err();
    Verdict { called, expected: expected_text, got, failure }
}

/// A call that must fail with an error (not a panic, not a batch) whose text contains each of `needles`.
pub async fn scalar_fails(client: &Client, name: &str, args: Vec<Col>, code: tonic::Code, needles: &[&str]) -> Verdict {
    let rows = args.first().map_or(0, Col::len);
    let called = describe_call("Client::call", name, &args, rows);
    let expected = format!("a gRPC {code:?} error whose message contains {needles:?}");
    match client.call(name, &input_batch(&args)).await {
        Ok(out) => Verdict { called, expected, got: describe_batch(&out), failure: Some("the call succeeded".into()) },
        Err(e) => {
            let text = show_err(&e);
            let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
            let failure = if code_of(&e) != Some(code) {
                Some(format!("status {:?}, not {code:?}", code_of(&e)))
            } else {
                (!missing.is_empty()).then(|| format!("the message lacks {missing:?}"))
            };
            Verdict { called, expected, got: format!("error: {text}"), failure }
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Table functions
// ------------------------------------------------------------------------------------------------------------

/// RisingWave's checks on each batch of a table function (src/expr/core/src/table_function/user_defined.rs):
/// exactly two columns, the first a non-negative int32 index into the input batch, the second of the return type.
fn engine_table_checks(b: &RecordBatch, input_rows: usize, ret: &DataType) -> Result<(), String> {
    if b.num_columns() != 2 {
        return Err(format!("a batch of {} columns; RisingWave expects exactly 2 (row index, value)", b.num_columns()));
    }
    let Col::I32(rows) = Col::from_array(b.column(0).as_ref())? else {
        return Err(format!("row index column of type {}, expected int32", b.column(0).data_type()));
    };
    if let Some(bad) = rows.iter().find(|r| !matches!(r, Some(i) if *i >= 0 && (*i as usize) < input_rows)) {
        return Err(format!("row index {bad:?} is not an index into the {input_rows}-row input"));
    }
    if !b.column(1).data_type().equals_datatype(ret) {
        return Err(format!("value column of type {}, expected {ret}", b.column(1).data_type()));
    }
    Ok(())
}

pub async fn table(
    client: &Client,
    name: &str,
    args: Vec<Col>,
    want_rows: Vec<i32>,
    want_values: Col,
    min_batches: usize,
) -> Verdict {
    let input_rows = args[0].len();
    let called = describe_call("Client::call_table_function", name, &args, input_rows);
    let want_rows = Col::I32(want_rows.into_iter().map(Some).collect());
    let mut expected = format!("row {}, {name} {}", want_rows.describe(), want_values.describe());
    if min_batches > 1 {
        expected.push_str(&format!(", in at least {min_batches} batches"));
    }
    let mut stream = match client.call_table_function(name, &input_batch(&args)).await {
        Ok(s) => s,
        Err(e) => {
            let got = format!("error: {}", show_err(&e));
            return Verdict { called, expected, got, failure: Some("the call failed".into()) };
        }
    };
    let mut sizes = vec![];
    let mut got_rows: Vec<Option<i32>> = vec![];
    let mut got_values: Option<Col> = None;
    let mut failure = None;
    while let Some(next) = stream.next().await {
        let batch = match next {
            Ok(b) => b,
            Err(e) => {
                failure = Some(format!("batch {} of the stream was an error: {}", sizes.len(), show_err(&e)));
                break;
            }
        };
        sizes.push(batch.num_rows());
        if let Err(e) = engine_table_checks(&batch, input_rows, &want_values.data_type()) {
            failure = Some(format!("batch {}: {e} ({})", sizes.len() - 1, describe_batch(&batch)));
            break;
        }
        let Col::I32(r) = Col::from_array(batch.column(0).as_ref()).expect("checked") else { unreachable!() };
        got_rows.extend(r);
        let v = Col::from_array(batch.column(1).as_ref()).expect("checked");
        got_values = Some(match (got_values, v) {
            (None, v) => v,
            (Some(Col::I64(mut a)), Col::I64(b)) => {
                a.extend(b);
                Col::I64(a)
            }
            (Some(Col::Str(mut a)), Col::Str(b)) => {
                a.extend(b);
                Col::Str(a)
            }
            (Some(a), _) => a,
        });
    }
    let shown_sizes = if sizes.len() > 8 {
        format!(
            "[{}, ... {} more]",
            sizes[..6].iter().map(ToString::to_string).collect::<Vec<_>>().join(", "),
            sizes.len() - 6
        )
    } else {
        format!("{sizes:?}")
    };
    let got_rows = Col::I32(got_rows);
    let got_values = got_values.unwrap_or_else(|| match &want_values {
        Col::Str(_) => Col::Str(vec![]),
        _ => Col::I64(vec![]),
    });
    let got = format!(
        "{} batch(es) of {shown_sizes} rows: row {}, {name} {}",
        sizes.len(),
        got_rows.describe(),
        got_values.describe()
    );
    let failure = failure.or_else(|| {
        if let Some(d) = Col::diff(&want_rows, &got_rows) {
            Some(format!("row index column: {d}"))
        } else if let Some(d) = Col::diff(&want_values, &got_values) {
            Some(format!("values: {d}"))
        } else if sizes.len() < min_batches {
            Some(format!("{} batch(es), fewer than {min_batches}", sizes.len()))
        } else {
            None
        }
    });
    Verdict { called, expected, got, failure }
}

/// `RETURNS TABLE (x bigint, label varchar)`: RisingWave reads a table function of several columns as one struct
/// column after the row index (src/frontend binds it so; user_defined.rs requires exactly 2 columns).
async fn table_struct(client: &Client) -> Verdict {
    let name = "labelled_series";
    let args = vec![Col::i64s(&[Some(2), Some(0), Some(1)])];
    let called = describe_call("Client::call_table_function", name, &args, 3);
    let st = DataType::Struct(
        vec![Field::new("x", DataType::Int64, true), Field::new("label", DataType::Utf8, true)].into(),
    );
    let want_rows = Col::I32(vec![Some(0), Some(0), Some(2)]);
    let want_x = Col::i64s(&[Some(0), Some(1), Some(0)]);
    let want_label = Col::strs(&[Some("#0"), Some("#1"), Some("#0")]);
    let expected = format!(
        "row {}, then one struct<x int64, label utf8> column: x {}, label {}",
        want_rows.describe(),
        want_x.describe(),
        want_label.describe()
    );
    let mut stream = match client.call_table_function(name, &input_batch(&args)).await {
        Ok(s) => s,
        Err(e) => {
            return Verdict {
                called,
                expected,
                got: format!("error: {}", show_err(&e)),
                failure: Some("the call failed".into()),
            };
        }
    };
    let (mut rows, mut xs, mut labels, mut got) = (vec![], vec![], vec![], vec![]);
    while let Some(next) = stream.next().await {
        let b = match next {
            Ok(b) => b,
            Err(e) => {
                return Verdict {
                    called,
                    expected,
                    got: format!("error: {}", show_err(&e)),
                    failure: Some("the stream failed".into()),
                };
            }
        };
        got.push(describe_batch(&b));
        if let Err(e) = engine_table_checks(&b, 3, &st) {
            return Verdict { called, expected, got: got.join(" / "), failure: Some(e) };
        }
        let Col::I32(r) = Col::from_array(b.column(0).as_ref()).expect("checked") else { unreachable!() };
        rows.extend(r);
        use arrow_array::cast::AsArray;
        let s = b.column(1).as_struct();
        let (Ok(Col::I64(x)), Ok(Col::Str(l))) =
            (Col::from_array(s.column(0).as_ref()), Col::from_array(s.column(1).as_ref()))
        else {
            return Verdict {
                called,
                expected,
                got: got.join(" / "),
                failure: Some("unexpected struct children".into()),
            };
        };
        xs.extend(x);
        labels.extend(l);
    }
    let (rows, xs, labels) = (Col::I32(rows), Col::I64(xs), Col::Str(labels));
    let failure = Col::diff(&want_rows, &rows)
        .map(|d| format!("row index: {d}"))
        .or_else(|| Col::diff(&want_x, &xs).map(|d| format!("x: {d}")))
        .or_else(|| Col::diff(&want_label, &labels).map(|d| format!("label: {d}")));
    Verdict { called, expected, got: got.join(" / "), failure }
}

/// A table function call whose stream must end in an error (not a panic, not a silently short stream).
pub async fn table_fails(client: &Client, name: &str, args: Vec<Col>, needles: &[&str]) -> Verdict {
    let called = describe_call("Client::call_table_function", name, &args, args[0].len());
    let expected = format!("an error (at the call or in the stream) whose message contains {needles:?}");
    let mut rows = 0;
    let error = match client.call_table_function(name, &input_batch(&args)).await {
        Err(e) => Some(show_err(&e)),
        Ok(mut s) => {
            let mut error = None;
            while let Some(next) = s.next().await {
                match next {
                    Ok(b) => rows += b.num_rows(),
                    Err(e) => {
                        error = Some(show_err(&e));
                        break;
                    }
                }
            }
            error
        }
    };
    match error {
        None => Verdict {
            called,
            expected,
            got: format!("a clean stream of {rows} rows"),
            failure: Some("no error".into()),
        },
        Some(text) => {
            let missing: Vec<&&str> = needles.iter().filter(|n| !text.contains(**n)).collect();
            let failure = (!missing.is_empty()).then(|| format!("the message lacks {missing:?}"));
            Verdict { called, expected, got: format!("{rows} rows, then error: {text}"), failure }
        }
    }
}

// ------------------------------------------------------------------------------------------------------------
// Discovery
// ------------------------------------------------------------------------------------------------------------

/// RisingWave's `data_types_match` (src/expr/impl/src/udf/external.rs): same number of fields, and
/// `equals_datatype` per field (names and top-level nullability ignored).
fn data_types_match(a: &Schema, b: &Schema) -> bool {
    a.fields().len() == b.fields().len()
        && a.fields().iter().zip(b.fields()).all(|(a, b)| a.data_type().equals_datatype(b.data_type()))
}

/// What `CREATE FUNCTION name(sql_args) RETURNS [TABLE (x)] ret AS name USING LINK ...` checks: `Client::get`
/// (GetFlightInfo), then the arguments and returns against the schemas RisingWave builds from the SQL types.
pub async fn signature(
    client: &Client,
    sql: &str,
    name: &str,
    args: &[DataType],
    ret: DataType,
    table: bool,
    should_match: bool,
) -> Verdict {
    let called = format!("Client::get(\"{name}\") for `{sql}`");
    let want_args = Schema::new(args.iter().map(|t| Field::new("", t.clone(), true)).collect::<Vec<_>>());
    let want_returns = Schema::new(if table {
        vec![Field::new("row", DataType::Int32, true), Field::new("", ret, true)]
    } else {
        vec![Field::new("", ret, true)]
    });
    let types = |s: &Schema| s.fields().iter().map(|f| f.data_type().to_string()).collect::<Vec<_>>();
    let expected = if should_match {
        format!(
            "arguments {:?} and returns {:?} (RisingWave's data_types_match)",
            types(&want_args),
            types(&want_returns)
        )
    } else {
        "a signature RisingWave refuses with \"type mismatch\"".to_owned()
    };
    let f = match client.get(name).await {
        Ok(f) => f,
        Err(e) => {
            let got = format!("error: {}", show_err(&e));
            return Verdict { called, expected, got, failure: Some("GetFlightInfo failed".into()) };
        }
    };
    let got = format!("name {:?}, arguments {:?}, returns {:?}", f.name, types(&f.args), types(&f.returns));
    let verdict = if f.name != name {
        Some(format!("the FlightInfo's descriptor names {:?}", f.name))
    } else if !data_types_match(&f.args, &want_args) {
        Some("argument type mismatch".to_owned())
    } else if !data_types_match(&f.returns, &want_returns) {
        Some("return type mismatch".to_owned())
    } else {
        None
    };
    let failure = match (should_match, verdict) {
        (true, v) => v,
        (false, Some(_)) => None,
        (false, None) => Some("RisingWave would accept this signature".into()),
    };
    Verdict { called, expected, got, failure }
}

// ------------------------------------------------------------------------------------------------------------
// The list
// ------------------------------------------------------------------------------------------------------------

fn strict2(a: &[Option<i64>], b: &[Option<i64>], f: impl Fn(i64, i64) -> i64) -> Col {
    Col::I64(a.iter().zip(b).map(|(x, y)| Some(f((*x)?, (*y)?))).collect())
}

fn strict1_str(s: &[Option<String>], f: impl Fn(&str) -> String) -> Col {
    Col::Str(s.iter().map(|x| x.as_deref().map(&f)).collect())
}

fn gcd(mut a: i64, mut b: i64) -> i64 {
    (a, b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// Where the NULLs go: the name and, per row, whether the row is NULL (for the first and second argument).
fn null_patterns(n: usize) -> Vec<(&'static str, Vec<bool>, Vec<bool>)> {
    let none = vec![false; n];
    let mut first = none.clone();
    first[0] = true;
    let mut last = none.clone();
    last[n - 1] = true;
    let mut middle_a = none.clone();
    middle_a[1] = true;
    let mut middle_b = none.clone();
    middle_b[n - 2] = true;
    vec![
        ("null-first-row", first, none.clone()),
        ("null-last-row", none.clone(), last),
        ("null-every-row", vec![true; n], vec![true; n]),
        ("null-no-row", none.clone(), none.clone()),
        ("null-middle-rows", middle_a, middle_b),
        ("zero-rows", vec![], vec![]),
    ]
}

fn masked<T: Clone>(values: &[T], nulls: &[bool]) -> Vec<Option<T>> {
    nulls.iter().zip(values).map(|(n, v)| (!n).then(|| v.clone())).collect()
}

pub fn all(client: Arc<Client>) -> Checks {
    let mut c = Checks { client, list: vec![] };
    use DataType::{Float64, Int32, Int64, Utf8};

    // -- handshake and discovery ------------------------------------------------------------------------------
    c.add("discovery/protocol_version", |cl| async move {
        let v = cl.protocol_version();
        Verdict {
            called: "Client::new: DoAction(\"protocol_version\"), body[0]".into(),
            expected: "2 (1 would mean the action failed and RisingWave fell back to the legacy types)".into(),
            got: v.to_string(),
            failure: (v != 2).then(|| "wrong protocol version".into()),
        }
    });
    c.add("discovery/list", |cl| async move {
        let called = "Client::list() (ListFlights; each FlightInfo split at total_records)".to_owned();
        let expected = format!("every function the checks use: {FUNCTIONS:?}");
        match cl.list().await {
            Err(e) => {
                Verdict { called, expected, got: format!("error: {}", show_err(&e)), failure: Some("failed".into()) }
            }
            Ok(fs) => {
                let names: Vec<&str> = fs.iter().map(|f| f.name.as_str()).collect();
                let missing: Vec<&&str> = FUNCTIONS.iter().filter(|n| !names.contains(n)).collect();
                Verdict {
                    called,
                    expected,
                    got: format!("{} functions: {names:?}", names.len()),
                    failure: (!missing.is_empty()).then(|| format!("missing {missing:?}")),
                }
            }
        }
    });
    let sigs: Vec<(&str, &str, Vec<DataType>, DataType, bool)> = vec![
        ("CREATE FUNCTION add_int64(bigint, bigint) RETURNS bigint", "add_int64", vec![Int64, Int64], Int64, false),
        ("CREATE FUNCTION div_int64(bigint, bigint) RETURNS bigint", "div_int64", vec![Int64, Int64], Int64, false),
        (
            "CREATE FUNCTION coalesce_int64(bigint, bigint) RETURNS bigint",
            "coalesce_int64",
            vec![Int64, Int64],
            Int64,
            false,
        ),
        ("CREATE FUNCTION echo_int64(bigint) RETURNS bigint", "echo_int64", vec![Int64], Int64, false),
        ("CREATE FUNCTION echo_utf8(varchar) RETURNS varchar", "echo_utf8", vec![Utf8], Utf8, false),
        ("CREATE FUNCTION upper(varchar) RETURNS varchar", "upper", vec![Utf8], Utf8, false),
        ("CREATE FUNCTION pi() RETURNS double precision", "pi", vec![], Float64, false),
        ("CREATE FUNCTION gcd(bigint, bigint) RETURNS bigint", "gcd", vec![Int64, Int64], Int64, false),
        ("CREATE FUNCTION py_coalesce(bigint, bigint) RETURNS bigint", "py_coalesce", vec![Int64, Int64], Int64, false),
        ("CREATE FUNCTION py_upper(varchar) RETURNS varchar", "py_upper", vec![Utf8], Utf8, false),
        ("CREATE FUNCTION py_add(bigint, bigint) RETURNS bigint", "py_add", vec![Int64, Int64], Int64, false),
        ("CREATE FUNCTION py_echo_utf8(varchar) RETURNS varchar", "py_echo_utf8", vec![Utf8], Utf8, false),
        ("CREATE FUNCTION parse_raise(varchar) RETURNS bigint", "parse_raise", vec![Utf8], Int64, false),
        ("CREATE FUNCTION parse_null(varchar) RETURNS bigint", "parse_null", vec![Utf8], Int64, false),
        ("CREATE FUNCTION parse_error_column(varchar) RETURNS bigint", "parse_error_column", vec![Utf8], Int64, false),
        ("CREATE FUNCTION parse_null_opt(varchar) RETURNS bigint", "parse_null_opt", vec![Utf8], Int64, false),
        (
            "CREATE FUNCTION parse_error_column_opt(varchar) RETURNS bigint",
            "parse_error_column_opt",
            vec![Utf8],
            Int64,
            false,
        ),
        ("CREATE FUNCTION series(bigint) RETURNS TABLE (x bigint)", "series", vec![Int64], Int64, true),
        ("CREATE FUNCTION split_words(varchar) RETURNS TABLE (x varchar)", "split_words", vec![Utf8], Utf8, true),
        ("CREATE FUNCTION series_raise(bigint) RETURNS TABLE (x bigint)", "series_raise", vec![Int64], Int64, true),
    ];
    for (sql, name, args, ret, table) in sigs {
        c.add(format!("signature/{name}"), move |cl| async move {
            signature(&cl, sql, name, &args, ret, table, true).await
        });
    }
    c.add("signature/labelled_series-multi-column-table", |cl| async move {
        let st = DataType::Struct(vec![Field::new("x", Int64, true), Field::new("label", Utf8, true)].into());
        signature(
            &cl,
            "CREATE FUNCTION labelled_series(bigint) RETURNS TABLE (x bigint, label varchar)",
            "labelled_series",
            &[Int64],
            st,
            true,
            true,
        )
        .await
    });
    c.add("signature/gcd-declared-int-is-refused", |cl| async move {
        signature(&cl, "CREATE FUNCTION gcd(int, int) RETURNS int", "gcd", &[Int32, Int32], Int32, false, false).await
    });
    c.add("signature/series-declared-scalar-is-refused", |cl| async move {
        signature(&cl, "CREATE FUNCTION series(bigint) RETURNS bigint", "series", &[Int64], Int64, false, false).await
    });
    c.add("signature/unknown-function", |cl| async move {
        let called = "Client::get(\"no_such_function\")".to_owned();
        let expected = "an error naming the function (NOT_FOUND)".to_owned();
        match cl.get("no_such_function").await {
            Ok(f) => Verdict { called, expected, got: format!("{f:?}"), failure: Some("it was found".into()) },
            Err(e) => {
                let text = show_err(&e);
                let failure = (!(text.contains("no_such_function") && code_of(&e) == Some(tonic::Code::NotFound)))
                    .then(|| "the error is not NOT_FOUND naming the function".into());
                Verdict { called, expected, got: format!("error: {text}"), failure }
            }
        }
    });

    // -- scalar calls with NULLs everywhere --------------------------------------------------------------------
    let a_base = [12i64, 6, 10, 7, 100];
    let b_base = [3i64, 4, 15, 21, 75];
    type Binary = (&'static str, &'static str, fn(&[Option<i64>], &[Option<i64>]) -> Col);
    let binaries: Vec<Binary> = vec![
        ("go", "add_int64", |a, b| strict2(a, b, |x, y| x + y)),
        ("go", "div_int64", |a, b| strict2(a, b, |x, y| x / y)),
        ("go", "coalesce_int64", |a, b| Col::I64(a.iter().zip(b).map(|(x, y)| x.or(*y)).collect())),
        ("python", "gcd", |a, b| strict2(a, b, gcd)),
        ("python", "py_add", |a, b| strict2(a, b, |x, y| x + y)),
        ("python", "py_coalesce", |a, b| Col::I64(a.iter().zip(b).map(|(x, y)| x.or(*y)).collect())),
    ];
    for (lang, name, reference) in binaries {
        for (pattern, na, nb) in null_patterns(a_base.len()) {
            let (a, b) = (masked(&a_base[..na.len()], &na), masked(&b_base[..nb.len()], &nb));
            let expected = reference(&a, &b);
            c.add(format!("scalar/{lang}/{name}/{pattern}"), move |cl| async move {
                scalar(&cl, name, vec![Col::I64(a), Col::I64(b)], 0, expected, ErrorCol::Absent).await
            });
        }
    }
    let ints = [5i64, -1, 0, i64::MAX, i64::MIN];
    let words: Vec<String> = ["hello", "Wörld", "", "mixed Case 42", "héllo"].iter().map(|s| s.to_string()).collect();
    type Unary = (&'static str, &'static str, bool);
    let unaries: Vec<Unary> = vec![
        ("go", "echo_int64", false),
        ("go", "upper", true),
        ("go", "echo_utf8", true),
        ("python", "py_upper", true),
        ("python", "py_echo_utf8", true),
    ];
    for (lang, name, is_str) in unaries {
        for (pattern, na, nb) in null_patterns(ints.len()) {
            // One argument: the NULLs of both masks.
            let nulls: Vec<bool> = na.iter().zip(&nb).map(|(a, b)| *a || *b).collect();
            let (arg, expected) = if is_str {
                let s = masked(&words[..nulls.len()], &nulls);
                let exp =
                    if name.contains("upper") { strict1_str(&s, |x| x.to_uppercase()) } else { Col::Str(s.clone()) };
                (Col::Str(s), exp)
            } else {
                let v = masked(&ints[..nulls.len()], &nulls);
                (Col::I64(v.clone()), Col::I64(v))
            };
            c.add(format!("scalar/{lang}/{name}/{pattern}"), move |cl| async move {
                scalar(&cl, name, vec![arg], 0, expected, ErrorCol::Absent).await
            });
        }
    }
    for rows in [1usize, 5, 0] {
        c.add(format!("scalar/go/pi/{rows}-rows"), move |cl| async move {
            scalar(&cl, "pi", vec![], rows, Col::F64(vec![Some(std::f64::consts::PI); rows]), ErrorCol::Absent).await
        });
    }

    // -- error policies ----------------------------------------------------------------------------------------
    c.add("errors/raise/python", |cl| async move {
        scalar_fails(
            &cl,
            "parse_raise",
            vec![Col::strs(&[Some("1"), Some("x"), Some("3")])],
            tonic::Code::Unknown,
            &["parse_raise", "row 1", "ValueError", "invalid literal"],
        )
        .await
    });
    c.add("errors/raise/go-division-by-zero", |cl| async move {
        scalar_fails(
            &cl,
            "div_int64",
            vec![Col::i64s(&[Some(1), Some(2)]), Col::i64s(&[Some(1), Some(0)])],
            tonic::Code::Unknown,
            &["div_int64", "row 1", "division by zero"],
        )
        .await
    });
    c.add("errors/raise/client-still-works-after", |cl| async move {
        let _ = cl.call("parse_raise", &input_batch(&[Col::strs(&[Some("x")])])).await;
        let mut v = scalar(
            &cl,
            "parse_raise",
            vec![Col::strs(&[Some("41"), Some("0"), Some("-7")])],
            0,
            Col::i64s(&[Some(41), Some(0), Some(-7)]),
            ErrorCol::Absent,
        )
        .await;
        v.called = format!("Client::call(\"parse_raise\", utf8 [\"x\"]) (fails), then on the same Client {}", v.called);
        v
    });
    c.add("errors/raise/unknown-function", |cl| async move {
        scalar_fails(
            &cl,
            "no_such_function",
            vec![Col::i64s(&[Some(1)])],
            tonic::Code::NotFound,
            &["no_such_function", "not found"],
        )
        .await
    });
    c.add("errors/raise/wrong-argument-type", |cl| async move {
        scalar_fails(
            &cl,
            "add_int64",
            vec![Col::strs(&[Some("1")]), Col::i64s(&[Some(2)])],
            tonic::Code::InvalidArgument,
            &["add_int64", "expected int64, got utf8"],
        )
        .await
    });
    c.add("errors/null/one-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_null",
            vec![Col::strs(&[Some("1"), Some("x"), None, Some("4")])],
            0,
            Col::i64s(&[Some(1), None, None, Some(4)]),
            ErrorCol::Absent,
        )
        .await
    });
    c.add("errors/null/no-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_null",
            vec![Col::strs(&[Some("1"), Some("2")])],
            0,
            Col::i64s(&[Some(1), Some(2)]),
            ErrorCol::Absent,
        )
        .await
    });
    c.add("errors/error_column/one-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_error_column",
            vec![Col::strs(&[Some("1"), Some("x"), Some("3")])],
            0,
            Col::i64s(&[Some(1), None, Some(3)]),
            ErrorCol::Present(vec![None, Some("ValueError: invalid literal for int() with base 10: 'x'"), None]),
        )
        .await
    });
    c.add("errors/error_column/every-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_error_column",
            vec![Col::strs(&[Some("a"), Some("b")])],
            0,
            Col::i64s(&[None, None]),
            ErrorCol::Present(vec![Some("'a'"), Some("'b'")]),
        )
        .await
    });
    c.add("errors/error_column/no-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_error_column",
            vec![Col::strs(&[Some("1"), Some("2")])],
            0,
            Col::i64s(&[Some(1), Some(2)]),
            ErrorCol::Absent,
        )
        .await
    });
    c.add("errors/error_column/null-argument-is-no-failure", |cl| async move {
        scalar(
            &cl,
            "parse_error_column",
            vec![Col::strs(&[Some("1"), None])],
            0,
            Col::i64s(&[Some(1), None]),
            ErrorCol::Absent,
        )
        .await
    });

    c.add("errors/null/optional-result/one-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_null_opt",
            vec![Col::strs(&[Some("1"), Some("x"), None, Some("4")])],
            0,
            Col::i64s(&[Some(1), None, None, Some(4)]),
            ErrorCol::Absent,
        )
        .await
    });
    c.add("errors/error_column/optional-result/one-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_error_column_opt",
            vec![Col::strs(&[Some("1"), Some("x"), None])],
            0,
            Col::i64s(&[Some(1), None, None]),
            ErrorCol::Present(vec![None, Some("ValueError: invalid literal for int() with base 10: 'x'"), None]),
        )
        .await
    });
    c.add("errors/error_column/optional-result/no-row-fails", |cl| async move {
        scalar(
            &cl,
            "parse_error_column_opt",
            vec![Col::strs(&[Some("1"), None])],
            0,
            Col::i64s(&[Some(1), None]),
            ErrorCol::Absent,
        )
        .await
    });
    // One RisingWave batch of 300,000 rows (3 MB) that arrow-rs's encoder sends as two IPC batches: the error
    // column belongs to the one batch RisingWave sent, wherever the failing row falls.
    for (label, bad_row) in [("first-half", 0usize), ("second-half", LARGE_ROWS - 1)] {
        c.add(
            format!("errors/error_column/optional-result/input-split-by-encoder/failure-in-{label}"),
            move |cl| async move {
                let mut text: Vec<Option<String>> = (0..LARGE_ROWS).map(|i| Some((i % 1000).to_string())).collect();
                text[bad_row] = Some("bad".into());
                let values = Col::I64(text.iter().map(|t| t.as_deref().and_then(|t| t.parse().ok())).collect());
                let mut errors = vec![None; LARGE_ROWS];
                errors[bad_row] = Some("'bad'");
                let mut v =
                    scalar(&cl, "parse_error_column_opt", vec![Col::Str(text)], 0, values, ErrorCol::Present(errors))
                        .await;
                v.expected = format!(
                    "row {bad_row} NULL and an error column holding its message, NULL elsewhere ({} rows)",
                    LARGE_ROWS
                );
                v
            },
        );
    }

    // -- table functions ---------------------------------------------------------------------------------------
    c.add("table/series/several-none-and-null", |cl| async move {
        table(
            &cl,
            "series",
            vec![Col::i64s(&[Some(3), Some(0), None, Some(2), Some(1)])],
            vec![0, 0, 0, 3, 3, 4],
            Col::i64s(&[Some(0), Some(1), Some(2), Some(0), Some(1), Some(0)]),
            1,
        )
        .await
    });
    c.add("table/series/no-output-at-all", |cl| async move {
        table(&cl, "series", vec![Col::i64s(&[Some(0), None])], vec![], Col::I64(vec![]), 0).await
    });
    c.add("table/split_words/strings", |cl| async move {
        table(
            &cl,
            "split_words",
            vec![Col::strs(&[Some("hello big world"), Some(""), None, Some("again")])],
            vec![0, 0, 0, 3],
            Col::strs(&[Some("hello"), Some("big"), Some("world"), Some("again")]),
            1,
        )
        .await
    });
    c.add("table/series/more-than-1024-rows", |cl| async move {
        let ns = [1500i64, 1, 0, 700, 1024];
        let (mut rows, mut vals) = (vec![], vec![]);
        for (i, n) in ns.iter().enumerate() {
            for k in 0..*n {
                rows.push(i as i32);
                vals.push(Some(k));
            }
        }
        table(&cl, "series", vec![Col::I64(ns.iter().map(|n| Some(*n)).collect())], rows, Col::I64(vals), 3).await
    });
    c.add("table/labelled_series/multi-column-as-struct", |cl| async move { table_struct(&cl).await });
    c.add("table/series_raise/error-in-stream", |cl| async move {
        table_fails(
            &cl,
            "series_raise",
            vec![Col::i64s(&[Some(2), Some(-1), Some(3)])],
            &["series_raise", "ValueError", "negative count -1"],
        )
        .await
    });

    // -- one 300,000-row batch -------------------------------------------------------------------------------------
    let seq: Vec<Option<i64>> = (0..LARGE_ROWS as i64).map(Some).collect();
    let texts: Vec<Option<String>> = (0..LARGE_ROWS).map(|i| Some(format!("row-{i}-abc"))).collect();
    {
        let seq = seq.clone();
        c.add("large/go/echo_int64", move |cl| async move {
            scalar(&cl, "echo_int64", vec![Col::I64(seq.clone())], 0, Col::I64(seq), ErrorCol::Absent).await
        });
    }
    {
        let texts = texts.clone();
        c.add("large/go/upper", move |cl| async move {
            let exp = strict1_str(&texts, |s| s.to_uppercase());
            scalar(&cl, "upper", vec![Col::Str(texts)], 0, exp, ErrorCol::Absent).await
        });
    }
    {
        let seq = seq.clone();
        c.add("large/python/py_add", move |cl| async move {
            let b: Vec<Option<i64>> = seq.iter().map(|x| x.map(|v| 2 * v)).collect();
            let exp = Col::I64(seq.iter().map(|x| x.map(|v| 3 * v)).collect());
            scalar(&cl, "py_add", vec![Col::I64(seq), Col::I64(b)], 0, exp, ErrorCol::Absent).await
        });
    }
    {
        let texts = texts.clone();
        c.add("large/python/py_upper", move |cl| async move {
            let exp = strict1_str(&texts, |s| s.to_uppercase());
            scalar(&cl, "py_upper", vec![Col::Str(texts)], 0, exp, ErrorCol::Absent).await
        });
    }
    c.add("large/python/series-row-index-across-split-input", |cl| async move {
        // 2.4 MB of int64: arrow-rs's encoder splits it into two IPC batches; the row index must still count
        // from the start of the one batch RisingWave sent.
        let ones = Col::I64(vec![Some(1); LARGE_ROWS]);
        let rows: Vec<i32> = (0..LARGE_ROWS as i32).collect();
        table(&cl, "series", vec![ones], rows, Col::I64(vec![Some(0); LARGE_ROWS]), 2).await
    });

    // -- 16 concurrent calls on one client -------------------------------------------------------------------------
    c.add("concurrency/16-tasks-one-client", |cl| async move { concurrent(cl, 16).await });
    c
}

/// `tasks` tokio tasks sharing one Client, each with its own function and input, every answer checked.
async fn concurrent(client: Arc<Client>, tasks: usize) -> Verdict {
    let names = ["add_int64", "py_add", "gcd", "upper", "series"];
    let mut handles = vec![];
    for i in 0..tasks {
        let cl = client.clone();
        handles.push(tokio::spawn(async move {
            let n = 4000 + 37 * i;
            let k: Vec<i64> = (0..n as i64).collect();
            let v = match i % names.len() {
                0 | 1 => {
                    let a: Vec<Option<i64>> = k.iter().map(|x| Some(x + 1000 * i as i64)).collect();
                    let b: Vec<Option<i64>> = k.iter().map(|x| Some(*x)).collect();
                    let exp = strict2(&a, &b, |x, y| x + y);
                    scalar(&cl, names[i % names.len()], vec![Col::I64(a), Col::I64(b)], 0, exp, ErrorCol::Absent).await
                }
                2 => {
                    let a: Vec<Option<i64>> = k.iter().map(|x| Some(6 * x + i as i64)).collect();
                    let b: Vec<Option<i64>> = k.iter().map(|x| Some(4 * x + 2)).collect();
                    let exp = strict2(&a, &b, gcd);
                    scalar(&cl, "gcd", vec![Col::I64(a), Col::I64(b)], 0, exp, ErrorCol::Absent).await
                }
                3 => {
                    let s: Vec<Option<String>> = k.iter().map(|x| Some(format!("task{i}-row{x}"))).collect();
                    let exp = strict1_str(&s, |x| x.to_uppercase());
                    scalar(&cl, "upper", vec![Col::Str(s)], 0, exp, ErrorCol::Absent).await
                }
                _ => {
                    let ns: Vec<i64> = k.iter().map(|x| (x + i as i64) % 4).collect();
                    let (mut rows, mut vals) = (vec![], vec![]);
                    for (r, n) in ns.iter().enumerate() {
                        for j in 0..*n {
                            rows.push(r as i32);
                            vals.push(Some(j));
                        }
                    }
                    table(&cl, "series", vec![Col::I64(ns.into_iter().map(Some).collect())], rows, Col::I64(vals), 1)
                        .await
                }
            };
            (i, v)
        }));
    }
    let mut bad = vec![];
    let mut ok = 0;
    for h in handles {
        match h.await {
            Ok((_, v)) if v.failure.is_none() => ok += 1,
            Ok((i, v)) => bad.push(format!("task {i}: {} -> {} ({})", v.called, v.got, v.failure.unwrap_or_default())),
            Err(e) => bad.push(format!("a task panicked: {e}")),
        }
    }
    Verdict {
        called: format!(
            "{tasks} tokio tasks at once on one Arc<Client>: Client::call of add_int64, py_add, gcd, upper and Client::call_table_function of series, 4000-4555 rows each"
        ),
        expected: format!("{tasks} right answers"),
        got: if bad.is_empty() { format!("{ok} right answers") } else { format!("{ok} right; {}", bad.join(" || ")) },
        failure: (!bad.is_empty()).then(|| format!("{} task(s) wrong", bad.len())),
    }
}
