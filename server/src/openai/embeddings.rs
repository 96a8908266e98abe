//! `/v1/embeddings` request fields and the base64 encoding of vectors.

use serde::Deserialize;
use serde_json::Value;

use super::error::ApiError;

/// The most inputs in one request (OpenAI's limit).
pub const MAX_INPUTS: usize = 2048;

/// The request.
#[derive(Debug, Deserialize)]
pub struct EmbeddingFields {
    /// A string, a list of strings, a list of token ids, or a list of such lists.
    pub input: Value,
    /// "float" (default) or "base64" (little-endian f32s; what the openai Python client asks
    /// for unless told otherwise).
    pub encoding_format: Option<String>,
    /// Must be the model's width if given (no truncated embeddings).
    pub dimensions: Option<usize>,
}

/// How to write vectors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// JSON numbers.
    Float,
    /// Base64 of the little-endian f32 bytes.
    Base64,
}

impl EmbeddingFields {
    /// The encoding asked for; a 400 for anything else, or for `dimensions` we cannot give.
    pub fn check(&self, n_embd: usize) -> Result<Encoding, ApiError> {
        if let Some(d) = self.dimensions {
            if d != n_embd {
                return Err(ApiError::bad_request(
                    format!("this model's embeddings have {n_embd} dimensions, not {d}"),
                    Some("dimensions"),
                ));
            }
        }
        match self.encoding_format.as_deref() {
            None | Some("float") => Ok(Encoding::Float),
            Some("base64") => Ok(Encoding::Base64),
            Some(other) => Err(ApiError::bad_request(
                format!("encoding_format must be 'float' or 'base64', not '{other}'"),
                Some("encoding_format"),
            )),
        }
    }
}

/// Standard base64 (RFC 4648, with padding) of the vector's little-endian bytes. Written out
/// here: a dozen lines do not warrant a dependency.
pub fn base64_f32(vector: &[f32]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let bytes: Vec<u8> = vector.iter().flat_map(|v| v.to_le_bytes()).collect();
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[((n >> shift) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        // 1.0f32 = 00 00 80 3f; [1.0, -2.0] adds 00 00 00 c0.
        assert_eq!(base64_f32(&[1.0]), "AACAPw==");
        assert_eq!(base64_f32(&[1.0, -2.0]), "AACAPwAAAMA=");
        assert_eq!(base64_f32(&[]), "");
    }
}
