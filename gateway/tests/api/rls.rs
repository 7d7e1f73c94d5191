//! Postgres only: row-level security alone stops cross-tenant reads and writes, with the
//! application's `WHERE tenant_id = …` bypassed (raw queries with no filter at all), as the
//! ordinary role the gateway connects with.

use axum::http::StatusCode;
use serde_json::json;
use sqlx::Row;
use switchboard_gateway::store::{Scope, Tx, set_scope};

use crate::common::{Options, apps};

const TENANT_TABLES: [(&str, &str); 6] = [
    ("tenants", "id"),
    ("memberships", "tenant_id"),
    ("invitations", "tenant_id"),
    ("api_keys", "tenant_id"),
    ("provider_credentials", "tenant_id"),
    ("audit_log", "tenant_id"),
];

async fn visible_tenants(tx: &mut Tx, table: &str, column: &str) -> Vec<String> {
    sqlx::query(&format!("SELECT {column} FROM {table}"))
        .fetch_all(&mut **tx)
        .await
        .unwrap()
        .iter()
        .map(|row| row.get::<String, _>(0))
        .collect()
}

#[tokio::test]
async fn row_level_security_alone_isolates_tenants() {
    let mut ran = false;
    for app in apps(
        "row_level_security_alone_isolates_tenants",
        Options::default(),
    )
    .await
    {
        if app.backend != "postgres" {
            app.finish().await;
            continue;
        }
        ran = true;
        let a = app.signup("rls-a@a.io", "RLS A").await;
        let b = app.signup("rls-b@b.io", "RLS B").await;
        for account in [&a, &b] {
            let t = format!("/api/v1/tenants/{}", account.slug);
            assert_eq!(
                app.post(
                    &format!("{t}/api-keys"),
                    Some(&account.access),
                    json!({"name": "k"})
                )
                .await
                .status,
                StatusCode::CREATED
            );
            assert_eq!(
                app.post(
                    &format!("{t}/credentials"),
                    Some(&account.access),
                    json!({"provider": "openai", "label": "l", "secret": "sk-0123456789abcdef"})
                )
                .await
                .status,
                StatusCode::CREATED
            );
            assert_eq!(
                app.post(
                    &format!("{t}/invitations"),
                    Some(&account.access),
                    json!({"email": "i@x.io"})
                )
                .await
                .status,
                StatusCode::CREATED
            );
        }
        let store = &app.state.store;

        // Scoped to A: unfiltered reads return A's rows only, in every tenant table.
        let mut tx = store.read(&Scope::tenant(&a.tenant_id)).await.unwrap();
        for (table, column) in TENANT_TABLES {
            let seen = visible_tenants(&mut tx, table, column).await;
            assert!(!seen.is_empty(), "{table}: A sees its own rows");
            assert!(
                seen.iter().all(|t| *t == a.tenant_id),
                "{table}: A sees {seen:?}"
            );
        }
        // Unfiltered writes touch only A's rows; writing a row for B is refused.
        let renamed = sqlx::query("UPDATE api_keys SET name = 'renamed'")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(renamed.rows_affected(), 1);
        let deleted = sqlx::query("DELETE FROM invitations")
            .execute(&mut *tx)
            .await
            .unwrap();
        assert_eq!(deleted.rows_affected(), 1);
        tx.rollback().await.unwrap();
        let mut tx = store.write(&Scope::tenant(&a.tenant_id)).await.unwrap();
        let forged = sqlx::query("INSERT INTO audit_log (id, tenant_id, actor_type, action, details, created_at) VALUES ('x', $1, 'user', 'forged', '{}', 0)")
            .bind(&b.tenant_id)
            .execute(&mut *tx)
            .await;
        assert!(
            forged.is_err(),
            "RLS WITH CHECK must refuse rows of another tenant"
        );
        tx.rollback().await.unwrap();

        // No scope at all: nothing is visible.
        let mut tx = store.read(&Scope::none()).await.unwrap();
        for (table, column) in TENANT_TABLES {
            assert!(
                visible_tenants(&mut tx, table, column).await.is_empty(),
                "{table} without scope"
            );
        }
        // Scope changed mid-transaction to B: now only B's rows.
        set_scope(&mut tx, &Scope::tenant(&b.tenant_id))
            .await
            .unwrap();
        let keys = visible_tenants(&mut tx, "api_keys", "tenant_id").await;
        assert_eq!(keys, vec![b.tenant_id.clone()]);
        tx.rollback().await.unwrap();

        // A user scope sees that user's memberships and tenants, nothing else.
        let mut tx = store.read(&Scope::user(&a.user_id)).await.unwrap();
        assert_eq!(
            visible_tenants(&mut tx, "tenants", "id").await,
            vec![a.tenant_id.clone()]
        );
        assert!(
            visible_tenants(&mut tx, "api_keys", "tenant_id")
                .await
                .is_empty()
        );
        tx.rollback().await.unwrap();

        // The settings are transaction-local: a pooled connection does not keep them.
        let mut conn = store.pool().acquire().await.unwrap();
        let rows = sqlx::query("SELECT tenant_id FROM api_keys")
            .fetch_all(&mut *conn)
            .await
            .unwrap();
        assert!(rows.is_empty());
        // Back to the pool before `finish` closes it: `Pool::close` waits for every
        // connection that is checked out, so holding this one would hang the test.
        drop(conn);
        app.finish().await;
    }
    if !ran {
        println!(
            "row_level_security_alone_isolates_tenants: Postgres not configured (DATABASE_URL); the RLS test did NOT run"
        );
    }
}
