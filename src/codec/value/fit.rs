//! What the schema encoders share: numbers, text and bytes read out of jq values, the values
//! decoders make of floats, bytes and decimals, and how errors name what a value is.

use std::rc::Rc;

use base64::Engine as _;
use bytes::Bytes;
use jaq_json::{Num, Val};
use num_bigint::BigInt;

use super::error::FitError;

/// What `val` is, for errors.
pub fn kind(val: &Val) -> &'static str {
    match val {
        Val::Null => "null",
        Val::Bool(_) => "a boolean",
        Val::Num(_) => "a number",
        Val::TStr(_) => "a string",
        Val::BStr(_) => "a byte string",
        Val::Arr(_) => "an array",
        Val::Obj(_) => "an object",
    }
}

/// An integral number (or the text of one, as JSON mappings write 64-bit integers).
pub fn integer(val: &Val) -> Result<i128, FitError> {
    let text = match val {
        Val::Num(Num::Int(i)) => return Ok(*i as i128),
        Val::Num(Num::BigInt(i)) => i.to_string(),
        Val::Num(Num::Float(f)) if f.fract() == 0.0 && f.abs() < 1e38 => return Ok(*f as i128),
        Val::Num(Num::Float(f)) => return Err(FitError::NotInteger(f.to_string())),
        Val::Num(Num::Dec(d)) => d.to_string(),
        Val::TStr(s) => utf8(s)?,
        other => return Err(misplaced(other, "an integer belongs")),
    };
    if let Ok(i) = text.parse::<i128>() {
        return Ok(i);
    }
    match text.parse::<f64>() {
        Ok(f) if f.fract() == 0.0 && f.abs() < 1e38 => Ok(f as i128),
        _ => Err(FitError::NotInteger(text)),
    }
}

/// `val` where `wanted` belongs.
pub fn misplaced(val: &Val, wanted: &'static str) -> FitError {
    FitError::Misplaced {
        found: kind(val),
        wanted,
    }
}

/// An integer that fits `T`, else an error naming its range.
pub fn ranged<T: TryFrom<i128>>(val: &Val, name: &'static str) -> Result<T, FitError> {
    let i = integer(val)?;
    T::try_from(i).map_err(|_| FitError::Range {
        value: i,
        range: name,
    })
}

/// A 32-bit signed integer.
pub fn int(val: &Val) -> Result<i32, FitError> {
    ranged(val, "an int (32 bits)")
}

/// A 64-bit signed integer.
pub fn long(val: &Val) -> Result<i64, FitError> {
    ranged(val, "a long (64 bits)")
}

/// A number, or the text `NaN`, `Infinity`, `-Infinity`.
pub fn float(val: &Val) -> Result<f64, FitError> {
    match val {
        Val::Num(Num::Int(i)) => Ok(*i as f64),
        Val::Num(Num::Float(f)) => Ok(*f),
        Val::Num(n) => n
            .to_string()
            .parse()
            .map_err(|_| FitError::NotNumber(n.to_string())),
        Val::TStr(s) => match &s[..] {
            b"NaN" => Ok(f64::NAN),
            b"Infinity" => Ok(f64::INFINITY),
            b"-Infinity" => Ok(f64::NEG_INFINITY),
            _ => Err(misplaced(val, "a number belongs")),
        },
        other => Err(misplaced(other, "a number belongs")),
    }
}

/// Text as a `String`, refusing invalid UTF-8.
pub fn utf8(s: &Bytes) -> Result<String, FitError> {
    String::from_utf8(s.to_vec()).map_err(|_| FitError::NotUtf8)
}

/// An object key.
pub fn key(k: &Val) -> Result<String, FitError> {
    match k {
        Val::TStr(s) => utf8(s),
        other => Err(FitError::Key(kind(other))),
    }
}

/// Bytes: a byte string as it is, or base64 text (standard or URL-safe, padded or not).
pub fn bytes(val: &Val) -> Result<Vec<u8>, FitError> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    match val {
        Val::BStr(b) => Ok(b.to_vec()),
        Val::TStr(s) => {
            let trimmed = s.strip_suffix(b"==").or_else(|| s.strip_suffix(b"="));
            let s = trimmed.unwrap_or(s);
            STANDARD_NO_PAD
                .decode(s)
                .or_else(|_| URL_SAFE_NO_PAD.decode(s))
                .map_err(|_| FitError::NotBase64)
        }
        other => Err(misplaced(other, "bytes (base64 text) belong")),
    }
}

/// A float as a number, or the text Avro's and Protobuf's JSON encodings use when it has no
/// JSON number.
pub fn float_val(f: f64) -> Val {
    if f.is_nan() {
        Val::utf8_str("NaN")
    } else if f == f64::INFINITY {
        Val::utf8_str("Infinity")
    } else if f == f64::NEG_INFINITY {
        Val::utf8_str("-Infinity")
    } else {
        Val::Num(Num::Float(f))
    }
}

/// Bytes as base64 text.
pub fn base64_val(b: &[u8]) -> Val {
    Val::utf8_str(
        base64::engine::general_purpose::STANDARD
            .encode(b)
            .into_bytes(),
    )
}

/// An unscaled decimal and its scale as an exact number (`12345`, 2: `123.45`).
pub fn decimal_val(unscaled: &BigInt, scale: usize) -> Val {
    let digits = unscaled.magnitude().to_string();
    let mut text = String::with_capacity(digits.len() + scale + 3);
    if unscaled.sign() == num_bigint::Sign::Minus {
        text.push('-');
    }
    if scale == 0 {
        text.push_str(&digits);
    } else if digits.len() > scale {
        let (int, frac) = digits.split_at(digits.len() - scale);
        text.push_str(int);
        text.push('.');
        text.push_str(frac);
    } else {
        text.push_str("0.");
        text.extend(std::iter::repeat_n('0', scale - digits.len()));
        text.push_str(&digits);
    }
    Val::Num(Num::Dec(Rc::new(text)))
}

/// A number's decimal text (also from a string holding one).
pub fn decimal_text(val: &Val) -> Result<String, FitError> {
    match val {
        Val::Num(Num::Float(f)) if !f.is_finite() => Err(FitError::NonFiniteDecimal(f.to_string())),
        Val::Num(Num::Float(f)) => Ok(ryu::Buffer::new().format_finite(*f).to_string()),
        Val::Num(n) => Ok(n.to_string()),
        Val::TStr(s) => utf8(s),
        other => Err(misplaced(other, "a decimal belongs")),
    }
}

/// A decimal number as its unscaled integer at `scale`, with at most `precision` digits.
pub fn unscaled(val: &Val, scale: usize, precision: usize) -> Result<BigInt, FitError> {
    let text = decimal_text(val)?;
    let bad = || FitError::NotDecimal(text.clone());
    let (mantissa, exponent) = match text.find(['e', 'E']) {
        Some(i) => (&text[..i], text[i + 1..].parse::<i64>().map_err(|_| bad())?),
        None => (&text[..], 0),
    };
    let (negative, mantissa) = match mantissa.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, mantissa.strip_prefix('+').unwrap_or(mantissa)),
    };
    let (int, frac) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    if int.is_empty() && frac.is_empty()
        || !int.bytes().chain(frac.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    // The digits, and how many of them are after the point once the exponent is applied.
    let mut digits = format!("{int}{frac}");
    let mut fraction = frac.len() as i64 - exponent;
    if fraction < 0 {
        digits.extend(std::iter::repeat_n('0', (-fraction) as usize));
        fraction = 0;
    }
    let fraction = fraction as usize;
    if fraction > scale {
        let cut = digits.len() - (fraction - scale);
        if digits[cut..].bytes().any(|b| b != b'0') {
            return Err(FitError::Places {
                text: text.clone(),
                scale,
            });
        }
        digits.truncate(cut);
    } else {
        digits.extend(std::iter::repeat_n('0', scale - fraction));
    }
    let significant = digits.trim_start_matches('0').len();
    if significant > precision {
        return Err(FitError::Digits {
            text: text.clone(),
            precision,
            scale,
        });
    }
    let magnitude: BigInt = if significant == 0 {
        BigInt::from(0)
    } else {
        digits.trim_start_matches('0').parse().map_err(|_| bad())?
    };
    Ok(if negative { -magnitude } else { magnitude })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dec(s: &str) -> Val {
        Val::Num(Num::Dec(Rc::new(s.to_string())))
    }

    #[test]
    fn decimals_scale_exactly_or_are_refused() {
        let cases: &[(&str, usize, usize, Result<i64, &str>)] = &[
            ("123.45", 2, 9, Ok(12345)),
            ("-0.5", 2, 9, Ok(-50)),
            ("7", 3, 9, Ok(7000)),
            ("1.2e2", 1, 9, Ok(1200)),
            ("1e-2", 2, 9, Ok(1)),
            ("0.10", 1, 9, Ok(1)),
            ("0.15", 1, 9, Err("has more than 1 decimal places")),
            ("12345.6", 1, 5, Err("has more than 5 digits")),
            ("1.2.3", 1, 9, Err("is not a decimal number")),
        ];
        for (text, scale, precision, want) in cases {
            let got = unscaled(&dec(text), *scale, *precision);
            match want {
                Ok(n) => assert_eq!(got, Ok(BigInt::from(*n)), "{text}"),
                Err(part) => assert!(
                    got.as_ref().is_err_and(|e| e.to_string().contains(part)),
                    "{text}: {got:?}"
                ),
            }
        }
    }

    #[test]
    fn decimal_values_print_their_scale() {
        let text = |n: i64, scale| match decimal_val(&BigInt::from(n), scale) {
            Val::Num(Num::Dec(d)) => d.to_string(),
            other => panic!("{other:?}"),
        };
        assert_eq!(text(12345, 2), "123.45");
        assert_eq!(text(-5, 3), "-0.005");
        assert_eq!(text(42, 0), "42");
        assert_eq!(text(0, 2), "0.00");
    }

    #[test]
    fn bytes_come_from_base64_or_byte_strings() {
        assert_eq!(bytes(&Val::utf8_str("AAE=")), Ok(vec![0, 1]));
        assert_eq!(bytes(&Val::utf8_str("AAE")), Ok(vec![0, 1]));
        assert_eq!(bytes(&Val::utf8_str("-_8")), Ok(vec![0xfb, 0xff]));
        assert_eq!(bytes(&Val::byte_str(vec![9u8])), Ok(vec![9]));
        assert!(bytes(&Val::utf8_str("not base64!")).is_err());
    }

    #[test]
    fn integers_come_from_numbers_and_their_text() {
        assert_eq!(
            long(&Val::utf8_str("-9007199254740993")),
            Ok(-9007199254740993)
        );
        assert_eq!(int(&Val::Num(Num::Float(3.0))), Ok(3));
        assert!(
            int(&Val::Num(Num::Int(1 << 40)))
                .is_err_and(|e| e.to_string().contains("does not fit"))
        );
        assert!(long(&Val::Num(Num::Float(1.5))).is_err());
    }
}
