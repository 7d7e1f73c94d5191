//! Login sessions and their rotating refresh tokens.
//!
//! A session is one refresh-token family. Every refresh uses up the presented token and
//! issues the next one; presenting a used token again means it was stolen (or replayed), so
//! the whole family is revoked (RFC 9700 §4.14.2, "refresh token rotation").

use sqlx::AnyConnection;

use super::{Flag, StoreError, constant_time_eq, new_id, random_secret, token_hash};

/// A freshly issued refresh token (shown to the client once).
#[derive(Debug, Clone)]
pub struct IssuedRefresh {
    /// Session (family) id.
    pub session_id: String,
    /// `<token id>.<secret>`.
    pub token: String,
    /// Expiry of the token (Unix ms).
    pub expires_at: i64,
}

/// What presenting a refresh token led to.
#[derive(Debug)]
pub enum RefreshOutcome {
    /// The token was valid; here is its successor.
    Rotated {
        /// The session's user.
        user_id: String,
        /// The next refresh token.
        next: IssuedRefresh,
    },
    /// The token had been used before: its session is now revoked.
    Reused {
        /// The revoked session's user.
        user_id: String,
        /// The revoked session.
        session_id: String,
    },
    /// Unknown, tampered, expired or revoked.
    Invalid,
}

/// Starts a session for `user_id` and issues its first refresh token.
pub async fn create(
    conn: &mut AnyConnection,
    user_id: &str,
    now: i64,
    ttl_ms: i64,
) -> Result<IssuedRefresh, StoreError> {
    let session_id = new_id();
    sqlx::query(
        "INSERT INTO sessions (id, user_id, created_at, expires_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(&session_id)
    .bind(user_id)
    .bind(now)
    .bind(now + ttl_ms)
    .execute(&mut *conn)
    .await?;
    issue_token(conn, &session_id, now, now + ttl_ms).await
}

async fn issue_token(
    conn: &mut AnyConnection,
    session_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<IssuedRefresh, StoreError> {
    let id = new_id();
    let token = format!("{id}.{}", random_secret());
    sqlx::query(
        "INSERT INTO refresh_tokens (id, session_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(session_id)
    .bind(token_hash(&token))
    .bind(now)
    .bind(expires_at)
    .execute(conn)
    .await?;
    Ok(IssuedRefresh {
        session_id: session_id.to_owned(),
        token,
        expires_at,
    })
}

#[derive(sqlx::FromRow)]
struct PresentedToken {
    session_id: String,
    token_hash: String,
    expires_at: i64,
    used: Flag,
    user_id: String,
    revoked: Flag,
}

/// Uses up `token` and issues its successor, or detects reuse. Commit the transaction even for
/// [`RefreshOutcome::Reused`], so the revocation sticks.
pub async fn rotate(
    conn: &mut AnyConnection,
    token: &str,
    now: i64,
) -> Result<RefreshOutcome, StoreError> {
    let Some((token_id, _)) = token.split_once('.') else {
        return Ok(RefreshOutcome::Invalid);
    };
    let presented: Option<PresentedToken> = sqlx::query_as(
        "SELECT r.session_id, r.token_hash, r.expires_at, \
                CASE WHEN r.used_at IS NULL THEN 0 ELSE 1 END AS used, \
                s.user_id, CASE WHEN s.revoked_at IS NULL THEN 0 ELSE 1 END AS revoked \
         FROM refresh_tokens r JOIN sessions s ON s.id = r.session_id WHERE r.id = $1",
    )
    .bind(token_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(presented) = presented else {
        return Ok(RefreshOutcome::Invalid);
    };
    if !constant_time_eq(&presented.token_hash, &token_hash(token)) || presented.revoked.0 {
        return Ok(RefreshOutcome::Invalid);
    }
    if presented.used.0 {
        revoke(conn, &presented.session_id, "refresh_token_reuse", now).await?;
        return Ok(RefreshOutcome::Reused {
            user_id: presented.user_id,
            session_id: presented.session_id,
        });
    }
    if presented.expires_at <= now {
        return Ok(RefreshOutcome::Invalid);
    }
    let claimed =
        sqlx::query("UPDATE refresh_tokens SET used_at = $1 WHERE id = $2 AND used_at IS NULL")
            .bind(now)
            .bind(token_id)
            .execute(&mut *conn)
            .await?;
    if claimed.rows_affected() != 1 {
        // A concurrent refresh won the race with the same token: that is reuse too.
        revoke(conn, &presented.session_id, "refresh_token_reuse", now).await?;
        return Ok(RefreshOutcome::Reused {
            user_id: presented.user_id,
            session_id: presented.session_id,
        });
    }
    let next = issue_token(conn, &presented.session_id, now, presented.expires_at).await?;
    Ok(RefreshOutcome::Rotated {
        user_id: presented.user_id,
        next,
    })
}

/// The session a refresh token belongs to, if the token is genuine (for logout).
pub async fn session_of_token(
    conn: &mut AnyConnection,
    token: &str,
) -> Result<Option<(String, String)>, StoreError> {
    let Some((token_id, _)) = token.split_once('.') else {
        return Ok(None);
    };
    let row: Option<(String, String, String)> = sqlx::query_as(
        "SELECT r.session_id, r.token_hash, s.user_id FROM refresh_tokens r \
         JOIN sessions s ON s.id = r.session_id WHERE r.id = $1",
    )
    .bind(token_id)
    .fetch_optional(conn)
    .await?;
    Ok(row
        .filter(|(_, hash, _)| constant_time_eq(hash, &token_hash(token)))
        .map(|(session, _, user)| (session, user)))
}

/// Revokes a session: its refresh tokens stop working and its access tokens are refused.
pub async fn revoke(
    conn: &mut AnyConnection,
    session_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(session_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Revokes every session of a user (after a password reset).
pub async fn revoke_all(
    conn: &mut AnyConnection,
    user_id: &str,
    reason: &str,
    now: i64,
) -> Result<(), StoreError> {
    sqlx::query("UPDATE sessions SET revoked_at = $1, revoked_reason = $2 WHERE user_id = $3 AND revoked_at IS NULL")
        .bind(now)
        .bind(reason)
        .bind(user_id)
        .execute(conn)
        .await?;
    Ok(())
}

/// Whether `session_id` belongs to `user_id` and is neither revoked nor expired.
pub async fn is_active(
    conn: &mut AnyConnection,
    session_id: &str,
    user_id: &str,
    now: i64,
) -> Result<bool, StoreError> {
    let row: Option<(i64,)> = sqlx::query_as(
        "SELECT 1 FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL AND expires_at > $3",
    )
    .bind(session_id)
    .bind(user_id)
    .bind(now)
    .fetch_optional(conn)
    .await?;
    Ok(row.is_some())
}
