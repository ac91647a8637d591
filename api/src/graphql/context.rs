//! Typed access to what every resolver needs, without panicking on missing data.

use std::sync::LazyLock;

use async_graphql::{Context, dataloader::DataLoader};

use super::loaders::AppLoader;
use crate::{
    auth::Viewer,
    error::{AppError, AppResult},
    state::AppState,
};

static ANONYMOUS: LazyLock<Viewer> = LazyLock::new(Viewer::anonymous);

pub trait ContextExt {
    /// The viewer attached by the HTTP layer; anonymous if none was attached.
    fn viewer(&self) -> &Viewer;
    fn state(&self) -> AppResult<&AppState>;
    fn loader(&self) -> AppResult<&DataLoader<AppLoader>>;
}

impl ContextExt for Context<'_> {
    fn viewer(&self) -> &Viewer {
        self.data_opt::<Viewer>().unwrap_or(&ANONYMOUS)
    }

    fn state(&self) -> AppResult<&AppState> {
        self.data_opt::<AppState>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("application state missing from schema")))
    }

    fn loader(&self) -> AppResult<&DataLoader<AppLoader>> {
        self.data_opt::<DataLoader<AppLoader>>()
            .ok_or_else(|| AppError::internal(anyhow::anyhow!("data loader missing from request")))
    }
}
