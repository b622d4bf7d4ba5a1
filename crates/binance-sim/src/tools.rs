//! The 29 tools: each one's simulated Binance call.
//!
//! The real server's tools call Binance and raise `RuntimeError(f"Error fetching ...: HTTP
//! {status} - {body}")` on failure; FastMCP turns that into an `isError` result reading
//! `Error executing tool <name>: <message>`. The texts below keep those phrases, Binance's error
//! body included, so a client (or a policy) sees what it would see against the real server.

use std::sync::{MutexGuard, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

use super::arguments::Arguments;
use super::catalogue::CatalogueTool;
use super::market::{self, BinanceError, Symbol, TickerType};
use super::outcome::ToolOutcome;
use super::sessions::Session;
use super::streams::{StreamAnswer, StreamKind, Subscriptions};

/// Tools that fetch the whole exchange and take a while on the real server: the ones that report
/// progress when the client asks for it.
pub fn is_slow(tool: &str) -> bool {
    matches!(
        tool,
        "get_all_24hr_tickers"
            | "get_all_trading_day_tickers"
            | "get_all_rolling_window_tickers"
            | "get_all_book_tickers"
            | "get_exchange_info"
    )
}

/// Runs one catalogued tool.
pub fn call(tool: &'static CatalogueTool, args: &Arguments<'_>, session: &Session) -> ToolOutcome {
    let symbol = || market::symbol(args.string("symbol"));
    let integer = |name: &str| args.integer(name).unwrap_or_default();
    let ticker_type = || TickerType::parse(args.string("type"));
    let window = || market::window_size_ms(args.string("window_size"));
    match tool.name.as_str() {
        "ping_binance" => ToolOutcome::Data(Value::Bool(true)),
        // The one answer that follows the real clock, as Binance's does.
        "get_server_time" => ToolOutcome::Data(now_ms().into()),
        "get_price" => fetch("Error fetching price: HTTP ", || Ok(symbol()?.price.json())),
        "get_order_book" => fetch("Error fetching order book: ", || {
            market::order_book(symbol()?, integer("depth"))
        }),
        "get_historical_prices" => fetch("Error fetching klines: ", || {
            market::klines(symbol()?, args.string("interval"), integer("limit"))
        }),
        "get_ui_klines" => fetch("Error fetching UI klines: HTTP ", || {
            market::klines(symbol()?, args.string("interval"), integer("limit"))
        }),
        "get_recent_trades" => fetch("Error fetching recent trades: HTTP ", || {
            market::recent_trades(symbol()?, integer("limit"))
        }),
        "get_historical_trades" => fetch("Error fetching historical trades: HTTP ", || {
            market::historical_trades(symbol()?, integer("limit"), args.integer("from_id"))
        }),
        "get_aggregate_trades" => fetch("Error fetching aggregate trades: HTTP ", || {
            market::aggregate_trades(symbol()?, integer("limit"))
        }),
        "get_24hr_ticker" => fetch("Error fetching 24hr ticker: HTTP ", || {
            Ok(market::ticker_24hr(symbol()?))
        }),
        "get_all_24hr_tickers" => ToolOutcome::Data(market::all_24hr_tickers()),
        "get_trading_day_ticker" => fetch("Error fetching trading day ticker: HTTP ", || {
            let symbol = symbol()?;
            Ok(market::trading_day_ticker(symbol, ticker_type()?))
        }),
        "get_all_trading_day_tickers" => fetch("Error fetching trading day ticker: HTTP ", || {
            Ok(market::all_trading_day_tickers(ticker_type()?))
        }),
        "get_rolling_window_ticker" => fetch("Error fetching rolling window ticker: HTTP ", || {
            let symbol = symbol()?;
            Ok(market::rolling_window_ticker(
                symbol,
                window()?,
                ticker_type()?,
            ))
        }),
        "get_all_rolling_window_tickers" => {
            fetch("Error fetching rolling window ticker: HTTP ", || {
                Ok(market::all_rolling_window_tickers(
                    window()?,
                    ticker_type()?,
                ))
            })
        }
        "get_average_price" => fetch("Error fetching average price: HTTP ", || {
            Ok(market::average_price(symbol()?))
        }),
        "get_book_ticker" => fetch("Error fetching book ticker: HTTP ", || {
            Ok(market::book_ticker(symbol()?))
        }),
        "get_all_book_tickers" => ToolOutcome::Data(market::all_book_tickers()),
        "get_exchange_info" => ToolOutcome::Text(exchange_info_text()),
        "get_trading_fees" => ToolOutcome::Data(market::trading_fees()),
        "subscribe_to_trade_stream" => subscribe(session, args, |_| Ok(StreamKind::Trade)),
        "subscribe_to_kline_stream" => subscribe(session, args, |args| {
            StreamKind::kline(args.string("interval")).map_err(|e| e.to_string())
        }),
        "subscribe_to_ticker_stream" => subscribe(session, args, |_| Ok(StreamKind::Ticker)),
        "subscribe_to_book_ticker_stream" => {
            subscribe(session, args, |_| Ok(StreamKind::BookTicker))
        }
        "subscribe_to_depth_stream" => {
            subscribe(session, args, |_| StreamKind::depth(integer("levels")))
        }
        "list_active_subscriptions" => ToolOutcome::Data(streams(session).list()),
        "get_latest_stream_data" => {
            answer(streams(session).next_message(args.string("stream_name")))
        }
        "unsubscribe_from_stream" => {
            answer(streams(session).unsubscribe(args.string("stream_name")))
        }
        "cleanup_all_streams" => ToolOutcome::Data(streams(session).close_all()),
        // Only catalogued tools get here, and every one has an arm above.
        other => ToolOutcome::Failure(format!("Unknown tool: {other}")),
    }
}

/// A simulated Binance REST call; a Binance error becomes the real server's exception text.
fn fetch(context: &str, call: impl FnOnce() -> Result<Value, BinanceError>) -> ToolOutcome {
    match call() {
        Ok(value) => ToolOutcome::Data(value),
        Err(error) => ToolOutcome::Failure(format!("{context}{} - {error}", error.status)),
    }
}

/// Opens a stream for the call's `symbol`. The real server lowercases whatever it is given and
/// never checks it; the simulator accepts any case but only listed symbols, so that a stream
/// always has data.
fn subscribe(
    session: &Session,
    args: &Arguments<'_>,
    kind: impl FnOnce(&Arguments<'_>) -> Result<StreamKind, String>,
) -> ToolOutcome {
    let symbol: &'static Symbol = match market::symbol(&args.string("symbol").to_ascii_uppercase())
    {
        Ok(symbol) => symbol,
        Err(error) => return ToolOutcome::Failure(format!("Error subscribing to stream: {error}")),
    };
    match kind(args) {
        Ok(kind) => ToolOutcome::Data(streams(session).subscribe(symbol, kind)),
        Err(message) => ToolOutcome::Refusal(json!({"status": "error", "message": message})),
    }
}

fn answer(answer: StreamAnswer) -> ToolOutcome {
    match answer {
        Ok(value) => ToolOutcome::Data(value),
        Err(value) => ToolOutcome::Refusal(value),
    }
}

fn streams(session: &Session) -> MutexGuard<'_, Subscriptions> {
    // A panic while holding the lock cannot leave the map half-updated; keep serving.
    session
        .streams
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn exchange_info_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| serde_json::to_string_pretty(market::exchange_info()).unwrap_or_default())
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::super::catalogue::{catalogue, index_of};
    use super::super::sessions::Sessions;
    use super::*;
    use serde_json::Map;

    fn run(session: &Session, name: &str, given: Value) -> ToolOutcome {
        let tool = &catalogue()[index_of(name).unwrap()];
        let given: Map<String, Value> = given.as_object().cloned().unwrap_or_default();
        let args = Arguments::parse(tool, Some(&given)).unwrap();
        call(tool, &args, session)
    }

    fn result(outcome: &ToolOutcome, tool: &str) -> Value {
        let mut out = Vec::new();
        outcome.write_result(tool, &mut out);
        serde_json::from_slice(&out).unwrap()
    }

    #[test]
    fn every_catalogued_tool_answers_with_defaults() {
        let sessions = Sessions::default();
        let session = sessions.open();
        for tool in catalogue() {
            let given = match tool.name.as_str() {
                "get_latest_stream_data" | "unsubscribe_from_stream" => {
                    json!({"stream_name": "btcusdt@trade"})
                }
                _ => json!({"symbol": "BTCUSDT"}),
            };
            let outcome = run(&session, &tool.name, given);
            assert!(
                matches!(outcome, ToolOutcome::Data(_) | ToolOutcome::Text(_)),
                "{} failed: {outcome:?}",
                tool.name
            );
        }
    }

    #[test]
    fn price_is_sent_as_json_text() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let outcome = run(&session, "get_price", json!({"symbol": "BTCUSDT"}));
        assert_eq!(
            result(&outcome, "get_price"),
            json!({"content": [{"type": "text", "text": "65000.12"}], "isError": false})
        );
    }

    #[test]
    fn invalid_symbol_reads_like_the_real_server() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let outcome = run(&session, "get_price", json!({"symbol": "NOPE"}));
        let result = result(&outcome, "get_price");
        assert_eq!(result["isError"], true);
        assert_eq!(
            result["content"][0]["text"],
            r#"Error executing tool get_price: Error fetching price: HTTP 400 - {"code":-1121,"msg":"Invalid symbol."}"#
        );
    }

    #[test]
    fn bad_depth_levels_are_refused() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let outcome = run(
            &session,
            "subscribe_to_depth_stream",
            json!({"symbol": "BTCUSDT", "levels": 7}),
        );
        assert!(matches!(outcome, ToolOutcome::Refusal(_)));
        assert!(
            result(&outcome, "subscribe_to_depth_stream")["content"][0]["text"]
                .as_str()
                .unwrap()
                .contains("Must be 5, 10, or 20")
        );
    }

    #[test]
    fn stream_symbols_are_case_insensitive_like_the_real_server() {
        let sessions = Sessions::default();
        let session = sessions.open();
        let outcome = run(
            &session,
            "subscribe_to_ticker_stream",
            json!({"symbol": "ethusdt"}),
        );
        assert_eq!(
            outcome,
            ToolOutcome::Data(json!({
                "status": "subscribed",
                "stream": "ethusdt@ticker",
                "message": "Subscribed to ticker stream for ethusdt",
            }))
        );
        let outcome = run(
            &session,
            "subscribe_to_ticker_stream",
            json!({"symbol": "nope"}),
        );
        assert!(matches!(outcome, ToolOutcome::Failure(text) if text.contains("-1121")));
    }

    #[test]
    fn slow_tools_are_the_whole_exchange_ones() {
        let slow: Vec<_> = catalogue()
            .iter()
            .filter(|t| is_slow(&t.name))
            .map(|t| t.name.as_str())
            .collect();
        assert_eq!(slow.len(), 5);
        assert!(slow
            .iter()
            .all(|name| name.starts_with("get_all_") || *name == "get_exchange_info"));
    }
}
