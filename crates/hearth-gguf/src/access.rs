//! Typed access to metadata: each getter names the key and the type it wanted when the value
//! is absent or of another type. Integer getters accept any integer type whose value fits,
//! since writers differ (a count may be stored as u32 by one tool and u64 by another).

use crate::error::{GgufError, Result};
use crate::file::Gguf;
use crate::value::Value;

impl Gguf<'_> {
    fn require(&self, key: &str) -> Result<&Value> {
        self.get(key)
            .ok_or_else(|| GgufError::MissingKey { key: key.into() })
    }

    fn integer<T: TryFrom<i128>>(&self, key: &str, expected: &'static str) -> Result<T> {
        let value = self.require(key)?;
        value
            .as_i128()
            .and_then(|v| T::try_from(v).ok())
            .ok_or_else(|| wrong_type(key, expected, value))
    }

    /// An integer that fits in u32.
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        self.integer(key, "an integer that fits in u32")
    }

    /// An integer that fits in u64.
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        self.integer(key, "an integer that fits in u64")
    }

    /// An integer that fits in i64.
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        self.integer(key, "an integer that fits in i64")
    }

    /// A float (f32, or f64 rounded to f32).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        let value = self.require(key)?;
        value
            .as_f64()
            .map(|v| v as f32)
            .ok_or_else(|| wrong_type(key, "a float", value))
    }

    /// A float (f32 or f64).
    pub fn get_f64(&self, key: &str) -> Result<f64> {
        let value = self.require(key)?;
        value
            .as_f64()
            .ok_or_else(|| wrong_type(key, "a float", value))
    }

    /// A bool.
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        match self.require(key)? {
            Value::Bool(b) => Ok(*b),
            other => Err(wrong_type(key, "a bool", other)),
        }
    }

    /// A string.
    pub fn get_str(&self, key: &str) -> Result<&str> {
        let value = self.require(key)?;
        value
            .as_str()
            .ok_or_else(|| wrong_type(key, "a string", value))
    }

    /// An array, of any element type.
    pub fn get_array(&self, key: &str) -> Result<&[Value]> {
        match self.require(key)? {
            Value::Array(_, items) => Ok(items),
            other => Err(wrong_type(key, "an array", other)),
        }
    }

    /// An array of strings (such as `tokenizer.ggml.tokens`).
    pub fn get_array_str(&self, key: &str) -> Result<Vec<&str>> {
        let value = self.require(key)?;
        let items = match value {
            Value::Array(_, items) => items,
            other => return Err(wrong_type(key, "an array of strings", other)),
        };
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| wrong_type(key, "an array of strings", value))
            })
            .collect()
    }

    /// An array of integers that each fit in i64 (such as `tokenizer.ggml.token_type`).
    pub fn get_array_i64(&self, key: &str) -> Result<Vec<i64>> {
        let value = self.require(key)?;
        let items = match value {
            Value::Array(_, items) => items,
            other => return Err(wrong_type(key, "an array of integers", other)),
        };
        items
            .iter()
            .map(|v| {
                v.as_i128()
                    .and_then(|i| i64::try_from(i).ok())
                    .ok_or_else(|| wrong_type(key, "an array of integers", value))
            })
            .collect()
    }
}

fn wrong_type(key: &str, expected: &'static str, found: &Value) -> GgufError {
    GgufError::WrongType {
        key: key.into(),
        expected,
        found: found.describe(),
    }
}
