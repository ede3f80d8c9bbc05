//! Columns as plain Rust values: built into Arrow arrays for input, read back from output, compared and printed.

use std::fmt::Write as _;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{Float64Type, Int32Type, Int64Type};
use arrow_array::{
    Array, ArrayRef, Float64Array, Int32Array, Int64Array, RecordBatch, RecordBatchOptions, StringArray,
};
use arrow_schema::{DataType, Field, Schema};

/// One column; `None` is SQL NULL.
#[derive(Clone, Debug, PartialEq)]
pub enum Col {
    I32(Vec<Option<i32>>),
    I64(Vec<Option<i64>>),
    F64(Vec<Option<f64>>),
    Str(Vec<Option<String>>),
}

impl Col {
    pub fn i64s(values: &[Option<i64>]) -> Col {
        Col::I64(values.to_vec())
    }

    pub fn strs(values: &[Option<&str>]) -> Col {
        Col::Str(values.iter().map(|v| v.map(str::to_owned)).collect())
    }

    pub fn len(&self) -> usize {
        match self {
            Col::I32(v) => v.len(),
            Col::I64(v) => v.len(),
            Col::F64(v) => v.len(),
            Col::Str(v) => v.len(),
        }
    }

    pub fn data_type(&self) -> DataType {
        match self {
            Col::I32(_) => DataType::Int32,
            Col::I64(_) => DataType::Int64,
            Col::F64(_) => DataType::Float64,
            Col::Str(_) => DataType::Utf8,
        }
    }

    pub fn to_array(&self) -> ArrayRef {
        match self {
            Col::I32(v) => Arc::new(Int32Array::from(v.clone())),
            Col::I64(v) => Arc::new(Int64Array::from(v.clone())),
            Col::F64(v) => Arc::new(Float64Array::from(v.clone())),
            Col::Str(v) => Arc::new(v.iter().map(|s| s.as_deref()).collect::<StringArray>()),
        }
    }

    /// Reads an output column of one of the types above.
    pub fn from_array(array: &dyn Array) -> Result<Col, String> {
        Ok(match array.data_type() {
            DataType::Int32 => Col::I32(array.as_primitive::<Int32Type>().iter().collect()),
            DataType::Int64 => Col::I64(array.as_primitive::<Int64Type>().iter().collect()),
            DataType::Float64 => Col::F64(array.as_primitive::<Float64Type>().iter().collect()),
            DataType::Utf8 => Col::Str(array.as_string::<i32>().iter().map(|s| s.map(str::to_owned)).collect()),
            other => {
                return Err(format!("a column of type {other} (this test reads only int32, int64, float64, utf8)"));
            }
        })
    }

    fn cell(&self, i: usize) -> String {
        fn show<T: std::fmt::Debug>(v: &Option<T>) -> String {
            match v {
                None => "NULL".to_owned(),
                Some(x) => format!("{x:?}"),
            }
        }
        match self {
            Col::I32(v) => show(&v[i]),
            Col::I64(v) => show(&v[i]),
            Col::F64(v) => show(&v[i]),
            Col::Str(v) => show(&v[i]),
        }
    }

    /// `int64 [1, NULL, 3]`; long columns show their ends and their length.
    pub fn describe(&self) -> String {
        let n = self.len();
        let mut out = format!("{} [", self.data_type());
        let cells: Vec<String> = if n <= 12 {
            (0..n).map(|i| self.cell(i)).collect()
        } else {
            let mut c: Vec<String> = (0..4).map(|i| self.cell(i)).collect();
            c.push("...".to_owned());
            c.extend((n - 3..n).map(|i| self.cell(i)));
            c
        };
        out.push_str(&cells.join(", "));
        out.push(']');
        if n > 12 {
            let _ = write!(out, " ({n} rows)");
        }
        out
    }

    /// None when equal; else where and how they differ.
    pub fn diff(expected: &Col, got: &Col) -> Option<String> {
        if expected.data_type() != got.data_type() {
            return Some(format!("type {} instead of {}", got.data_type(), expected.data_type()));
        }
        if expected.len() != got.len() {
            return Some(format!("{} rows instead of {}", got.len(), expected.len()));
        }
        let bad: Vec<usize> = (0..expected.len()).filter(|&i| expected.cell(i) != got.cell(i)).collect();
        let first = *bad.first()?;
        Some(format!(
            "{} row(s) differ, the first is row {first}: expected {}, got {}",
            bad.len(),
            expected.cell(first),
            got.cell(first)
        ))
    }
}

/// An input batch as RisingWave builds it: fields named "" and nullable (`to_arrow_field("", ty)`).
pub fn input_batch(args: &[Col]) -> RecordBatch {
    let fields: Vec<Field> = args.iter().map(|c| Field::new("", c.data_type(), true)).collect();
    let arrays: Vec<ArrayRef> = args.iter().map(Col::to_array).collect();
    RecordBatch::try_new(Arc::new(Schema::new(fields)), arrays).expect("valid input batch")
}

/// A zero-argument call: RisingWave sends a batch of no columns whose row count is the chunk's.
pub fn no_column_batch(rows: usize) -> RecordBatch {
    RecordBatch::try_new_with_options(
        Arc::new(Schema::empty()),
        vec![],
        &RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .expect("valid zero-column batch")
}

/// How a call's arguments read in a report: `upper(utf8 ["a", NULL])`.
pub fn describe_call(api: &str, name: &str, args: &[Col], rows: usize) -> String {
    if args.is_empty() {
        return format!("{api}(\"{name}\", <0 columns, {rows} rows>)");
    }
    let parts: Vec<String> = args.iter().map(Col::describe).collect();
    format!("{api}(\"{name}\", {})", parts.join(", "))
}
