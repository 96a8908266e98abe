//! The field that `/v1/completions` (`prompt`) and `/v1/embeddings` (`input`) share: a string,
//! a list of strings, a list of token ids, or a list of such lists.

use serde_json::Value;
use tramontane::tokenizer::{EncodeOptions, Tokenizer};

use super::error::ApiError;

/// One item of such a field.
#[derive(Debug)]
pub enum Input {
    /// Text.
    Text(String),
    /// Token ids.
    Tokens(Vec<u32>),
}

/// The items of the field `param` (at most `max`, called `noun` in the error).
pub fn inputs(
    value: &Value,
    param: &'static str,
    max: usize,
    noun: &str,
) -> Result<Vec<Input>, ApiError> {
    let bad = || {
        ApiError::bad_request(
            format!(
                "{param} must be a string, a list of strings, a list of token ids or a list of such lists"
            ),
            Some(param),
        )
    };
    let ids = |v: &[Value]| -> Result<Vec<u32>, ApiError> {
        v.iter()
            .map(|t| {
                t.as_u64()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(bad)
            })
            .collect()
    };
    let inputs = match value {
        Value::String(s) => vec![Input::Text(s.clone())],
        Value::Array(items) if items.is_empty() => return Err(bad()),
        Value::Array(items) => match &items[0] {
            Value::String(_) => items
                .iter()
                .map(|s| {
                    s.as_str()
                        .map(|s| Input::Text(s.to_string()))
                        .ok_or_else(bad)
                })
                .collect::<Result<_, _>>()?,
            Value::Number(_) => vec![Input::Tokens(ids(items)?)],
            Value::Array(_) => items
                .iter()
                .map(|v| {
                    v.as_array()
                        .ok_or_else(bad)
                        .and_then(|v| ids(v))
                        .map(Input::Tokens)
                })
                .collect::<Result<_, _>>()?,
            _ => return Err(bad()),
        },
        _ => return Err(bad()),
    };
    if inputs.len() > max {
        return Err(ApiError::bad_request(
            format!("at most {max} {noun} per request"),
            Some(param),
        ));
    }
    Ok(inputs)
}

/// Every item as tokens. Texts are encoded as prompts: BOS as the model wants and control-token
/// text recognised (as llama.cpp's server does); token lists are taken as they are.
pub fn tokens(
    inputs: Vec<Input>,
    tokenizer: &Tokenizer,
    param: &'static str,
) -> Result<Vec<Vec<u32>>, ApiError> {
    inputs
        .into_iter()
        .map(|input| match input {
            Input::Tokens(ids) => Ok(ids),
            Input::Text(text) => tokenizer
                .encode(&text, EncodeOptions::PROMPT)
                .map_err(|e| ApiError::bad_request(e.to_string(), Some(param))),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_forms() {
        let n = |v: Value| inputs(&v, "input", 2048, "inputs").map(|i| i.len());
        assert_eq!(n(serde_json::json!("a")).unwrap(), 1);
        assert_eq!(n(serde_json::json!(["a", "b"])).unwrap(), 2);
        assert_eq!(n(serde_json::json!([1, 2, 3])).unwrap(), 1);
        assert_eq!(n(serde_json::json!([[1], [2, 3]])).unwrap(), 2);
        for bad in [
            serde_json::json!([]),
            serde_json::json!(3),
            serde_json::json!(["a", 1]),
            serde_json::json!([-1]),
        ] {
            assert!(n(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn too_many_items_are_refused() {
        let three = serde_json::json!(["a", "b", "c"]);
        assert!(inputs(&three, "prompt", 3, "prompts").is_ok());
        let e = inputs(&three, "prompt", 2, "prompts").unwrap_err();
        assert!(
            e.message.contains("at most 2 prompts per request"),
            "{}",
            e.message
        );
    }
}
