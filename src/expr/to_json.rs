//! `to_json(struct)`: one JSON object per row, null fields left out (Spark's default
//! `ignoreNullFields=true`), a null struct gives null.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch, StringBuilder};
use arrow::datatypes::{DataType, Schema};
use arrow::json::LineDelimitedWriter;
use datafusion::common::{exec_err, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// The `to_json` scalar function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ToJson {
    signature: Signature,
}

impl ToJson {
    /// A new `to_json`.
    pub fn new() -> Self {
        ToJson {
            signature: Signature::any(1, Volatility::Immutable),
        }
    }
}

impl Default for ToJson {
    fn default() -> Self {
        Self::new()
    }
}

fn struct_to_json(array: &ArrayRef) -> DfResult<ArrayRef> {
    let DataType::Struct(fields) = array.data_type() else {
        return exec_err!("to_json() takes a struct column, got {}", array.data_type());
    };
    let structs = array.as_struct();
    let batch = RecordBatch::try_new(
        Arc::new(Schema::new(fields.clone())),
        structs.columns().to_vec(),
    )?;
    let mut buffer = Vec::new();
    {
        let mut writer = LineDelimitedWriter::new(&mut buffer);
        writer.write(&batch)?;
        writer.finish()?;
    }
    let text = String::from_utf8_lossy(&buffer);
    let mut out = StringBuilder::new();
    for (row, line) in text.lines().enumerate() {
        if structs.is_null(row) {
            out.append_null();
        } else {
            out.append_value(line);
        }
    }
    Ok(Arc::new(out.finish()))
}

impl ScalarUDFImpl for ToJson {
    fn name(&self) -> &str {
        "to_json"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _args: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let [value] = args.args.as_slice() else {
            return exec_err!("to_json() takes one column");
        };
        let array = value.clone().into_array(args.number_rows)?;
        Ok(ColumnarValue::Array(struct_to_json(&array)?))
    }
}
