//! Parsing a whole GGUF file (versions 2 and 3, little-endian) from a byte slice: the header,
//! the metadata, the tensor infos and the data section they point into.
//!
//! The layout, after ggml's `docs/gguf.md`: magic `GGUF`, version u32, tensor count u64,
//! metadata count u64; each key/value as (string key, u32 type, value); each tensor info as
//! (string name, u32 n_dims, n_dims × u64 dims, u32 ggml type, u64 offset); then padding to the
//! alignment (`general.alignment`, default 32) and the data section, in which each tensor's
//! offset is relative to the section's start. Strings are a u64 length and UTF-8 bytes.
//!
//! Nothing here indexes a slice unchecked: every read goes through [`Cursor`], which returns
//! [`GgufError::Truncated`] when the bytes run out, and every size is computed with checked
//! arithmetic. Counts read from the file never size an allocation beyond what the remaining
//! bytes could hold.

use std::collections::HashMap;

use crate::error::{GgufError, Result};
use crate::ggml::GgmlType;
use crate::value::{Value, ValueType};

/// The alignment of the data section and of every tensor when `general.alignment` is absent.
pub const DEFAULT_ALIGNMENT: u64 = 32;
/// ggml's `GGML_MAX_DIMS`: a tensor has at most this many dimensions.
pub const MAX_DIMS: usize = 4;
/// Arrays of arrays deeper than this are refused, so a crafted file cannot exhaust the stack.
pub const MAX_ARRAY_DEPTH: usize = 8;

/// One tensor's entry in the file.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// The dimensions in ggml's order: `dims[0]` (ggml's `ne[0]`) is the contiguous one, so a
    /// `[out, in]` PyTorch weight is stored with `dims == [in, out]`. See [`TensorInfo::shape`].
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Bytes from the start of the data section.
    pub offset: u64,
    /// Bytes the tensor's data takes.
    pub size: u64,
}

impl TensorInfo {
    /// The dimensions in row-major (PyTorch, burn) order: `dims` reversed.
    pub fn shape(&self) -> Vec<u64> {
        self.dims.iter().rev().copied().collect()
    }

    /// The number of elements (the product of the dimensions; checked when the file is read).
    pub fn n_elements(&self) -> u64 {
        self.dims.iter().product()
    }
}

/// A parsed GGUF file, borrowing its tensor data from the bytes it was read from.
#[derive(Debug, Clone)]
pub struct Gguf<'a> {
    pub version: u32,
    /// The data section's alignment (`general.alignment`, or [`DEFAULT_ALIGNMENT`]).
    pub alignment: u64,
    metadata: Vec<(String, Value)>,
    metadata_index: HashMap<String, usize>,
    tensors: Vec<TensorInfo>,
    tensor_index: HashMap<String, usize>,
    /// Byte offset of the data section in the file.
    pub data_offset: u64,
    data: &'a [u8],
}

impl<'a> Gguf<'a> {
    /// Reads a whole GGUF file. Every tensor's range is checked to lie inside the data section,
    /// so [`Gguf::tensor_data`] cannot fail afterwards.
    pub fn parse(bytes: &'a [u8]) -> Result<Self> {
        Self::parse_with(bytes, true)
    }

    /// Reads the header, metadata and tensor infos of a GGUF file from its first bytes: the data
    /// section may be cut short or absent (a page planning a job from a multi-GB file reads only
    /// its start). Each tensor's size is checked as [`Gguf::parse`] checks it, but not whether
    /// its data is there: [`Gguf::tensor_data`] of a tensor past the bytes given is empty (and
    /// dequantizing it an error). The header itself must be whole.
    pub fn parse_metadata(bytes: &'a [u8]) -> Result<Self> {
        Self::parse_with(bytes, false)
    }

    fn parse_with(bytes: &'a [u8], whole: bool) -> Result<Self> {
        let mut c = Cursor { bytes, pos: 0 };
        let magic: [u8; 4] = c.array("the magic")?;
        if &magic != b"GGUF" {
            return Err(GgufError::BadMagic { found: magic });
        }
        let version = c.u32("the version")?;
        if version != 2 && version != 3 {
            // A big-endian file stores 2 or 3 as 0x02000000 or 0x03000000.
            if version.swap_bytes() == 2 || version.swap_bytes() == 3 {
                return Err(GgufError::BigEndian { version });
            }
            return Err(GgufError::UnsupportedVersion { version });
        }
        let n_tensors = c.u64("the tensor count")?;
        let n_kv = c.u64("the metadata count")?;

        let mut metadata = Vec::with_capacity(c.capacity_for(n_kv, 8 + 4 + 1));
        let mut metadata_index = HashMap::new();
        for i in 0..n_kv {
            let key = c.string(&format!("the key of metadata entry {i}"))?;
            let what = format!("metadata {key:?}");
            let type_id = c.u32(&what)?;
            let value_type = ValueType::from_id(type_id).ok_or(GgufError::UnknownValueType {
                what: what.clone(),
                type_id,
            })?;
            let value = c.value(value_type, &what, 0)?;
            if metadata_index.insert(key.clone(), metadata.len()).is_some() {
                return Err(GgufError::DuplicateKey { key });
            }
            metadata.push((key, value));
        }

        let alignment = match metadata_index.get("general.alignment") {
            None => DEFAULT_ALIGNMENT,
            Some(&i) => {
                let value = &metadata[i].1;
                let a = value.as_i128().ok_or_else(|| GgufError::WrongType {
                    key: "general.alignment".into(),
                    expected: "an integer",
                    found: value.describe(),
                })?;
                let a = u64::try_from(a).unwrap_or(0);
                if a == 0 || !a.is_power_of_two() {
                    return Err(GgufError::BadAlignment { value: a });
                }
                a
            }
        };

        let mut infos = Vec::with_capacity(c.capacity_for(n_tensors, 8 + 4 + 4 + 8));
        for i in 0..n_tensors {
            let name = c.string(&format!("the name of tensor {i}"))?;
            let what = format!("tensor {name:?}");
            let n_dims = c.u32(&what)?;
            if n_dims as usize > MAX_DIMS {
                return Err(GgufError::TooManyDims {
                    tensor: name,
                    n_dims,
                    max: MAX_DIMS,
                });
            }
            let mut dims = Vec::with_capacity(n_dims as usize);
            for _ in 0..n_dims {
                dims.push(c.u64(&what)?);
            }
            let type_id = c.u32(&what)?;
            let ggml_type = GgmlType::from_id(type_id).ok_or(GgufError::UnknownGgmlType {
                tensor: name.clone(),
                type_id,
            })?;
            let offset = c.u64(&what)?;
            infos.push((name, dims, ggml_type, offset));
        }

        // The data section starts at the next multiple of the alignment.
        let data_offset = align_up(c.pos as u64, alignment).ok_or_else(|| GgufError::Overflow {
            what: "the data section's offset".into(),
        })?;
        let data = usize::try_from(data_offset)
            .ok()
            .and_then(|start| bytes.get(start..))
            .or((!whole).then_some(&[][..]))
            .ok_or(GgufError::Truncated {
                what: "the padding before the data section".into(),
                offset: c.pos as u64,
                needed: data_offset - c.pos as u64,
                available: c.remaining() as u64,
            })?;

        let mut tensors = Vec::with_capacity(infos.len());
        let mut tensor_index = HashMap::new();
        for (name, dims, ggml_type, offset) in infos {
            let size = checked_size(&name, &dims, ggml_type)?;
            if !offset.is_multiple_of(alignment) {
                return Err(GgufError::MisalignedOffset {
                    tensor: name,
                    offset,
                    alignment,
                });
            }
            let end = offset.checked_add(size);
            let fits = end.is_some_and(|end| !whole || end <= data.len() as u64);
            if !fits {
                return Err(GgufError::TensorOutOfBounds {
                    tensor: name,
                    offset,
                    size,
                    available: data.len() as u64,
                });
            }
            if tensor_index.insert(name.clone(), tensors.len()).is_some() {
                return Err(GgufError::DuplicateTensor { name });
            }
            tensors.push(TensorInfo {
                name,
                dims,
                ggml_type,
                offset,
                size,
            });
        }

        Ok(Gguf {
            version,
            alignment,
            metadata,
            metadata_index,
            tensors,
            tensor_index,
            data_offset,
            data,
        })
    }

    /// The metadata entries in file order.
    pub fn metadata(&self) -> &[(String, Value)] {
        &self.metadata
    }

    /// The value under `key`, if present.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.metadata_index.get(key).map(|&i| &self.metadata[i].1)
    }

    /// The tensor infos in file order.
    pub fn tensors(&self) -> &[TensorInfo] {
        &self.tensors
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<&TensorInfo> {
        self.tensor_index
            .get(name)
            .map(|&i| &self.tensors[i])
            .ok_or_else(|| GgufError::TensorNotFound { name: name.into() })
    }

    /// The raw bytes of a tensor of this file (as ggml stores them).
    pub fn tensor_data(&self, info: &TensorInfo) -> &'a [u8] {
        // `parse` checked the range of every tensor it returned; a tensor whose data is past the
        // bytes `parse_metadata` was given, or a `TensorInfo` from elsewhere that does not fit,
        // yields an empty slice (and dequantizing it a length error).
        let range = usize::try_from(info.offset)
            .ok()
            .zip(usize::try_from(info.size).ok())
            .and_then(|(start, size)| Some(start..start.checked_add(size)?));
        range.and_then(|r| self.data.get(r)).unwrap_or(&[])
    }

    /// The tensor named `name`, dequantized to f32 in ggml's element order (row-major over
    /// [`TensorInfo::shape`]).
    pub fn dequantize(&self, name: &str) -> Result<Vec<f32>> {
        let info = self.tensor(name)?;
        crate::dequant::dequantize(info.ggml_type, self.tensor_data(info), info.n_elements())
            .map_err(|e| match e {
                GgufError::UnsupportedType { ggml_type, .. } => GgufError::UnsupportedType {
                    tensor: name.into(),
                    ggml_type,
                },
                other => other,
            })
    }
}

fn align_up(pos: u64, alignment: u64) -> Option<u64> {
    pos.checked_add(alignment - 1)
        .map(|p| p / alignment * alignment)
}

/// The bytes a tensor takes, checking that its element count neither overflows nor splits a block.
fn checked_size(name: &str, dims: &[u64], ggml_type: GgmlType) -> Result<u64> {
    let overflow = || GgufError::Overflow {
        what: format!("tensor {name:?}'s element count"),
    };
    let n_elements = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d))
        .ok_or_else(overflow)?;
    // ggml quantizes along the first (contiguous) dimension, so each row is whole blocks.
    let ne0 = dims.first().copied().unwrap_or(1);
    if !ne0.is_multiple_of(ggml_type.block_size()) {
        return Err(GgufError::NotBlockMultiple {
            tensor: name.into(),
            ggml_type,
            ne0,
            block: ggml_type.block_size(),
        });
    }
    ggml_type.bytes_for(n_elements).ok_or_else(overflow)
}

/// A read position in the file's bytes.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn remaining(&self) -> usize {
        self.bytes.len() - self.pos
    }

    /// A capacity for `count` items of at least `min_size` bytes each that the remaining bytes
    /// could actually hold, so a forged count cannot make us allocate terabytes up front.
    fn capacity_for(&self, count: u64, min_size: u64) -> usize {
        let max = self.remaining() as u64 / min_size.max(1);
        count.min(max) as usize
    }

    fn take(&mut self, n: u64, what: &str) -> Result<&[u8]> {
        let truncated = || GgufError::Truncated {
            what: what.into(),
            offset: self.pos as u64,
            needed: n,
            available: self.remaining() as u64,
        };
        let n = usize::try_from(n).map_err(|_| truncated())?;
        let end = self.pos.checked_add(n).ok_or_else(truncated)?;
        let slice = self.bytes.get(self.pos..end).ok_or_else(truncated)?;
        self.pos = end;
        Ok(slice)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array(what)?))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array(what)?))
    }

    fn string(&mut self, what: &str) -> Result<String> {
        let len = self.u64(what)?;
        let bytes = self.take(len, what)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| GgufError::InvalidUtf8 { what: what.into() })
    }

    fn value(&mut self, value_type: ValueType, what: &str, depth: usize) -> Result<Value> {
        Ok(match value_type {
            ValueType::U8 => Value::U8(u8::from_le_bytes(self.array(what)?)),
            ValueType::I8 => Value::I8(i8::from_le_bytes(self.array(what)?)),
            ValueType::U16 => Value::U16(u16::from_le_bytes(self.array(what)?)),
            ValueType::I16 => Value::I16(i16::from_le_bytes(self.array(what)?)),
            ValueType::U32 => Value::U32(self.u32(what)?),
            ValueType::I32 => Value::I32(i32::from_le_bytes(self.array(what)?)),
            ValueType::F32 => Value::F32(f32::from_le_bytes(self.array(what)?)),
            ValueType::U64 => Value::U64(self.u64(what)?),
            ValueType::I64 => Value::I64(i64::from_le_bytes(self.array(what)?)),
            ValueType::F64 => Value::F64(f64::from_le_bytes(self.array(what)?)),
            // ggml writes 0 or 1; any other byte is read as true, as gguf-py does.
            ValueType::Bool => Value::Bool(self.array::<1>(what)?[0] != 0),
            ValueType::String => Value::String(self.string(what)?),
            ValueType::Array => {
                if depth >= MAX_ARRAY_DEPTH {
                    return Err(GgufError::ArrayTooDeep {
                        what: what.into(),
                        max: MAX_ARRAY_DEPTH,
                    });
                }
                let type_id = self.u32(what)?;
                let elem = ValueType::from_id(type_id).ok_or(GgufError::UnknownValueType {
                    what: what.into(),
                    type_id,
                })?;
                let len = self.u64(what)?;
                let mut items = Vec::with_capacity(self.capacity_for(len, elem.min_encoded_size()));
                for i in 0..len {
                    items.push(self.value(elem, &format!("{what}[{i}]"), depth + 1)?);
                }
                Value::Array(elem, items)
            }
        })
    }
}
