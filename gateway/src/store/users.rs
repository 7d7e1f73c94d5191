//! Users and their single-use e-mail tokens (verification, password reset).
//! Users are global (one user may belong to several tenants), so these tables carry no
//! row-level security.

use sqlx::AnyConnection;

use super::{StoreError, constant_time_eq, new_id, random_secret, token_hash};

/// A user account.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct UserRow {
    /// User id.
    pub id: String,
    /// Lower-cased e-mail address.
    pub email: String,
    /// Display name.
    pub name: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// When the address was verified (Unix ms).
    pub email_verified_at: Option<i64>,
    /// Creation time (Unix ms).
    pub created_at: i64,
}

const USER_COLUMNS: &str = "id, email, name, password_hash, email_verified_at, created_at";

/// Inserts a user; `false` when the e-mail address is taken.
pub async fn insert(conn: &mut AnyConnection, user: &UserRow) -> Result<bool, StoreError> {
    let result = sqlx::query(
        "INSERT INTO users (id, email, name, password_hash, email_verified_at, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (email) DO NOTHING",
    )
    .bind(&user.id)
    .bind(&user.email)
    .bind(&user.name)
    .bind(&user.password_hash)
    .bind(user.email_verified_at)
    .bind(user.created_at)
    .execute(conn)
    .await?;
    Ok(result.rows_affected() == 1)
}

/// The user with this (lower-cased) e-mail address.
pub async fn by_email(
    conn: &mut AnyConnection,
    email: &str,
) -> Result<Option<UserRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {USER_COLUMNS} FROM users WHERE email = $1"
    ))
    .bind(email)
    .fetch_optional(conn)
    .await?)
}

/// The user with this id.
pub async fn by_id(conn: &mut AnyConnection, id: &str) -> Result<Option<UserRow>, StoreError> {
    Ok(
        sqlx::query_as(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"))
            .bind(id)
            .fetch_optional(conn)
            .await?,
    )
}

/// Replaces a user's password hash.
pub async fn set_password(
    conn: &mut AnyConnection,
    id: &str,
    hash: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
        .bind(hash)
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Marks the user's e-mail address verified.
pub async fn mark_verified(conn: &mut AnyConnection, id: &str, now: i64) -> Result<(), StoreError> {
    sqlx::query("UPDATE users SET email_verified_at = COALESCE(email_verified_at, $1), updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(conn)
        .await?;
    Ok(())
}

/// What an e-mail token is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmailPurpose {
    /// Proves the user owns the address.
    VerifyEmail,
    /// Lets the user choose a new password.
    PasswordReset,
}

impl EmailPurpose {
    fn as_str(self) -> &'static str {
        match self {
            EmailPurpose::VerifyEmail => "verify_email",
            EmailPurpose::PasswordReset => "password_reset",
        }
    }
}

/// Creates a single-use token `<id>.<secret>`; only its hash is stored.
pub async fn create_email_token(
    conn: &mut AnyConnection,
    user_id: &str,
    purpose: EmailPurpose,
    now: i64,
    ttl_ms: i64,
) -> Result<String, StoreError> {
    let id = new_id();
    let token = format!("{id}.{}", random_secret());
    sqlx::query(
        "INSERT INTO email_tokens (id, user_id, purpose, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&id)
    .bind(user_id)
    .bind(purpose.as_str())
    .bind(token_hash(&token))
    .bind(now)
    .bind(now + ttl_ms)
    .execute(conn)
    .await?;
    Ok(token)
}

/// Uses up a token: returns its user when the token is genuine, unused, unexpired and for
/// `purpose`.
pub async fn consume_email_token(
    conn: &mut AnyConnection,
    token: &str,
    purpose: EmailPurpose,
    now: i64,
) -> Result<Option<String>, StoreError> {
    let Some((id, _)) = token.split_once('.') else {
        return Ok(None);
    };
    let row: Option<(String, String, i64)> = sqlx::query_as(
        "SELECT user_id, token_hash, expires_at FROM email_tokens \
         WHERE id = $1 AND purpose = $2 AND used_at IS NULL",
    )
    .bind(id)
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await?;
    let Some((user_id, stored_hash, expires_at)) = row else {
        return Ok(None);
    };
    if !constant_time_eq(&stored_hash, &token_hash(token)) || expires_at <= now {
        return Ok(None);
    }
    let used =
        sqlx::query("UPDATE email_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(conn)
            .await?;
    Ok((used.rows_affected() == 1).then_some(user_id))
}
