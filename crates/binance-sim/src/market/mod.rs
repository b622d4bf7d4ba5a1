//! A simulated Binance spot market: deterministic, realistic numbers in the shapes of Binance's
//! REST API, with no network and no wall clock.
//!
//! Every value is a pure function of (symbol, what is asked, a position in time counted back
//! from [`NOW_MS`]), so the same question always gets the same answer. "Random" numbers come from
//! hashing those inputs ([`uniform`]), never from a generator with state.

mod book;
mod candles;
mod decimal;
mod exchange;
mod symbols;
mod tickers;
mod trades;

pub use book::{best_quote, order_book, order_book_snapshot};
pub use candles::{current_candle, interval_ms, klines, rolling_candle, Candle};
pub use decimal::Decimal;
pub use exchange::{exchange_info, trading_fees};
pub use symbols::{symbol, Symbol, SYMBOLS};
pub use tickers::{
    all_24hr_tickers, all_book_tickers, all_rolling_window_tickers, all_trading_day_tickers,
    average_price, book_ticker, rolling_window_ticker, ticker_24hr, trading_day_ticker,
    window_size_ms, TickerType,
};
pub use trades::{aggregate_trades, historical_trades, recent_trades, trade};

/// The simulated market's "now": 2025-06-02 14:30:00 UTC. Fixed so that data never depends on
/// when it is asked for; mid-day so that the trading-day ticker covers a real window.
pub const NOW_MS: u64 = 1_748_874_600_000;

pub const MINUTE_MS: u64 = 60_000;
pub const DAY_MS: u64 = 86_400_000;

/// An error as Binance's REST API reports it (`{"code":-1121,"msg":"Invalid symbol."}`), with
/// the HTTP status it comes with. The real MCP server puts this text inside its own error.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{{\"code\":{code},\"msg\":\"{msg}\"}}")]
pub struct BinanceError {
    pub status: u16,
    pub code: i32,
    pub msg: String,
}

impl BinanceError {
    pub fn invalid_symbol() -> Self {
        Self {
            status: 400,
            code: -1121,
            msg: "Invalid symbol.".into(),
        }
    }

    pub fn invalid_interval() -> Self {
        Self {
            status: 400,
            code: -1120,
            msg: "Invalid interval.".into(),
        }
    }

    /// Binance's answer to a parameter outside its legal range.
    pub fn illegal_parameter(name: &str, legal: &str) -> Self {
        Self {
            status: 400,
            code: -1100,
            msg: format!(
                "Illegal characters found in parameter '{name}'; legal range is '{legal}'."
            ),
        }
    }

    pub fn malformed_parameter(name: &str) -> Self {
        Self {
            status: 400,
            code: -1102,
            msg: format!(
                "Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
            ),
        }
    }
}

/// Binance's `limit` rule: below 1 is refused, above the maximum is cut to the maximum.
pub fn clamp_limit(limit: i64, max: usize) -> Result<usize, BinanceError> {
    if limit < 1 {
        return Err(BinanceError::illegal_parameter(
            "limit",
            &format!("1-{max}"),
        ));
    }
    Ok(usize::try_from(limit).unwrap_or(max).min(max))
}

/// A well-mixed 64-bit hash of the inputs (splitmix64 finaliser over a running combination).
pub fn mix(parts: &[u64]) -> u64 {
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    for &part in parts {
        state = splitmix(state ^ part);
    }
    state
}

/// A deterministic number in [0, 1) for the inputs.
pub fn uniform(parts: &[u64]) -> f64 {
    (mix(parts) >> 11) as f64 / (1u64 << 53) as f64
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Salts that keep the hash streams of different kinds of data apart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Salt {
    Candle = 1,
    Book = 2,
    Trade = 3,
    Aggregate = 4,
    Average = 5,
    Stream = 6,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_error_renders_as_binance_json() {
        assert_eq!(
            BinanceError::invalid_symbol().to_string(),
            r#"{"code":-1121,"msg":"Invalid symbol."}"#
        );
    }

    #[test]
    fn uniform_is_deterministic_and_in_range() {
        for i in 0..1000 {
            let u = uniform(&[i, 7]);
            assert!((0.0..1.0).contains(&u));
            assert_eq!(u, uniform(&[i, 7]));
        }
        assert_ne!(uniform(&[1, 2]), uniform(&[2, 1]));
    }

    #[test]
    fn limits_follow_binance_rules() {
        assert_eq!(clamp_limit(20, 1000), Ok(20));
        assert_eq!(clamp_limit(5000, 1000), Ok(1000));
        assert!(clamp_limit(0, 1000).is_err());
        assert!(clamp_limit(-3, 1000).is_err());
    }
}
