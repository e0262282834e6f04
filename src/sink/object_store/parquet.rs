//! Parquet objects: the columns declared in the pipeline file, each event decoded into them by
//! arrow's JSON decoder, and an event that does not fit them (a wrong type, a required field
//! missing, not a JSON object) left out with the decoder's reason.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::basic::{GzipLevel, ZstdLevel};
use parquet::file::properties::WriterProperties;
use serde::Deserialize;

use super::Compression;
use crate::config::Validator;

/// One column of a Parquet object: the event's field of the same name.
#[derive(Debug, Clone, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Column {
    /// The field's name in the event, and the column's.
    pub name: String,
    /// `boolean`, `int8` to `int64`, `uint8` to `uint64`, `float32`, `float64`, `string`,
    /// `date` (`"2026-11-29"`), `timestamp` (microseconds, UTC; RFC 3339 text or a number of
    /// microseconds), `timestamp_ms` (milliseconds), `decimal(P,S)`, `struct` (with `fields`),
    /// `list<T>` of any of these.
    #[serde(rename = "type")]
    pub kind: String,
    /// Every event must have it, not null: an event without it is dead-lettered.
    #[serde(default)]
    pub required: bool,
    /// The columns of a `struct` (or of a `list<struct>`).
    #[serde(default)]
    pub fields: Vec<Column>,
}

const SCALARS: &[(&str, DataType)] = &[
    ("boolean", DataType::Boolean),
    ("int8", DataType::Int8),
    ("int16", DataType::Int16),
    ("int32", DataType::Int32),
    ("int64", DataType::Int64),
    ("uint8", DataType::UInt8),
    ("uint16", DataType::UInt16),
    ("uint32", DataType::UInt32),
    ("uint64", DataType::UInt64),
    ("float32", DataType::Float32),
    ("float64", DataType::Float64),
    ("string", DataType::Utf8),
    ("date", DataType::Date32),
];

/// The arrow schema of `columns`, every mistake in them reported under `at` (the `schema` key).
pub fn schema(columns: &[Column], at: &str, v: &mut Validator<'_>) -> Option<SchemaRef> {
    if columns.is_empty() {
        v.error_at(at, "a parquet object needs at least one column");
        return None;
    }
    fields(columns, at, v).map(|f| Arc::new(Schema::new(f)))
}

fn fields(columns: &[Column], at: &str, v: &mut Validator<'_>) -> Option<Fields> {
    let mut fields = Vec::with_capacity(columns.len());
    let mut ok = true;
    for (i, column) in columns.iter().enumerate() {
        let at = format!("{at}.{i}");
        if columns[..i].iter().any(|c| c.name == column.name) {
            v.error_at(
                &format!("{at}.name"),
                format!("{:?} is declared twice", column.name),
            );
            ok = false;
        }
        match data_type(column, &column.kind, &at, v) {
            Some(t) => fields.push(Field::new(&column.name, t, !column.required)),
            None => ok = false,
        }
    }
    ok.then(|| Fields::from(fields))
}

/// The arrow type `kind` names for `column` (`kind` being its whole type or the item type of a
/// list).
fn data_type(column: &Column, kind: &str, at: &str, v: &mut Validator<'_>) -> Option<DataType> {
    let kind = kind.trim();
    if let Some(item) = kind.strip_prefix("list<").and_then(|k| k.strip_suffix('>')) {
        let item = data_type(column, item, at, v)?;
        return Some(DataType::List(Arc::new(Field::new("item", item, true))));
    }
    if kind == "struct" {
        if column.fields.is_empty() {
            v.error_at(&format!("{at}.type"), "a struct needs `fields`");
            return None;
        }
        return fields(&column.fields, &format!("{at}.fields"), v).map(DataType::Struct);
    }
    if !column.fields.is_empty() {
        v.error_at(&format!("{at}.fields"), "only a struct has fields");
        return None;
    }
    // Times in UTC, by its offset: a zone name would need the time zone database to read.
    let utc = || Some("+00:00".into());
    let known = match kind {
        "timestamp" => Some(DataType::Timestamp(TimeUnit::Microsecond, utc())),
        "timestamp_ms" => Some(DataType::Timestamp(TimeUnit::Millisecond, utc())),
        _ => SCALARS
            .iter()
            .find(|(n, _)| *n == kind)
            .map(|(_, t)| t.clone()),
    };
    if let Some(known) = known {
        return Some(known);
    }
    if let Some(args) = kind
        .strip_prefix("decimal(")
        .and_then(|k| k.strip_suffix(')'))
    {
        let decimal = args.split_once(',').and_then(|(p, s)| {
            let (p, s) = (p.trim().parse::<u8>().ok()?, s.trim().parse::<i8>().ok()?);
            let fits = (1..=38).contains(&p) && (0..=p as i8).contains(&s);
            fits.then_some(DataType::Decimal128(p, s))
        });
        if decimal.is_none() {
            let message = "decimal(P,S) takes a precision P from 1 to 38 and a scale S from 0 to P";
            v.error_at(&format!("{at}.type"), message);
        }
        return decimal;
    }
    let names: Vec<&str> = SCALARS.iter().map(|(n, _)| *n).collect();
    v.error_at(
        &format!("{at}.type"),
        format!(
            "unknown type {kind:?}: one of {}, timestamp, timestamp_ms, decimal(P,S), struct, list<T>",
            names.join(", ")
        ),
    );
    None
}

/// Writes batches of events as Parquet objects of one schema.
#[derive(Debug)]
pub struct Parquet {
    schema: SchemaRef,
    properties: WriterProperties,
}

/// Why no Parquet object can be made of a batch.
#[derive(Debug, thiserror::Error)]
pub enum ParquetEncodeError {
    /// The events that each fit the schema do not fit it together.
    #[error(transparent)]
    Misfit(#[from] Misfit),
    /// Writing the Parquet file failed.
    #[error("writing parquet: {0}")]
    Write(#[from] parquet::errors::ParquetError),
}

/// An object's bytes, and the events left out of it with the reason.
pub struct Encoded {
    /// None when every event was left out.
    pub body: Option<Vec<u8>>,
    /// The indexes of the events left out, and why.
    pub rejected: Vec<(usize, String)>,
}

impl Parquet {
    /// Parquet objects of `schema`, their columns compressed with `compression`.
    pub fn new(schema: SchemaRef, compression: Compression) -> Parquet {
        use parquet::basic::Compression as C;
        let codec = match compression {
            Compression::None => C::UNCOMPRESSED,
            Compression::Snappy => C::SNAPPY,
            Compression::Gzip => C::GZIP(GzipLevel::default()),
            // Level 3, as for NDJSON objects.
            Compression::Zstd => C::ZSTD(ZstdLevel::try_new(3).unwrap_or_default()),
        };
        let properties = WriterProperties::builder()
            .set_compression(codec)
            .set_created_by(concat!("sluice ", env!("CARGO_PKG_VERSION")).to_string())
            .build();
        Parquet { schema, properties }
    }

    /// One Parquet file of the events of `payloads` that fit the schema.
    pub fn encode(&self, payloads: &[Bytes]) -> Result<Encoded, ParquetEncodeError> {
        let (batch, rejected) = match self.decode(payloads.iter()) {
            Ok(batch) => (batch, Vec::new()),
            // Some event does not fit: find which, one at a time, and write the others.
            Err(_) => self.sort_out(payloads)?,
        };
        if batch.num_rows() == 0 {
            return Ok(Encoded {
                body: None,
                rejected,
            });
        }
        let mut writer = ArrowWriter::try_new(
            Vec::with_capacity(batch.get_array_memory_size() / 4),
            self.schema.clone(),
            Some(self.properties.clone()),
        )?;
        writer.write(&batch)?;
        let body = writer.into_inner()?;
        Ok(Encoded {
            body: Some(body),
            rejected,
        })
    }

    /// Why the event `payload` does not fit the schema, naming the column; None when it does.
    pub fn rejects(&self, payload: &Bytes) -> Option<String> {
        let error = match decode(&self.schema, std::iter::once(payload)).err()? {
            Misfit::Shape(reason) => return Some(reason),
            Misfit::Values(reason) => reason,
        };
        if payload.trim_ascii_start().first() != Some(&b'{') {
            return Some(NOT_AN_OBJECT.into());
        }
        // The decoder names no column: find the first that does not decode on its own.
        let alone = |field: Field| {
            decode(
                &Arc::new(Schema::new(vec![field])),
                std::iter::once(payload),
            )
        };
        for field in self.schema.fields() {
            let Err(e) = alone(field.as_ref().clone()) else {
                continue;
            };
            let name = field.name();
            if !field.is_nullable() && alone(field.as_ref().clone().with_nullable(true)).is_ok() {
                return Some(format!("column {name}: required, but missing or null"));
            }
            return Some(format!("column {name}: {}", e.reason()));
        }
        Some(error)
    }

    /// The events that fit, as one batch, and those that do not with the reason.
    #[allow(clippy::type_complexity)]
    fn sort_out(&self, payloads: &[Bytes]) -> Result<(RecordBatch, Vec<(usize, String)>), Misfit> {
        let mut rejected = Vec::new();
        let mut fit = Vec::with_capacity(payloads.len());
        for (i, payload) in payloads.iter().enumerate() {
            match self.rejects(payload) {
                Some(reason) => rejected.push((i, reason)),
                None => fit.push(payload),
            }
        }
        let batch = self.decode(fit.into_iter())?;
        Ok((batch, rejected))
    }

    fn decode<'a>(
        &self,
        payloads: impl ExactSizeIterator<Item = &'a Bytes>,
    ) -> Result<RecordBatch, Misfit> {
        decode(&self.schema, payloads)
    }
}

const NOT_AN_OBJECT: &str = "not one JSON object";

/// Why events do not fit a schema.
#[derive(Debug, thiserror::Error)]
pub enum Misfit {
    /// Not JSON, or not one JSON value per event.
    #[error("{0}")]
    Shape(String),
    /// JSON, but a value is not of its column's type, or a required one is missing.
    #[error("{0}")]
    Values(String),
}

impl Misfit {
    fn reason(self) -> String {
        match self {
            Misfit::Shape(r) | Misfit::Values(r) => r,
        }
    }
}

/// The events of `payloads` as rows of `schema`; an error at the first that does not fit.
fn decode<'a>(
    schema: &SchemaRef,
    payloads: impl ExactSizeIterator<Item = &'a Bytes>,
) -> Result<RecordBatch, Misfit> {
    let rows = payloads.len();
    let mut decoder = arrow_json::ReaderBuilder::new(schema.clone())
        .with_batch_size(rows.max(1))
        .build_decoder()
        .map_err(|e| Misfit::Values(e.to_string()))?;
    for payload in payloads {
        let before = decoder.len();
        let read =
            (decoder.decode(payload)).map_err(|e| Misfit::Shape(format!("not JSON: {e}")))?;
        if read != payload.len() || decoder.has_partial_record() || decoder.len() != before + 1 {
            return Err(Misfit::Shape(NOT_AN_OBJECT.into()));
        }
    }
    match decoder.flush() {
        Ok(Some(batch)) => Ok(batch),
        Ok(None) => Ok(RecordBatch::new_empty(schema.clone())),
        Err(e) => Err(Misfit::Values(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    fn orders() -> Parquet {
        let schema = Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("service", DataType::Utf8, true),
            Field::new("amount", DataType::Decimal128(10, 2), true),
            Field::new(
                "at",
                DataType::Timestamp(TimeUnit::Millisecond, Some("+00:00".into())),
                true,
            ),
        ]);
        Parquet::new(Arc::new(schema), Compression::Zstd)
    }

    #[test]
    fn events_that_fit_become_rows_and_the_others_are_left_out_with_the_reason() {
        let payloads: Vec<Bytes> = [
            r#"{"id":1,"service":"cart","amount":12.5,"at":"2026-11-29T07:00:00.250Z","extra":true}"#,
            r#"{"id":2,"amount":"lots"}"#,
            r#"{"service":"search"}"#,
            r#"{"id":4}{"id":5}"#,
            r#"{"id":"#,
            r#"[6]"#,
            r#"{"id":7,"amount":"3.10","at":1795935600001}"#,
            r#"{"id":}"#,
        ]
        .into_iter()
        .map(|p| Bytes::from_static(p.as_bytes()))
        .collect();
        let encoded = orders().encode(&payloads).unwrap();
        let reasons: Vec<(usize, &str)> = (encoded.rejected.iter())
            .map(|(i, r)| (*i, r.as_str()))
            .collect();
        assert_eq!(
            reasons,
            [
                (
                    1,
                    "column amount: Parser error: Invalid decimal format: \"lots\""
                ),
                (2, "column id: required, but missing or null"),
                (3, "not one JSON object"),
                (4, "not one JSON object"),
                (5, "not one JSON object"),
                (
                    7,
                    "not JSON: Json error: Encountered unexpected '}' whilst parsing value"
                ),
            ]
        );
        let body = Bytes::from(encoded.body.unwrap());
        let reader = ParquetRecordBatchReaderBuilder::try_new(body).unwrap();
        let codec = reader.metadata().row_group(0).column(0).compression();
        assert!(
            matches!(codec, parquet::basic::Compression::ZSTD(_)),
            "{codec}"
        );
        let batches: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        assert_eq!(batches.len(), 1);
        let rows = &batches[0];
        assert_eq!(rows.schema().fields(), orders().schema.fields());
        let ids = rows
            .column(0)
            .as_primitive::<arrow_array::types::Int64Type>();
        assert_eq!(ids.values(), &[1, 7]);
        let services = rows.column(1).as_string::<i32>();
        assert_eq!(services.iter().collect::<Vec<_>>(), [Some("cart"), None]);
        let amounts = rows
            .column(2)
            .as_primitive::<arrow_array::types::Decimal128Type>();
        assert_eq!(amounts.values(), &[1250, 310]);
        let at = rows
            .column(3)
            .as_primitive::<arrow_array::types::TimestampMillisecondType>();
        assert_eq!(at.values(), &[1_795_935_600_250, 1_795_935_600_001]);
    }

    #[test]
    fn nothing_is_written_when_no_event_fits() {
        let encoded = orders().encode(&[Bytes::from_static(b"{}")]).unwrap();
        assert!(encoded.body.is_none());
        assert_eq!(encoded.rejected.len(), 1);
    }
}
