//! One per-request loader type; each domain area implements `Loader<Key>` for it in its own
//! module, so every relation is fetched with one `WHERE .. IN` query per batch.
//!
//! Batches are cut when the request has gone quiet, not after a fixed time: async-graphql
//! resolves long lists a few items per poll and yields in between, so on a slow or busy machine
//! a timer (async-graphql's default 1 ms) cuts one relation's keys into several batches. The
//! request's future is wrapped in [`Tracked`], which counts its polls; a batch waits until the
//! request has not been polled for one scheduler round, i.e. every resolver is waiting.

use std::{
    future::Future,
    pin::Pin,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
};

use async_graphql::dataloader::DataLoader;
use sea_orm::DatabaseConnection;

/// Scheduler rounds a batch waits at most for the request to go quiet.
const MAX_SETTLE_ROUNDS: usize = 1_000;

#[derive(Clone)]
pub struct AppLoader {
    pub db: DatabaseConnection,
    activity: Arc<AtomicU64>,
}

impl AppLoader {
    /// A fresh loader for one request: batches never cross requests or viewers.
    pub fn for_request(db: DatabaseConnection) -> DataLoader<AppLoader> {
        let activity = Arc::new(AtomicU64::new(0));
        let watched = activity.clone();
        DataLoader::new(AppLoader { db, activity }, move |fetch| {
            let activity = watched.clone();
            tokio::spawn(async move {
                settle(&activity).await;
                fetch.await;
            })
        })
    }

    /// Wrap the request's execution so its loaders can tell when it has gone quiet.
    pub fn track<F: Future>(activity: Arc<AtomicU64>, inner: F) -> Tracked<F> {
        Tracked { inner: Box::pin(inner), activity }
    }

    pub fn activity(loader: &DataLoader<AppLoader>) -> Arc<AtomicU64> {
        loader.loader().activity.clone()
    }
}

/// Wait until the request has not been polled for one scheduler round.
async fn settle(activity: &AtomicU64) {
    for _ in 0..MAX_SETTLE_ROUNDS {
        let seen = activity.load(Ordering::Relaxed);
        tokio::task::yield_now().await;
        if activity.load(Ordering::Relaxed) == seen {
            return;
        }
    }
}

/// A future that counts its polls.
pub struct Tracked<F> {
    inner: Pin<Box<F>>,
    activity: Arc<AtomicU64>,
}

impl<F: Future> Future for Tracked<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        self.activity.fetch_add(1, Ordering::Relaxed);
        self.inner.as_mut().poll(cx)
    }
}

/// Declares a loader key `$key(Uuid)` that fetches `$model` rows by primary key with
/// `$fetch(&db, &ids)` (an `AppResult<Vec<$model>>`), one statement per batch.
macro_rules! by_id_loader {
    ($(#[$meta:meta])* $key:ident => $model:ty, $fetch:path) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub struct $key(pub uuid::Uuid);

        impl async_graphql::dataloader::Loader<$key> for $crate::graphql::loaders::AppLoader {
            type Value = $model;
            type Error = std::sync::Arc<$crate::error::AppError>;

            async fn load(
                &self,
                keys: &[$key],
            ) -> Result<std::collections::HashMap<$key, Self::Value>, Self::Error> {
                let ids: Vec<uuid::Uuid> = keys.iter().map(|k| k.0).collect();
                let rows = $fetch(&self.db, &ids).await?;
                Ok(rows.into_iter().map(|m| ($key(m.id), m)).collect())
            }
        }
    };
}

pub(crate) use by_id_loader;
