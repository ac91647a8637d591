//! Reading SQL aggregates back: the small pieces every grouped query needs.

use sea_orm::{
    Condition,
    sea_query::{Expr, Func},
};

/// A `COUNT(..)` or `SUM(..)` of flags, read as `i64`, as the count it is (never negative).
pub fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// `SUM(CASE WHEN cond THEN 1 ELSE 0 END)`: the rows of a group that satisfy `cond`.
pub fn count_where(cond: impl Into<Condition>) -> Expr {
    Expr::expr(Func::sum(Expr::case(cond.into(), Expr::val(1i32)).finally(Expr::val(0i32))))
}
