//! Strict JSON reading shared by the signature documents: one object, no duplicated or unknown
//! keys, exact types and encodings; every failure is `MalformedSignature` saying what is wrong.

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::error::{CoreError, Result};

/// Largest signature file we will read; real ones are ~300 bytes.
pub const MAX_SIGNATURE_FILE_BYTES: usize = 64 * 1024;

pub(crate) fn malformed(msg: impl Into<String>) -> CoreError {
    CoreError::MalformedSignature(msg.into())
}

/// All key/value pairs of the top-level object, in order, duplicates kept
/// (a `serde_json::Value` map would silently keep only the last duplicate).
pub(crate) struct Pairs(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Pairs {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Pairs;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<Pairs, A::Error> {
                let mut pairs = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let StrictValue(value) = map.next_value::<StrictValue>()?;
                    pairs.push((key, value));
                }
                Ok(Pairs(pairs))
            }
        }
        d.deserialize_map(V)
    }
}

/// A JSON value whose objects, at any depth, have no duplicated key (`Value` would keep the last).
struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StrictValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_bool<E>(self, v: bool) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::Bool(v)))
            }
            fn visit_i64<E>(self, v: i64) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_u64<E>(self, v: u64) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::from(v)))
            }
            fn visit_f64<E>(self, v: f64) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(
                    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
                ))
            }
            fn visit_str<E>(self, v: &str) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v.to_string())))
            }
            fn visit_string<E>(self, v: String) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::String(v)))
            }
            fn visit_unit<E>(self) -> std::result::Result<StrictValue, E> {
                Ok(StrictValue(Value::Null))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<StrictValue, A::Error> {
                let mut items = Vec::new();
                while let Some(StrictValue(item)) = seq.next_element::<StrictValue>()? {
                    items.push(item);
                }
                Ok(StrictValue(Value::Array(items)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                mut map: A,
            ) -> std::result::Result<StrictValue, A::Error> {
                let mut object = serde_json::Map::new();
                while let Some(key) = map.next_key::<String>()? {
                    let StrictValue(value) = map.next_value::<StrictValue>()?;
                    if object.contains_key(&key) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicated field {}",
                            quoted(&key)
                        )));
                    }
                    object.insert(key, value);
                }
                Ok(StrictValue(Value::Object(object)))
            }
        }
        d.deserialize_any(V)
    }
}

/// Quotes a document-supplied name for an error message, bounded in length.
pub(crate) fn quoted(name: &str) -> String {
    let mut s: String = name.chars().take(64).collect();
    if s.len() < name.len() {
        s.push('…');
    }
    serde_json::to_string(&s).unwrap_or_else(|_| "\"?\"".into())
}

pub(crate) fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn expect_str<'a>(name: &str, v: &'a Value) -> Result<&'a str> {
    v.as_str().ok_or_else(|| {
        malformed(format!(
            "field \"{name}\" must be a JSON string, found {}",
            json_type(v)
        ))
    })
}

pub(crate) fn parse_hex32(name: &str, v: &Value) -> Result<[u8; 32]> {
    let s = expect_str(name, v)?;
    let is_lower_hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
    if s.len() != 64 || !s.bytes().all(is_lower_hex) {
        let detail = if s.bytes().any(|b| b.is_ascii_uppercase()) {
            " (uppercase is not accepted)".to_string()
        } else {
            format!(" (got {} characters)", s.chars().count())
        };
        return Err(malformed(format!(
            "field \"{name}\" must be 64 lowercase hex characters{detail}"
        )));
    }
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out).map_err(|_| {
        malformed(format!(
            "field \"{name}\" must be 64 lowercase hex characters"
        ))
    })?;
    Ok(out)
}

pub(crate) fn parse_signature_b64(v: &Value) -> Result<[u8; 64]> {
    let s = expect_str("signature", v)?;
    let why = if s.contains(['-', '_']) {
        Some("uses the URL-safe alphabet".to_string())
    } else if s.contains(|c: char| c.is_whitespace()) {
        Some("contains whitespace".to_string())
    } else {
        None
    };
    let bytes = match (why, STANDARD.decode(s)) {
        (None, Ok(b)) => b,
        (Some(w), _) => {
            return Err(malformed(format!(
                "field \"signature\" is not standard padded base64: {w}"
            )))
        }
        (None, Err(e)) => {
            return Err(malformed(format!(
                "field \"signature\" is not standard padded base64: {e}"
            )))
        }
    };
    bytes.as_slice().try_into().map_err(|_| {
        malformed(format!(
            "field \"signature\" must decode to 64 bytes, got {}",
            bytes.len()
        ))
    })
}

/// An RFC 3339 timestamp in UTC (`Z` or `+00:00`), kept exactly as written.
pub(crate) fn parse_utc_timestamp(name: &str, v: &Value) -> Result<String> {
    let s = expect_str(name, v)?;
    let dt = chrono::DateTime::parse_from_rfc3339(s).map_err(|e| {
        malformed(format!(
            "field \"{name}\" is not an RFC 3339 timestamp: {e}"
        ))
    })?;
    // chrono also accepts a space separator; the format always uses 'T'.
    if !matches!(s.as_bytes().get(10), Some(b'T' | b't')) {
        return Err(malformed(format!(
            "field \"{name}\" is not an RFC 3339 timestamp: expected 'T' between date and time"
        )));
    }
    // "-00:00" parses as offset 0 but means "local offset unknown" (RFC 3339 4.3).
    if dt.offset().local_minus_utc() != 0 || s.ends_with("-00:00") {
        return Err(malformed(format!(
            "field \"{name}\" must be in UTC (offset Z or +00:00), got offset {}",
            // get() rather than indexing: never panic on a char boundary.
            quoted(s.get(s.len().saturating_sub(6)..).unwrap_or(s))
        )));
    }
    Ok(s.to_string())
}

/// Parses a document's bytes as exactly one JSON object (UTF-8, no byte order mark, nothing after
/// it but whitespace), keeping every key/value pair in order, duplicates included.
pub(crate) fn parse_object(bytes: &[u8], what: &str) -> Result<Vec<(String, Value)>> {
    parse_object_within(bytes, what, MAX_SIGNATURE_FILE_BYTES)
}

/// [`parse_object`] with another size limit (bytes).
pub(crate) fn parse_object_within(
    bytes: &[u8],
    what: &str,
    max_bytes: usize,
) -> Result<Vec<(String, Value)>> {
    if bytes.len() > max_bytes {
        return Err(malformed(format!(
            "{what} is over {} KiB ({} bytes)",
            max_bytes / 1024,
            bytes.len()
        )));
    }
    let text =
        std::str::from_utf8(bytes).map_err(|e| malformed(format!("{what} is not UTF-8 ({e})")))?;
    if text.starts_with('\u{feff}') {
        return Err(malformed(format!(
            "{what} is not valid JSON: it starts with a byte order mark"
        )));
    }
    let mut de = serde_json::Deserializer::from_str(text);
    let pairs = Pairs::deserialize(&mut de).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => {
            let message = e.to_string();
            match message.split(" at line ").next() {
                Some(duplicated) if duplicated.starts_with("duplicated field") => {
                    malformed(duplicated)
                }
                _ => malformed(format!("{what} is not a JSON object")),
            }
        }
        _ => malformed(format!("{what} is not valid JSON: {e}")),
    })?;
    de.end()
        .map_err(|_| malformed(format!("trailing bytes after the JSON object in {what}")))?;
    Ok(pairs.0)
}

/// The value of each of `fields` (in that order) from an object's pairs: every key must be one of
/// `fields` and appear at most once, and every one of `required` must be present.
pub(crate) fn object_fields<'a, const N: usize>(
    pairs: &'a [(String, Value)],
    fields: &[&str; N],
    required: &[&str],
) -> Result<[Option<&'a Value>; N]> {
    let mut slots: [Option<&Value>; N] = [None; N];
    for (key, value) in pairs {
        match fields.iter().position(|f| f == key) {
            Some(i) if slots[i].is_some() => {
                return Err(malformed(format!("duplicated field \"{key}\"")))
            }
            Some(i) => slots[i] = Some(value),
            None => return Err(malformed(format!("unknown field {}", quoted(key)))),
        }
    }
    for (slot, name) in slots.iter().zip(fields) {
        if slot.is_none() && required.contains(name) {
            return Err(malformed(format!("missing field \"{name}\"")));
        }
    }
    Ok(slots)
}
