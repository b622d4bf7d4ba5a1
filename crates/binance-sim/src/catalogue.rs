//! The 29 tools of tienan92it/binance-mcp, as its `tools/list` reports them.
//!
//! The JSON is a copy of `shared/binance-tools.json`, embedded so the crate builds on its own; a
//! unit test keeps the copy honest whenever the original is beside the checkout.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;
use serde_json::Value;

const CATALOGUE_JSON: &str = include_str!("binance-tools.json");

/// What part of the exchange a tool touches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    Market,
    Exchange,
    Stream,
}

/// What a tool does to the server's state: nothing, or opening/closing a stream subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    Read,
    StreamOpen,
    StreamClose,
}

/// How much harm a call can do (our judgement, not the server's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Risk {
    Low,
    Medium,
    High,
}

impl Category {
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Market => "market",
            Category::Exchange => "exchange",
            Category::Stream => "stream",
        }
    }
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Read => "read",
            Kind::StreamOpen => "stream-open",
            Kind::StreamClose => "stream-close",
        }
    }
}

impl Risk {
    pub fn as_str(self) -> &'static str {
        match self {
            Risk::Low => "low",
            Risk::Medium => "medium",
            Risk::High => "high",
        }
    }
}

/// The JSON type of one tool argument. The server's schemas only use these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParameterType {
    String,
    Integer,
}

/// One argument of a tool, read from its input schema once so calls never re-read the schema.
#[derive(Debug, Clone)]
pub struct Parameter {
    pub name: String,
    pub kind: ParameterType,
    pub required: bool,
    /// The schema's `default` (`null` for `from_id`); `None` when the schema gives none.
    pub default: Option<Value>,
}

/// One catalogued tool.
#[derive(Debug, Clone)]
pub struct CatalogueTool {
    pub name: String,
    pub summary: String,
    pub category: Category,
    pub kind: Kind,
    pub risk: Risk,
    /// Exactly as the real server lists it (key order preserved).
    pub input_schema: Value,
    pub parameters: Vec<Parameter>,
}

#[derive(Deserialize)]
struct CatalogueFile {
    tools: Vec<CatalogueEntry>,
}

#[derive(Deserialize)]
struct CatalogueEntry {
    name: String,
    summary: String,
    category: Category,
    kind: Kind,
    risk: Risk,
    #[serde(rename = "inputSchema")]
    input_schema: Value,
}

/// All catalogued tools, in the server's order. Parsed on first use.
pub fn catalogue() -> &'static [CatalogueTool] {
    static TOOLS: OnceLock<Vec<CatalogueTool>> = OnceLock::new();
    TOOLS.get_or_init(|| {
        // The file is embedded and covered by tests, so a failure here is a build defect.
        let file: CatalogueFile =
            serde_json::from_str(CATALOGUE_JSON).expect("embedded binance-tools.json parses");
        file.tools.into_iter().map(compile).collect()
    })
}

/// The position of `name` in [`catalogue`], the key of per-tool counters.
pub fn index_of(name: &str) -> Option<usize> {
    static INDEX: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            catalogue()
                .iter()
                .enumerate()
                .map(|(i, tool)| (tool.name.as_str(), i))
                .collect()
        })
        .get(name)
        .copied()
}

fn compile(entry: CatalogueEntry) -> CatalogueTool {
    let required: Vec<&str> = entry.input_schema["required"]
        .as_array()
        .map(|names| names.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let parameters = entry.input_schema["properties"]
        .as_object()
        .map(|properties| {
            properties
                .iter()
                .map(|(name, schema)| Parameter {
                    name: name.clone(),
                    kind: match schema["type"].as_str() {
                        Some("integer") => ParameterType::Integer,
                        _ => ParameterType::String,
                    },
                    required: required.contains(&name.as_str()),
                    default: schema.get("default").cloned(),
                })
                .collect()
        })
        .unwrap_or_default();
    CatalogueTool {
        name: entry.name,
        summary: entry.summary,
        category: entry.category,
        kind: entry.kind,
        risk: entry.risk,
        input_schema: entry.input_schema,
        parameters,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_copy_matches_shared_catalogue() {
        // `shared/` sits beside the repository (CI clones it there), and this crate's manifest
        // is two levels inside the repository (crates/binance-sim/).
        let shared = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../../shared/binance-tools.json"
        );
        if let Ok(original) = std::fs::read_to_string(shared) {
            assert!(
                original == CATALOGUE_JSON,
                "crates/binance-sim/src/binance-tools.json differs from {shared}; refresh it with \
                 `cp {shared} crates/binance-sim/src/binance-tools.json`"
            );
        }
    }

    #[test]
    fn catalogue_has_the_servers_29_tools_with_unique_names() {
        let tools = catalogue();
        assert_eq!(tools.len(), 29);
        for (i, tool) in tools.iter().enumerate() {
            assert_eq!(
                index_of(&tool.name),
                Some(i),
                "{} is listed twice",
                tool.name
            );
        }
        assert_eq!(index_of("place_order"), None);
    }

    #[test]
    fn parameters_are_read_from_the_schema() {
        let book = &catalogue()[index_of("get_order_book").unwrap()];
        let names: Vec<_> = book.parameters.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["symbol", "depth"]);
        assert!(book.parameters[0].required);
        assert_eq!(book.parameters[1].kind, ParameterType::Integer);
        assert_eq!(book.parameters[1].default, Some(Value::from(10)));

        let historical = &catalogue()[index_of("get_historical_trades").unwrap()];
        let from_id = historical
            .parameters
            .iter()
            .find(|p| p.name == "from_id")
            .unwrap();
        assert_eq!(from_id.default, Some(Value::Null));
    }

    #[test]
    fn stream_tools_are_classified() {
        let kind = |name: &str| catalogue()[index_of(name).unwrap()].kind;
        assert_eq!(kind("subscribe_to_trade_stream"), Kind::StreamOpen);
        assert_eq!(kind("cleanup_all_streams"), Kind::StreamClose);
        assert_eq!(kind("get_price"), Kind::Read);
    }
}
