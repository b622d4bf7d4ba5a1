//! Exchange information (trading rules of every symbol) and trading fees.

use std::sync::OnceLock;

use serde_json::{json, Value};

use super::{Decimal, Symbol, NOW_MS, SYMBOLS};

/// `GET /api/v3/exchangeInfo`, which the real server passes through whole. Built once: it is the
/// largest answer and never changes (`serverTime` is the simulated now).
pub fn exchange_info() -> &'static Value {
    static INFO: OnceLock<Value> = OnceLock::new();
    INFO.get_or_init(|| {
        json!({
            "timezone": "UTC",
            "serverTime": NOW_MS,
            "rateLimits": [
                {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 6000},
                {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": 100},
                {"rateLimitType": "ORDERS", "interval": "DAY", "intervalNum": 1, "limit": 200000},
                {"rateLimitType": "RAW_REQUESTS", "interval": "MINUTE", "intervalNum": 5, "limit": 61000},
            ],
            "exchangeFilters": [],
            "symbols": SYMBOLS.iter().map(symbol_info).collect::<Vec<_>>(),
        })
    })
}

fn symbol_info(symbol: &Symbol) -> Value {
    let tick = symbol.tick();
    let step = symbol.step();
    let max_price = Decimal::new(symbol.price.units.saturating_mul(1000), symbol.price.scale);
    // Binance's minimum order value: 5 of a stablecoin, or a comparable amount of BTC.
    let min_notional = if symbol.quote == "BTC" {
        "0.00010000"
    } else {
        "5.00000000"
    };
    json!({
        "symbol": symbol.name,
        "status": "TRADING",
        "baseAsset": symbol.base,
        "baseAssetPrecision": 8,
        "quoteAsset": symbol.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": true,
        "ocoAllowed": true,
        "otoAllowed": true,
        "quoteOrderQtyMarketAllowed": true,
        "allowTrailingStop": true,
        "cancelReplaceAllowed": true,
        "isSpotTradingAllowed": true,
        "isMarginTradingAllowed": symbol.quote != "USDC",
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": tick.binance(), "maxPrice": max_price.binance(), "tickSize": tick.binance()},
            {"filterType": "LOT_SIZE", "minQty": step.binance(), "maxQty": "9000.00000000", "stepSize": step.binance()},
            {"filterType": "ICEBERG_PARTS", "limit": 10},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000", "stepSize": "0.00000000"},
            {"filterType": "TRAILING_DELTA", "minTrailingAboveDelta": 10, "maxTrailingAboveDelta": 2000, "minTrailingBelowDelta": 10, "maxTrailingBelowDelta": 2000},
            {"filterType": "PERCENT_PRICE_BY_SIDE", "bidMultiplierUp": "5", "bidMultiplierDown": "0.2", "askMultiplierUp": "5", "askMultiplierDown": "0.2", "avgPriceMins": 5},
            {"filterType": "NOTIONAL", "minNotional": min_notional, "applyMinToMarket": true, "maxNotional": "9000000.00000000", "applyMaxToMarket": false, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
            {"filterType": "MAX_NUM_ALGO_ORDERS", "maxNumAlgoOrders": 5},
        ],
        "permissions": [],
        "permissionSets": [["SPOT", "MARGIN"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    })
}

/// The real server's fixed answer: Binance's public API has no fee endpoint without a key, so it
/// returns the VIP 0 spot rates.
pub fn trading_fees() -> Value {
    json!({"maker_fee": 0.001, "taker_fee": 0.001})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exchange_info_lists_every_symbol_with_its_tick() {
        let info = exchange_info();
        let symbols = info["symbols"].as_array().unwrap();
        assert_eq!(symbols.len(), SYMBOLS.len());
        let btc = &symbols[0];
        assert_eq!(btc["symbol"], "BTCUSDT");
        assert_eq!(btc["filters"][0]["tickSize"], "0.01000000");
        assert_eq!(btc["filters"][1]["stepSize"], "0.00001000");
        assert_eq!(info["serverTime"], NOW_MS);
    }

    #[test]
    fn fees_are_the_real_servers_defaults() {
        assert_eq!(
            trading_fees().to_string(),
            r#"{"maker_fee":0.001,"taker_fee":0.001}"#
        );
    }
}
