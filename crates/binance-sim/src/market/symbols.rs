//! The simulated exchange's symbol universe: a fixed list with mid-2025 prices, Binance's tick
//! and lot sizes, and a plausible daily volume and trade count for each.

use super::{BinanceError, Decimal};

/// One spot trading pair.
#[derive(Debug)]
pub struct Symbol {
    pub name: &'static str,
    pub base: &'static str,
    pub quote: &'static str,
    /// The last trade price at [`super::NOW_MS`], on the tick (its scale is the tick's).
    pub price: Decimal,
    /// Decimal places of the lot step (quantities are whole steps).
    pub qty_scale: u32,
    /// Base-asset volume traded in a typical day.
    pub daily_volume: f64,
    /// Trades in a typical day.
    pub trades_per_day: u64,
    /// The id of the last trade at `NOW_MS`; ids count up from 1 over the symbol's history.
    pub last_trade_id: u64,
    /// Position in [`SYMBOLS`]: the symbol's hash seed.
    pub seed: u64,
}

impl Symbol {
    pub fn tick(&self) -> Decimal {
        Decimal::new(1, self.price.scale)
    }

    pub fn step(&self) -> Decimal {
        Decimal::new(1, self.qty_scale)
    }

    /// `name` lowercased, as stream names spell it.
    pub fn stream_prefix(&self) -> String {
        self.name.to_ascii_lowercase()
    }

    /// A quantity of about `amount` base units, as whole lot steps (never zero).
    pub fn quantity(&self, amount: f64) -> Decimal {
        let qty = Decimal::from_f64(amount, self.qty_scale);
        Decimal::new(qty.units.max(1), self.qty_scale)
    }

    /// A price of about `value`, on the tick (never below one tick).
    pub fn on_tick(&self, value: f64) -> Decimal {
        let price = Decimal::from_f64(value, self.price.scale);
        Decimal::new(price.units.max(1), self.price.scale)
    }
}

macro_rules! universe {
    ($( $seed:literal $name:literal $base:literal $quote:literal
        price $units:literal @ $scale:literal, lot $qty_scale:literal,
        volume $volume:literal, trades $trades:literal, last $last:literal; )*) => {
        /// Every symbol the simulated exchange lists, in exchange-info order.
        pub static SYMBOLS: &[Symbol] = &[$(Symbol {
            name: $name,
            base: $base,
            quote: $quote,
            price: Decimal::new($units, $scale),
            qty_scale: $qty_scale,
            daily_volume: $volume,
            trades_per_day: $trades,
            last_trade_id: $last,
            seed: $seed,
        }),*];
    };
}

universe! {
    0 "BTCUSDT" "BTC" "USDT" price 6_500_012 @ 2, lot 5, volume 18_000.0, trades 2_400_000, last 4_912_345_678;
    1 "ETHUSDT" "ETH" "USDT" price 340_045 @ 2, lot 4, volume 320_000.0, trades 1_600_000, last 2_345_678_901;
    2 "BNBUSDT" "BNB" "USDT" price 60_012 @ 2, lot 3, volume 420_000.0, trades 500_000, last 1_023_456_789;
    3 "SOLUSDT" "SOL" "USDT" price 15_234 @ 2, lot 3, volume 2_900_000.0, trades 900_000, last 987_654_321;
    4 "XRPUSDT" "XRP" "USDT" price 5_214 @ 4, lot 1, volume 180_000_000.0, trades 450_000, last 845_678_901;
    5 "ADAUSDT" "ADA" "USDT" price 4_532 @ 4, lot 1, volume 210_000_000.0, trades 200_000, last 612_345_678;
    6 "DOGEUSDT" "DOGE" "USDT" price 15_234 @ 5, lot 0, volume 1_300_000_000.0, trades 380_000, last 745_612_345;
    7 "TRXUSDT" "TRX" "USDT" price 1_236 @ 4, lot 1, volume 520_000_000.0, trades 120_000, last 401_234_567;
    8 "DOTUSDT" "DOT" "USDT" price 7_214 @ 3, lot 2, volume 5_400_000.0, trades 110_000, last 498_765_432;
    9 "LINKUSDT" "LINK" "USDT" price 1_452 @ 2, lot 2, volume 3_100_000.0, trades 160_000, last 634_567_890;
    10 "LTCUSDT" "LTC" "USDT" price 8_234 @ 2, lot 3, volume 420_000.0, trades 140_000, last 812_345_678;
    11 "AVAXUSDT" "AVAX" "USDT" price 3_512 @ 2, lot 2, volume 2_200_000.0, trades 150_000, last 589_012_345;
    12 "UNIUSDT" "UNI" "USDT" price 9_812 @ 3, lot 2, volume 1_600_000.0, trades 60_000, last 312_345_678;
    13 "ATOMUSDT" "ATOM" "USDT" price 8_523 @ 3, lot 2, volume 1_800_000.0, trades 70_000, last 356_789_012;
    14 "XLMUSDT" "XLM" "USDT" price 1_124 @ 4, lot 0, volume 95_000_000.0, trades 50_000, last 289_012_345;
    15 "NEARUSDT" "NEAR" "USDT" price 5_234 @ 3, lot 1, volume 4_500_000.0, trades 90_000, last 267_890_123;
    16 "ETHBTC" "ETH" "BTC" price 5_231 @ 5, lot 4, volume 42_000.0, trades 150_000, last 478_901_234;
    17 "BNBBTC" "BNB" "BTC" price 9_234 @ 6, lot 3, volume 9_500.0, trades 40_000, last 301_234_567;
    18 "SOLBTC" "SOL" "BTC" price 23_412 @ 7, lot 3, volume 150_000.0, trades 30_000, last 98_765_432;
    19 "BTCUSDC" "BTC" "USDC" price 6_500_534 @ 2, lot 5, volume 3_500.0, trades 350_000, last 298_765_432;
    20 "ETHUSDC" "ETH" "USDC" price 340_067 @ 2, lot 4, volume 60_000.0, trades 180_000, last 120_345_678;
}

/// The listed symbol called `name`, or Binance's -1121 for anything else (Binance symbols are
/// `^[A-Z0-9]{2,20}$`, case-sensitive).
pub fn symbol(name: &str) -> Result<&'static Symbol, BinanceError> {
    let well_formed = (2..=20).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if !well_formed {
        return Err(BinanceError::invalid_symbol());
    }
    SYMBOLS
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(BinanceError::invalid_symbol)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn universe_is_consistent() {
        for (i, s) in SYMBOLS.iter().enumerate() {
            assert_eq!(s.seed, i as u64, "{} has the wrong seed", s.name);
            assert_eq!(format!("{}{}", s.base, s.quote), s.name);
            assert!(symbol(s.name).is_ok());
        }
        assert!(SYMBOLS.len() >= 20);
    }

    #[test]
    fn prices_are_realistic() {
        let price = |name| symbol(name).unwrap().price.to_f64();
        assert!((60_000.0..70_000.0).contains(&price("BTCUSDT")));
        assert!((3_000.0..4_000.0).contains(&price("ETHUSDT")));
        assert!((500.0..700.0).contains(&price("BNBUSDT")));
    }

    #[test]
    fn unknown_or_malformed_symbols_are_invalid() {
        for bad in [
            "FOOBAR",
            "btcusdt",
            "B",
            "BTC-USDT",
            "",
            "AAAAAAAAAAAAAAAAAAAAA",
        ] {
            assert_eq!(
                symbol(bad).unwrap_err(),
                BinanceError::invalid_symbol(),
                "{bad:?}"
            );
        }
    }
}
