//! Small statement builders shared by the migrations.
//!
//! Keep these pure and stable: changing one changes every migration that already ran.

use sea_orm_migration::prelude::*;

/// A plain index named `name` on `table` over `cols`, in order.
pub(crate) fn index<T, C>(name: &str, table: T, cols: impl IntoIterator<Item = C>) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIden,
{
    let mut stmt = Index::create();
    stmt.name(name).table(table);
    for col in cols {
        stmt.col(col);
    }
    stmt
}

/// A unique index named `name` on `table` over `cols`, in order.
///
/// Used instead of inline `UNIQUE` constraints so that every uniqueness rule has an
/// explicit, portable name (it is also what `ON CONFLICT (..)` upserts match on).
pub(crate) fn unique_index<T, C>(name: &str, table: T, cols: impl IntoIterator<Item = C>) -> IndexCreateStatement
where
    T: IntoIden,
    C: IntoIden,
{
    let mut stmt = index(name, table, cols);
    stmt.unique();
    stmt
}
