//! The `tools/list` answer, rendered once per simulator: every page's result bytes are ready
//! before the first request, so listing costs a lookup and a copy.

use serde_json::{json, Value};

use super::catalogue::catalogue;
use super::error::SimulatorError;

/// Every page of the tool list, as `result` JSON bytes.
#[derive(Debug)]
pub struct ToolListing {
    pages: Vec<Vec<u8>>,
}

/// Cursors are opaque to clients (tools spec: pagination); this one is "tools:<page>" in hex.
const CURSOR_PREFIX: &str = "tools:";

impl ToolListing {
    /// All tools in one page when `page_size` is `None` (or 0), else pages of `page_size`.
    pub fn new(page_size: Option<usize>) -> Self {
        let tools: Vec<Value> = catalogue()
            .iter()
            .map(|tool| json!({"name": tool.name, "description": tool.summary, "inputSchema": tool.input_schema}))
            .collect();
        let size = page_size.filter(|&n| n > 0).unwrap_or(tools.len().max(1));
        let chunks: Vec<&[Value]> = tools.chunks(size).collect();
        let pages = chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut result = json!({"tools": chunk});
                if i + 1 < chunks.len() {
                    result["nextCursor"] = Value::String(cursor(i + 1));
                }
                serde_json::to_vec(&result).unwrap_or_default()
            })
            .collect();
        Self { pages }
    }

    /// The page a `tools/list` request's `cursor` asks for.
    pub fn page(&self, cursor: Option<&Value>) -> Result<&[u8], SimulatorError> {
        let index = match cursor {
            None | Some(Value::Null) => 0,
            Some(Value::String(cursor)) => page_of(cursor)
                .filter(|&i| i > 0 && i < self.pages.len())
                .ok_or_else(|| {
                    SimulatorError::InvalidParams(format!("Invalid cursor: {cursor}"))
                })?,
            Some(_) => {
                return Err(SimulatorError::InvalidParams(
                    "Invalid cursor: must be a string".into(),
                ))
            }
        };
        Ok(&self.pages[index])
    }
}

fn cursor(page: usize) -> String {
    hex::encode(format!("{CURSOR_PREFIX}{page}"))
}

fn page_of(cursor: &str) -> Option<usize> {
    let decoded = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    decoded.strip_prefix(CURSOR_PREFIX)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[test]
    fn one_page_without_page_size() {
        let listing = ToolListing::new(None);
        let page = parse(listing.page(None).unwrap());
        assert_eq!(page["tools"].as_array().unwrap().len(), 29);
        assert!(page.get("nextCursor").is_none());
        assert_eq!(page["tools"][2]["name"], "get_price");
        assert_eq!(page["tools"][2]["inputSchema"], catalogue()[2].input_schema);
    }

    #[test]
    fn pages_follow_their_cursors_to_the_end() {
        let listing = ToolListing::new(Some(10));
        let mut names = Vec::new();
        let mut cursor = None;
        loop {
            let page = parse(listing.page(cursor.as_ref()).unwrap());
            names.extend(
                page["tools"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t["name"].clone()),
            );
            match page.get("nextCursor") {
                Some(next) => cursor = Some(next.clone()),
                None => break,
            }
        }
        let expected: Vec<Value> = catalogue()
            .iter()
            .map(|t| Value::from(t.name.as_str()))
            .collect();
        assert_eq!(names, expected);
    }

    #[test]
    fn bad_cursors_are_invalid_params() {
        let listing = ToolListing::new(Some(10));
        for bad in [
            json!("garbage"),
            json!(cursor(99)),
            json!(3),
            json!(cursor(0)),
        ] {
            assert!(
                matches!(
                    listing.page(Some(&bad)),
                    Err(SimulatorError::InvalidParams(_))
                ),
                "{bad}"
            );
        }
    }
}
