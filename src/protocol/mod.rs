//! MCP's words, at the bottom of the house: the JSON-RPC envelope and its strict reader and
//! writer, method names, protocol revisions, header names, error codes and the answers the
//! gateway writes itself. Every other module takes these from here; this module imports nothing
//! of the gateway's but the strict JSON reader (README.md beside this file says why).

pub mod answer;
pub mod code;
pub mod from_upstream;
pub mod headers;
pub mod listen;
mod message;
pub mod method;
pub mod modern;
pub mod param_headers;
pub mod peek;
mod read;
mod sse;
pub mod version;

pub use message::{Body, Kind, Message, MessageError};
pub use read::parse_body;
pub use sse::SseEvent;
