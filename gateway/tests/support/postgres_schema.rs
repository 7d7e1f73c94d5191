//! A fresh Postgres schema per test app: migrated by the admin (owner) connection, then served to
//! the app as an ordinary role (NOSUPERUSER NOBYPASSRLS), so row-level security applies to every
//! query a test makes. Shared by the gateway's test suites.

use sqlx::Executor;
use switchboard_gateway::store::Store;

/// `admin_url` with another user (or the same one) and `schema` as the search path.
pub fn postgres_url_as(admin_url: &str, user: Option<&str>, schema: &str) -> String {
    let (scheme, rest) = admin_url.split_once("://").unwrap();
    let rest = match (user, rest.split_once('@')) {
        (Some(user), Some((_, host))) => format!("{user}@{host}"),
        (Some(user), None) => format!("{user}@{rest}"),
        (None, _) => rest.to_owned(),
    };
    let separator = if rest.contains('?') { '&' } else { '?' };
    format!("{scheme}://{rest}{separator}options[search_path]={schema}")
}

/// Creates schema `{prefix}_{random}`, migrates it as the owner and grants `app_role` data
/// access to it. Returns the URL the app connects with (as `app_role`) and the schema name.
pub async fn fresh_schema(admin_url: &str, prefix: &str, app_role: &str) -> (String, String) {
    sqlx::any::install_default_drivers();
    let schema = format!("{prefix}_{}", uuid::Uuid::new_v4().simple());
    let admin = sqlx::AnyPool::connect(admin_url).await.unwrap();
    admin
        .execute(format!("CREATE SCHEMA {schema}").as_str())
        .await
        .unwrap();
    // Concurrent tests may race to create the role: both errors mean "it exists".
    admin
        .execute(
            format!(
                "DO $$ BEGIN CREATE ROLE {app_role} LOGIN NOSUPERUSER NOBYPASSRLS; \
                 EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
            )
            .as_str(),
        )
        .await
        .unwrap();
    let owner = Store::connect(&postgres_url_as(admin_url, None, &schema), 1)
        .await
        .unwrap();
    owner.migrate().await.unwrap();
    owner.pool().close().await;
    admin
        .execute(
            format!(
                "GRANT USAGE ON SCHEMA {schema} TO {app_role}; \
                 GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app_role}"
            )
            .as_str(),
        )
        .await
        .unwrap();
    admin.close().await;
    (postgres_url_as(admin_url, Some(app_role), &schema), schema)
}
