//! A safetensors header: where each tensor's bytes lie, checked against the
//! file before anything is read.

use std::path::Path;

use candle_core::DType;
use serde_json::Value;

use crate::host::is_packed;
use crate::{Error, Result};

/// The largest header read (safetensors' own limit).
pub(crate) const MAX_HEADER: u64 = 100_000_000;

/// One tensor of the file.
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub(crate) name: String,
    pub(crate) dtype: DType,
    pub(crate) shape: Vec<usize>,
    /// Byte range in the file (not in the data section).
    pub(crate) start: u64,
    pub(crate) end: u64,
}

/// The tensors in file order.
#[derive(Debug)]
pub(crate) struct Header {
    /// Where the data section starts (8 + the header's length).
    pub(crate) data_start: u64,
    pub(crate) tensors: Vec<Entry>,
}

/// Parses the JSON header of a file of `file_len` bytes whose data section
/// starts at `data_start`.
pub(crate) fn parse(path: &Path, json: &[u8], data_start: u64, file_len: u64) -> Result<Header> {
    let bad = |reason: String| Error::Format {
        path: path.to_path_buf(),
        reason,
    };
    let text =
        std::str::from_utf8(json).map_err(|e| bad(format!("the header is not UTF-8: {e}")))?;
    let Value::Object(map) =
        serde_json::from_str(text).map_err(|e| bad(format!("the header is not JSON: {e}")))?
    else {
        return Err(bad(String::from("the header is not a JSON object")));
    };
    let data_len = file_len - data_start;
    let mut tensors = Vec::with_capacity(map.len());
    for (name, info) in map {
        if name == "__metadata__" {
            continue;
        }
        let field = |key: &str| {
            info.get(key)
                .ok_or_else(|| bad(format!("tensor {name:?} has no {key:?}")))
        };
        let dtype_name = field("dtype")?
            .as_str()
            .ok_or_else(|| bad(format!("tensor {name:?}: dtype is not a string")))?;
        let dtype = dtype_of(dtype_name).ok_or_else(|| Error::Unsupported {
            what: format!(
                "{}: tensor {name:?} has dtype {dtype_name}, which candle does not load",
                path.display()
            ),
        })?;
        let shape = field("shape")?
            .as_array()
            .and_then(|dims| {
                dims.iter()
                    .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                    .collect::<Option<Vec<usize>>>()
            })
            .ok_or_else(|| bad(format!("tensor {name:?}: shape is not a list of sizes")))?;
        let offsets = field("data_offsets")?
            .as_array()
            .and_then(|o| match o.as_slice() {
                [a, b] => Some((a.as_u64()?, b.as_u64()?)),
                _ => None,
            })
            .ok_or_else(|| bad(format!("tensor {name:?}: data_offsets is not [begin, end]")))?;
        let (begin, end) = offsets;
        if begin > end || end > data_len {
            return Err(bad(format!(
                "tensor {name:?}: bytes {begin}..{end} of a data section of {data_len}"
            )));
        }
        if !is_packed(dtype) {
            let expected = shape
                .iter()
                .try_fold(dtype.size_in_bytes() as u64, |n, &d| {
                    n.checked_mul(d as u64)
                });
            if expected != Some(end - begin) {
                return Err(bad(format!(
                    "tensor {name:?}: {dtype_name} {shape:?} needs {} bytes, data_offsets give {}",
                    expected.map_or_else(|| String::from("more than 2^64"), |n| n.to_string()),
                    end - begin
                )));
            }
        }
        tensors.push(Entry {
            name,
            dtype,
            shape,
            start: data_start + begin,
            end: data_start + end,
        });
    }
    tensors.sort_by_key(|t| (t.start, t.end));
    for pair in tensors.windows(2) {
        if pair[1].start < pair[0].end {
            return Err(bad(format!(
                "tensors {:?} and {:?} overlap",
                pair[0].name, pair[1].name
            )));
        }
    }
    Ok(Header {
        data_start,
        tensors,
    })
}

/// candle's dtype for a safetensors dtype name.
fn dtype_of(name: &str) -> Option<DType> {
    Some(match name {
        "U8" => DType::U8,
        "U32" => DType::U32,
        "I16" => DType::I16,
        "I32" => DType::I32,
        "I64" => DType::I64,
        "BF16" => DType::BF16,
        "F16" => DType::F16,
        "F32" => DType::F32,
        "F64" => DType::F64,
        "F8_E4M3" => DType::F8E4M3,
        "F6_E2M3" => DType::F6E2M3,
        "F6_E3M2" => DType::F6E3M2,
        "F4" => DType::F4,
        "F8_E8M0" => DType::F8E8M0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_json(json: &str, data_len: u64) -> Result<Header> {
        parse(
            Path::new("m.safetensors"),
            json.as_bytes(),
            100,
            100 + data_len,
        )
    }

    #[test]
    fn tensors_come_in_file_order_with_file_offsets() {
        let h = parse_json(
            r#"{"__metadata__":{"format":"pt"},
                "b":{"dtype":"F32","shape":[2],"data_offsets":[8,16]},
                "a":{"dtype":"BF16","shape":[2,2],"data_offsets":[0,8]}}"#,
            16,
        )
        .unwrap();
        let names: Vec<_> = h
            .tensors
            .iter()
            .map(|t| (t.name.as_str(), t.start, t.end))
            .collect();
        assert_eq!(names, [("a", 100, 108), ("b", 108, 116)]);
        assert_eq!(h.tensors[0].dtype, DType::BF16);
    }

    #[test]
    fn every_inconsistency_is_a_format_error_naming_the_tensor() {
        let cases = [
            (r#"[1,2]"#, "not a JSON object"),
            (
                r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,7]}}"#,
                "needs 8 bytes",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#,
                "of a data section of 8",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[2]}}"#,
                "no \"data_offsets\"",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#,
                "shape is not",
            ),
            (
                r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]},"b":{"dtype":"U8","shape":[4],"data_offsets":[4,8]}}"#,
                "overlap",
            ),
            (
                r#"{"a":{"dtype":"F32","shape":[4611686018427387904,8],"data_offsets":[0,8]}}"#,
                "more than 2^64",
            ),
            ("{", "not JSON"),
        ];
        for (json, expected) in cases {
            let err = parse_json(json, 8).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "{json}: {err}");
            assert!(err.to_string().contains(expected), "{json}: {err}");
        }
        let err = parse(Path::new("m"), &[0xff, 0xfe], 10, 10).unwrap_err();
        assert!(err.to_string().contains("not UTF-8"), "{err}");
    }

    #[test]
    fn a_dtype_candle_cannot_hold_is_unsupported() {
        let err = parse_json(
            r#"{"a":{"dtype":"BOOL","shape":[8],"data_offsets":[0,8]}}"#,
            8,
        )
        .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{err}");
        assert!(err.to_string().contains("BOOL"), "{err}");
    }
}
