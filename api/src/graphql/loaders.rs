//! One per-request loader type; each domain area implements `Loader<Key>` for it in its own
//! module, so every relation is fetched with one `WHERE .. IN` query per batch.

use async_graphql::dataloader::DataLoader;
use sea_orm::DatabaseConnection;

#[derive(Clone)]
pub struct AppLoader {
    pub db: DatabaseConnection,
}

impl AppLoader {
    /// A fresh loader for one request: batches never cross requests or viewers.
    pub fn for_request(db: DatabaseConnection) -> DataLoader<AppLoader> {
        DataLoader::new(AppLoader { db }, tokio::spawn)
    }
}
