//! The one error type of the crate. Every variant says what was being read and, where it
//! helps, where in the file, so a damaged or unsupported file can be diagnosed from the message.

use crate::ggml::GgmlType;

/// Everything that can go wrong reading a GGUF file or a value out of it.
#[derive(Debug, thiserror::Error)]
pub enum GgufError {
    #[error("truncated GGUF: {what} at byte {offset} needs {needed} bytes, only {available} left")]
    Truncated {
        what: String,
        offset: u64,
        needed: u64,
        available: u64,
    },
    #[error("not a GGUF file: the magic is {found:?}, expected \"GGUF\"")]
    BadMagic { found: [u8; 4] },
    #[error("GGUF version {version} is not supported (only versions 2 and 3 are read)")]
    UnsupportedVersion { version: u32 },
    #[error(
        "the GGUF file is big-endian (version bytes read as {version}); only little-endian files are read"
    )]
    BigEndian { version: u32 },
    #[error("{what}: unknown metadata value type {type_id}")]
    UnknownValueType { what: String, type_id: u32 },
    #[error("{what}: is not valid UTF-8")]
    InvalidUtf8 { what: String },
    #[error("{what}: arrays nested deeper than {max} levels")]
    ArrayTooDeep { what: String, max: usize },
    #[error("metadata key {key:?} appears twice")]
    DuplicateKey { key: String },
    #[error("tensor {name:?} appears twice")]
    DuplicateTensor { name: String },
    #[error("general.alignment is {value}; it must be a non-zero power of two")]
    BadAlignment { value: u64 },
    #[error("tensor {tensor:?} has {n_dims} dimensions; at most {max} are allowed")]
    TooManyDims {
        tensor: String,
        n_dims: u32,
        max: usize,
    },
    #[error("tensor {tensor:?} has unknown ggml type id {type_id}")]
    UnknownGgmlType { tensor: String, type_id: u32 },
    #[error(
        "tensor {tensor:?}: its first dimension {ne0} is not a multiple of the {ggml_type} block size {block}"
    )]
    NotBlockMultiple {
        tensor: String,
        ggml_type: GgmlType,
        ne0: u64,
        block: u64,
    },
    #[error("tensor {tensor:?}: offset {offset} is not a multiple of the alignment {alignment}")]
    MisalignedOffset {
        tensor: String,
        offset: u64,
        alignment: u64,
    },
    #[error(
        "tensor {tensor:?}: bytes {offset}..{offset}+{size} of the data section lie outside it ({available} bytes)"
    )]
    TensorOutOfBounds {
        tensor: String,
        offset: u64,
        size: u64,
        available: u64,
    },
    #[error("{what}: size overflows")]
    Overflow { what: String },
    #[error(
        "dequantizing {tensor:?}: ggml type {ggml_type} is not supported (F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K and Q6_K are)"
    )]
    UnsupportedType { tensor: String, ggml_type: GgmlType },
    #[error("dequantizing {ggml_type}: {len} bytes do not hold {n_elements} elements")]
    BadDataLength {
        ggml_type: GgmlType,
        len: usize,
        n_elements: u64,
    },
    #[error("no tensor named {name:?} in the GGUF file")]
    TensorNotFound { name: String },
    #[error("metadata key {key:?} is missing")]
    MissingKey { key: String },
    #[error("metadata key {key:?} is {found}, expected {expected}")]
    WrongType {
        key: String,
        expected: &'static str,
        found: String,
    },
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, GgufError>;
