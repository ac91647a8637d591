//! GraphQL mirrors of the stored enums (`remote` derives the conversions both ways), so the
//! entity crate stays free of GraphQL.

use async_graphql::Enum;
use entity::enums as db;

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::PatronType")]
pub enum PatronType {
    OnlineLearner,
    OnCampusStudent,
    Faculty,
    StaffMember,
    Public,
    Alumni,
    Child,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::PatronStatus")]
pub enum PatronStatus {
    Active,
    Inactive,
    Erased,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::ServiceCategory")]
pub enum ServiceCategory {
    Reference,
    EResources,
    Workshops,
    Loans,
    InterLibraryLoan,
    Tutoring,
    Events,
    EmbeddedLibrarian,
    Spaces,
    ResearchSupport,
    Other,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::Channel")]
pub enum Channel {
    InPerson,
    Web,
    MobileApp,
    Email,
    Chat,
    Phone,
    Sms,
    EmbeddedCourse,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::InteractionKind")]
pub enum InteractionKind {
    Visit,
    Loan,
    ReferenceQuestion,
    EventAttendance,
    EResourceAccess,
    Consultation,
    Workshop,
    Outreach,
    Feedback,
    Referral,
    Other,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::FunderKind")]
pub enum FunderKind {
    Government,
    Foundation,
    Donor,
    Company,
    Other,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::ConsentPurpose")]
pub enum ConsentPurpose {
    Personalisation,
    MarketingEmail,
    MarketingSms,
    MarketingPush,
    MarketingInApp,
}

#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "db::ConsentSource")]
pub enum ConsentSource {
    App,
    Staff,
    Import,
}

/// Sort direction of a list.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SortDirection {
    #[default]
    Asc,
    Desc,
}

impl From<SortDirection> for crate::domain::pagination::SortDirection {
    fn from(value: SortDirection) -> Self {
        match value {
            SortDirection::Asc => Self::Asc,
            SortDirection::Desc => Self::Desc,
        }
    }
}

/// Map a list of GraphQL enum values to their stored form.
pub fn to_db<G: Copy + Into<D>, D>(values: &[G]) -> Vec<D> {
    values.iter().map(|v| (*v).into()).collect()
}
