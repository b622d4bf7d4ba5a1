//! The order book: levels stepping away from the last price, a tick or a few apart, with sizes
//! that are mostly small and sometimes large, like a real book.

use serde_json::{json, Value};

use super::{clamp_limit, uniform, BinanceError, Decimal, Salt, Symbol};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Bid = 0,
    Ask = 1,
}

/// The top of the book.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BestQuote {
    pub bid: Decimal,
    pub bid_qty: Decimal,
    pub ask: Decimal,
    pub ask_qty: Decimal,
}

/// Price and size of up to `levels` levels on one side (bids stop at the smallest price).
/// `moment` shifts the book for stream ticks (0 is the snapshot at NOW).
fn side(
    symbol: &Symbol,
    side: Side,
    levels: usize,
    moment: u64,
    top: Decimal,
) -> Vec<(Decimal, Decimal)> {
    let typical_size = symbol.daily_volume / 20_000.0;
    let mut book = Vec::with_capacity(levels);
    let mut price = top;
    for level in 0..levels as u64 {
        let noise = |part: u64| {
            uniform(&[
                Salt::Book as u64,
                symbol.seed,
                side as u64,
                moment,
                level,
                part,
            ])
        };
        if level > 0 {
            // Mostly adjacent ticks, sometimes a gap of a few.
            let gap = if noise(0) < 0.7 {
                1
            } else {
                1 + (noise(1) * 4.0) as i64
            };
            price = match side {
                Side::Bid => price.offset(-gap),
                Side::Ask => price.offset(gap),
            };
        }
        if price.units < 1 {
            break;
        }
        let size = typical_size * (0.02 + 2.5 * noise(2).powi(3));
        book.push((price, symbol.quantity(size)));
    }
    book
}

fn levels_json(levels: &[(Decimal, Decimal)]) -> Value {
    levels
        .iter()
        .map(|(price, qty)| json!([price.binance(), qty.binance()]))
        .collect()
}

/// The book around `price` as Binance's depth endpoint returns it:
/// `{"lastUpdateId", "bids": [["price","qty"], ...], "asks": [...]}`.
pub fn order_book_snapshot(symbol: &Symbol, levels: usize, moment: u64, price: Decimal) -> Value {
    json!({
        "lastUpdateId": last_update_id(symbol) + moment,
        "bids": levels_json(&side(symbol, Side::Bid, levels, moment, price)),
        "asks": levels_json(&side(symbol, Side::Ask, levels, moment, price.offset(1))),
    })
}

/// `GET /api/v3/depth`: `depth` levels a side (Binance cuts above 5000, refuses below 1).
/// The real server passes Binance's JSON through untouched, strings and all.
pub fn order_book(symbol: &Symbol, depth: i64) -> Result<Value, BinanceError> {
    let levels = clamp_limit(depth, 5000)?;
    Ok(order_book_snapshot(symbol, levels, 0, symbol.price))
}

/// The best bid (at the last price) and best ask (one tick above).
pub fn best_quote(symbol: &Symbol) -> BestQuote {
    // Listed prices are at least one tick, so each side has its first level.
    let top = |side_of, price| {
        side(symbol, side_of, 1, 0, price)
            .first()
            .copied()
            .unwrap_or((price, symbol.step()))
    };
    let bid = top(Side::Bid, symbol.price);
    let ask = top(Side::Ask, symbol.price.offset(1));
    BestQuote {
        bid: bid.0,
        bid_qty: bid.1,
        ask: ask.0,
        ask_qty: ask.1,
    }
}

fn last_update_id(symbol: &Symbol) -> u64 {
    symbol.last_trade_id.saturating_mul(3) + 7
}

#[cfg(test)]
mod tests {
    use super::super::symbol;
    use super::*;

    fn prices(levels: &Value) -> Vec<f64> {
        levels
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l[0].as_str().unwrap().parse().unwrap())
            .collect()
    }

    #[test]
    fn book_has_depth_levels_a_side_in_price_order() {
        let btc = symbol("BTCUSDT").unwrap();
        let book = order_book(btc, 10).unwrap();
        let bids = prices(&book["bids"]);
        let asks = prices(&book["asks"]);
        assert_eq!((bids.len(), asks.len()), (10, 10));
        assert!(bids.windows(2).all(|w| w[0] > w[1]), "bids descend");
        assert!(asks.windows(2).all(|w| w[0] < w[1]), "asks ascend");
        assert!(bids[0] < asks[0], "the book is not crossed");
        assert_eq!(book["bids"][0][0], "65000.12000000");
        assert!(book["lastUpdateId"].is_u64());
    }

    #[test]
    fn sizes_are_whole_lots_and_positive() {
        let doge = symbol("DOGEUSDT").unwrap();
        let book = order_book(doge, 50).unwrap();
        for level in book["bids"]
            .as_array()
            .unwrap()
            .iter()
            .chain(book["asks"].as_array().unwrap())
        {
            let qty: f64 = level[1].as_str().unwrap().parse().unwrap();
            assert!(
                qty >= 1.0 && qty.fract() == 0.0,
                "DOGE trades in whole coins: {qty}"
            );
        }
    }

    #[test]
    fn depth_is_limited_like_binance() {
        let eth = symbol("ETHUSDT").unwrap();
        assert!(order_book(eth, 0).is_err());
        assert_eq!(
            order_book(eth, 9_999).unwrap()["asks"]
                .as_array()
                .unwrap()
                .len(),
            5000
        );
    }

    #[test]
    fn deep_bids_stop_above_zero() {
        let trx = symbol("TRXUSDT").unwrap();
        let bids = prices(&order_book(trx, 5000).unwrap()["bids"]);
        assert!(bids.len() < 5000 && bids.iter().all(|p| *p > 0.0));
        assert!(bids.windows(2).all(|w| w[0] > w[1]));
    }

    #[test]
    fn best_quote_matches_the_book() {
        let sol = symbol("SOLUSDT").unwrap();
        let quote = best_quote(sol);
        let book = order_book(sol, 5).unwrap();
        assert_eq!(book["bids"][0][0], quote.bid.binance());
        assert_eq!(book["asks"][0][1], quote.ask_qty.binance());
    }
}
