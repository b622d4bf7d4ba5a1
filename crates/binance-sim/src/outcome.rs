//! What a tool call produced, and its `tools/call` result in FastMCP's shape: one text content
//! holding the return value as JSON indented by 2 (Python's `pydantic_core.to_json(indent=2)`),
//! and `isError`.
//!
//! The text is written straight into the response, escaped on the way, instead of rendered to a
//! string and escaped again: for a 20-level order book that halves the cost of answering.

use std::io::{self, Write};

use serde_json::Value;

#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutcome {
    /// The tool's return value, sent as its JSON text.
    Data(Value),
    /// A return value already rendered (large answers that never change).
    Text(&'static str),
    /// An exception in the real server: `isError`, text prefixed with the tool's name.
    Failure(String),
    /// A refusal the real server returns as a normal dict (`{"status": "error", ...}`); sent
    /// with `isError: true` here so that clients and policies can tell.
    Refusal(Value),
}

impl ToolOutcome {
    /// Appends the `tools/call` result for `tool` to `out`.
    pub fn write_result(&self, tool: &str, out: &mut Vec<u8>) {
        out.extend_from_slice(br#"{"content":[{"type":"text","text":""#);
        let mut text = StringContents(out);
        // Writing into a Vec cannot fail, and a Value always serialises.
        let _ = match self {
            Self::Data(value) | Self::Refusal(value) => {
                serde_json::to_writer_pretty(&mut text, value).map_err(io::Error::from)
            }
            Self::Text(rendered) => text.write_all(rendered.as_bytes()),
            Self::Failure(message) => write!(text, "Error executing tool {tool}: {message}"),
        };
        let is_error = matches!(self, Self::Failure(_) | Self::Refusal(_));
        out.extend_from_slice(if is_error {
            br#""}],"isError":true}"#
        } else {
            br#""}],"isError":false}"#
        });
    }
}

/// Writes text as the inside of a JSON string literal, escaping as serde_json does: `"` and `\`,
/// the short forms of control characters, `\u00XX` for the rest; everything else verbatim.
struct StringContents<'a>(&'a mut Vec<u8>);

/// For each byte, the letter of its escape (`\n` → `n`, `u` for `\u00XX`), or 0 to copy it.
static ESCAPES: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table[b'\n' as usize] = b'n';
    table[b'\r' as usize] = b'r';
    table[b'\t' as usize] = b't';
    table[0x08] = b'b';
    table[0x0c] = b'f';
    table
};

impl Write for StringContents<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let mut verbatim_from = 0;
        for (i, &byte) in bytes.iter().enumerate() {
            let escape = ESCAPES[usize::from(byte)];
            if escape == 0 {
                continue;
            }
            self.0.extend_from_slice(&bytes[verbatim_from..i]);
            match escape {
                b'u' => write!(self.0, "\\u{byte:04x}")?,
                letter => self.0.extend_from_slice(&[b'\\', letter]),
            }
            verbatim_from = i + 1;
        }
        self.0.extend_from_slice(&bytes[verbatim_from..]);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(outcome: &ToolOutcome) -> Value {
        let mut out = Vec::new();
        outcome.write_result("get_thing", &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn data_is_sent_as_indented_json_text() {
        let value =
            json!({"symbol": "BTCUSDT", "bids": [["1.0", "2.0"]], "note": "a \"quoted\"\tline\\"});
        let sent = result(&ToolOutcome::Data(value.clone()));
        assert_eq!(sent["isError"], false);
        assert_eq!(sent["content"][0]["type"], "text");
        assert_eq!(
            sent["content"][0]["text"],
            serde_json::to_string_pretty(&value).unwrap()
        );
    }

    #[test]
    fn escaping_matches_serde_json() {
        let text: String = (0u8..0x80).map(char::from).chain("é€😀".chars()).collect();
        let mut ours = Vec::new();
        StringContents(&mut ours)
            .write_all(text.as_bytes())
            .unwrap();
        let theirs = serde_json::to_vec(&text).unwrap();
        assert_eq!(ours, &theirs[1..theirs.len() - 1]);
    }

    #[test]
    fn failures_name_the_tool_and_set_is_error() {
        let sent = result(&ToolOutcome::Failure("boom".into()));
        assert_eq!(sent["isError"], true);
        assert_eq!(
            sent["content"][0]["text"],
            "Error executing tool get_thing: boom"
        );
        let refused = result(&ToolOutcome::Refusal(json!({"status": "error"})));
        assert_eq!(refused["isError"], true);
        assert_eq!(result(&ToolOutcome::Text("[]"))["content"][0]["text"], "[]");
        assert_eq!(
            result(&ToolOutcome::Data(json!(65000.12)))["content"][0]["text"],
            "65000.12"
        );
    }
}
