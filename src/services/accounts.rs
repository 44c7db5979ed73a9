//! Accounts: registering, logging in, and the service accounts (FACTORY, ADMIN).
//!
//! [`sign_up`] and [`log_in`] are what the front doors (GraphQL and REST) call: each ends in
//! a [`Session`], so that neither front door signs tokens or knows how.

use std::collections::HashMap;
use std::net::IpAddr;

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};
use entity::user;
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QuerySelect,
};
use uuid::Uuid;

use crate::auth::Principal;
use crate::auth::login_throttle::{LoginThrottle, Outcome};
use crate::auth::passwords::PasswordHasher;
use crate::auth::tokens::TokenKeys;
use crate::db;
use crate::domain::account::EMAIL_MAX;
use crate::domain::{Address, Email, Password, Role, Username};
use crate::error::AppError;

/// An account as the rest of the service sees it: everything but the password hash, which
/// never leaves this module.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: Uuid,
    pub username: String,
    pub email: String,
    pub address: String,
    pub role: Role,
    pub created_at: DateTime<Utc>,
}

impl TryFrom<user::Model> for Account {
    type Error = AppError;

    fn try_from(model: user::Model) -> Result<Self, Self::Error> {
        let role =
            model.role.parse().map_err(|err| AppError::Internal(anyhow::Error::new(err).context("stored role")))?;
        Ok(Account {
            id: model.id,
            username: model.username,
            email: model.email,
            address: model.address,
            role,
            created_at: model.created_at,
        })
    }
}

/// A registration that passed validation.
#[derive(Debug, Clone)]
pub struct NewAccount {
    pub username: Username,
    pub email: Email,
    pub password: Password,
    pub address: Address,
}

impl NewAccount {
    /// A registration as a client typed it, checked rule by rule; each failure names its
    /// field as the API calls it.
    pub fn parse(username: &str, email: &str, password: &str, address: &str) -> Result<Self, AppError> {
        Ok(NewAccount {
            username: Username::parse(username).map_err(|e| AppError::bad_input("username", e))?,
            email: Email::parse(email).map_err(|e| AppError::bad_input("email", e))?,
            password: Password::parse(password).map_err(|e| AppError::bad_input("password", e))?,
            address: Address::parse(address).map_err(|e| AppError::bad_input("address", e))?,
        })
    }
}

/// What signing up or logging in gives a client: a fresh access token and its account.
#[derive(Debug, Clone)]
pub struct Session {
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub account: Account,
}

/// Registers a CUSTOMER account and opens a session for it at once.
pub async fn sign_up(
    db: &impl ConnectionTrait,
    hasher: &PasswordHasher,
    tokens: &TokenKeys,
    new: NewAccount,
) -> Result<Session, AppError> {
    let account = register(db, hasher, new, Role::Customer).await?;
    open_session(tokens, account)
}

/// Checks credentials as [`authenticate`] does and opens a session for the account.
pub async fn log_in(
    db: &impl ConnectionTrait,
    hasher: &PasswordHasher,
    throttle: &LoginThrottle,
    tokens: &TokenKeys,
    login: &str,
    password: &str,
    client: IpAddr,
) -> Result<Session, AppError> {
    let account = authenticate(db, hasher, throttle, login, password, client).await;
    crate::metrics::login(account.as_ref().map_or_else(AppError::code, |_| crate::metrics::OK));
    open_session(tokens, account?)
}

fn open_session(tokens: &TokenKeys, account: Account) -> Result<Session, AppError> {
    let issued = tokens
        .issue(Principal { user_id: account.id, role: account.role })
        .map_err(AppError::internal("signing a token"))?;
    Ok(Session { token: issued.token, expires_at: issued.expires_at, account })
}

/// Creates an account. Uniqueness is left to the database's unique indexes, so two
/// concurrent registrations of one name cannot both succeed.
#[tracing::instrument(skip_all, fields(username = new.username.as_str(), role = role.as_str()))]
pub async fn register(
    db: &impl ConnectionTrait,
    hasher: &PasswordHasher,
    new: NewAccount,
    role: Role,
) -> Result<Account, AppError> {
    let password_hash = hasher.hash(new.password.expose()).await?;
    let model = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        username: Set(new.username.as_str().to_owned()),
        email: Set(new.email.as_str().to_owned()),
        password_hash: Set(password_hash),
        address: Set(new.address.as_str().to_owned()),
        role: Set(role.as_str().to_owned()),
        created_at: Set(db::now()),
        event_seq: Set(0),
    };
    match model.insert(db).await {
        Ok(model) => Account::try_from(model),
        Err(err) => Err(match db::unique_violation(&err) {
            Some(message) if message.contains("email") => AppError::Conflict {
                field: Some("email".into()),
                message: "an account with this email already exists".into(),
            },
            Some(message) if message.contains("username") => {
                AppError::Conflict { field: Some("username".into()), message: "this username is already taken".into() }
            }
            _ => AppError::from(err),
        }),
    }
}

/// Checks credentials; `login` is a username (any case) or an email, tried from `client`
/// (an address, or the network a limit counts as one). Attempts are throttled per login and
/// client (see [`crate::auth::login_throttle`]) and look the same whether or not the
/// account exists.
#[tracing::instrument(skip_all)]
pub async fn authenticate(
    db: &impl ConnectionTrait,
    hasher: &PasswordHasher,
    throttle: &LoginThrottle,
    login: &str,
    password: &str,
    client: IpAddr,
) -> Result<Account, AppError> {
    let login = login.trim();
    if login.is_empty() {
        return Err(AppError::bad_input("username", "must not be empty"));
    }
    if login.len() > EMAIL_MAX {
        return Err(AppError::bad_input("username", format_args!("must be at most {EMAIL_MAX} characters long")));
    }
    if password.is_empty() {
        return Err(AppError::bad_input("password", "must not be empty"));
    }
    let user = find_by_login(db, login).await?;
    // An account is counted as one whichever of its names (username, email) is tried; an
    // unknown name is counted by itself, in the same way.
    let subject = user.as_ref().map_or_else(|| format!("name:{}", login.to_lowercase()), |user| user.id.to_string());
    let reservation = throttle.reserve(&subject, client).await.map_err(|retry_after_secs| {
        crate::metrics::throttle_refused();
        AppError::RateLimited { retry_after_secs }
    })?;
    let checked = check_password(hasher, user, password).await;
    let outcome = match &checked {
        Ok(Some(_)) => Outcome::Success,
        Ok(None) => Outcome::Failure,
        Err(_) => Outcome::NotJudged,
    };
    throttle.settle(reservation, outcome).await;
    checked?.ok_or(AppError::Unauthenticated("wrong username or password"))
}

/// The account, when `password` is its password; `None` for a wrong password and for an
/// unknown login alike (both cost one argon2 verification).
async fn check_password(
    hasher: &PasswordHasher,
    user: Option<user::Model>,
    password: &str,
) -> Result<Option<Account>, AppError> {
    let matches = hasher.verify(password, user.as_ref().map(|u| u.password_hash.as_str())).await?;
    match user {
        Some(user) if matches => Account::try_from(user).map(Some),
        _ => Ok(None),
    }
}

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<Account>, AppError> {
    user::Entity::find_by_id(id).one(db).await?.map(Account::try_from).transpose()
}

/// The postal address of an account, if it exists.
pub async fn find_address(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<String>, sea_orm::DbErr> {
    user::Entity::find_by_id(id).select_only().column(user::Column::Address).into_tuple().one(db).await
}

pub async fn find_many(db: &impl ConnectionTrait, ids: &[Uuid]) -> Result<HashMap<Uuid, Account>, AppError> {
    let users = user::Entity::find().filter(user::Column::Id.is_in(ids.iter().copied())).all(db).await?;
    users.into_iter().map(|model| Account::try_from(model).map(|account| (account.id, account))).collect()
}

async fn find_by_login(db: &impl ConnectionTrait, login: &str) -> Result<Option<user::Model>, AppError> {
    let query = if login.contains('@') {
        user::Entity::find().filter(user::Column::Email.eq(login.to_ascii_lowercase()))
    } else {
        find_by_username_query(login)
    };
    Ok(query.one(db).await?)
}

/// Usernames are unique ignoring case (index `users_username_lower_key` on `lower(username)`).
fn find_by_username_query(username: &str) -> sea_orm::Select<user::Entity> {
    user::Entity::find()
        .filter(Expr::expr(Func::lower(Expr::col(user::Column::Username))).eq(username.to_ascii_lowercase()))
}

/// Makes sure the FACTORY account exists with this password: created when missing, its
/// password updated when it changed. Refuses to take over an account of another role.
pub async fn ensure_factory_account(
    db: &impl ConnectionTrait,
    hasher: &PasswordHasher,
    username: Username,
    password: Password,
) -> anyhow::Result<()> {
    let existing = find_by_username_query(username.as_str()).one(db).await.context("looking up the factory account")?;
    match existing {
        None => {
            let email = Email::parse(&format!("{}@factory.invalid", username.as_str().to_ascii_lowercase()))
                .map_err(|_| anyhow::anyhow!("FACTORY_USERNAME cannot form an email address"))?;
            let address = Address::parse("MiniFigurine factory").map_err(|_| anyhow::anyhow!("factory address"))?;
            register(db, hasher, NewAccount { username, email, password, address }, Role::Factory)
                .await
                .map_err(|err| err.into_anyhow().context("creating the factory account"))?;
            tracing::info!("created the FACTORY account");
        }
        Some(user) if user.role != Role::Factory.as_str() => {
            bail!(
                "an account named {:?} exists with role {}; refusing to turn it into the FACTORY account",
                user.username,
                user.role
            )
        }
        Some(user) => {
            let current = hasher
                .verify(password.expose(), Some(&user.password_hash))
                .await
                .map_err(|err| err.into_anyhow().context("checking the factory account's password"))?;
            if !current {
                let hash = hasher
                    .hash(password.expose())
                    .await
                    .map_err(|err| err.into_anyhow().context("hashing the factory account's password"))?;
                let mut model: user::ActiveModel = user.into();
                model.password_hash = Set(hash);
                model.update(db).await.context("updating the factory account's password")?;
                tracing::info!("updated the FACTORY account's password");
            }
        }
    }
    Ok(())
}
