//! Exchange numbers as integers of a fixed scale, so prices sit exactly on their tick and print
//! the way Binance prints them.

use serde_json::Value;

/// `units / 10^scale`. Prices use the symbol's tick scale, quantities its lot scale.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Decimal {
    pub units: i64,
    pub scale: u32,
}

/// Binance prints every decimal with 8 places.
const BINANCE_SCALE: u32 = 8;

impl Decimal {
    pub const fn new(units: i64, scale: u32) -> Self {
        Self { units, scale }
    }

    /// The nearest value of `scale` to `value` (saturating: `as` never panics).
    pub fn from_f64(value: f64, scale: u32) -> Self {
        Self {
            units: (value * pow10(scale) as f64).round() as i64,
            scale,
        }
    }

    pub fn to_f64(self) -> f64 {
        // Exact division by a power of ten: the result prints as the shortest decimal, e.g. 65000.12.
        self.units as f64 / pow10(self.scale) as f64
    }

    /// As the real MCP server hands Binance's strings to Python's `float()`.
    pub fn json(self) -> Value {
        Value::from(self.to_f64())
    }

    /// As Binance's REST API writes it: `"65000.12000000"`. Written by hand: books and tickers
    /// print thousands of these per call, and `format!` was most of their cost.
    pub fn binance(self) -> String {
        let units = self.rescale(BINANCE_SCALE).units;
        let mut magnitude = units.unsigned_abs();
        // Longest: "-" + 11 integer digits of u64::MAX / 1e8 + "." + 8 decimals.
        let mut digits = [0u8; 21];
        let mut start = digits.len();
        for position in 0.. {
            if position == BINANCE_SCALE {
                start -= 1;
                digits[start] = b'.';
            }
            start -= 1;
            digits[start] = b'0' + (magnitude % 10) as u8;
            magnitude /= 10;
            if magnitude == 0 && position >= BINANCE_SCALE {
                break;
            }
        }
        let mut text = String::with_capacity(digits.len() - start + 1);
        if units < 0 {
            text.push('-');
        }
        // Only ASCII digits and '.' were written.
        text.push_str(std::str::from_utf8(&digits[start..]).unwrap_or_default());
        text
    }

    pub fn binance_json(self) -> Value {
        Value::String(self.binance())
    }

    /// The same value at another scale (rounding half away from zero when scale shrinks).
    pub fn rescale(self, scale: u32) -> Self {
        if scale >= self.scale {
            let factor = pow10(scale - self.scale);
            Self {
                units: self.units.saturating_mul(factor),
                scale,
            }
        } else {
            let factor = pow10(self.scale - scale);
            let half = factor / 2;
            let rounded = if self.units >= 0 {
                self.units.saturating_add(half) / factor
            } else {
                self.units.saturating_sub(half) / factor
            };
            Self {
                units: rounded,
                scale,
            }
        }
    }

    /// `self - other`, both at `self`'s scale.
    pub fn minus(self, other: Decimal) -> Self {
        Self {
            units: self.units.saturating_sub(other.rescale(self.scale).units),
            scale: self.scale,
        }
    }

    /// `units` steps of this scale away (e.g. ticks above a price).
    pub fn offset(self, units: i64) -> Self {
        Self {
            units: self.units.saturating_add(units),
            scale: self.scale,
        }
    }
}

fn pow10(exponent: u32) -> i64 {
    10i64.checked_pow(exponent).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_like_binance_and_like_python_float() {
        let price = Decimal::new(6_500_012, 2);
        assert_eq!(price.binance(), "65000.12000000");
        assert_eq!(price.json().to_string(), "65000.12");
        assert_eq!(Decimal::new(6_500_000, 2).json().to_string(), "65000.0");
        assert_eq!(Decimal::new(23_412, 7).binance(), "0.00234120");
        assert_eq!(Decimal::new(-1_234, 3).binance(), "-1.23400000");
        assert_eq!(Decimal::new(0, 2).binance(), "0.00000000");
        assert_eq!(Decimal::new(7, 8).binance(), "0.00000007");
        assert_eq!(Decimal::new(i64::MAX, 8).binance(), "92233720368.54775807");
        assert_eq!(Decimal::new(i64::MIN, 8).binance(), "-92233720368.54775808");
    }

    #[test]
    fn rescales_with_rounding() {
        assert_eq!(Decimal::new(12_345, 3).rescale(2), Decimal::new(1_235, 2));
        assert_eq!(Decimal::new(-12_345, 3).rescale(2), Decimal::new(-1_235, 2));
        assert_eq!(Decimal::new(5, 1).rescale(3), Decimal::new(500, 3));
        assert_eq!(Decimal::from_f64(0.15234, 5), Decimal::new(15_234, 5));
    }

    #[test]
    fn arithmetic_keeps_the_left_scale() {
        let open = Decimal::new(6_400_000, 2);
        let last = Decimal::new(6_500_012, 2);
        assert_eq!(last.minus(open), Decimal::new(100_012, 2));
        assert_eq!(open.minus(last).binance(), "-1000.12000000");
        assert_eq!(last.offset(1).binance(), "65000.13000000");
    }
}
