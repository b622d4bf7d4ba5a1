//! `policies/binance.json` against the decisions it is meant to make, and against the Binance MCP
//! server's own tool list (`../shared/binance-tools.json`), so that a renamed or new tool, or a
//! misspelled argument, is caught here rather than by a denied agent.

use std::time::Duration;

use serde_json::{json, Map, Value};

use super::*;

const BINANCE_POLICY: &[u8] = include_bytes!("../../policies/binance.json");
const SERVER_TOOLS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/binance-tools.json");

fn policy() -> CompiledPolicy {
    CompiledPolicy::from_json_slice(BINANCE_POLICY).unwrap_or_else(|errors| panic!("{errors}"))
}

fn call<'a>(tool: &'a str, arguments: &'a Value) -> Call<'a> {
    Call {
        agent: Some("research-bot"),
        method: "tools/call",
        tool: Some(tool),
        arguments: Some(arguments),
    }
}

/// The server's tools, or `None` (and a note) when the shared file is not there.
fn server_tools() -> Option<Vec<Value>> {
    let Ok(text) = std::fs::read_to_string(SERVER_TOOLS) else {
        eprintln!("skipped: {SERVER_TOOLS} is absent");
        return None;
    };
    let file: Value = serde_json::from_str(&text).unwrap();
    Some(file["tools"].as_array().unwrap().clone())
}

fn limit_of(decision: &Decision<'_>) -> (u32, Duration) {
    let limits = match decision {
        Decision::Allow { limits, .. } | Decision::Approval { limits, .. } => limits,
        other => panic!("{other:?}"),
    };
    let own = limits.iter().next().unwrap();
    (own.max(), own.window())
}

#[test]
fn single_symbol_market_data_is_allowed_within_its_caps() {
    let policy = policy();
    let book = json!({"symbol": "BTCUSDT", "depth": 100});
    assert!(matches!(
        policy.decide(&call("get_order_book", &book)),
        Decision::Allow {
            rule: "tools.get_order_book",
            ..
        }
    ));
    for (tool, arguments) in [
        (
            "get_order_book",
            json!({"symbol": "BTCUSDT", "depth": 5000}),
        ),
        ("get_price", json!({"symbol": "btcusdt"})),
        ("get_price", json!({"symbol": "BTC/USDT"})),
        ("get_price", json!({})),
        (
            "get_price",
            json!({"symbol": "BTCUSDT", "url": "http://attacker"}),
        ),
        (
            "get_historical_prices",
            json!({"symbol": "ETHUSDT", "interval": "2m"}),
        ),
        (
            "get_historical_prices",
            json!({"symbol": "ETHUSDT", "limit": 1000}),
        ),
        (
            "get_recent_trades",
            json!({"symbol": "ETHUSDT", "limit": 0}),
        ),
        (
            "subscribe_to_depth_stream",
            json!({"symbol": "ETHUSDT", "levels": 50}),
        ),
    ] {
        assert!(
            matches!(
                policy.decide(&call(tool, &arguments)),
                Decision::InvalidArguments { .. }
            ),
            "{tool} {arguments}"
        );
    }
}

#[test]
fn all_symbol_tools_are_allowed_twice_a_minute() {
    let policy = policy();
    let none = json!({});
    for tool in [
        "get_all_24hr_tickers",
        "get_all_trading_day_tickers",
        "get_all_rolling_window_tickers",
        "get_all_book_tickers",
    ] {
        assert_eq!(
            limit_of(&policy.decide(&call(tool, &none))),
            (2, Duration::from_secs(60)),
            "{tool}"
        );
    }
}

#[test]
fn subscriptions_wait_for_a_person_and_are_capped() {
    let policy = policy();
    let symbol = json!({"symbol": "BTCUSDT"});
    for tool in [
        "subscribe_to_trade_stream",
        "subscribe_to_kline_stream",
        "subscribe_to_ticker_stream",
        "subscribe_to_book_ticker_stream",
        "subscribe_to_depth_stream",
    ] {
        let decision = policy.decide(&call(tool, &symbol));
        assert!(
            matches!(decision, Decision::Approval { .. }),
            "{tool}: {decision:?}"
        );
        assert_eq!(
            limit_of(&decision),
            (5, Duration::from_secs(3600)),
            "{tool}"
        );
    }
    let stream = json!({"stream_name": "btcusdt@trade"});
    for tool in ["get_latest_stream_data", "unsubscribe_from_stream"] {
        assert!(
            matches!(policy.decide(&call(tool, &stream)), Decision::Allow { .. }),
            "{tool}"
        );
    }
}

#[test]
fn anything_else_is_denied_by_default() {
    let policy = policy();
    let order = json!({"symbol": "BTCUSDT", "side": "BUY", "quantity": 1});
    assert_eq!(
        policy.decide(&call("place_order", &order)),
        Decision::UnknownTool
    );
    assert!(!policy.tool_visible(None, "place_order"));
    let read = Call {
        agent: None,
        method: "resources/read",
        tool: None,
        arguments: None,
    };
    assert!(matches!(
        policy.decide(&read),
        Decision::Deny {
            rule: "default",
            ..
        }
    ));
}

#[test]
fn every_binance_tool_has_a_rule_and_every_rule_a_tool() {
    let Some(tools) = server_tools() else { return };
    let policy = policy();
    let names: Vec<&str> = tools.iter().map(|t| t["name"].as_str().unwrap()).collect();
    assert_eq!(names.len(), 29);
    let ruled: Vec<&str> = policy.tool_rule_names().collect();
    for name in &names {
        assert!(
            ruled.contains(name),
            "{name} has no rule in policies/binance.json"
        );
    }
    for name in &ruled {
        assert!(
            names.contains(name),
            "policies/binance.json has a rule for {name}, which the server does not have"
        );
    }
}

/// Each rule's argument schema names only the server's own arguments, and accepts a call that
/// spells out the server's defaults (with a valid symbol or stream name where one is required).
#[test]
fn argument_schemas_fit_the_servers_input_schemas() {
    let Some(tools) = server_tools() else { return };
    let policy = policy();
    let file: Value = serde_json::from_slice(BINANCE_POLICY).unwrap();
    for tool in &tools {
        let name = tool["name"].as_str().unwrap();
        let server = tool["inputSchema"]["properties"].as_object().unwrap();
        let ours = file["tools"][name]["arguments"]["properties"]
            .as_object()
            .unwrap();
        for argument in ours.keys() {
            assert!(
                server.contains_key(argument),
                "{name}: the server has no argument {argument:?}"
            );
        }
        let mut arguments = Map::new();
        for (argument, schema) in server {
            let example = match (argument.as_str(), schema.get("default")) {
                ("symbol", _) => json!("BTCUSDT"),
                ("stream_name", _) => json!("btcusdt@trade"),
                (_, Some(default)) if !default.is_null() => default.clone(),
                _ => continue,
            };
            arguments.insert(argument.clone(), example);
        }
        let arguments = Value::Object(arguments);
        let decision = policy.decide(&call(name, &arguments));
        assert!(
            matches!(decision, Decision::Allow { .. } | Decision::Approval { .. }),
            "{name} {arguments}: {decision:?}"
        );
    }
}
