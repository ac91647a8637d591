//! Input checks shared by the domain areas. Each names the field it refuses.

use crate::error::{AppError, AppResult};

/// Trimmed, non-empty, at most `max` characters.
pub fn required_text(value: &str, field: &str, max: usize) -> AppResult<String> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::bad_field(field, format!("`{field}` must not be empty")));
    }
    if value.chars().count() > max {
        return Err(AppError::bad_field(field, format!("`{field}` may be at most {max} characters")));
    }
    Ok(value.to_owned())
}

/// Like `required_text`, but empty means absent.
pub fn optional_text(value: Option<&str>, field: &str, max: usize) -> AppResult<Option<String>> {
    match value.map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => required_text(v, field, max).map(Some),
    }
}

/// A plausible email address: one `@`, a dotted domain, no spaces. Deliverability is not our call.
pub fn email(value: &str, field: &str) -> AppResult<String> {
    let value = value.trim().to_owned();
    let valid = value.len() <= 254
        && !value.contains(char::is_whitespace)
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && !domain.contains('@')
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        });
    if valid { Ok(value) } else { Err(AppError::bad_field(field, "not a valid email address")) }
}

/// Library card numbers: 4–32 characters of letters, digits and dashes.
pub fn card_number(value: &str, field: &str) -> AppResult<String> {
    let value = value.trim().to_ascii_uppercase();
    let valid = (4..=32).contains(&value.len()) && value.chars().all(|c| c.is_ascii_alphanumeric() || c == '-');
    if valid {
        Ok(value)
    } else {
        Err(AppError::bad_field(field, "card number must be 4–32 letters, digits or dashes"))
    }
}

/// Phone numbers: digits with optional leading `+` and common separators, 6–20 digits.
pub fn phone(value: &str, field: &str) -> AppResult<String> {
    let value = value.trim().to_owned();
    let digits = value.chars().filter(char::is_ascii_digit).count();
    let allowed = value
        .chars()
        .enumerate()
        .all(|(i, c)| c.is_ascii_digit() || matches!(c, ' ' | '-' | '(' | ')' | '.') || (c == '+' && i == 0));
    if allowed && (6..=20).contains(&digits) {
        Ok(value)
    } else {
        Err(AppError::bad_field(field, "not a valid phone number"))
    }
}

/// A 1–5 satisfaction rating.
pub fn rating(value: i32, field: &str) -> AppResult<i16> {
    if (1..=5).contains(&value) {
        Ok(value as i16)
    } else {
        Err(AppError::bad_field(field, "rating must be between 1 and 5"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_common_fields() {
        assert!(email("ada@example.org", "email").is_ok());
        assert!(email("ada@", "email").is_err());
        assert!(email("a b@example.org", "email").is_err());
        assert_eq!(card_number(" lib-0001 ", "c").ok().as_deref(), Some("LIB-0001"));
        assert!(card_number("x", "c").is_err());
        assert!(phone("+44 20 7946 0958", "p").is_ok());
        assert!(phone("call me", "p").is_err());
        assert!(rating(6, "r").is_err());
        assert!(required_text("  ", "name", 10).is_err());
    }
}
