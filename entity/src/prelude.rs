//! Entities under their conventional names, plus the enums.

pub use super::consent_event::Entity as ConsentEvent;
pub use super::enums::{
    Channel, ConsentPurpose, ConsentSource, FunderKind, InteractionKind, PatronStatus, PatronType, ServiceCategory,
    UnknownVariant,
};
pub use super::funder::Entity as Funder;
pub use super::funding::Entity as Funding;
pub use super::interaction::Entity as Interaction;
pub use super::patron::Entity as Patron;
pub use super::patron_tag::Entity as PatronTag;
pub use super::service::Entity as Service;
