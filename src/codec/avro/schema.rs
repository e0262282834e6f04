//! A parsed Avro schema: bodies read with it (straight into jq values when [`Direct`] can,
//! else through apache-avro's values) and values written with it.

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema};
use bytes::Bytes;
use jaq_json::Val;

use super::direct::Direct;
use super::error::AvroError;
use super::to_avro::Fit;
use super::to_val::ToVal;

/// A parsed Avro schema, with the schemas it references and its named types.
#[derive(Debug)]
pub struct AvroSchema {
    schema: Schema,
    references: Vec<Schema>,
    named: HashMap<Name, Schema>,
    /// The schema compiled for reading bodies straight into jq values, when it can be.
    pub(super) direct: Option<Direct>,
}

impl AvroSchema {
    /// Parses the schema `text`, which may name types of the `references` (schema texts).
    pub fn parse(text: &str, references: &[&str]) -> Result<AvroSchema, AvroError> {
        let texts = references;
        let (schema, references) = if references.is_empty() {
            (Schema::parse_str(text), Vec::new())
        } else {
            match Schema::parse_str_with_list(text, references) {
                Ok((schema, refs)) => (Ok(schema), refs),
                Err(e) => (Err(e), Vec::new()),
            }
        };
        let schema = schema.map_err(|e| AvroError::Schema(e.to_string()))?;
        let mut named = HashMap::new();
        for s in references.iter().chain([&schema]) {
            collect_named(s, &mut named);
        }
        let direct = Direct::build(text, texts, &schema, &named);
        Ok(AvroSchema {
            schema,
            references,
            named,
            direct,
        })
    }

    /// The schema as the registry and other tools compare it (Parsing Canonical Form).
    pub fn canonical(&self) -> String {
        self.schema.canonical_form()
    }

    /// Which fields of the top-level record [`AvroSchema::read`] builds when a program reads
    /// only `fields`: None when it builds them all.
    pub fn wanted(&self, fields: &[Val]) -> Option<Vec<bool>> {
        self.direct.as_ref()?.wanted(fields)
    }

    /// Reads `body`, which lies within `payload`, as [`AvroSchema::decode`] does, but building
    /// of the top-level record only the fields `wanted` marks (from [`AvroSchema::wanted`]),
    /// and with strings sharing the payload's memory, when there is no reader schema.
    pub fn read(
        &self,
        payload: &Bytes,
        body: &[u8],
        reader: Option<&AvroSchema>,
        wanted: Option<&[bool]>,
    ) -> Result<Val, AvroError> {
        if let (Some(direct), None) = (&self.direct, reader)
            && let Some(val) = direct.read(payload, body, wanted)
        {
            return Ok(val);
        }
        self.decode(body, reader)
    }

    /// Decodes one datum written with this schema, read as `reader` when given (schema
    /// evolution: fields the reader adds get their defaults, fields it lacks are skipped).
    pub fn decode(&self, body: &[u8], reader: Option<&AvroSchema>) -> Result<Val, AvroError> {
        let mut input = Exhausted {
            rest: body,
            hit_end: false,
        };
        let value = if self.references.is_empty() && reader.is_none_or(|r| r.references.is_empty())
        {
            apache_avro::from_avro_datum(&self.schema, &mut input, reader.map(|r| &r.schema))
        } else {
            apache_avro::from_avro_datum_reader_schemata(
                &self.schema,
                self.references.iter().collect(),
                &mut input,
                reader.map(|r| &r.schema),
                reader.map_or_else(Vec::new, |r| r.references.iter().collect()),
            )
        }
        .map_err(|e| AvroError::Mismatch(e.to_string()))?;
        // apache-avro reads a string, boolean or union index cut off by the end of the body as
        // null; a whole body is never read past its end.
        if input.hit_end {
            return Err(AvroError::Truncated(body.len()));
        }
        if !input.rest.is_empty() {
            return Err(AvroError::LeftOver(input.rest.len()));
        }
        let shape = reader.unwrap_or(self);
        let to_val = ToVal {
            named: &shape.named,
        };
        Ok(to_val.val(value, &shape.schema))
    }

    /// Encodes `val` with this schema, appending to `out`. A value that does not fit is
    /// refused with the path of the field that does not.
    pub fn encode(&self, val: &Val, out: &mut Vec<u8>) -> Result<(), AvroError> {
        let mut path = String::new();
        let fit = Fit { named: &self.named };
        let value = fit.fit(val, &self.schema, &mut path).map_err(|e| {
            if path.is_empty() {
                e
            } else {
                AvroError::Field {
                    path,
                    source: Box::new(e),
                }
            }
        })?;
        let bytes = if self.references.is_empty() {
            apache_avro::to_avro_datum(&self.schema, value)
        } else {
            apache_avro::to_avro_datum_schemata(
                &self.schema,
                self.references.iter().collect(),
                value,
            )
        }
        .map_err(|e| AvroError::Datum(e.to_string()))?;
        out.extend_from_slice(&bytes);
        Ok(())
    }
}

/// A body being decoded, noting whether the decoder asked for more than it holds.
struct Exhausted<'a> {
    rest: &'a [u8],
    hit_end: bool,
}

impl std::io::Read for Exhausted<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if !buf.is_empty() && self.rest.is_empty() {
            self.hit_end = true;
        }
        self.rest.read(buf)
    }
}

fn collect_named(schema: &Schema, named: &mut HashMap<Name, Schema>) {
    match schema {
        Schema::Record(r) => {
            named.insert(r.name.clone(), schema.clone());
            for f in &r.fields {
                collect_named(&f.schema, named);
            }
        }
        Schema::Enum(e) => {
            named.insert(e.name.clone(), schema.clone());
        }
        Schema::Fixed(f) => {
            named.insert(f.name.clone(), schema.clone());
        }
        Schema::Decimal(d) => collect_named(&d.inner, named),
        Schema::Array(a) => collect_named(&a.items, named),
        Schema::Map(m) => collect_named(&m.types, named),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_named(v, named);
            }
        }
        _ => {}
    }
}
