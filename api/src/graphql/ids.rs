//! Global object ids for `node(id:)`: an opaque base64url of `Type:uuid`.

use async_graphql::ID;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeKind {
    Patron,
    Service,
    Interaction,
    Funder,
    Funding,
    Account,
    PartnerClient,
    Segment,
    Campaign,
    CampaignDelivery,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Patron => "Patron",
            NodeKind::Service => "Service",
            NodeKind::Interaction => "Interaction",
            NodeKind::Funder => "Funder",
            NodeKind::Funding => "Funding",
            NodeKind::Account => "Account",
            NodeKind::PartnerClient => "PartnerClient",
            NodeKind::Segment => "Segment",
            NodeKind::Campaign => "Campaign",
            NodeKind::CampaignDelivery => "CampaignDelivery",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        [
            NodeKind::Patron,
            NodeKind::Service,
            NodeKind::Interaction,
            NodeKind::Funder,
            NodeKind::Funding,
            NodeKind::Account,
            NodeKind::PartnerClient,
            NodeKind::Segment,
            NodeKind::Campaign,
            NodeKind::CampaignDelivery,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

pub fn to_global_id(kind: NodeKind, id: Uuid) -> ID {
    ID(URL_SAFE_NO_PAD.encode(format!("{}:{}", kind.as_str(), id)))
}

/// Decode any global id into its kind and uuid.
pub fn decode_global_id(id: &ID) -> Option<(NodeKind, Uuid)> {
    let raw = URL_SAFE_NO_PAD.decode(id.as_str().trim()).ok()?;
    let text = String::from_utf8(raw).ok()?;
    let (kind, uuid) = text.split_once(':')?;
    Some((NodeKind::parse(kind)?, uuid.parse().ok()?))
}

/// Decode a global id that must be of `kind`; `field` names the argument in the error.
pub fn parse_global_id(id: &ID, kind: NodeKind, field: &str) -> AppResult<Uuid> {
    match decode_global_id(id) {
        Some((k, uuid)) if k == kind => Ok(uuid),
        _ => Err(AppError::bad_field(field, format!("not a valid {} id", kind.as_str()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_checks_the_kind() {
        let uuid = Uuid::now_v7();
        let id = to_global_id(NodeKind::Patron, uuid);
        assert_eq!(decode_global_id(&id), Some((NodeKind::Patron, uuid)));
        assert!(parse_global_id(&id, NodeKind::Service, "id").is_err());
        assert!(decode_global_id(&ID("garbage".into())).is_none());
    }
}
