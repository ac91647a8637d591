//! Library services: the catalogue. The active catalogue is public; inactive services and all
//! writes need staff or a partner scope.

use chrono::Utc;
use entity::{
    enums::{Channel, PatronType, ServiceCategory},
    service,
};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter, Set,
    sea_query::Expr,
};
use uuid::Uuid;

use super::{
    pagination::{Cursor, Keyset, Page, PageWindow, SortDirection, SortValue},
    search, validation,
};
use crate::{
    auth::{Capability, Viewer},
    error::{AppError, AppResult},
};

#[derive(Debug, Clone, Default)]
pub struct ServiceFilter {
    pub categories: Vec<ServiceCategory>,
    pub channel: Option<Channel>,
    pub active: Option<bool>,
    pub text: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ServiceSort {
    #[default]
    Name,
    Code,
    CreatedAt,
}

#[derive(Debug, Clone)]
pub struct NewService {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub category: ServiceCategory,
    pub channels: Vec<Channel>,
    pub audience: Vec<PatronType>,
    pub active: Option<bool>,
}

#[derive(Debug, Clone, Default)]
pub struct ServicePatch {
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<ServiceCategory>,
    pub channels: Option<Vec<Channel>>,
    pub audience: Option<Vec<PatronType>>,
    pub active: Option<bool>,
}

/// Rows this viewer may list: anonymous, patrons and funders see the active catalogue only and
/// are refused (not silently filtered) when they ask for inactive services.
fn visibility(viewer: &Viewer, filter: &ServiceFilter) -> AppResult<Condition> {
    if viewer.can(Capability::ReadAllServices) || viewer.is_staff() {
        return Ok(Condition::all());
    }
    if filter.active == Some(false) {
        return Err(viewer.denied("read inactive services"));
    }
    Ok(Condition::all().add(service::Column::Active.eq(true)))
}

fn condition(filter: &ServiceFilter) -> Condition {
    let mut cond = Condition::all();
    if !filter.categories.is_empty() {
        cond = cond.add(service::Column::Category.is_in(filter.categories.iter().copied()));
    }
    if let Some(channel) = filter.channel {
        // Channels are a JSON array of enum names; quoting makes the match exact.
        cond = cond.add(service::Column::Channels.like(format!("%\"{}\"%", channel.as_str())));
    }
    if let Some(active) = filter.active {
        cond = cond.add(service::Column::Active.eq(active));
    }
    if let Some(text) = search::normalise(filter.text.as_deref()) {
        cond = cond.add(
            Condition::any()
                .add(search::contains_ci(Expr::col(service::Column::Name), &text))
                .add(search::contains_ci(Expr::col(service::Column::Code), &text))
                .add(search::contains_ci(Expr::col(service::Column::Description), &text)),
        );
    }
    cond
}

fn keyset(sort: ServiceSort, direction: SortDirection) -> Keyset {
    let key = match sort {
        ServiceSort::Name => Expr::col(service::Column::Name),
        ServiceSort::Code => Expr::col(service::Column::Code),
        ServiceSort::CreatedAt => Expr::col(service::Column::CreatedAt),
    };
    Keyset::new(key, Expr::col(service::Column::Id), direction)
}

fn cursor(sort: ServiceSort, model: &service::Model) -> Cursor {
    let key = match sort {
        ServiceSort::Name => SortValue::Text(model.name.clone()),
        ServiceSort::Code => SortValue::Text(model.code.clone()),
        ServiceSort::CreatedAt => SortValue::Time(model.created_at),
    };
    Cursor::new(key, model.id)
}

pub async fn list(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    filter: &ServiceFilter,
    sort: ServiceSort,
    direction: SortDirection,
    window: &PageWindow,
) -> AppResult<Page<service::Model>> {
    let select = service::Entity::find().filter(visibility(viewer, filter)?).filter(condition(filter));
    keyset(sort, direction).fetch(db, select, window, |m| cursor(sort, m)).await
}

pub async fn count(db: &impl ConnectionTrait, viewer: &Viewer, filter: &ServiceFilter) -> AppResult<u64> {
    Ok(service::Entity::find().filter(visibility(viewer, filter)?).filter(condition(filter)).count(db).await?)
}

/// Whether this viewer may see this service row.
pub fn check_visible(viewer: &Viewer, model: &service::Model) -> AppResult<()> {
    if model.active || viewer.can(Capability::ReadAllServices) || viewer.is_staff() {
        Ok(())
    } else {
        Err(viewer.denied("read inactive services"))
    }
}

pub async fn get(db: &impl ConnectionTrait, viewer: &Viewer, id: Uuid) -> AppResult<service::Model> {
    let model = service::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("service"))?;
    check_visible(viewer, &model)?;
    Ok(model)
}

pub async fn get_by_code(db: &impl ConnectionTrait, viewer: &Viewer, code: &str) -> AppResult<service::Model> {
    let code = code.trim().to_ascii_uppercase();
    let model = service::Entity::find()
        .filter(service::Column::Code.eq(code))
        .one(db)
        .await?
        .ok_or_else(|| AppError::not_found("service"))?;
    check_visible(viewer, &model)?;
    Ok(model)
}

/// Service codes: 2–40 characters of letters, digits, dashes and underscores, stored upper-case.
fn valid_code(raw: &str, field: &str) -> AppResult<String> {
    let code = raw.trim().to_ascii_uppercase();
    if (2..=40).contains(&code.len()) && code.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        Ok(code)
    } else {
        Err(AppError::bad_field(field, "code must be 2–40 letters, digits, dashes or underscores"))
    }
}

fn dedup<T: PartialEq + Copy>(values: &[T]) -> Vec<T> {
    let mut out = Vec::with_capacity(values.len());
    for v in values {
        if !out.contains(v) {
            out.push(*v);
        }
    }
    out
}

fn unique_code_violation(err: AppError) -> AppError {
    match err {
        AppError::Conflict(_) => AppError::conflict("a service with this code already exists"),
        other => other,
    }
}

pub async fn create(db: &impl ConnectionTrait, viewer: &Viewer, input: NewService) -> AppResult<service::Model> {
    viewer.require(Capability::WriteServices)?;
    let code = valid_code(&input.code, "input.code")?;
    let name = validation::required_text(&input.name, "input.name", 200)?;
    let description = validation::optional_text(input.description.as_deref(), "input.description", 5_000)?;
    let now = Utc::now();
    let model = service::ActiveModel {
        id: Set(Uuid::now_v7()),
        code: Set(code),
        name: Set(name),
        description: Set(description.unwrap_or_default()),
        category: Set(input.category),
        channels: Set(service::encode_channels(&dedup(&input.channels))),
        audience: Set(service::encode_audience(&dedup(&input.audience))),
        active: Set(input.active.unwrap_or(true)),
        created_at: Set(now),
        updated_at: Set(now),
    };
    model.insert(db).await.map_err(|e| unique_code_violation(e.into()))
}

pub async fn update(
    db: &impl ConnectionTrait,
    viewer: &Viewer,
    id: Uuid,
    patch: ServicePatch,
) -> AppResult<service::Model> {
    viewer.require(Capability::WriteServices)?;
    let existing = service::Entity::find_by_id(id).one(db).await?.ok_or_else(|| AppError::not_found("service"))?;
    let mut model: service::ActiveModel = existing.into();
    if let Some(code) = &patch.code {
        model.code = Set(valid_code(code, "input.code")?);
    }
    if let Some(name) = &patch.name {
        model.name = Set(validation::required_text(name, "input.name", 200)?);
    }
    if let Some(description) = &patch.description {
        model.description =
            Set(validation::optional_text(Some(description), "input.description", 5_000)?.unwrap_or_default());
    }
    if let Some(category) = patch.category {
        model.category = Set(category);
    }
    if let Some(channels) = &patch.channels {
        model.channels = Set(service::encode_channels(&dedup(channels)));
    }
    if let Some(audience) = &patch.audience {
        model.audience = Set(service::encode_audience(&dedup(audience)));
    }
    if let Some(active) = patch.active {
        model.active = Set(active);
    }
    model.updated_at = Set(Utc::now());
    model.update(db).await.map_err(|e| unique_code_violation(e.into()))
}

/// Services by id, for loaders (no access check: callers check each row).
pub async fn by_ids(db: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<Vec<service::Model>> {
    Ok(service::Entity::find().filter(service::Column::Id.is_in(ids.iter().copied())).all(db).await?)
}
