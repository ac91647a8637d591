//! Case-insensitive substring search that behaves the same on SQLite and PostgreSQL.

use sea_orm::sea_query::{Expr, ExprTrait, Func, LikeExpr, SimpleExpr};

/// `LOWER(expr) LIKE '%text%'` with the user's `%`, `_` and `\` taken literally.
pub fn contains_ci(expr: impl Into<SimpleExpr>, text: &str) -> SimpleExpr {
    let escaped: String = text
        .trim()
        .to_lowercase()
        .chars()
        .flat_map(|c| match c {
            '%' | '_' | '\\' => vec!['\\', c],
            c => vec![c],
        })
        .collect();
    Expr::expr(Func::lower(expr.into())).like(LikeExpr::new(format!("%{escaped}%")).escape('\\'))
}

/// Search text worth searching for: trimmed, non-empty, bounded.
pub fn normalise(text: Option<&str>) -> Option<String> {
    text.map(str::trim).filter(|t| !t.is_empty()).map(|t| t.chars().take(200).collect())
}
