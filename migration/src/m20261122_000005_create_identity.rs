//! Identity: staff, admin and funder `account`s, the `refresh_token`s of login sessions, the
//! `revoked_token` list that survives restarts, and `partner_client`s of the API.

use sea_orm_migration::{prelude::*, schema::*};

use crate::helpers::{index, unique_index};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Account::Table)
                    .col(pk_uuid(Account::Id))
                    // Stored lower-cased; unique.
                    .col(string(Account::Email))
                    // argon2id PHC string.
                    .col(string(Account::PasswordHash))
                    // ADMIN, STAFF, FUNDER.
                    .col(string(Account::Role))
                    // Set for FUNDER accounts only.
                    .col(uuid_null(Account::FunderId))
                    .col(string(Account::DisplayName))
                    .col(timestamp_with_time_zone_null(Account::DisabledAt))
                    .col(timestamp_with_time_zone(Account::CreatedAt))
                    .col(timestamp_with_time_zone(Account::UpdatedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_account_funder")
                            .from(Account::Table, Account::FunderId)
                            .to(Funder::Table, Funder::Id)
                            .on_delete(ForeignKeyAction::Restrict),
                    )
                    .to_owned(),
            )
            .await?;
        manager.create_index(unique_index("uq_account_email", Account::Table, [Account::Email])).await?;
        manager.create_index(index("idx_account_funder_id", Account::Table, [Account::FunderId])).await?;
        manager
            .create_index(index("idx_account_created_at_id", Account::Table, [Account::CreatedAt, Account::Id]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RefreshToken::Table)
                    .col(pk_uuid(RefreshToken::Id))
                    // Every rotation of one login shares the family; reuse revokes it whole.
                    .col(uuid(RefreshToken::FamilyId))
                    // Hex SHA-256 of the opaque token; the token itself is never stored.
                    .col(string(RefreshToken::TokenHash))
                    // ACCOUNT or PATRON.
                    .col(string(RefreshToken::SubjectKind))
                    .col(uuid_null(RefreshToken::AccountId))
                    .col(uuid_null(RefreshToken::PatronId))
                    .col(timestamp_with_time_zone(RefreshToken::IssuedAt))
                    .col(timestamp_with_time_zone(RefreshToken::ExpiresAt))
                    .col(timestamp_with_time_zone_null(RefreshToken::RotatedAt))
                    .col(timestamp_with_time_zone_null(RefreshToken::RevokedAt))
                    .col(uuid_null(RefreshToken::ReplacedBy))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_token_account")
                            .from(RefreshToken::Table, RefreshToken::AccountId)
                            .to(Account::Table, Account::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_refresh_token_patron")
                            .from(RefreshToken::Table, RefreshToken::PatronId)
                            .to(Patron::Table, Patron::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index("uq_refresh_token_token_hash", RefreshToken::Table, [RefreshToken::TokenHash]))
            .await?;
        manager
            .create_index(index("idx_refresh_token_family_id", RefreshToken::Table, [RefreshToken::FamilyId]))
            .await?;
        manager
            .create_index(index("idx_refresh_token_account_id", RefreshToken::Table, [RefreshToken::AccountId]))
            .await?;
        manager
            .create_index(index("idx_refresh_token_patron_id", RefreshToken::Table, [RefreshToken::PatronId]))
            .await?;
        manager
            .create_index(index("idx_refresh_token_expires_at", RefreshToken::Table, [RefreshToken::ExpiresAt]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(RevokedToken::Table)
                    // An access token's `jti` (kind ACCESS) or a session id (kind SESSION: a
                    // refresh family or a partner client's token generation).
                    .col(string(RevokedToken::Jti).primary_key())
                    .col(string(RevokedToken::Kind))
                    // After this, every token it could match has expired: the row can go.
                    .col(timestamp_with_time_zone(RevokedToken::ExpiresAt))
                    .col(timestamp_with_time_zone(RevokedToken::CreatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index("idx_revoked_token_expires_at", RevokedToken::Table, [RevokedToken::ExpiresAt]))
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(PartnerClient::Table)
                    .col(pk_uuid(PartnerClient::Id))
                    // Public identifier used as the OAuth `client_id`; unique.
                    .col(string(PartnerClient::ClientId))
                    .col(string(PartnerClient::Name))
                    // argon2id PHC string of the secret; the secret is shown once.
                    .col(string(PartnerClient::SecretHash))
                    // Space-separated OAuth scopes, e.g. `patrons:read interactions:write`.
                    .col(text(PartnerClient::Scopes))
                    // Session id carried by this client's access tokens; replaced on rotation
                    // and revocation so earlier tokens can be revoked together.
                    .col(uuid(PartnerClient::TokenFamilyId))
                    .col(timestamp_with_time_zone(PartnerClient::CreatedAt))
                    .col(timestamp_with_time_zone_null(PartnerClient::RotatedAt))
                    .col(timestamp_with_time_zone_null(PartnerClient::RevokedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(unique_index("uq_partner_client_client_id", PartnerClient::Table, [PartnerClient::ClientId]))
            .await?;
        manager
            .create_index(index(
                "idx_partner_client_created_at_id",
                PartnerClient::Table,
                [PartnerClient::CreatedAt, PartnerClient::Id],
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(PartnerClient::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RevokedToken::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(RefreshToken::Table).to_owned()).await?;
        manager.drop_table(Table::drop().table(Account::Table).to_owned()).await
    }

    fn use_transaction(&self) -> Option<bool> {
        // SQLite DDL is transactional too: a failed migration leaves nothing half done.
        Some(true)
    }
}

#[derive(DeriveIden)]
enum Account {
    Table,
    Id,
    Email,
    PasswordHash,
    Role,
    FunderId,
    DisplayName,
    DisabledAt,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum RefreshToken {
    Table,
    Id,
    FamilyId,
    TokenHash,
    SubjectKind,
    AccountId,
    PatronId,
    IssuedAt,
    ExpiresAt,
    RotatedAt,
    RevokedAt,
    ReplacedBy,
}

#[derive(DeriveIden)]
enum RevokedToken {
    Table,
    Jti,
    Kind,
    ExpiresAt,
    CreatedAt,
}

#[derive(DeriveIden)]
enum PartnerClient {
    Table,
    Id,
    ClientId,
    Name,
    SecretHash,
    Scopes,
    TokenFamilyId,
    CreatedAt,
    RotatedAt,
    RevokedAt,
}

#[derive(DeriveIden)]
enum Funder {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Patron {
    Table,
    Id,
}
