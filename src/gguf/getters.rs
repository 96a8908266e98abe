//! Typed access to metadata: `get_*` for required keys (MissingKey / WrongValueType),
//! `opt_*` for optional ones (absent is `Ok(None)`, present but wrong is still an error).

use super::value::{Array, Metadata, Value};
use crate::{Error, Result};

fn wrong(key: &str, expected: &str, found: &Value) -> Error {
    Error::WrongValueType {
        key: key.to_string(),
        expected: expected.to_string(),
        found: found.describe(),
    }
}

impl Metadata {
    fn convert<'a, T>(
        &'a self,
        key: &str,
        expected: &str,
        f: impl FnOnce(&'a Value) -> Option<T>,
    ) -> Result<Option<T>> {
        match self.get(key) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| wrong(key, expected, v)),
        }
    }

    fn required<T>(key: &str, v: Result<Option<T>>) -> Result<T> {
        v?.ok_or_else(|| Error::MissingKey {
            key: key.to_string(),
        })
    }

    /// An integer of any type whose value fits in u32.
    pub fn opt_u32(&self, key: &str) -> Result<Option<u32>> {
        self.convert(key, "an integer that fits in u32", |v| {
            v.as_u64().and_then(|x| u32::try_from(x).ok())
        })
    }

    /// An integer of any type whose value fits in u64.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>> {
        self.convert(key, "an integer that fits in u64", Value::as_u64)
    }

    /// An integer of any type whose value fits in i64.
    pub fn opt_i64(&self, key: &str) -> Result<Option<i64>> {
        self.convert(key, "an integer that fits in i64", Value::as_i64)
    }

    /// A float (f32, or f64 within f32 range) or an integer, as f32.
    pub fn opt_f32(&self, key: &str) -> Result<Option<f32>> {
        self.convert(key, "a number that fits in f32", |v| {
            let x = v.as_f64()?;
            let y = x as f32;
            // Refuse finite values that f32 cannot hold rather than turn them into infinity.
            (y.is_finite() || !x.is_finite()).then_some(y)
        })
    }

    /// A bool.
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>> {
        self.convert(key, "bool", Value::as_bool)
    }

    /// A string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&str>> {
        self.convert(key, "string", Value::as_str)
    }

    /// An array (of any element type).
    pub fn opt_array(&self, key: &str) -> Result<Option<&Array>> {
        self.convert(key, "array", Value::as_array)
    }

    /// Required [`opt_u32`](Self::opt_u32).
    pub fn get_u32(&self, key: &str) -> Result<u32> {
        Self::required(key, self.opt_u32(key))
    }

    /// Required [`opt_u64`](Self::opt_u64).
    pub fn get_u64(&self, key: &str) -> Result<u64> {
        Self::required(key, self.opt_u64(key))
    }

    /// Required [`opt_i64`](Self::opt_i64).
    pub fn get_i64(&self, key: &str) -> Result<i64> {
        Self::required(key, self.opt_i64(key))
    }

    /// Required [`opt_f32`](Self::opt_f32).
    pub fn get_f32(&self, key: &str) -> Result<f32> {
        Self::required(key, self.opt_f32(key))
    }

    /// Required [`opt_bool`](Self::opt_bool).
    pub fn get_bool(&self, key: &str) -> Result<bool> {
        Self::required(key, self.opt_bool(key))
    }

    /// Required [`opt_str`](Self::opt_str).
    pub fn get_str(&self, key: &str) -> Result<&str> {
        Self::required(key, self.opt_str(key))
    }

    /// Required [`opt_array`](Self::opt_array).
    pub fn get_array(&self, key: &str) -> Result<&Array> {
        Self::required(key, self.opt_array(key))
    }
}
