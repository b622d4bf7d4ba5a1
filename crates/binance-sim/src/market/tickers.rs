//! Tickers: 24-hour, trading-day and rolling-window statistics, book tickers and the average
//! price, all derived from the same candles, book and trades.
//!
//! Two renderings exist because the real server has two: for one symbol it rebuilds Binance's
//! object with Python floats (and only the fields it names); for all symbols it passes Binance's
//! JSON through, decimals as strings.

use serde_json::{Map, Value};

use super::{
    best_quote, rolling_candle, trade, uniform, BinanceError, Candle, Decimal, Salt, Symbol,
    DAY_MS, MINUTE_MS, NOW_MS, SYMBOLS,
};

/// Binance's `type` parameter of the trading-day and rolling-window tickers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TickerType {
    Full,
    Mini,
}

impl TickerType {
    pub fn parse(name: &str) -> Result<Self, BinanceError> {
        match name {
            "FULL" => Ok(Self::Full),
            "MINI" => Ok(Self::Mini),
            _ => Err(BinanceError::malformed_parameter("type")),
        }
    }
}

/// The statistics of one window, every ticker's raw material.
struct Stats {
    symbol: &'static Symbol,
    candle: Candle,
    change: Decimal,
    change_percent: Decimal,
    weighted_average: Decimal,
    quote_volume: Decimal,
    first_id: u64,
    last_id: u64,
    count: u64,
}

fn stats(symbol: &'static Symbol, window_ms: u64) -> Stats {
    let candle = rolling_candle(symbol, window_ms);
    let open = candle.open.to_f64();
    let weighted =
        (open + candle.high.to_f64() + candle.low.to_f64() + 2.0 * candle.close.to_f64()) / 5.0;
    let count = candle.trades.max(1);
    Stats {
        symbol,
        change: candle.close.minus(candle.open),
        change_percent: Decimal::from_f64((candle.close.to_f64() - open) / open * 100.0, 3),
        weighted_average: Decimal::from_f64(weighted, 8),
        quote_volume: Decimal::from_f64(candle.volume.to_f64() * weighted, 8),
        first_id: symbol.last_trade_id.saturating_sub(count - 1),
        last_id: symbol.last_trade_id,
        count,
        candle,
    }
}

/// How one ticker spells its decimals: Python floats (the real server's own dicts) or Binance's
/// strings (passed through).
#[derive(Clone, Copy)]
enum Numbers {
    Float,
    Binance,
}

impl Numbers {
    fn of(self, value: Decimal) -> Value {
        match self {
            Numbers::Float => value.json(),
            Numbers::Binance => value.binance_json(),
        }
    }
}

/// Binance's `/api/v3/ticker/24hr` object. The real server's single-symbol dict drops
/// `firstId`/`lastId`.
fn ticker_24hr_object(s: &Stats, numbers: Numbers) -> Value {
    let quote = best_quote(s.symbol);
    let last_qty = trade(s.symbol, s.last_id).qty;
    let c = &s.candle;
    let mut object = Map::new();
    object.insert("symbol".into(), s.symbol.name.into());
    object.insert("priceChange".into(), numbers.of(s.change));
    object.insert(
        "priceChangePercent".into(),
        percent(s.change_percent, numbers),
    );
    object.insert("weightedAvgPrice".into(), numbers.of(s.weighted_average));
    object.insert("prevClosePrice".into(), numbers.of(c.open));
    object.insert("lastPrice".into(), numbers.of(c.close));
    object.insert("lastQty".into(), numbers.of(last_qty));
    object.insert("bidPrice".into(), numbers.of(quote.bid));
    object.insert("bidQty".into(), numbers.of(quote.bid_qty));
    object.insert("askPrice".into(), numbers.of(quote.ask));
    object.insert("askQty".into(), numbers.of(quote.ask_qty));
    object.insert("openPrice".into(), numbers.of(c.open));
    object.insert("highPrice".into(), numbers.of(c.high));
    object.insert("lowPrice".into(), numbers.of(c.low));
    object.insert("volume".into(), numbers.of(c.volume));
    object.insert("quoteVolume".into(), numbers.of(s.quote_volume));
    object.insert("openTime".into(), c.open_time.into());
    object.insert("closeTime".into(), c.close_time.into());
    if let Numbers::Binance = numbers {
        object.insert("firstId".into(), s.first_id.into());
        object.insert("lastId".into(), s.last_id.into());
    }
    object.insert("count".into(), s.count.into());
    Value::Object(object)
}

/// Binance writes the percentage with 3 decimals (`"-1.234"`), not 8.
fn percent(value: Decimal, numbers: Numbers) -> Value {
    match numbers {
        Numbers::Float => value.json(),
        Numbers::Binance => Value::String(format!("{:.3}", value.to_f64())),
    }
}

/// Binance's trading-day / rolling-window object (FULL or MINI), passed through by the real server
/// for all symbols.
fn window_object_raw(s: &Stats, ticker: TickerType) -> Value {
    let c = &s.candle;
    let mut object = Map::new();
    object.insert("symbol".into(), s.symbol.name.into());
    if ticker == TickerType::Full {
        object.insert("priceChange".into(), s.change.binance_json());
        object.insert(
            "priceChangePercent".into(),
            percent(s.change_percent, Numbers::Binance),
        );
        object.insert("weightedAvgPrice".into(), s.weighted_average.binance_json());
    }
    object.insert("openPrice".into(), c.open.binance_json());
    object.insert("highPrice".into(), c.high.binance_json());
    object.insert("lowPrice".into(), c.low.binance_json());
    object.insert("lastPrice".into(), c.close.binance_json());
    object.insert("volume".into(), c.volume.binance_json());
    object.insert("quoteVolume".into(), s.quote_volume.binance_json());
    object.insert("openTime".into(), c.open_time.into());
    object.insert("closeTime".into(), c.close_time.into());
    object.insert("firstId".into(), s.first_id.into());
    object.insert("lastId".into(), s.last_id.into());
    object.insert("count".into(), s.count.into());
    Value::Object(object)
}

/// The real server's single-symbol trading-day / rolling-window dict: a fixed set of fields as
/// floats, plus six more for FULL. (Binance's MINI lacks `priceChange` and FULL lacks `lastQty`,
/// so the real server likely raises KeyError here; the simulator answers with what it meant.)
fn window_object_server(s: &Stats, ticker: TickerType) -> Value {
    let c = &s.candle;
    let mut object = Map::new();
    object.insert("symbol".into(), s.symbol.name.into());
    object.insert("priceChange".into(), s.change.json());
    object.insert("priceChangePercent".into(), s.change_percent.json());
    object.insert("openPrice".into(), c.open.json());
    object.insert("highPrice".into(), c.high.json());
    object.insert("lowPrice".into(), c.low.json());
    object.insert("lastPrice".into(), c.close.json());
    object.insert("volume".into(), c.volume.json());
    object.insert("quoteVolume".into(), s.quote_volume.json());
    object.insert("openTime".into(), c.open_time.into());
    object.insert("closeTime".into(), c.close_time.into());
    object.insert("firstId".into(), s.first_id.into());
    object.insert("lastId".into(), s.last_id.into());
    object.insert("count".into(), s.count.into());
    if ticker == TickerType::Full {
        let quote = best_quote(s.symbol);
        object.insert("weightedAvgPrice".into(), s.weighted_average.json());
        object.insert("lastQty".into(), trade(s.symbol, s.last_id).qty.json());
        object.insert("bidPrice".into(), quote.bid.json());
        object.insert("bidQty".into(), quote.bid_qty.json());
        object.insert("askPrice".into(), quote.ask.json());
        object.insert("askQty".into(), quote.ask_qty.json());
    }
    Value::Object(object)
}

/// The current trading day (UTC) so far: opens at midnight, closes at the day's last millisecond.
fn trading_day_stats(symbol: &'static Symbol) -> Stats {
    let midnight = NOW_MS - NOW_MS % DAY_MS;
    let mut s = stats(symbol, NOW_MS - midnight);
    s.candle.close_time = midnight + DAY_MS - 1;
    s
}

/// Binance's `windowSize`: 1m..59m, 1h..23h or 1d..7d.
pub fn window_size_ms(window: &str) -> Result<u64, BinanceError> {
    let illegal = || BinanceError::illegal_parameter("windowSize", "1m-59m, 1h-23h, 1d-7d");
    let split = window
        .len()
        .checked_sub(1)
        .filter(|&i| window.is_char_boundary(i))
        .ok_or_else(illegal)?;
    let (count, unit) = window.split_at(split);
    let count: u64 = count.parse().map_err(|_| illegal())?;
    let (max, unit_ms) = match unit {
        "m" => (59, MINUTE_MS),
        "h" => (23, 60 * MINUTE_MS),
        "d" => (7, DAY_MS),
        _ => return Err(illegal()),
    };
    if !(1..=max).contains(&count) {
        return Err(illegal());
    }
    Ok(count * unit_ms)
}

pub fn ticker_24hr(symbol: &'static Symbol) -> Value {
    ticker_24hr_object(&stats(symbol, DAY_MS), Numbers::Float)
}

pub fn all_24hr_tickers() -> Value {
    SYMBOLS
        .iter()
        .map(|s| ticker_24hr_object(&stats(s, DAY_MS), Numbers::Binance))
        .collect()
}

pub fn trading_day_ticker(symbol: &'static Symbol, ticker: TickerType) -> Value {
    window_object_server(&trading_day_stats(symbol), ticker)
}

pub fn all_trading_day_tickers(ticker: TickerType) -> Value {
    SYMBOLS
        .iter()
        .map(|s| window_object_raw(&trading_day_stats(s), ticker))
        .collect()
}

pub fn rolling_window_ticker(symbol: &'static Symbol, window_ms: u64, ticker: TickerType) -> Value {
    window_object_server(&stats(symbol, window_ms), ticker)
}

pub fn all_rolling_window_tickers(window_ms: u64, ticker: TickerType) -> Value {
    SYMBOLS
        .iter()
        .map(|s| window_object_raw(&stats(s, window_ms), ticker))
        .collect()
}

/// `GET /api/v3/avgPrice`, reduced by the real server to the float: the 5-minute average sits
/// within a few hundredths of a percent of the last price, at 8 decimals.
pub fn average_price(symbol: &Symbol) -> Value {
    let drift = 0.0002 * (2.0 * uniform(&[Salt::Average as u64, symbol.seed]) - 1.0);
    Decimal::from_f64(symbol.price.to_f64() * (1.0 + drift), 8).json()
}

/// Best bid/ask for one symbol, as the real server's float dict.
pub fn book_ticker(symbol: &Symbol) -> Value {
    book_ticker_object(symbol, Numbers::Float)
}

/// Best bid/ask for every symbol, Binance's strings passed through.
pub fn all_book_tickers() -> Value {
    SYMBOLS
        .iter()
        .map(|s| book_ticker_object(s, Numbers::Binance))
        .collect()
}

fn book_ticker_object(symbol: &Symbol, numbers: Numbers) -> Value {
    let quote = best_quote(symbol);
    let mut object = Map::new();
    object.insert("symbol".into(), symbol.name.into());
    object.insert("bidPrice".into(), numbers.of(quote.bid));
    object.insert("bidQty".into(), numbers.of(quote.bid_qty));
    object.insert("askPrice".into(), numbers.of(quote.ask));
    object.insert("askQty".into(), numbers.of(quote.ask_qty));
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::super::symbol;
    use super::*;

    #[test]
    fn ticker_24hr_is_consistent() {
        let btc = symbol("BTCUSDT").unwrap();
        let t = ticker_24hr(btc);
        let f = |k: &str| t[k].as_f64().unwrap_or_else(|| panic!("{k} is a float"));
        assert_eq!(f("lastPrice"), 65_000.12);
        assert!((f("lastPrice") - f("openPrice") - f("priceChange")).abs() < 1e-6);
        assert!(f("lowPrice") <= f("openPrice").min(f("lastPrice")));
        assert!(f("highPrice") >= f("openPrice").max(f("lastPrice")));
        assert!(f("bidPrice") < f("askPrice"));
        assert!(
            (f("quoteVolume") / f("volume") - f("weightedAvgPrice")).abs() / f("weightedAvgPrice")
                < 1e-6
        );
        assert_eq!(
            t["closeTime"].as_u64().unwrap() - t["openTime"].as_u64().unwrap(),
            DAY_MS
        );
        assert!(
            t.get("firstId").is_none(),
            "the real server's dict has no firstId"
        );
    }

    #[test]
    fn all_tickers_pass_binance_strings_through() {
        let all = all_24hr_tickers();
        let all = all.as_array().unwrap();
        assert_eq!(all.len(), SYMBOLS.len());
        let btc = &all[0];
        assert_eq!(btc["lastPrice"], "65000.12000000");
        assert!(
            btc["priceChangePercent"]
                .as_str()
                .unwrap()
                .split('.')
                .nth(1)
                .unwrap()
                .len()
                == 3
        );
        assert_eq!(
            btc["lastId"].as_u64().unwrap() - btc["firstId"].as_u64().unwrap() + 1,
            btc["count"].as_u64().unwrap()
        );
    }

    #[test]
    fn mini_tickers_have_fewer_fields() {
        let eth = symbol("ETHUSDT").unwrap();
        let full = trading_day_ticker(eth, TickerType::Full);
        let mini = trading_day_ticker(eth, TickerType::Mini);
        assert!(full.as_object().unwrap().len() > mini.as_object().unwrap().len());
        let raw = all_trading_day_tickers(TickerType::Mini);
        assert!(raw[0].get("priceChange").is_none());
        assert_eq!(
            full["openTime"].as_u64().unwrap() % DAY_MS,
            0,
            "the trading day opens at midnight"
        );
    }

    #[test]
    fn window_sizes_follow_binance() {
        assert_eq!(window_size_ms("1d"), Ok(DAY_MS));
        assert_eq!(window_size_ms("4h"), Ok(4 * 3_600_000));
        assert_eq!(window_size_ms("59m"), Ok(59 * MINUTE_MS));
        for bad in ["", "d", "0m", "60m", "24h", "8d", "1w", "1é", "-1h"] {
            assert!(window_size_ms(bad).is_err(), "{bad:?}");
        }
        assert!(TickerType::parse("full").is_err());
    }

    #[test]
    fn average_price_is_near_the_last_price() {
        let bnb = symbol("BNBUSDT").unwrap();
        let average = average_price(bnb).as_f64().unwrap();
        assert!((average / 600.12 - 1.0).abs() < 0.001);
    }
}
