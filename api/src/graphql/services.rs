//! Services catalogue: queries, mutations and the `Service` type.

use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::service;
use uuid::Uuid;

use super::{
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    enums::{Channel, PatronType, ServiceCategory, SortDirection, to_db},
    funders::{Funding, fundings_of_service},
    ids::{NodeKind, parse_global_id, to_global_id},
    interactions::{Interaction, InteractionOwner, InteractionsFilter, interactions_of},
};
use crate::{
    cache::catalogue::Catalogue,
    domain::{
        pagination::PageArgs,
        services::{self as domain, NewService, ServiceFilter, ServicePatch, ServiceSort},
    },
    error::AppError,
    state::AppState,
};

/// Something the library offers: reference help, e-resources, workshops, loans, tutoring...
pub struct Service(pub service::Model);

#[Object(cache_control(max_age = 60))]
impl Service {
    async fn id(&self) -> ID {
        to_global_id(NodeKind::Service, self.0.id)
    }
    /// Unique, upper-case code, e.g. `ILL` or `WRITING-CENTRE`.
    async fn code(&self) -> &str {
        &self.0.code
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn description(&self) -> &str {
        &self.0.description
    }
    async fn category(&self) -> ServiceCategory {
        self.0.category.into()
    }
    /// Channels through which the service is offered.
    async fn channels(&self) -> Vec<Channel> {
        self.0.channel_list().into_iter().map(Into::into).collect()
    }
    /// Patron types the service is meant for; empty means everyone.
    async fn audience(&self) -> Vec<PatronType> {
        self.0.audience_list().into_iter().map(Into::into).collect()
    }
    async fn active(&self) -> bool {
        self.0.active
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Interactions with this service that the viewer may see, newest first.
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn interactions(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<InteractionsFilter>,
    ) -> Result<RelayConnection<Interaction>> {
        interactions_of(ctx, InteractionOwner::Service(self.0.id), filter, PageArgs { first, after, last, before })
            .await
    }
    /// Grants that fund this service (staff: all; a funder: its own).
    async fn fundings(&self, ctx: &Context<'_>) -> Result<Vec<Funding>> {
        fundings_of_service(ctx, self.0.id).await
    }
}

super::loaders::by_id_loader! {
    /// Loader key: a service by id.
    ServiceId => service::Model, domain::by_ids
}

/// Load one service for a relation field, applying the viewer's visibility.
pub async fn load_service(ctx: &Context<'_>, id: Uuid) -> Result<Service> {
    let model = ctx.loader()?.load_one(ServiceId(id)).await?.ok_or_else(|| AppError::not_found("service"))?;
    domain::check_visible(ctx.viewer(), &model)?;
    Ok(Service(model))
}

/// The service a record the viewer may already see refers to (an interaction, a campaign):
/// shown even when it has been retired since, so a patron's own history keeps naming the
/// services they used. Only direct look-ups of services hide retired ones.
pub async fn load_referenced_service(ctx: &Context<'_>, id: Uuid) -> Result<Service> {
    let model = ctx.loader()?.load_one(ServiceId(id)).await?.ok_or_else(|| AppError::not_found("service"))?;
    Ok(Service(model))
}

/// Catalogue reads and writes through the shared cache (see `cache::catalogue`).
pub(crate) fn catalogue(state: &AppState) -> Catalogue<'_> {
    Catalogue::new(&state.cache, state.settings.cache.catalogue_ttl)
}

#[derive(InputObject, Default)]
pub struct ServicesFilter {
    /// Any of these categories.
    pub categories: Option<Vec<ServiceCategory>>,
    /// Offered through this channel.
    pub channel: Option<Channel>,
    /// Only active (true) or inactive (false, staff only) services.
    pub active: Option<bool>,
    /// Case-insensitive text in name, code or description.
    pub text: Option<String>,
}

impl From<ServicesFilter> for ServiceFilter {
    fn from(f: ServicesFilter) -> Self {
        ServiceFilter {
            categories: to_db(&f.categories.unwrap_or_default()),
            channel: f.channel.map(Into::into),
            active: f.active,
            text: f.text,
        }
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum ServiceOrderField {
    #[default]
    Name,
    Code,
    CreatedAt,
}

#[derive(InputObject, Default)]
pub struct ServiceOrder {
    #[graphql(default)]
    pub field: ServiceOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(Default)]
pub struct ServiceQuery;

#[Object]
impl ServiceQuery {
    /// The services catalogue. Anonymous callers, patrons and funders see active services.
    #[graphql(cache_control(max_age = 60), complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn services(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<ServicesFilter>,
        order_by: Option<ServiceOrder>,
    ) -> Result<RelayConnection<Service>> {
        let state = ctx.state()?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let filter: ServiceFilter = filter.unwrap_or_default().into();
        let order = order_by.unwrap_or_default();
        let sort = match order.field {
            ServiceOrderField::Name => ServiceSort::Name,
            ServiceOrderField::Code => ServiceSort::Code,
            ServiceOrderField::CreatedAt => ServiceSort::CreatedAt,
        };
        let (page, total) = catalogue(state)
            .list(&state.db, ctx.viewer(), &filter, sort, order.direction.into(), &window, wants_total_count(ctx))
            .await?;
        Ok(into_connection(page, total, Service))
    }

    /// One service by global id or by code.
    #[graphql(cache_control(max_age = 60))]
    async fn service(&self, ctx: &Context<'_>, id: Option<ID>, code: Option<String>) -> Result<Service> {
        let state = ctx.state()?;
        let model = match (id, code) {
            (Some(id), None) => {
                catalogue(state).by_id(&state.db, ctx.viewer(), parse_global_id(&id, NodeKind::Service, "id")?).await?
            }
            (None, Some(code)) => catalogue(state).by_code(&state.db, ctx.viewer(), &code).await?,
            _ => return Err(AppError::bad_input("pass exactly one of `id` or `code`").into()),
        };
        Ok(Service(model))
    }
}

#[derive(InputObject)]
pub struct CreateServiceInput {
    pub code: String,
    pub name: String,
    pub description: Option<String>,
    pub category: ServiceCategory,
    #[graphql(default)]
    pub channels: Vec<Channel>,
    #[graphql(default)]
    pub audience: Vec<PatronType>,
    pub active: Option<bool>,
}

#[derive(InputObject)]
pub struct UpdateServiceInput {
    pub id: ID,
    pub code: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub category: Option<ServiceCategory>,
    pub channels: Option<Vec<Channel>>,
    pub audience: Option<Vec<PatronType>>,
    pub active: Option<bool>,
}

#[derive(Default)]
pub struct ServiceMutation;

#[Object]
impl ServiceMutation {
    /// Add a service to the catalogue (staff, admins, partners with `services:write`).
    async fn create_service(&self, ctx: &Context<'_>, input: CreateServiceInput) -> Result<Service> {
        let state = ctx.state()?;
        let input = NewService {
            code: input.code,
            name: input.name,
            description: input.description,
            category: input.category.into(),
            channels: to_db(&input.channels),
            audience: to_db(&input.audience),
            active: input.active,
        };
        let model = domain::create(&state.db, ctx.viewer(), input).await?;
        catalogue(state).invalidate().await;
        Ok(Service(model))
    }

    /// Change a service; omitted fields keep their value.
    async fn update_service(&self, ctx: &Context<'_>, input: UpdateServiceInput) -> Result<Service> {
        let state = ctx.state()?;
        let id = parse_global_id(&input.id, NodeKind::Service, "input.id")?;
        let patch = ServicePatch {
            code: input.code,
            name: input.name,
            description: input.description,
            category: input.category.map(Into::into),
            channels: input.channels.map(|c| to_db(&c)),
            audience: input.audience.map(|a| to_db(&a)),
            active: input.active,
        };
        let model = domain::update(&state.db, ctx.viewer(), id, patch).await?;
        catalogue(state).invalidate().await;
        Ok(Service(model))
    }
}
