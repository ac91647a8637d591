//! Money as integer minor units plus an ISO 4217 currency; decimal strings at the edges.

use crate::error::{AppError, AppResult};

/// Minor-unit digits of a currency (ISO 4217); 2 unless listed.
pub fn minor_digits(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "ISK" | "CLP" | "VND" | "UGX" | "XAF" | "XOF" | "PYG" | "RWF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

/// Validate and normalise a currency code.
pub fn parse_currency(raw: &str, field: &str) -> AppResult<String> {
    let code = raw.trim().to_ascii_uppercase();
    if code.len() == 3 && code.chars().all(|c| c.is_ascii_uppercase()) {
        Ok(code)
    } else {
        Err(AppError::bad_field(field, "currency must be a three-letter ISO 4217 code"))
    }
}

/// Parse a non-negative decimal string ("1250", "1250.5", "1250.50") into minor units.
pub fn parse_amount(raw: &str, currency: &str, field: &str) -> AppResult<i64> {
    let digits = minor_digits(currency);
    let bad = |msg: &str| AppError::bad_field(field, msg.to_owned());
    let raw = raw.trim();
    if raw.starts_with('-') {
        return Err(bad("amount must not be negative"));
    }
    let (whole, frac) = raw.split_once('.').unwrap_or((raw, ""));
    if whole.is_empty() || !whole.chars().all(|c| c.is_ascii_digit()) || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(bad("amount must be a decimal number such as \"1250.00\""));
    }
    if frac.len() as u32 > digits {
        return Err(bad(&format!("{currency} amounts have at most {digits} decimal places")));
    }
    let scale = 10i64.pow(digits);
    let whole: i64 = whole.parse().map_err(|_| bad("amount is too large"))?;
    let frac_value: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<width$}", width = digits as usize).parse().map_err(|_| bad("invalid amount"))?
    };
    whole.checked_mul(scale).and_then(|w| w.checked_add(frac_value)).ok_or_else(|| bad("amount is too large"))
}

/// Format minor units as a decimal string with the currency's digits.
pub fn format_amount(minor: i64, currency: &str) -> String {
    let digits = minor_digits(currency);
    if digits == 0 {
        return minor.to_string();
    }
    let scale = 10i64.pow(digits);
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:0width$}", abs / scale as u64, abs % scale as u64, width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_formats() {
        assert_eq!(parse_amount("1250.5", "USD", "a").ok(), Some(125_050));
        assert_eq!(parse_amount("1250", "JPY", "a").ok(), Some(1250));
        assert!(parse_amount("-1", "USD", "a").is_err());
        assert!(parse_amount("1.234", "EUR", "a").is_err());
        assert!(parse_amount("abc", "EUR", "a").is_err());
        assert!(parse_amount("99999999999999999999", "EUR", "a").is_err());
        assert_eq!(format_amount(125_050, "USD"), "1250.50");
        assert_eq!(format_amount(7, "EUR"), "0.07");
        assert_eq!(format_amount(1250, "JPY"), "1250");
    }
}
