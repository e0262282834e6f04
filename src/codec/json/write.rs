//! jq values written as strict JSON, escaped as serde_json escapes.

use jaq_json::{Num, Val};

use super::error::JsonError;

/// Deepest nesting written; deeper values come only from transforms and are refused.
pub const MAX_DEPTH: usize = 256;

/// Writes strict JSON: non-finite numbers, byte strings and non-string keys are errors.
pub fn write_json(val: &Val, out: &mut Vec<u8>, depth: usize) -> Result<(), JsonError> {
    if depth > MAX_DEPTH {
        return Err(JsonError::NotJson("nested deeper than 256 levels"));
    }
    match val {
        Val::Null => out.extend_from_slice(b"null"),
        Val::Bool(true) => out.extend_from_slice(b"true"),
        Val::Bool(false) => out.extend_from_slice(b"false"),
        Val::Num(n) => write_num(n, out)?,
        Val::TStr(s) => write_str(s, out),
        Val::BStr(_) => return Err(JsonError::NotJson("byte string")),
        Val::Arr(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write_json(item, out, depth + 1)?;
            }
            out.push(b']');
        }
        Val::Obj(map) => {
            out.push(b'{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                match k {
                    Val::TStr(s) => write_str(s, out),
                    _ => return Err(JsonError::NotJson("object key that is not a string")),
                }
                out.push(b':');
                write_json(v, out, depth + 1)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

fn write_num(n: &Num, out: &mut Vec<u8>) -> Result<(), JsonError> {
    use std::io::Write as _;
    match n {
        Num::Float(f) if !f.is_finite() => {
            return Err(JsonError::NotJson("NaN or infinite number"));
        }
        Num::Float(f) => out.extend_from_slice(ryu::Buffer::new().format_finite(*f).as_bytes()),
        Num::Dec(d) if d.parse::<f64>().is_ok_and(|f| f.is_finite()) => {
            out.extend_from_slice(d.as_bytes())
        }
        Num::Dec(_) => return Err(JsonError::NotJson("NaN or infinite number")),
        Num::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
        other => {
            let _ = write!(out, "{other}");
        }
    }
    Ok(())
}

fn write_str(s: &[u8], out: &mut Vec<u8>) {
    match std::str::from_utf8(s) {
        Ok(s) => escape_into(s, out),
        Err(_) => escape_into(&String::from_utf8_lossy(s), out),
    }
}

/// Writes `s` as a JSON string, escaped as serde_json escapes: `"`, `\\` and the control
/// characters, short forms where JSON has them. Runs needing no escape are copied at once.
pub(crate) fn escape_into(s: &str, out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = s.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            b'"' => b'"',
            b'\\' => b'\\',
            b'\n' => b'n',
            b'\r' => b'r',
            b'\t' => b't',
            0x08 => b'b',
            0x0c => b'f',
            0x00..=0x1f => 0,
            _ => continue,
        };
        out.extend_from_slice(&bytes[start..i]);
        start = i + 1;
        if short == 0 {
            out.extend_from_slice(b"\\u00");
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0xf)]);
        } else {
            out.push(b'\\');
            out.push(short);
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}
