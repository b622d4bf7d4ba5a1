//! Candlesticks: a smooth, symbol-specific price path counted back from the last price, so the
//! newest candle always closes at [`Symbol::price`] and older ones wander realistically.

use serde_json::{json, Value};

use super::{clamp_limit, uniform, BinanceError, Decimal, Salt, Symbol, DAY_MS, MINUTE_MS, NOW_MS};

/// One OHLCV candle.
#[derive(Debug, Clone, PartialEq)]
pub struct Candle {
    pub open_time: u64,
    pub close_time: u64,
    pub open: Decimal,
    pub high: Decimal,
    pub low: Decimal,
    pub close: Decimal,
    /// Base-asset volume, at 8 decimals.
    pub volume: Decimal,
    pub trades: u64,
}

/// Binance's kline intervals and their lengths (a month counts as 30 days here).
const INTERVALS: &[(&str, u64)] = &[
    ("1s", 1_000),
    ("1m", MINUTE_MS),
    ("3m", 3 * MINUTE_MS),
    ("5m", 5 * MINUTE_MS),
    ("15m", 15 * MINUTE_MS),
    ("30m", 30 * MINUTE_MS),
    ("1h", 60 * MINUTE_MS),
    ("2h", 120 * MINUTE_MS),
    ("4h", 240 * MINUTE_MS),
    ("6h", 360 * MINUTE_MS),
    ("8h", 480 * MINUTE_MS),
    ("12h", 720 * MINUTE_MS),
    ("1d", DAY_MS),
    ("3d", 3 * DAY_MS),
    ("1w", 7 * DAY_MS),
    ("1M", 30 * DAY_MS),
];

/// The length of a Binance kline interval such as `"15m"`, or -1120 "Invalid interval.".
pub fn interval_ms(name: &str) -> Result<u64, BinanceError> {
    INTERVALS
        .iter()
        .find(|(interval, _)| *interval == name)
        .map(|(_, ms)| *ms)
        .ok_or_else(BinanceError::invalid_interval)
}

/// How far the price typically moves over one period of `period_ms` (a random walk grows with
/// the square root of time: ~0.08% a minute, ~3% a day).
fn amplitude(period_ms: u64) -> f64 {
    (0.0008 * (period_ms as f64 / MINUTE_MS as f64).sqrt()).min(0.25)
}

/// The path's shape `k` periods back: two slow waves and some hashed noise, all in [-1.1, 1.1].
fn wave(symbol: &Symbol, period_ms: u64, k: u64) -> f64 {
    let phase = symbol.seed as f64 * 1.7;
    let noise = uniform(&[Salt::Candle as u64, symbol.seed, period_ms, k]);
    let k = k as f64;
    0.6 * (0.23 * k + phase).sin()
        + 0.3 * (0.061 * k + 2.0 * phase).sin()
        + 0.2 * (2.0 * noise - 1.0)
}

/// The close `k` periods back, relative to the last price (exactly 1 at k = 0).
fn close_factor(symbol: &Symbol, period_ms: u64, k: u64) -> f64 {
    let moved = amplitude(period_ms) * (wave(symbol, period_ms, k) - wave(symbol, period_ms, 0));
    (1.0 + moved).max(0.05)
}

/// The candle of `period_ms` that opened at `open_time`, `k` periods before the newest one.
/// The newest candle (k = 0) is still open at [`NOW_MS`], so its volume is partial.
fn candle_at(symbol: &Symbol, period_ms: u64, k: u64, open_time: u64) -> Candle {
    let last = symbol.price.to_f64();
    let open = symbol.on_tick(last * close_factor(symbol, period_ms, k + 1));
    let close = if k == 0 {
        symbol.price
    } else {
        symbol.on_tick(last * close_factor(symbol, period_ms, k))
    };
    let noise = |part: u64| uniform(&[Salt::Candle as u64, symbol.seed, period_ms, k, part]);
    let reach = amplitude(period_ms) * 0.4;
    let high = symbol.on_tick(open.max(close).to_f64() * (1.0 + reach * noise(1)));
    let low = symbol.on_tick(open.min(close).to_f64() * (1.0 - reach * noise(2)));

    let elapsed = if k == 0 {
        NOW_MS.saturating_sub(open_time).min(period_ms)
    } else {
        period_ms
    };
    let share_of_day = elapsed as f64 / DAY_MS as f64;
    let activity = 0.6 + 0.8 * noise(3);
    Candle {
        open_time,
        close_time: open_time + period_ms - 1,
        open,
        high: high.max(open.max(close)),
        low: low.min(open.min(close)),
        close,
        volume: Decimal::from_f64(symbol.daily_volume * share_of_day * activity, 8),
        trades: (symbol.trades_per_day as f64 * share_of_day * activity) as u64,
    }
}

/// The last `limit` candles of `interval`, oldest first, as the real server returns them: Binance's
/// arrays turned into `{open_time, open, high, low, close, volume}` with floats.
pub fn klines(symbol: &Symbol, interval: &str, limit: i64) -> Result<Value, BinanceError> {
    let period = interval_ms(interval)?;
    let limit = clamp_limit(limit, 1000)?;
    let newest_open = NOW_MS - NOW_MS % period;
    let candles = (0..limit as u64)
        .rev()
        .filter_map(|k| {
            newest_open
                .checked_sub(k * period)
                .map(|open| candle_at(symbol, period, k, open))
        })
        .map(|c| {
            json!({
                "open_time": c.open_time,
                "open": c.open.json(),
                "high": c.high.json(),
                "low": c.low.json(),
                "close": c.close.json(),
                "volume": c.volume.json(),
            })
        })
        .collect();
    Ok(Value::Array(candles))
}

/// The candle of `period_ms` still open at [`NOW_MS`] (what a kline stream starts from).
pub fn current_candle(symbol: &Symbol, period_ms: u64) -> Candle {
    candle_at(symbol, period_ms, 0, NOW_MS - NOW_MS % period_ms)
}

/// Statistics of the window `[NOW_MS - window_ms, NOW_MS]` as one candle: what the rolling and
/// 24-hour tickers report.
pub fn rolling_candle(symbol: &Symbol, window_ms: u64) -> Candle {
    let mut candle = candle_at(symbol, window_ms, 0, NOW_MS - window_ms);
    candle.close_time = NOW_MS;
    candle
}

#[cfg(test)]
mod tests {
    use super::super::symbol;
    use super::*;

    #[test]
    fn newest_candle_closes_at_the_last_price_and_candles_chain() {
        let btc = symbol("BTCUSDT").unwrap();
        let candles = klines(btc, "1h", 50).unwrap();
        let candles = candles.as_array().unwrap();
        assert_eq!(candles.len(), 50);
        assert_eq!(candles[49]["close"], btc.price.json());
        for pair in candles.windows(2) {
            assert_eq!(
                pair[0]["close"], pair[1]["open"],
                "each candle opens at the previous close"
            );
            assert_eq!(
                pair[1]["open_time"].as_u64().unwrap() - pair[0]["open_time"].as_u64().unwrap(),
                3_600_000
            );
        }
    }

    #[test]
    fn candles_are_well_formed_and_realistic() {
        for s in super::super::SYMBOLS {
            for (interval, period) in INTERVALS {
                let k = 3;
                let c = candle_at(s, *period, k, 0);
                assert!(c.low <= c.open && c.low <= c.close, "{} {interval}", s.name);
                assert!(
                    c.high >= c.open && c.high >= c.close,
                    "{} {interval}",
                    s.name
                );
                assert!(c.low.units > 0);
                let drift = c.close.to_f64() / s.price.to_f64();
                assert!(
                    (0.3..3.0).contains(&drift),
                    "{} {interval} drifted to {drift}",
                    s.name
                );
            }
        }
    }

    #[test]
    fn intervals_and_limits_are_checked() {
        let eth = symbol("ETHUSDT").unwrap();
        assert_eq!(
            klines(eth, "7m", 10).unwrap_err(),
            BinanceError::invalid_interval()
        );
        assert!(klines(eth, "1d", 0).is_err());
        assert_eq!(
            klines(eth, "1d", 5000).unwrap().as_array().unwrap().len(),
            1000
        );
    }

    #[test]
    fn same_question_same_answer() {
        let sol = symbol("SOLUSDT").unwrap();
        assert_eq!(klines(sol, "5m", 30), klines(sol, "5m", 30));
    }
}
