//! Funders and their grants: queries, mutations and the `Funder` and `Funding` types.

use std::collections::HashMap;

use async_graphql::{Context, ID, InputObject, Object, Result, dataloader::Loader};
use chrono::{DateTime, Utc};
use entity::{funder, funding};
use uuid::Uuid;

use super::{
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    enums::{FunderKind, SortDirection, to_db},
    ids::{NodeKind, parse_global_id, to_global_id},
    loaders::AppLoader,
    scalars::{Date, Money},
    services::{Service, ServiceId},
};
use crate::{
    auth::Capability,
    domain::{
        funders::{self as domain, FunderFilter, FunderPatch, FunderSort, FundingPatch, NewFunder, NewFunding},
        pagination::PageArgs,
    },
    error::AppError,
};

/// A third party that pays for services: a government body, foundation, donor or company.
pub struct Funder(pub funder::Model);

#[Object]
impl Funder {
    async fn id(&self) -> ID {
        to_global_id(NodeKind::Funder, self.0.id)
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn kind(&self) -> FunderKind {
        self.0.kind.into()
    }
    async fn contact_email(&self) -> Option<&str> {
        self.0.contact_email.as_deref()
    }
    async fn website(&self) -> Option<&str> {
        self.0.website.as_deref()
    }
    /// Internal notes: staff and admins only (a funder gets FORBIDDEN).
    async fn notes(&self, ctx: &Context<'_>) -> Result<Option<&str>> {
        domain::check_notes_readable(ctx.viewer())?;
        Ok(self.0.notes.as_deref())
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
    /// Grants from this funder, oldest period first.
    async fn fundings(&self, ctx: &Context<'_>) -> Result<Vec<Funding>> {
        Ok(visible_fundings_of_funder(ctx, self.0.id).await?.into_iter().map(Funding).collect())
    }
    /// Sum of this funder's grants, one entry per currency (ordered by currency code).
    async fn total_funding(&self, ctx: &Context<'_>) -> Result<Vec<Money>> {
        let rows = visible_fundings_of_funder(ctx, self.0.id).await?;
        let totals = domain::totals_by_currency(&rows)?;
        Ok(totals.into_iter().map(|(currency, minor)| Money::new(minor, &currency)).collect())
    }
}

/// A grant: money from a funder to a service over a period.
pub struct Funding(pub funding::Model);

#[Object]
impl Funding {
    async fn id(&self) -> ID {
        to_global_id(NodeKind::Funding, self.0.id)
    }
    /// Grant reference, if any.
    async fn name(&self) -> Option<&str> {
        self.0.name.as_deref()
    }
    async fn amount(&self) -> Money {
        Money::new(self.0.amount_minor, &self.0.currency)
    }
    /// First day of the grant period.
    async fn starts_on(&self) -> Date {
        Date(self.0.starts_on)
    }
    /// Last day of the grant period (inclusive).
    async fn ends_on(&self) -> Date {
        Date(self.0.ends_on)
    }
    async fn funder(&self, ctx: &Context<'_>) -> Result<Funder> {
        load_funder(ctx, self.0.funder_id).await
    }
    /// The funded service. A funder sees the services it funds even when they are inactive.
    async fn service(&self, ctx: &Context<'_>) -> Result<Service> {
        domain::check_funding_readable(ctx.viewer(), &self.0)?;
        let model = ctx
            .loader()?
            .load_one(ServiceId(self.0.service_id))
            .await?
            .ok_or_else(|| AppError::not_found("service"))?;
        Ok(Service(model))
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

super::loaders::by_id_loader! {
    /// Loader key: a funder by id.
    FunderId => funder::Model, domain::by_ids
}

super::loaders::by_id_loader! {
    /// Loader key: a funding by id.
    FundingId => funding::Model, domain::fundings_by_ids
}

/// Loader key: all fundings of a service (rows are filtered per viewer by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FundingsOfService(pub Uuid);

impl Loader<FundingsOfService> for AppLoader {
    type Value = Vec<funding::Model>;
    type Error = std::sync::Arc<AppError>;

    async fn load(&self, keys: &[FundingsOfService]) -> Result<HashMap<FundingsOfService, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut out: HashMap<FundingsOfService, Self::Value> = HashMap::new();
        for row in domain::for_services(&self.db, &ids).await? {
            out.entry(FundingsOfService(row.service_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// Loader key: all fundings of a funder (rows are filtered per viewer by the caller).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FundingsOfFunder(pub Uuid);

impl Loader<FundingsOfFunder> for AppLoader {
    type Value = Vec<funding::Model>;
    type Error = std::sync::Arc<AppError>;

    async fn load(&self, keys: &[FundingsOfFunder]) -> Result<HashMap<FundingsOfFunder, Self::Value>, Self::Error> {
        let ids: Vec<Uuid> = keys.iter().map(|k| k.0).collect();
        let mut out: HashMap<FundingsOfFunder, Self::Value> = HashMap::new();
        for row in domain::for_funders(&self.db, &ids).await? {
            out.entry(FundingsOfFunder(row.funder_id)).or_default().push(row);
        }
        Ok(out)
    }
}

/// Load one funder through the loader, applying the viewer's access rules (checked before the
/// row is read, so a refusal does not reveal whether it exists).
pub async fn load_funder(ctx: &Context<'_>, id: Uuid) -> Result<Funder> {
    domain::check_funder_readable(ctx.viewer(), id)?;
    let model = ctx.loader()?.load_one(FunderId(id)).await?.ok_or_else(|| AppError::not_found("funder"))?;
    Ok(Funder(model))
}

/// Load one funding through the loader, applying the viewer's access rules.
pub async fn load_funding(ctx: &Context<'_>, id: Uuid) -> Result<Funding> {
    domain::read_scope(ctx.viewer())?;
    let model = ctx.loader()?.load_one(FundingId(id)).await?.ok_or_else(|| AppError::not_found("funding"))?;
    domain::check_funding_readable(ctx.viewer(), &model)?;
    Ok(Funding(model))
}

async fn visible_fundings_of_funder(ctx: &Context<'_>, funder_id: Uuid) -> Result<Vec<funding::Model>> {
    let scope = domain::read_scope(ctx.viewer())?;
    let rows = ctx.loader()?.load_one(FundingsOfFunder(funder_id)).await?.unwrap_or_default();
    Ok(rows.into_iter().filter(|f| scope.allows_funding(f)).collect())
}

/// Fundings of a service the viewer may see (batched through the loader): staff and admins see
/// all, a funder only its own funder's; everyone else is refused.
pub async fn fundings_of_service(ctx: &Context<'_>, service_id: Uuid) -> Result<Vec<Funding>> {
    let scope = domain::read_scope(ctx.viewer())?;
    let rows = ctx.loader()?.load_one(FundingsOfService(service_id)).await?.unwrap_or_default();
    Ok(rows.into_iter().filter(|f| scope.allows_funding(f)).map(Funding).collect())
}

#[derive(InputObject, Default)]
pub struct FundersFilter {
    /// Case-insensitive text in the name.
    pub text: Option<String>,
    /// Any of these kinds.
    pub kinds: Option<Vec<FunderKind>>,
}

impl From<FundersFilter> for FunderFilter {
    fn from(f: FundersFilter) -> Self {
        FunderFilter { text: f.text, kinds: to_db(&f.kinds.unwrap_or_default()) }
    }
}

#[derive(async_graphql::Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum FunderOrderField {
    #[default]
    Name,
    CreatedAt,
}

#[derive(InputObject, Default)]
pub struct FunderOrder {
    #[graphql(default)]
    pub field: FunderOrderField,
    #[graphql(default)]
    pub direction: SortDirection,
}

#[derive(Default)]
pub struct FunderQuery;

#[Object]
impl FunderQuery {
    /// Funders: all of them for staff and admins, its own for a funder account.
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn funders(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<FundersFilter>,
        order_by: Option<FunderOrder>,
    ) -> Result<RelayConnection<Funder>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        // Refuse before looking at the arguments, so an anonymous caller learns nothing else.
        domain::read_scope(viewer)?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let filter: FunderFilter = filter.unwrap_or_default().into();
        let order = order_by.unwrap_or_default();
        let sort = match order.field {
            FunderOrderField::Name => FunderSort::Name,
            FunderOrderField::CreatedAt => FunderSort::CreatedAt,
        };
        let page = domain::list(&state.db, viewer, &filter, sort, order.direction.into(), &window).await?;
        let total = if wants_total_count(ctx) { Some(domain::count(&state.db, viewer, &filter).await?) } else { None };
        Ok(into_connection(page, total, Funder))
    }

    /// One funder by global id (a funder account may only ask for its own).
    async fn funder(&self, ctx: &Context<'_>, id: ID) -> Result<Funder> {
        let state = ctx.state()?;
        let id = parse_global_id(&id, NodeKind::Funder, "id")?;
        Ok(Funder(domain::get(&state.db, ctx.viewer(), id).await?))
    }
}

#[derive(InputObject)]
pub struct CreateFunderInput {
    pub name: String,
    pub kind: FunderKind,
    pub contact_email: Option<String>,
    /// An http(s) URL.
    pub website: Option<String>,
    /// Internal notes, visible to staff only.
    pub notes: Option<String>,
}

/// Omitted fields keep their value; an empty string clears an optional one.
#[derive(InputObject)]
pub struct UpdateFunderInput {
    pub id: ID,
    pub name: Option<String>,
    pub kind: Option<FunderKind>,
    pub contact_email: Option<String>,
    pub website: Option<String>,
    pub notes: Option<String>,
}

#[derive(InputObject)]
pub struct CreateFundingInput {
    pub funder_id: ID,
    pub service_id: ID,
    /// Grant reference.
    pub name: Option<String>,
    /// Decimal string, e.g. "1250.00", with at most the currency's minor-unit digits.
    pub amount: String,
    /// ISO 4217 code, e.g. "EUR".
    pub currency: String,
    pub starts_on: Date,
    /// Last day of the period (inclusive); not before `startsOn`.
    pub ends_on: Date,
}

/// Omitted fields keep their value. Changing the currency needs the amount again.
#[derive(InputObject)]
pub struct UpdateFundingInput {
    pub id: ID,
    pub service_id: Option<ID>,
    pub name: Option<String>,
    pub amount: Option<String>,
    pub currency: Option<String>,
    pub starts_on: Option<Date>,
    pub ends_on: Option<Date>,
}

#[derive(Default)]
pub struct FunderMutation;

#[Object]
impl FunderMutation {
    /// Add a funder (staff and admins).
    async fn create_funder(&self, ctx: &Context<'_>, input: CreateFunderInput) -> Result<Funder> {
        let state = ctx.state()?;
        let input = NewFunder {
            name: input.name,
            kind: input.kind.into(),
            contact_email: input.contact_email,
            website: input.website,
            notes: input.notes,
        };
        Ok(Funder(domain::create(&state.db, ctx.viewer(), input).await?))
    }

    /// Change a funder; omitted fields keep their value.
    async fn update_funder(&self, ctx: &Context<'_>, input: UpdateFunderInput) -> Result<Funder> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        viewer.require(Capability::WriteFunders)?;
        let id = parse_global_id(&input.id, NodeKind::Funder, "input.id")?;
        let patch = FunderPatch {
            name: input.name,
            kind: input.kind.map(Into::into),
            contact_email: input.contact_email,
            website: input.website,
            notes: input.notes,
        };
        Ok(Funder(domain::update(&state.db, viewer, id, patch).await?))
    }

    /// Record a grant from a funder to a service (staff and admins).
    async fn create_funding(&self, ctx: &Context<'_>, input: CreateFundingInput) -> Result<Funding> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        viewer.require(Capability::WriteFunders)?;
        let input = NewFunding {
            funder_id: parse_global_id(&input.funder_id, NodeKind::Funder, "input.funderId")?,
            service_id: parse_global_id(&input.service_id, NodeKind::Service, "input.serviceId")?,
            name: input.name,
            amount: input.amount,
            currency: input.currency,
            starts_on: input.starts_on.0,
            ends_on: input.ends_on.0,
        };
        Ok(Funding(domain::create_funding(&state.db, viewer, input).await?))
    }

    /// Change a grant; omitted fields keep their value.
    async fn update_funding(&self, ctx: &Context<'_>, input: UpdateFundingInput) -> Result<Funding> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        viewer.require(Capability::WriteFunders)?;
        let id = parse_global_id(&input.id, NodeKind::Funding, "input.id")?;
        let service_id =
            input.service_id.map(|s| parse_global_id(&s, NodeKind::Service, "input.serviceId")).transpose()?;
        let patch = FundingPatch {
            service_id,
            name: input.name,
            amount: input.amount,
            currency: input.currency,
            starts_on: input.starts_on.map(|d| d.0),
            ends_on: input.ends_on.map(|d| d.0),
        };
        Ok(Funding(domain::update_funding(&state.db, viewer, id, patch).await?))
    }
}
