//! Relay object identification: `node(id:)` refetches any object by its global id, through the
//! same access-checked loaders as the rest of the schema.

use async_graphql::{Context, ID, Interface, Object, Result};

use super::{
    campaigns::{Campaign, CampaignDelivery, load_campaign, load_delivery},
    funders::{Funder, Funding, load_funder, load_funding},
    identity::{Account, PartnerClient, load_account, load_partner_client},
    ids::{NodeKind, decode_global_id, to_global_id},
    interactions::{Interaction, load_interaction},
    patrons::{Patron, load_patron},
    segments::{Segment, load_segment},
    services::{Service, load_service},
};
use crate::error::AppError;

/// An object with a global id.
#[derive(Interface)]
#[graphql(field(name = "id", method = "global_id", ty = "ID"))]
pub enum Node {
    Patron(Patron),
    Service(Service),
    Interaction(Interaction),
    Funder(Funder),
    Funding(Funding),
    Account(Account),
    PartnerClient(PartnerClient),
    Segment(Segment),
    Campaign(Campaign),
    CampaignDelivery(CampaignDelivery),
}

/// The `id` of each node type, reachable from here (each type's own `id` resolver is private to
/// its module); both build the same value with `to_global_id`.
trait GlobalId {
    async fn global_id(&self, ctx: &Context<'_>) -> Result<ID>;
}

macro_rules! global_id {
    ($($ty:ident => $kind:ident),* $(,)?) => {
        $(impl GlobalId for $ty {
            async fn global_id(&self, _ctx: &Context<'_>) -> Result<ID> {
                Ok(to_global_id(NodeKind::$kind, self.0.id))
            }
        })*
    };
}

global_id!(Patron => Patron, Service => Service, Interaction => Interaction, Funder => Funder, Funding => Funding);
global_id!(Account => Account, PartnerClient => PartnerClient);
global_id!(Segment => Segment, Campaign => Campaign, CampaignDelivery => CampaignDelivery);

#[derive(Default)]
pub struct NodeQuery;

#[Object]
impl NodeQuery {
    /// Any object by its global id, with the same access rules as its own query.
    async fn node(&self, ctx: &Context<'_>, id: ID) -> Result<Node> {
        let (kind, uuid) = decode_global_id(&id).ok_or_else(|| AppError::bad_field("id", "not a valid global id"))?;
        Ok(match kind {
            NodeKind::Patron => Node::Patron(load_patron(ctx, uuid).await?),
            NodeKind::Service => Node::Service(load_service(ctx, uuid).await?),
            NodeKind::Interaction => Node::Interaction(load_interaction(ctx, uuid).await?),
            NodeKind::Funder => Node::Funder(load_funder(ctx, uuid).await?),
            NodeKind::Funding => Node::Funding(load_funding(ctx, uuid).await?),
            NodeKind::Account => Node::Account(load_account(ctx, uuid).await?),
            NodeKind::PartnerClient => Node::PartnerClient(load_partner_client(ctx, uuid).await?),
            NodeKind::Segment => Node::Segment(load_segment(ctx, uuid).await?),
            NodeKind::Campaign => Node::Campaign(load_campaign(ctx, uuid).await?),
            NodeKind::CampaignDelivery => Node::CampaignDelivery(load_delivery(ctx, uuid).await?),
        })
    }
}
