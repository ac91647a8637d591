//! The viewer of a request and the roles matrix of DESIGN.md, free of GraphQL and HTTP.

use std::{collections::BTreeSet, fmt, str::FromStr};

use uuid::Uuid;

use crate::error::{AppError, AppResult};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Admin,
    Staff,
    Patron,
    Funder,
    Partner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "ADMIN",
            Role::Staff => "STAFF",
            Role::Patron => "PATRON",
            Role::Funder => "FUNDER",
            Role::Partner => "PARTNER",
        }
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "ADMIN" => Ok(Role::Admin),
            "STAFF" => Ok(Role::Staff),
            "PATRON" => Ok(Role::Patron),
            "FUNDER" => Ok(Role::Funder),
            "PARTNER" => Ok(Role::Partner),
            other => Err(format!("unknown role `{other}`")),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Partner API scopes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    ServicesRead,
    ServicesWrite,
    PatronsRead,
    PatronsWrite,
    InteractionsRead,
    InteractionsWrite,
    CampaignsRead,
    CampaignsWrite,
    ReportsRead,
}

impl Scope {
    pub const ALL: [Scope; 9] = [
        Scope::ServicesRead,
        Scope::ServicesWrite,
        Scope::PatronsRead,
        Scope::PatronsWrite,
        Scope::InteractionsRead,
        Scope::InteractionsWrite,
        Scope::CampaignsRead,
        Scope::CampaignsWrite,
        Scope::ReportsRead,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::ServicesRead => "services:read",
            Scope::ServicesWrite => "services:write",
            Scope::PatronsRead => "patrons:read",
            Scope::PatronsWrite => "patrons:write",
            Scope::InteractionsRead => "interactions:read",
            Scope::InteractionsWrite => "interactions:write",
            Scope::CampaignsRead => "campaigns:read",
            Scope::CampaignsWrite => "campaigns:write",
            Scope::ReportsRead => "reports:read",
        }
    }
}

impl FromStr for Scope {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Scope::ALL.into_iter().find(|scope| scope.as_str() == s).ok_or_else(|| format!("unknown scope `{s}`"))
    }
}

/// Who an authenticated request acts for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Admin { account_id: String },
    Staff { account_id: String },
    Patron { patron_id: Uuid },
    Funder { account_id: String, funder_id: Uuid },
    Partner { client_id: String, scopes: BTreeSet<Scope> },
}

/// The viewer of one request: anonymous, or a principal from a verified token.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Viewer {
    pub principal: Option<Principal>,
    /// The token's `jti`, for revocation and audit.
    pub token_id: Option<String>,
    /// The session the token belongs to (`sid`), revoked together on logout or reuse detection.
    pub session_id: Option<String>,
    /// The token's `exp` (seconds since the epoch): how long a revocation must be kept.
    pub token_expires_at: Option<i64>,
}

/// What the roles matrix grants, row rules aside.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Capability {
    /// Services including inactive ones (the active catalogue is public).
    ReadAllServices,
    WriteServices,
    ReadPatrons,
    WritePatrons,
    ReadInteractions,
    WriteInteractions,
    ReadStaffNotes,
    ReadFunders,
    WriteFunders,
    ReadReports,
    ReadCampaigns,
    WriteCampaigns,
    Administer,
}

impl Viewer {
    pub fn anonymous() -> Self {
        Self::default()
    }

    pub fn new(principal: Principal) -> Self {
        Self { principal: Some(principal), ..Self::default() }
    }

    pub fn role(&self) -> Option<Role> {
        self.principal.as_ref().map(|p| match p {
            Principal::Admin { .. } => Role::Admin,
            Principal::Staff { .. } => Role::Staff,
            Principal::Patron { .. } => Role::Patron,
            Principal::Funder { .. } => Role::Funder,
            Principal::Partner { .. } => Role::Partner,
        })
    }

    pub fn is_authenticated(&self) -> bool {
        self.principal.is_some()
    }

    /// Staff or admin: the library's own people.
    pub fn is_staff(&self) -> bool {
        matches!(self.role(), Some(Role::Staff | Role::Admin))
    }

    pub fn patron_id(&self) -> Option<Uuid> {
        match &self.principal {
            Some(Principal::Patron { patron_id }) => Some(*patron_id),
            _ => None,
        }
    }

    pub fn funder_id(&self) -> Option<Uuid> {
        match &self.principal {
            Some(Principal::Funder { funder_id, .. }) => Some(*funder_id),
            _ => None,
        }
    }

    /// The account behind an admin, staff or funder token (tokens minted by `login`; operator
    /// tokens from `rapport token` name no account).
    pub fn account_id(&self) -> Option<Uuid> {
        match &self.principal {
            Some(
                Principal::Admin { account_id }
                | Principal::Staff { account_id }
                | Principal::Funder { account_id, .. },
            ) => account_id.parse().ok(),
            _ => None,
        }
    }

    /// A stable label for logs, audit and rate limits.
    pub fn subject(&self) -> String {
        match &self.principal {
            None => "anonymous".into(),
            Some(Principal::Admin { account_id } | Principal::Staff { account_id }) => account_id.clone(),
            Some(Principal::Funder { account_id, .. }) => account_id.clone(),
            Some(Principal::Patron { patron_id }) => patron_id.to_string(),
            Some(Principal::Partner { client_id, .. }) => client_id.clone(),
        }
    }

    pub fn has_scope(&self, scope: Scope) -> bool {
        matches!(&self.principal, Some(Principal::Partner { scopes, .. }) if scopes.contains(&scope))
    }

    pub fn can(&self, capability: Capability) -> bool {
        use Capability::*;
        let Some(principal) = &self.principal else {
            return false;
        };
        match principal {
            Principal::Admin { .. } => true,
            Principal::Staff { .. } => capability != Administer,
            Principal::Patron { .. } | Principal::Funder { .. } => false,
            Principal::Partner { scopes, .. } => {
                let needed = match capability {
                    ReadAllServices => Scope::ServicesRead,
                    WriteServices => Scope::ServicesWrite,
                    ReadPatrons => Scope::PatronsRead,
                    WritePatrons => Scope::PatronsWrite,
                    ReadInteractions => Scope::InteractionsRead,
                    WriteInteractions => Scope::InteractionsWrite,
                    ReadCampaigns => Scope::CampaignsRead,
                    WriteCampaigns => Scope::CampaignsWrite,
                    ReadReports => Scope::ReportsRead,
                    ReadStaffNotes | ReadFunders | WriteFunders | Administer => return false,
                };
                // A write scope implies reading what one writes.
                scopes.contains(&needed)
                    || match needed {
                        Scope::ServicesRead => scopes.contains(&Scope::ServicesWrite),
                        Scope::PatronsRead => scopes.contains(&Scope::PatronsWrite),
                        Scope::InteractionsRead => scopes.contains(&Scope::InteractionsWrite),
                        Scope::CampaignsRead => scopes.contains(&Scope::CampaignsWrite),
                        _ => false,
                    }
            }
        }
    }

    /// `Ok` when the capability is granted; `UNAUTHENTICATED` for anonymous viewers, `FORBIDDEN`
    /// for everyone else.
    pub fn require(&self, capability: Capability) -> AppResult<()> {
        if self.can(capability) { Ok(()) } else { Err(self.denied(capability_label(capability))) }
    }

    pub fn require_authenticated(&self) -> AppResult<()> {
        if self.is_authenticated() { Ok(()) } else { Err(AppError::unauthenticated()) }
    }

    /// The error for a refused action: anonymous viewers are asked to log in first.
    pub fn denied(&self, what: &str) -> AppError {
        match self.role() {
            None => AppError::unauthenticated(),
            Some(role) => AppError::forbidden(format!("{role} may not {what}")),
        }
    }
}

fn capability_label(capability: Capability) -> &'static str {
    match capability {
        Capability::ReadAllServices => "read inactive services",
        Capability::WriteServices => "change services",
        Capability::ReadPatrons => "read patron records",
        Capability::WritePatrons => "change patron records",
        Capability::ReadInteractions => "read interactions",
        Capability::WriteInteractions => "record interactions",
        Capability::ReadStaffNotes => "read staff notes",
        Capability::ReadFunders => "read funders",
        Capability::WriteFunders => "change funders",
        Capability::ReadReports => "read reports",
        Capability::ReadCampaigns => "read campaigns",
        Capability::WriteCampaigns => "change campaigns",
        Capability::Administer => "administer accounts",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partner(scopes: &[Scope]) -> Viewer {
        Viewer::new(Principal::Partner { client_id: "c".into(), scopes: scopes.iter().copied().collect() })
    }

    #[test]
    fn partners_get_only_their_scopes() {
        let p = partner(&[Scope::PatronsRead]);
        assert!(p.can(Capability::ReadPatrons));
        assert!(!p.can(Capability::WritePatrons));
        assert!(!p.can(Capability::ReadStaffNotes));
        assert!(partner(&[Scope::InteractionsWrite]).can(Capability::ReadInteractions));
    }

    #[test]
    fn anonymous_is_unauthenticated_and_patrons_forbidden() {
        let anon = Viewer::anonymous();
        assert!(matches!(anon.require(Capability::ReadPatrons), Err(AppError::Unauthenticated(_))));
        let patron = Viewer::new(Principal::Patron { patron_id: Uuid::nil() });
        assert!(matches!(patron.require(Capability::ReadPatrons), Err(AppError::Forbidden(_))));
        let staff = Viewer::new(Principal::Staff { account_id: "s".into() });
        assert!(staff.can(Capability::ReadStaffNotes));
        assert!(!staff.can(Capability::Administer));
    }
}
