//! Shared GraphQL value types: money and calendar dates.

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, SimpleObject, Value};
use chrono::NaiveDate;

use crate::domain::money;

/// An amount of money: a decimal string in the currency's minor-unit precision.
#[derive(SimpleObject, Debug, Clone)]
pub struct Money {
    /// Decimal string, e.g. "1250.00". Never a float.
    pub amount: String,
    /// ISO 4217 code.
    pub currency: String,
    /// The same amount in minor units (cents), for clients that compute.
    pub minor_units: i64,
}

impl Money {
    pub fn new(minor_units: i64, currency: &str) -> Self {
        Self { amount: money::format_amount(minor_units, currency), currency: currency.to_owned(), minor_units }
    }
}

/// A calendar date, `YYYY-MM-DD` (ISO 8601).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Date(pub NaiveDate);

#[Scalar(name = "Date")]
impl ScalarType for Date {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map(Date)
                .map_err(|_| InputValueError::custom("expected a date as YYYY-MM-DD")),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}
