//! Simulated WebSocket streams. The real server opens Binance WebSocket connections and keeps
//! the latest message of each; here a subscription is a name and a sequence number, and each
//! read of `get_latest_stream_data` generates the stream's next message (in Binance's stream
//! payload shapes) from that number, so ticks advance per read yet replay identically.
//!
//! Unlike the real server, whose subscriptions are global to the process, each MCP session has
//! its own, and they end with it.

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use super::market::{
    best_quote, current_candle, interval_ms, order_book_snapshot, rolling_candle, trade, uniform,
    BinanceError, Decimal, Symbol, DAY_MS, NOW_MS,
};

/// Simulated time between two messages of a stream.
const TICK_MS: u64 = 250;

/// What a stream carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamKind {
    Trade,
    Kline { interval: String, period_ms: u64 },
    Ticker,
    BookTicker,
    Depth { levels: u8 },
}

impl StreamKind {
    pub fn kline(interval: &str) -> Result<Self, BinanceError> {
        Ok(Self::Kline {
            interval: interval.to_owned(),
            period_ms: interval_ms(interval)?,
        })
    }

    /// Partial book depth streams exist for 5, 10 and 20 levels only.
    pub fn depth(levels: i64) -> Result<Self, String> {
        match levels {
            5 | 10 | 20 => Ok(Self::Depth {
                levels: levels as u8,
            }),
            _ => Err(format!(
                "Invalid depth levels: {levels}. Must be 5, 10, or 20."
            )),
        }
    }

    /// The part of the stream name after `symbol@`.
    fn suffix(&self) -> String {
        match self {
            Self::Trade => "trade".into(),
            Self::Kline { interval, .. } => format!("kline_{interval}"),
            Self::Ticker => "ticker".into(),
            Self::BookTicker => "bookTicker".into(),
            Self::Depth { levels } => format!("depth{levels}"),
        }
    }

    /// How the real server's messages describe the stream: "trade stream for btcusdt".
    fn describe(&self, symbol: &str) -> String {
        match self {
            Self::Trade => format!("trade stream for {symbol}"),
            Self::Kline { interval, .. } => {
                format!("kline stream for {symbol} with interval {interval}")
            }
            Self::Ticker => format!("ticker stream for {symbol}"),
            Self::BookTicker => format!("book ticker stream for {symbol}"),
            Self::Depth { levels } => format!("depth stream for {symbol} with {levels} levels"),
        }
    }
}

#[derive(Debug)]
struct Subscription {
    kind: StreamKind,
    symbol: &'static Symbol,
    /// Messages generated so far; the next read generates message `sent + 1`.
    sent: u64,
}

/// A tool's answer: the body, and whether it reports a failure (`isError`).
pub type StreamAnswer = Result<Value, Value>;

/// One session's streams, by name (sorted, so listings are stable).
#[derive(Debug, Default)]
pub struct Subscriptions {
    streams: BTreeMap<String, Subscription>,
}

impl Subscriptions {
    pub fn subscribe(&mut self, symbol: &'static Symbol, kind: StreamKind) -> Value {
        let lower = symbol.stream_prefix();
        let name = format!("{lower}@{}", kind.suffix());
        let described = kind.describe(&lower);
        if self.streams.contains_key(&name) {
            return json!({
                "status": "already_subscribed",
                "stream": name,
                "message": format!("Already subscribed to {described}"),
            });
        }
        self.streams.insert(
            name.clone(),
            Subscription {
                kind,
                symbol,
                sent: 0,
            },
        );
        json!({"status": "subscribed", "stream": name, "message": format!("Subscribed to {described}")})
    }

    /// The real server's listing: `{"active_subscriptions": {name: {type, symbol, ...}}, "count"}`.
    pub fn list(&self) -> Value {
        let active: Map<String, Value> = self
            .streams
            .iter()
            .map(|(name, sub)| {
                let symbol = sub.symbol.stream_prefix();
                let details = match &sub.kind {
                    StreamKind::Trade => json!({"type": "trade", "symbol": symbol}),
                    StreamKind::Kline { interval, .. } => {
                        json!({"type": "kline", "symbol": symbol, "interval": interval})
                    }
                    StreamKind::Ticker => json!({"type": "ticker", "symbol": symbol}),
                    StreamKind::BookTicker => json!({"type": "bookTicker", "symbol": symbol}),
                    StreamKind::Depth { levels } => {
                        json!({"type": "depth", "symbol": symbol, "levels": levels})
                    }
                };
                (name.clone(), details)
            })
            .collect();
        json!({"active_subscriptions": active, "count": self.streams.len()})
    }

    /// The stream's next message.
    pub fn next_message(&mut self, name: &str) -> StreamAnswer {
        let sub = self
            .streams
            .get_mut(name)
            .ok_or_else(|| not_subscribed(name))?;
        sub.sent += 1;
        Ok(
            json!({"status": "success", "stream": name, "data": message(sub.symbol, &sub.kind, sub.sent)}),
        )
    }

    pub fn unsubscribe(&mut self, name: &str) -> StreamAnswer {
        self.streams
            .remove(name)
            .ok_or_else(|| not_subscribed(name))?;
        Ok(
            json!({"status": "unsubscribed", "stream": name, "message": format!("Unsubscribed from stream: {name}")}),
        )
    }

    pub fn close_all(&mut self) -> Value {
        let closed = self.streams.len();
        self.streams.clear();
        json!({
            "status": "cleaned_up",
            "closed": closed,
            "message": format!("Closed {closed} stream(s) and cleaned up their resources"),
        })
    }
}

fn not_subscribed(name: &str) -> Value {
    json!({"status": "error", "message": format!("No active subscription for stream: {name}")})
}

/// The price at message `n`: a gentle wobble of a few hundredths of a percent around the last price.
fn price_at(symbol: &Symbol, n: u64) -> Decimal {
    let wobble = 0.0004 * (0.7 * n as f64 + symbol.seed as f64).sin();
    let noise =
        0.0002 * (2.0 * uniform(&[super::market::Salt::Stream as u64, symbol.seed, n]) - 1.0);
    symbol.on_tick(symbol.price.to_f64() * (1.0 + wobble + noise))
}

/// Message `n` (1-based) of a stream, in Binance's WebSocket payload shape.
fn message(symbol: &Symbol, kind: &StreamKind, n: u64) -> Value {
    let event_time = NOW_MS + n * TICK_MS;
    let price = price_at(symbol, n);
    match kind {
        StreamKind::Trade => {
            let id = symbol.last_trade_id + n;
            let shape = trade(symbol, id);
            json!({
                "e": "trade", "E": event_time, "s": symbol.name, "t": id,
                "p": price.binance(), "q": shape.qty.binance(), "T": event_time - 1,
                "m": shape.buyer_maker, "M": true,
            })
        }
        StreamKind::Kline {
            interval,
            period_ms,
        } => {
            let candle = current_candle(symbol, *period_ms);
            let grown = Decimal::from_f64(candle.volume.to_f64() * (1.0 + 0.001 * n as f64), 8);
            json!({
                "e": "kline", "E": event_time, "s": symbol.name,
                "k": {
                    "t": candle.open_time, "T": candle.close_time, "s": symbol.name, "i": interval,
                    "f": symbol.last_trade_id.saturating_sub(candle.trades), "L": symbol.last_trade_id + n,
                    "o": candle.open.binance(), "c": price.binance(),
                    "h": candle.high.max(price).binance(), "l": candle.low.min(price).binance(),
                    "v": grown.binance(), "n": candle.trades + n, "x": false,
                    "q": Decimal::from_f64(grown.to_f64() * price.to_f64(), 8).binance(),
                    "V": Decimal::from_f64(grown.to_f64() * 0.5, 8).binance(),
                    "Q": Decimal::from_f64(grown.to_f64() * 0.5 * price.to_f64(), 8).binance(),
                    "B": "0",
                },
            })
        }
        StreamKind::Ticker => {
            let day = rolling_candle(symbol, DAY_MS);
            let quote = best_quote(symbol);
            let open = day.open.to_f64();
            let change = price.minus(day.open);
            json!({
                "e": "24hrTicker", "E": event_time, "s": symbol.name,
                "p": change.binance(), "P": format!("{:.3}", change.to_f64() / open * 100.0),
                "w": Decimal::from_f64((open + price.to_f64()) / 2.0, 8).binance(),
                "x": day.open.binance(), "c": price.binance(), "Q": trade(symbol, symbol.last_trade_id).qty.binance(),
                "b": price.binance(), "B": quote.bid_qty.binance(),
                "a": price.offset(1).binance(), "A": quote.ask_qty.binance(),
                "o": day.open.binance(), "h": day.high.max(price).binance(), "l": day.low.min(price).binance(),
                "v": day.volume.binance(),
                "q": Decimal::from_f64(day.volume.to_f64() * price.to_f64(), 8).binance(),
                "O": event_time - DAY_MS, "C": event_time,
                "F": symbol.last_trade_id.saturating_sub(day.trades), "L": symbol.last_trade_id + n,
                "n": day.trades + n,
            })
        }
        StreamKind::BookTicker => {
            let quote = best_quote(symbol);
            json!({
                "u": symbol.last_trade_id * 3 + n, "s": symbol.name,
                "b": price.binance(), "B": quote.bid_qty.binance(),
                "a": price.offset(1).binance(), "A": quote.ask_qty.binance(),
            })
        }
        StreamKind::Depth { levels } => order_book_snapshot(symbol, usize::from(*levels), n, price),
    }
}

#[cfg(test)]
mod tests {
    use super::super::market::symbol;
    use super::*;

    #[test]
    fn subscription_lifecycle() {
        let btc = symbol("BTCUSDT").unwrap();
        let mut streams = Subscriptions::default();
        let answer = streams.subscribe(btc, StreamKind::Trade);
        assert_eq!(answer["stream"], "btcusdt@trade");
        assert_eq!(answer["status"], "subscribed");
        assert_eq!(
            streams.subscribe(btc, StreamKind::Trade)["status"],
            "already_subscribed"
        );
        streams.subscribe(btc, StreamKind::kline("1m").unwrap());
        streams.subscribe(btc, StreamKind::depth(10).unwrap());
        let listed = streams.list();
        assert_eq!(listed["count"], 3);
        assert_eq!(
            listed["active_subscriptions"]["btcusdt@kline_1m"]["interval"],
            "1m"
        );
        assert_eq!(
            listed["active_subscriptions"]["btcusdt@depth10"]["levels"],
            10
        );

        assert!(streams.unsubscribe("btcusdt@trade").is_ok());
        assert!(streams.next_message("btcusdt@trade").is_err());
        assert_eq!(streams.close_all()["closed"], 2);
        assert_eq!(streams.list()["count"], 0);
    }

    #[test]
    fn messages_advance_per_read_and_replay_identically() {
        let eth = symbol("ETHUSDT").unwrap();
        let mut first = Subscriptions::default();
        let mut second = Subscriptions::default();
        first.subscribe(eth, StreamKind::Trade);
        second.subscribe(eth, StreamKind::Trade);
        let a1 = first.next_message("ethusdt@trade").unwrap();
        let a2 = first.next_message("ethusdt@trade").unwrap();
        assert_ne!(a1, a2);
        assert_eq!(
            a2["data"]["t"].as_u64().unwrap(),
            a1["data"]["t"].as_u64().unwrap() + 1
        );
        assert_eq!(second.next_message("ethusdt@trade").unwrap(), a1);
    }

    #[test]
    fn every_kind_produces_its_binance_payload() {
        let sol = symbol("SOLUSDT").unwrap();
        let mut streams = Subscriptions::default();
        for kind in [
            StreamKind::Trade,
            StreamKind::kline("5m").unwrap(),
            StreamKind::Ticker,
            StreamKind::BookTicker,
            StreamKind::depth(5).unwrap(),
        ] {
            streams.subscribe(sol, kind);
        }
        assert_eq!(
            streams.next_message("solusdt@kline_5m").unwrap()["data"]["k"]["i"],
            "5m"
        );
        assert_eq!(
            streams.next_message("solusdt@ticker").unwrap()["data"]["e"],
            "24hrTicker"
        );
        assert!(streams.next_message("solusdt@bookTicker").unwrap()["data"]["b"].is_string());
        let depth = streams.next_message("solusdt@depth5").unwrap();
        assert_eq!(depth["data"]["bids"].as_array().unwrap().len(), 5);
    }

    #[test]
    fn depth_levels_and_intervals_are_checked() {
        assert!(StreamKind::depth(7)
            .unwrap_err()
            .contains("Must be 5, 10, or 20"));
        assert!(StreamKind::kline("2m").is_err());
    }
}
