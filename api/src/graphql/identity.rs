//! Identity: logins and sessions, accounts, patron PINs and partner clients.

use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::{account, partner_client};
use sea_orm::EntityTrait;

use super::{
    connection::{RelayConnection, into_connection, wants_total_count},
    context::ContextExt,
    funders::{Funder, FunderId},
    ids::{NodeKind, parse_global_id, to_global_id},
    patrons::{Patron, PatronId},
};
use crate::{
    auth,
    domain::{
        accounts::{self, AccountFilter, NewAccount},
        pagination::PageArgs,
        partners::{self, ClientWithSecret, PartnerToken},
        sessions::{self, IssuedSession},
    },
    error::AppError,
    http::graphql::ClientIp,
};

/// Who a viewer is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::auth::Role")]
pub enum Role {
    Admin,
    Staff,
    Patron,
    Funder,
    Partner,
}

/// What an account may do.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::account::AccountRole")]
pub enum AccountRole {
    Admin,
    Staff,
    /// Linked to one funder; reads that funder's data only.
    Funder,
}

/// A partner client's permission; in tokens and at `/oauth/token` written `patrons:read` etc.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::auth::Scope")]
pub enum PartnerScope {
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

fn client_ip(ctx: &Context<'_>) -> Option<std::net::IpAddr> {
    ctx.data_opt::<ClientIp>().and_then(|ip| ip.0)
}

fn scopes_out(scopes: impl IntoIterator<Item = auth::Scope>) -> Vec<PartnerScope> {
    scopes.into_iter().map(Into::into).collect()
}

fn seconds_until(at: DateTime<Utc>) -> i64 {
    (at - Utc::now()).num_seconds().max(0)
}

// ---------------------------------------------------------------------------------------------
// Types

/// A staff, admin or funder login.
pub struct Account(pub account::Model);

#[Object]
impl Account {
    pub async fn id(&self) -> ID {
        to_global_id(NodeKind::Account, self.0.id)
    }
    /// Lower-cased login email.
    async fn email(&self) -> &str {
        &self.0.email
    }
    async fn role(&self) -> AccountRole {
        self.0.role.into()
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    /// The funder a FUNDER account belongs to.
    async fn funder(&self, ctx: &Context<'_>) -> Result<Option<Funder>> {
        let Some(funder_id) = self.0.funder_id else {
            return Ok(None);
        };
        let model = ctx.loader()?.load_one(FunderId(funder_id)).await?.ok_or_else(|| AppError::not_found("funder"))?;
        Ok(Some(Funder(model)))
    }
    /// Disabled accounts cannot log in.
    async fn disabled(&self) -> bool {
        self.0.disabled_at.is_some()
    }
    async fn disabled_at(&self) -> Option<DateTime<Utc>> {
        self.0.disabled_at
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// An API client of a partner system. Its secret is shown only when created or rotated.
pub struct PartnerClient(pub partner_client::Model);

#[Object]
impl PartnerClient {
    pub async fn id(&self) -> ID {
        to_global_id(NodeKind::PartnerClient, self.0.id)
    }
    /// The public client id (OAuth `client_id`).
    async fn client_id(&self) -> &str {
        &self.0.client_id
    }
    async fn name(&self) -> &str {
        &self.0.name
    }
    async fn scopes(&self) -> Vec<PartnerScope> {
        scopes_out(partners::scopes_of(&self.0))
    }
    /// False once revoked.
    async fn active(&self) -> bool {
        self.0.revoked_at.is_none()
    }
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }
    async fn rotated_at(&self) -> Option<DateTime<Utc>> {
        self.0.rotated_at
    }
    async fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.0.revoked_at
    }
}

/// A partner client with its secret: shown this once, stored only as a hash.
#[derive(SimpleObject)]
pub struct PartnerClientCredentials {
    pub client: PartnerClient,
    /// Keep it safe: it cannot be shown again (rotate it if lost).
    pub client_secret: String,
}

impl From<ClientWithSecret> for PartnerClientCredentials {
    fn from(value: ClientWithSecret) -> Self {
        Self { client: PartnerClient(value.client), client_secret: value.secret }
    }
}

/// The viewer of a request, or the one a login just created.
pub struct ViewerInfo(pub auth::Viewer);

#[Object(name = "Viewer")]
impl ViewerInfo {
    /// Whether a valid token was presented.
    async fn authenticated(&self) -> bool {
        self.0.is_authenticated()
    }
    /// Null when anonymous.
    async fn role(&self) -> Option<Role> {
        self.0.role().map(Into::into)
    }
    /// The token subject: account id, patron id or partner client id; null when anonymous.
    async fn subject(&self) -> Option<String> {
        self.0.is_authenticated().then(|| self.0.subject())
    }
    /// A partner's scopes (empty for everyone else).
    async fn scopes(&self) -> Vec<PartnerScope> {
        match &self.0.principal {
            Some(auth::Principal::Partner { scopes, .. }) => scopes_out(scopes.iter().copied()),
            _ => Vec::new(),
        }
    }
    /// When the access token expires.
    async fn token_expires_at(&self) -> Option<DateTime<Utc>> {
        self.0.token_expires_at.and_then(|exp| DateTime::from_timestamp(exp, 0))
    }
    /// The account behind a staff, admin or funder login.
    async fn account(&self, ctx: &Context<'_>) -> Result<Option<Account>> {
        let Some(id) = self.0.account_id() else {
            return Ok(None);
        };
        let model = account::Entity::find_by_id(id).one(&ctx.state()?.db).await.map_err(AppError::from)?;
        Ok(model.map(Account))
    }
    /// The patron record of a patron login.
    async fn patron(&self, ctx: &Context<'_>) -> Result<Option<Patron>> {
        let Some(id) = self.0.patron_id() else {
            return Ok(None);
        };
        crate::domain::patrons::check_read(&self.0, id)?;
        Ok(ctx.loader()?.load_one(PatronId(id)).await?.map(Patron))
    }
    /// The funder of a funder login.
    async fn funder(&self, ctx: &Context<'_>) -> Result<Option<Funder>> {
        let Some(id) = self.0.funder_id() else {
            return Ok(None);
        };
        crate::domain::funders::check_funder_readable(&self.0, id)?;
        Ok(ctx.loader()?.load_one(FunderId(id)).await?.map(Funder))
    }
}

/// Tokens from a login or a refresh. Send the access token as `Authorization: Bearer <token>`;
/// before it expires, exchange the refresh token (once) for a new pair.
pub struct AuthPayload(pub IssuedSession);

#[Object]
impl AuthPayload {
    async fn access_token(&self) -> &str {
        &self.0.access_token
    }
    /// Always `Bearer`.
    async fn token_type(&self) -> &str {
        "Bearer"
    }
    /// When the access token expires.
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.access_expires_at
    }
    /// Seconds until the access token expires.
    async fn expires_in(&self) -> i64 {
        seconds_until(self.0.access_expires_at)
    }
    /// Single use: `refreshToken(token:)` returns a new one. Using it twice ends the session.
    async fn refresh_token(&self) -> &str {
        &self.0.refresh_token
    }
    async fn refresh_expires_at(&self) -> DateTime<Utc> {
        self.0.refresh_expires_at
    }
    async fn viewer(&self) -> ViewerInfo {
        ViewerInfo(self.0.viewer.clone())
    }
}

/// An access token for a partner client (no refresh token: ask again with the credentials).
pub struct PartnerTokenPayload(pub PartnerToken);

#[Object(name = "PartnerToken")]
impl PartnerTokenPayload {
    async fn access_token(&self) -> &str {
        &self.0.access_token
    }
    /// Always `Bearer`.
    async fn token_type(&self) -> &str {
        "Bearer"
    }
    async fn expires_at(&self) -> DateTime<Utc> {
        self.0.expires_at
    }
    /// Seconds until the token expires.
    async fn expires_in(&self) -> i64 {
        seconds_until(self.0.expires_at)
    }
    async fn scopes(&self) -> Vec<PartnerScope> {
        scopes_out(self.0.scopes.iter().copied())
    }
}

/// Load one account for `node(id:)`: admins any, account holders their own.
pub async fn load_account(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Account> {
    Ok(Account(accounts::get(&ctx.state()?.db, ctx.viewer(), id).await?))
}

/// Load one partner client for `node(id:)` (admins only).
pub async fn load_partner_client(ctx: &Context<'_>, id: uuid::Uuid) -> Result<PartnerClient> {
    Ok(PartnerClient(partners::get(&ctx.state()?.db, ctx.viewer(), id).await?))
}

// ---------------------------------------------------------------------------------------------
// Queries

#[derive(InputObject, Default)]
pub struct AccountsFilter {
    /// Any of these roles.
    pub roles: Option<Vec<AccountRole>>,
    /// Only disabled (true) or only enabled (false) accounts.
    pub disabled: Option<bool>,
    /// Case-insensitive text in email or display name.
    pub text: Option<String>,
}

#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// Who is asking: role, subject, and the account, patron or funder behind the token.
    async fn viewer(&self, ctx: &Context<'_>) -> ViewerInfo {
        ViewerInfo(ctx.viewer().clone())
    }

    /// Staff, admin and funder accounts, by email (admins only).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn accounts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
        filter: Option<AccountsFilter>,
    ) -> Result<RelayConnection<Account>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        viewer.require(auth::Capability::Administer)?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let filter = filter.unwrap_or_default();
        let filter = AccountFilter {
            roles: filter.roles.unwrap_or_default().into_iter().map(Into::into).collect(),
            disabled: filter.disabled,
            text: filter.text,
        };
        let page = accounts::list(&state.db, viewer, &filter, &window).await?;
        let total =
            if wants_total_count(ctx) { Some(accounts::count(&state.db, viewer, &filter).await?) } else { None };
        Ok(into_connection(page, total, Account))
    }

    /// One account (admins; account holders their own).
    async fn account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let id = parse_global_id(&id, NodeKind::Account, "id")?;
        load_account(ctx, id).await
    }

    /// Partner API clients, oldest first (admins only).
    #[graphql(complexity = "super::connection::page_cost(first, last, child_complexity)")]
    async fn partner_clients(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        last: Option<i32>,
        before: Option<String>,
    ) -> Result<RelayConnection<PartnerClient>> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        viewer.require(auth::Capability::Administer)?;
        let window = PageArgs { first, after, last, before }.window(state.limits())?;
        let page = partners::list(&state.db, viewer, &window).await?;
        let total = if wants_total_count(ctx) { Some(partners::count(&state.db, viewer).await?) } else { None };
        Ok(into_connection(page, total, PartnerClient))
    }

    /// One partner client (admins only).
    async fn partner_client(&self, ctx: &Context<'_>, id: ID) -> Result<PartnerClient> {
        let id = parse_global_id(&id, NodeKind::PartnerClient, "id")?;
        load_partner_client(ctx, id).await
    }
}

// ---------------------------------------------------------------------------------------------
// Mutations

#[derive(InputObject)]
pub struct CreateAccountInput {
    /// Login email; stored lower-cased, unique.
    pub email: String,
    /// At least 12 characters.
    pub password: String,
    pub role: AccountRole,
    /// Required for FUNDER accounts, refused for the others.
    pub funder_id: Option<ID>,
    pub display_name: String,
}

#[derive(InputObject)]
pub struct CreatePartnerClientInput {
    pub name: String,
    pub scopes: Vec<PartnerScope>,
}

#[derive(Default)]
pub struct IdentityMutation;

#[Object]
impl IdentityMutation {
    /// Staff, admin or funder login. Wrong email and wrong password give the same
    /// `UNAUTHENTICATED` answer; repeated failures are `RATE_LIMITED`.
    async fn login(&self, ctx: &Context<'_>, email: String, password: String) -> Result<AuthPayload> {
        let state = ctx.state()?;
        Ok(AuthPayload(sessions::login(state, &email, &password, client_ip(ctx)).await?))
    }

    /// Patron login with library card number and PIN.
    async fn patron_login(&self, ctx: &Context<'_>, card_number: String, pin: String) -> Result<AuthPayload> {
        let state = ctx.state()?;
        Ok(AuthPayload(sessions::patron_login(state, &card_number, &pin, client_ip(ctx)).await?))
    }

    /// Exchange a refresh token for new tokens. Each refresh token works once; presenting a used
    /// one again ends the whole session (it must have been copied).
    async fn refresh_token(&self, ctx: &Context<'_>, token: String) -> Result<AuthPayload> {
        let state = ctx.state()?;
        Ok(AuthPayload(sessions::refresh(state, &token, client_ip(ctx)).await?))
    }

    /// End the current session: the access token stops working at once, and so does the
    /// session's refresh token (or the one given).
    async fn logout(&self, ctx: &Context<'_>, refresh_token: Option<String>) -> Result<bool> {
        let state = ctx.state()?;
        sessions::logout(state, ctx.viewer(), refresh_token.as_deref()).await?;
        Ok(true)
    }

    /// Create a staff, admin or funder account (admins only).
    async fn create_account(&self, ctx: &Context<'_>, input: CreateAccountInput) -> Result<Account> {
        let state = ctx.state()?;
        ctx.viewer().require(auth::Capability::Administer)?;
        let funder_id =
            input.funder_id.as_ref().map(|id| parse_global_id(id, NodeKind::Funder, "input.funderId")).transpose()?;
        let input = NewAccount {
            email: input.email,
            password: input.password,
            role: input.role.into(),
            funder_id,
            display_name: input.display_name,
        };
        Ok(Account(accounts::create(&state.db, ctx.viewer(), input).await?))
    }

    /// Stop an account from logging in and end its sessions (admins only).
    async fn disable_account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let state = ctx.state()?;
        ctx.viewer().require(auth::Capability::Administer)?;
        let id = parse_global_id(&id, NodeKind::Account, "id")?;
        Ok(Account(accounts::disable(state, ctx.viewer(), id).await?))
    }

    /// Let a disabled account log in again (admins only).
    async fn enable_account(&self, ctx: &Context<'_>, id: ID) -> Result<Account> {
        let state = ctx.state()?;
        ctx.viewer().require(auth::Capability::Administer)?;
        let id = parse_global_id(&id, NodeKind::Account, "id")?;
        Ok(Account(accounts::enable(&state.db, ctx.viewer(), id).await?))
    }

    /// Set a new password for an account and end its sessions (admins only).
    async fn reset_account_password(&self, ctx: &Context<'_>, id: ID, new_password: String) -> Result<Account> {
        let state = ctx.state()?;
        ctx.viewer().require(auth::Capability::Administer)?;
        let id = parse_global_id(&id, NodeKind::Account, "id")?;
        Ok(Account(accounts::reset_password(state, ctx.viewer(), id, &new_password).await?))
    }

    /// Change your own account password; your other sessions end.
    async fn change_my_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> Result<Account> {
        let state = ctx.state()?;
        let model =
            accounts::change_own_password(state, ctx.viewer(), &current_password, &new_password, client_ip(ctx))
                .await?;
        Ok(Account(model))
    }

    /// Set or reset a patron's PIN (4–12 digits; staff and admins). The patron's sessions end.
    async fn set_patron_pin(&self, ctx: &Context<'_>, patron_id: ID, pin: String) -> Result<Patron> {
        let state = ctx.state()?;
        let viewer = ctx.viewer();
        if !viewer.is_staff() {
            return Err(viewer.denied("set patron PINs").into());
        }
        let patron_id = parse_global_id(&patron_id, NodeKind::Patron, "patronId")?;
        let patron = accounts::set_patron_pin(state, viewer, patron_id, &pin).await?;
        super::audit::record_write(ctx, entity::audit_event::AuditAction::SetPin, Some(patron_id), None).await?;
        Ok(Patron(patron))
    }

    /// A patron changes their own PIN; their other sessions end.
    async fn change_my_pin(&self, ctx: &Context<'_>, current_pin: String, new_pin: String) -> Result<Patron> {
        let state = ctx.state()?;
        let patron = accounts::change_own_pin(state, ctx.viewer(), &current_pin, &new_pin, client_ip(ctx)).await?;
        super::audit::record_write(ctx, entity::audit_event::AuditAction::ChangePin, Some(patron.id), None).await?;
        Ok(Patron(patron))
    }

    /// Register a partner API client (admins only). The answer holds its secret, shown once.
    async fn create_partner_client(
        &self,
        ctx: &Context<'_>,
        input: CreatePartnerClientInput,
    ) -> Result<PartnerClientCredentials> {
        let state = ctx.state()?;
        let scopes: Vec<auth::Scope> = input.scopes.into_iter().map(Into::into).collect();
        Ok(partners::create(&state.db, ctx.viewer(), &input.name, &scopes).await?.into())
    }

    /// Issue a new secret for a partner client; the old secret and its tokens stop working
    /// (admins only).
    async fn rotate_partner_secret(&self, ctx: &Context<'_>, id: ID) -> Result<PartnerClientCredentials> {
        let state = ctx.state()?;
        ctx.viewer().require(auth::Capability::Administer)?;
        let id = parse_global_id(&id, NodeKind::PartnerClient, "id")?;
        Ok(partners::rotate_secret(state, ctx.viewer(), id).await?.into())
    }

    /// Revoke a partner client: no new tokens, and its current tokens stop working (admins only).
    async fn revoke_partner_client(&self, ctx: &Context<'_>, id: ID) -> Result<PartnerClient> {
        let state = ctx.state()?;
        ctx.viewer().require(auth::Capability::Administer)?;
        let id = parse_global_id(&id, NodeKind::PartnerClient, "id")?;
        Ok(PartnerClient(partners::revoke(state, ctx.viewer(), id).await?))
    }

    /// Exchange partner client credentials for an access token with the client's scopes, or
    /// the subset given. Also offered as OAuth 2.0 client credentials at `POST /oauth/token`.
    async fn partner_token(
        &self,
        ctx: &Context<'_>,
        client_id: String,
        client_secret: String,
        scopes: Option<Vec<PartnerScope>>,
    ) -> Result<PartnerTokenPayload> {
        let state = ctx.state()?;
        let scopes: Option<Vec<auth::Scope>> = scopes.map(|s| s.into_iter().map(Into::into).collect());
        let token = partners::issue_token(state, &client_id, &client_secret, scopes.as_deref(), client_ip(ctx))
            .await
            .map_err(|err| match err {
            AppError::BadInput { message, .. } => AppError::bad_field("scopes", message),
            other => other,
        })?;
        Ok(PartnerTokenPayload(token))
    }
}
