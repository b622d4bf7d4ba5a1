//! Trades: every trade id of a symbol's history has a fixed time, price and size, so recent,
//! historical and aggregate trades agree with one another.

use serde_json::{json, Value};

use super::{clamp_limit, uniform, BinanceError, Decimal, Salt, Symbol, DAY_MS, NOW_MS};

/// One trade.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trade {
    pub id: u64,
    pub price: Decimal,
    pub qty: Decimal,
    pub time: u64,
    pub buyer_maker: bool,
}

/// Milliseconds between trades on average.
fn spacing(symbol: &Symbol) -> u64 {
    (DAY_MS / symbol.trades_per_day.max(1)).max(1)
}

/// Trade `id` (1 ..= `last_trade_id`): the last one is at the last price; earlier ones scatter
/// within a few hundredths of a percent of it, strictly earlier in time.
pub fn trade(symbol: &Symbol, id: u64) -> Trade {
    let noise = |part: u64| uniform(&[Salt::Trade as u64, symbol.seed, id, part]);
    let back = symbol.last_trade_id.saturating_sub(id);
    let spacing = spacing(symbol);
    let jitter = (noise(0) * spacing as f64) as u64;
    let price = if back == 0 {
        symbol.price
    } else {
        symbol.on_tick(symbol.price.to_f64() * (1.0 + 0.0003 * (2.0 * noise(1) - 1.0)))
    };
    let typical = symbol.daily_volume / symbol.trades_per_day.max(1) as f64;
    Trade {
        id,
        price,
        qty: symbol.quantity(typical * (0.05 + 3.0 * noise(2).powi(3))),
        time: NOW_MS
            .saturating_sub(back.saturating_mul(spacing))
            .saturating_sub(jitter),
        buyer_maker: noise(3) < 0.5,
    }
}

/// As the real server reshapes Binance's trades (floats, and only these fields).
fn trade_json(t: &Trade) -> Value {
    json!({
        "id": t.id,
        "price": t.price.json(),
        "qty": t.qty.json(),
        "time": t.time,
        "isBuyerMaker": t.buyer_maker,
        "isBestMatch": true,
    })
}

fn trades_json(symbol: &Symbol, first: u64, count: usize) -> Value {
    let last = symbol
        .last_trade_id
        .min(first.saturating_add(count as u64).saturating_sub(1));
    (first..=last)
        .map(|id| trade_json(&trade(symbol, id)))
        .collect()
}

/// `GET /api/v3/trades`: the last `limit` trades, oldest first.
pub fn recent_trades(symbol: &Symbol, limit: i64) -> Result<Value, BinanceError> {
    let limit = clamp_limit(limit, 1000)?;
    let first = symbol.last_trade_id.saturating_sub(limit as u64 - 1).max(1);
    Ok(trades_json(symbol, first, limit))
}

/// `GET /api/v3/historicalTrades`: `limit` trades from `from_id`, or the most recent ones. The
/// real server only sends `fromId` when it is truthy, so 0 means "most recent" too.
pub fn historical_trades(
    symbol: &Symbol,
    limit: i64,
    from_id: Option<i64>,
) -> Result<Value, BinanceError> {
    match from_id {
        None | Some(0) => recent_trades(symbol, limit),
        Some(from) if from < 0 => Err(BinanceError::illegal_parameter(
            "fromId",
            "0-9223372036854775807",
        )),
        Some(from) => {
            let limit = clamp_limit(limit, 1000)?;
            let from = from as u64;
            if from > symbol.last_trade_id {
                return Ok(Value::Array(Vec::new()));
            }
            Ok(trades_json(symbol, from, limit))
        }
    }
}

/// `GET /api/v3/aggTrades`: the last `limit` aggregate trades (1 to 3 trades each), oldest first,
/// with the real server's renamed fields.
pub fn aggregate_trades(symbol: &Symbol, limit: i64) -> Result<Value, BinanceError> {
    let limit = clamp_limit(limit, 1000)?;
    let mut aggregate_id = symbol.last_trade_id / 10 * 7;
    let mut last_id = symbol.last_trade_id;
    let mut newest_first = Vec::with_capacity(limit);
    while newest_first.len() < limit && last_id >= 1 && aggregate_id >= 1 {
        let fills =
            1 + (uniform(&[Salt::Aggregate as u64, symbol.seed, aggregate_id]) * 3.0) as u64;
        let first_id = last_id.saturating_sub(fills - 1).max(1);
        let trades: Vec<Trade> = (first_id..=last_id).map(|id| trade(symbol, id)).collect();
        let qty = trades
            .iter()
            .fold(Decimal::new(0, symbol.qty_scale), |sum, t| {
                sum.offset(t.qty.units)
            });
        let first = trades[0];
        newest_first.push(json!({
            "id": aggregate_id,
            "price": trades[trades.len() - 1].price.json(),
            "qty": qty.json(),
            "first_trade_id": first_id,
            "last_trade_id": last_id,
            "time": first.time,
            "is_buyer_maker": first.buyer_maker,
            "is_best_match": true,
        }));
        aggregate_id -= 1;
        last_id = first_id - 1;
    }
    newest_first.reverse();
    Ok(Value::Array(newest_first))
}

#[cfg(test)]
mod tests {
    use super::super::symbol;
    use super::*;

    #[test]
    fn recent_trades_end_at_the_last_trade_and_price() {
        let btc = symbol("BTCUSDT").unwrap();
        let trades = recent_trades(btc, 20).unwrap();
        let trades = trades.as_array().unwrap();
        assert_eq!(trades.len(), 20);
        assert_eq!(trades[19]["id"], btc.last_trade_id);
        assert_eq!(trades[19]["price"], btc.price.json());
        for pair in trades.windows(2) {
            assert_eq!(
                pair[0]["id"].as_u64().unwrap() + 1,
                pair[1]["id"].as_u64().unwrap()
            );
            assert!(
                pair[0]["time"].as_u64() < pair[1]["time"].as_u64(),
                "time moves forward"
            );
        }
        let price = trades[0]["price"].as_f64().unwrap();
        assert!((price / 65_000.12 - 1.0).abs() < 0.001);
    }

    #[test]
    fn historical_trades_page_from_an_id() {
        let eth = symbol("ETHUSDT").unwrap();
        let page = historical_trades(eth, 5, Some(1_000)).unwrap();
        let ids: Vec<u64> = page
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_u64().unwrap())
            .collect();
        assert_eq!(ids, [1_000, 1_001, 1_002, 1_003, 1_004]);
        assert_eq!(page[0], trade_json(&trade(eth, 1_000)));
        assert_eq!(historical_trades(eth, 5, Some(0)), recent_trades(eth, 5));
        assert_eq!(
            historical_trades(eth, 5, Some(i64::MAX)).unwrap(),
            json!([])
        );
        assert!(historical_trades(eth, 5, Some(-1)).is_err());
        let tail = historical_trades(eth, 10, Some(eth.last_trade_id as i64 - 2)).unwrap();
        assert_eq!(tail.as_array().unwrap().len(), 3);
    }

    #[test]
    fn aggregate_trades_cover_consecutive_trades() {
        let bnb = symbol("BNBUSDT").unwrap();
        let aggregates = aggregate_trades(bnb, 30).unwrap();
        let aggregates = aggregates.as_array().unwrap();
        assert_eq!(aggregates.len(), 30);
        assert_eq!(aggregates[29]["last_trade_id"], bnb.last_trade_id);
        for pair in aggregates.windows(2) {
            assert_eq!(
                pair[0]["last_trade_id"].as_u64().unwrap() + 1,
                pair[1]["first_trade_id"].as_u64().unwrap()
            );
            assert_eq!(
                pair[0]["id"].as_u64().unwrap() + 1,
                pair[1]["id"].as_u64().unwrap()
            );
        }
    }
}
