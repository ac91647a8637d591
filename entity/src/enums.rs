//! String-backed enums stored in `VARCHAR` columns.
//!
//! Each variant's database string, its serde (JSON) form and [`as_str`](PatronType::as_str)
//! are the same SCREAMING_SNAKE_CASE text, e.g. `PatronType::OnlineLearner` is
//! `"ONLINE_LEARNER"` everywhere. They are plain strings rather than database enum types so
//! that the same migrations run on SQLite and PostgreSQL, and adding a variant needs no
//! migration.

use std::fmt;
use std::str::FromStr;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The text did not name any variant of the enum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownVariant {
    /// Name of the enum type, e.g. `"PatronType"`.
    pub enum_name: &'static str,
    /// The text that was given.
    pub value: String,
}

impl fmt::Display for UnknownVariant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} value {:?}", self.enum_name, self.value)
    }
}

impl std::error::Error for UnknownVariant {}

/// Declares a string-backed `DeriveActiveEnum` whose database, serde and [`as_str`] forms
/// are all the given string, plus `ALL`, `Display` and `FromStr`.
macro_rules! string_enum {
    (
        $(#[$meta:meta])*
        $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $value:tt, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Clone, Copy, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize,
            Deserialize,
        )]
        #[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
        pub enum $name {
            $(
                $(#[$vmeta])*
                #[sea_orm(string_value = $value)]
                #[serde(rename = $value)]
                $variant,
            )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stored (and JSON) string of this variant.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $($name::$variant => $value,)+
                }
            }

            /// The variant whose stored string is `value`, if any.
            pub fn parse(value: &str) -> Option<Self> {
                match value {
                    $($value => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownVariant;

            fn from_str(value: &str) -> Result<Self, Self::Err> {
                Self::parse(value).ok_or_else(|| UnknownVariant {
                    enum_name: stringify!($name),
                    value: value.to_owned(),
                })
            }
        }
    };
}

string_enum! {
    /// What kind of person a patron is; also snapshotted on each interaction.
    PatronType {
        OnlineLearner => "ONLINE_LEARNER",
        OnCampusStudent => "ON_CAMPUS_STUDENT",
        Faculty => "FACULTY",
        StaffMember => "STAFF_MEMBER",
        Public => "PUBLIC",
        Alumni => "ALUMNI",
        Child => "CHILD",
    }
}

string_enum! {
    /// Lifecycle of a patron record.
    PatronStatus {
        Active => "ACTIVE",
        Inactive => "INACTIVE",
        /// Personal data removed; the row only keeps history anonymised.
        Erased => "ERASED",
    }
}

string_enum! {
    /// Category of a library service.
    ServiceCategory {
        Reference => "REFERENCE",
        EResources => "E_RESOURCES",
        Workshops => "WORKSHOPS",
        Loans => "LOANS",
        InterLibraryLoan => "INTER_LIBRARY_LOAN",
        Tutoring => "TUTORING",
        Events => "EVENTS",
        EmbeddedLibrarian => "EMBEDDED_LIBRARIAN",
        Spaces => "SPACES",
        ResearchSupport => "RESEARCH_SUPPORT",
        Other => "OTHER",
    }
}

string_enum! {
    /// How a patron reaches a service (or is reached).
    Channel {
        InPerson => "IN_PERSON",
        Web => "WEB",
        MobileApp => "MOBILE_APP",
        Email => "EMAIL",
        Chat => "CHAT",
        Phone => "PHONE",
        Sms => "SMS",
        EmbeddedCourse => "EMBEDDED_COURSE",
    }
}

string_enum! {
    /// What happened in an interaction.
    InteractionKind {
        Visit => "VISIT",
        Loan => "LOAN",
        ReferenceQuestion => "REFERENCE_QUESTION",
        EventAttendance => "EVENT_ATTENDANCE",
        EResourceAccess => "E_RESOURCE_ACCESS",
        Consultation => "CONSULTATION",
        Workshop => "WORKSHOP",
        Outreach => "OUTREACH",
        Feedback => "FEEDBACK",
        Referral => "REFERRAL",
        Other => "OTHER",
    }
}

string_enum! {
    /// What kind of body a funder is.
    FunderKind {
        Government => "GOVERNMENT",
        Foundation => "FOUNDATION",
        Donor => "DONOR",
        Company => "COMPANY",
        Other => "OTHER",
    }
}

string_enum! {
    /// What a consent is for.
    ConsentPurpose {
        /// Use of the patron's history for personal recommendations.
        Personalisation => "PERSONALISATION",
        MarketingEmail => "MARKETING_EMAIL",
        MarketingSms => "MARKETING_SMS",
        MarketingPush => "MARKETING_PUSH",
        MarketingInApp => "MARKETING_IN_APP",
    }
}

string_enum! {
    /// Where a consent decision was recorded.
    ConsentSource {
        /// By the patron in the mobile app.
        App => "APP",
        /// By staff on the patron's behalf.
        Staff => "STAFF",
        /// Imported from another system.
        Import => "IMPORT",
    }
}

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    use super::*;

    fn check<E>()
    where
        E: ActiveEnum<Value = String> + Iterable + Serialize + FromStr + fmt::Display + PartialEq + fmt::Debug,
    {
        for variant in E::iter() {
            let stored = variant.to_value();
            assert_eq!(variant.to_string(), stored);
            assert_eq!(serde_json::to_value(&variant).ok(), Some(serde_json::Value::String(stored.clone())));
            assert_eq!(E::from_str(&stored).ok(), Some(variant));
        }
    }

    #[test]
    fn stored_json_and_display_forms_agree() {
        check::<PatronType>();
        check::<PatronStatus>();
        check::<ServiceCategory>();
        check::<Channel>();
        check::<InteractionKind>();
        check::<FunderKind>();
        check::<ConsentPurpose>();
        check::<ConsentSource>();
        check::<CampaignChannel>();
        check::<CampaignStatus>();
        assert_eq!(PatronType::ALL.len(), PatronType::iter().count());
        assert!("nope".parse::<Channel>().is_err());
        assert_eq!(serde_json::from_str::<ServiceCategory>("\"E_RESOURCES\"").ok(), Some(ServiceCategory::EResources));
    }
}

string_enum! {
    /// How a campaign reaches its patrons; each needs the matching marketing consent.
    CampaignChannel {
        Email => "EMAIL",
        Sms => "SMS",
        Push => "PUSH",
        /// The patron's inbox in the mobile app.
        InApp => "IN_APP",
    }
}

impl CampaignChannel {
    /// The marketing consent a delivery over this channel needs.
    pub fn consent_purpose(self) -> ConsentPurpose {
        match self {
            CampaignChannel::Email => ConsentPurpose::MarketingEmail,
            CampaignChannel::Sms => ConsentPurpose::MarketingSms,
            CampaignChannel::Push => ConsentPurpose::MarketingPush,
            CampaignChannel::InApp => ConsentPurpose::MarketingInApp,
        }
    }
}

string_enum! {
    /// Where a campaign is in its life.
    CampaignStatus {
        /// Created, not sent: the segment, channel and holdout may still be checked.
        Draft => "DRAFT",
        /// Members assigned and deliveries created; it never goes back.
        Launched => "LAUNCHED",
    }
}
