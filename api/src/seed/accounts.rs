//! Demo logins for `--demo`: one account per role and PINs on a few patrons, with fixed,
//! published credentials (see the README). Never use `--demo` on a real library's database.

use entity::{account::AccountRole, enums::PatronStatus, funder, patron};
use sea_orm::{ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};

use crate::{
    auth::password,
    domain::accounts::{self, NewAccount},
    error::AppError,
};

/// Demo accounts: email, password, role. The funder account belongs to the first funder by
/// name (the one the demo FUNDER token is for).
pub const DEMO_ACCOUNTS: [(&str, &str, AccountRole); 3] = [
    ("admin@demo.rapport", "demo-admin-password", AccountRole::Admin),
    ("staff@demo.rapport", "demo-staff-password", AccountRole::Staff),
    ("funder@demo.rapport", "demo-funder-password", AccountRole::Funder),
];

/// Demo patrons that can log in (card numbers), all with [`DEMO_PIN`]. The first is the
/// showcase patron.
pub const DEMO_PIN_CARDS: [&str; 5] = ["D-000001", "D-000002", "D-000003", "D-000004", "D-000005"];
pub const DEMO_PIN: &str = "1234";

/// What was written: accounts created and patrons given a PIN.
#[derive(Debug, Clone, Default)]
pub struct DemoLogins {
    pub accounts: Vec<String>,
    pub patron_cards: Vec<String>,
}

/// Create the demo accounts and set the demo PINs. Accounts that already exist are left alone;
/// erased or missing patrons are skipped.
pub async fn seed_demo_accounts(db: &DatabaseConnection) -> anyhow::Result<DemoLogins> {
    let mut written = DemoLogins::default();
    let funder_id = funder::Entity::find()
        .order_by_asc(funder::Column::Name)
        .order_by_asc(funder::Column::Id)
        .one(db)
        .await?
        .map(|f| f.id);
    for (email, pass, role) in DEMO_ACCOUNTS {
        let funder_id = match role {
            AccountRole::Funder => match funder_id {
                Some(id) => Some(id),
                None => continue,
            },
            _ => None,
        };
        let display_name = match role {
            AccountRole::Admin => "Demo Admin",
            AccountRole::Staff => "Demo Staff",
            AccountRole::Funder => "Demo Funder",
        };
        let input = NewAccount {
            email: email.to_owned(),
            password: pass.to_owned(),
            role,
            funder_id,
            display_name: display_name.to_owned(),
        };
        match accounts::create_unchecked(db, input).await {
            Ok(_) => written.accounts.push(email.to_owned()),
            Err(AppError::Conflict(_)) => {}
            Err(AppError::Internal(cause)) => return Err(cause),
            Err(other) => return Err(anyhow::anyhow!("{other}")),
        }
    }
    for card in DEMO_PIN_CARDS {
        let Some(row) = patron::Entity::find().filter(patron::Column::CardNumber.eq(card)).one(db).await? else {
            continue;
        };
        if row.status == PatronStatus::Erased {
            continue;
        }
        let hash = password::hash_secret(DEMO_PIN).await.map_err(|err| anyhow::anyhow!("{err}"))?;
        let mut model: patron::ActiveModel = row.into();
        model.pin_hash = Set(Some(hash));
        model.update(db).await?;
        written.patron_cards.push(card.to_owned());
    }
    tracing::info!(accounts = written.accounts.len(), patrons = written.patron_cards.len(), "demo logins written");
    Ok(written)
}
