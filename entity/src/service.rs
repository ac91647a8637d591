//! `service`: something the library offers.

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

use crate::enums::{Channel, PatronType, ServiceCategory};

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel, Serialize, Deserialize)]
#[sea_orm(table_name = "service")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    #[sea_orm(unique)]
    pub code: String,
    pub name: String,
    #[sea_orm(column_type = "Text")]
    pub description: String,
    pub category: ServiceCategory,
    /// JSON array of [`Channel`] names, e.g. `["WEB","CHAT"]`; see
    /// [`Model::channel_list`] and [`encode_channels`].
    #[sea_orm(column_type = "Text")]
    pub channels: String,
    /// JSON array of [`PatronType`] names; empty means everyone. See
    /// [`Model::audience_list`] and [`encode_audience`].
    #[sea_orm(column_type = "Text")]
    pub audience: String,
    pub active: bool,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::interaction::Entity")]
    Interaction,
    #[sea_orm(has_many = "super::funding::Entity")]
    Funding,
}

impl Related<super::interaction::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Interaction.def()
    }
}

impl Related<super::funding::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Funding.def()
    }
}

/// The funders of this service, through `funding`.
impl Related<super::funder::Entity> for Entity {
    fn to() -> RelationDef {
        super::funding::Relation::Funder.def()
    }

    fn via() -> Option<RelationDef> {
        Some(super::funding::Relation::Service.def().rev())
    }
}

impl ActiveModelBehavior for ActiveModel {}

impl Model {
    /// The channels the service is offered on, in stored order. Unknown names and
    /// malformed JSON are skipped, never an error.
    pub fn channel_list(&self) -> Vec<Channel> {
        decode_list(&self.channels, Channel::parse)
    }

    /// The patron types the service is meant for; empty means everyone. Unknown names and
    /// malformed JSON are skipped, never an error.
    pub fn audience_list(&self) -> Vec<PatronType> {
        decode_list(&self.audience, PatronType::parse)
    }
}

/// The stored JSON form of a channel list, e.g. `["WEB","CHAT"]`. Duplicates are removed,
/// keeping the first occurrence.
pub fn encode_channels(channels: &[Channel]) -> String {
    encode_list(channels.iter().map(Channel::as_str))
}

/// The stored JSON form of an audience (empty means everyone), e.g. `["FACULTY"]`.
/// Duplicates are removed, keeping the first occurrence.
pub fn encode_audience(audience: &[PatronType]) -> String {
    encode_list(audience.iter().map(PatronType::as_str))
}

fn encode_list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let mut unique: Vec<&str> = Vec::new();
    for name in names {
        if !unique.contains(&name) {
            unique.push(name);
        }
    }
    // `Value`'s `Display` is infallible and compact: `["WEB","CHAT"]`.
    serde_json::Value::from(unique).to_string()
}

fn decode_list<T: PartialEq>(json: &str, parse: impl Fn(&str) -> Option<T>) -> Vec<T> {
    let values: Vec<serde_json::Value> = serde_json::from_str(json).unwrap_or_default();
    let mut out = Vec::with_capacity(values.len());
    for value in values {
        if let Some(item) = value.as_str().and_then(&parse)
            && !out.contains(&item)
        {
            out.push(item);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(channels: &str, audience: &str) -> Model {
        Model {
            id: Uuid::nil(),
            code: "REF".to_owned(),
            name: "Reference".to_owned(),
            description: String::new(),
            category: ServiceCategory::Reference,
            channels: channels.to_owned(),
            audience: audience.to_owned(),
            active: true,
            created_at: DateTimeUtc::UNIX_EPOCH,
            updated_at: DateTimeUtc::UNIX_EPOCH,
        }
    }

    #[test]
    fn round_trip() {
        let channels = encode_channels(&[Channel::Web, Channel::Chat, Channel::Web]);
        assert_eq!(channels, r#"["WEB","CHAT"]"#);
        let audience = encode_audience(&[PatronType::OnlineLearner]);
        assert_eq!(audience, r#"["ONLINE_LEARNER"]"#);
        assert_eq!(encode_audience(&[]), "[]");
        let m = model(&channels, &audience);
        assert_eq!(m.channel_list(), vec![Channel::Web, Channel::Chat]);
        assert_eq!(m.audience_list(), vec![PatronType::OnlineLearner]);
        // Same text as serializing the enums themselves.
        assert_eq!(serde_json::to_string(&[Channel::Web, Channel::Chat]).ok(), Some(channels));
    }

    #[test]
    fn tolerant_decoding() {
        let m = model(r#"["WEB", "TELEPATHY", 3, null, "SMS"]"#, "not json");
        assert_eq!(m.channel_list(), vec![Channel::Web, Channel::Sms]);
        assert!(m.audience_list().is_empty());
        assert!(model("", "{}").channel_list().is_empty());
    }
}
