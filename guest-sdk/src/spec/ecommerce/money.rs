//! Money amounts in a currency's minor units, as many partner APIs want them.

/// `amount` in minor units with `decimals` digits after the point (2 for USD or EUR, 0 for
/// JPY, 3 for KWD: the currency's ISO 4217 exponent, which is the caller's to know),
/// rounded half away from zero. `None` when the amount is not finite or the result does
/// not fit an `i64`.
///
/// The result is exact for amounts sent with at most `decimals` decimal places, though
/// their `f64` is not (`19.99` is 1999 cents, not 1998).
///
/// ```
/// use segfn_sdk::spec::ecommerce::minor_units;
///
/// assert_eq!(minor_units(19.99, 2), Some(1999));
/// assert_eq!(minor_units(22.5, 2), Some(2250));
/// assert_eq!(minor_units(1500.0, 0), Some(1500));
/// assert_eq!(minor_units(f64::NAN, 2), None);
/// ```
pub fn minor_units(amount: f64, decimals: u32) -> Option<i64> {
    let scale = 10f64.powi(i32::try_from(decimals).ok()?);
    let minor = (amount * scale).round();
    // `i64::MAX as f64` is 2^63, which does not fit; every float below it does.
    let limit = i64::MAX as f64;
    (minor.is_finite() && minor >= -limit && minor < limit).then_some(minor as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cents_of_two_decimal_amounts_are_exact() {
        // Every amount from 0.00 to 100.00 in cents.
        for cents in 0..=10_000i64 {
            let amount: f64 = format!("{}.{:02}", cents / 100, cents % 100)
                .parse()
                .unwrap();
            assert_eq!(minor_units(amount, 2), Some(cents), "{amount}");
            assert_eq!(minor_units(-amount, 2), Some(-cents), "{amount}");
        }
    }

    #[test]
    fn rounding_and_limits() {
        assert_eq!(minor_units(0.125, 2), Some(13));
        assert_eq!(minor_units(-0.125, 2), Some(-13));
        assert_eq!(minor_units(f64::INFINITY, 2), None);
        assert_eq!(minor_units(1e17, 2), None);
        assert_eq!(minor_units(1.0, 400), None);
        assert_eq!(minor_units(9e16, 2), Some(9_000_000_000_000_000_000));
    }
}
