//! A scratch PostgreSQL database (and roles) per test on the local server, dropped
//! when the guard goes out of scope, plus connector settings pointing at it.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use backflow_warehouse::{Connector, SecretMaterial, SourceSettings, WarehouseKind};
use sqlx::{Connection, Executor, PgConnection};

/// Admin URL of the local PostgreSQL (override with `BACKFLOW_TEST_POSTGRES_URL`).
pub fn admin_url() -> String {
    std::env::var("BACKFLOW_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into())
}

pub struct Scratch {
    pub database: String,
    pub roles: Vec<String>,
    pub url: String,
}

impl Scratch {
    pub async fn new(label: &str) -> Scratch {
        let database = format!("bf_wh_{label}_{}", uuid::Uuid::new_v4().simple()).to_lowercase();
        let admin = admin_url();
        let mut conn = PgConnection::connect(&admin)
            .await
            .expect("admin connection");
        conn.execute(format!("CREATE DATABASE \"{database}\"").as_str())
            .await
            .unwrap();
        let base = admin.rsplit_once('/').map(|(b, _)| b.to_string()).unwrap();
        Scratch {
            url: format!("{base}/{database}"),
            database,
            roles: Vec::new(),
        }
    }

    pub async fn conn(&self) -> PgConnection {
        PgConnection::connect(&self.url).await.unwrap()
    }

    /// Runs admin SQL (several statements allowed) in the scratch database.
    pub async fn exec(&self, sql: &str) {
        let mut c = self.conn().await;
        sqlx::raw_sql(sql).execute(&mut c).await.unwrap();
        c.close().await.unwrap();
    }

    /// A login role (dropped with the database) whose name is returned.
    pub async fn role(&mut self, label: &str, options: &str) -> String {
        let name = format!(
            "bf_wh_{label}_{}",
            &uuid::Uuid::new_v4().simple().to_string()[..10]
        );
        self.exec(&format!("CREATE ROLE \"{name}\" {options}"))
            .await;
        self.roles.push(name.clone());
        name
    }

    pub fn settings(&self, user: &str) -> SourceSettings {
        let admin = admin_url();
        let host_port = admin
            .split('@')
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .unwrap_or("127.0.0.1:5432");
        let (host, port) = host_port.split_once(':').unwrap_or((host_port, "5432"));
        [
            ("host", host),
            ("port", port),
            ("database", self.database.as_str()),
            ("user", user),
            ("sslmode", "disable"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    pub fn admin_user(&self) -> String {
        let admin = admin_url();
        admin
            .trim_start_matches("postgres://")
            .split(['@', ':'])
            .next()
            .unwrap_or("postgres")
            .to_string()
    }

    pub fn connector(&self) -> Arc<dyn Connector> {
        backflow_warehouse::connect(
            WarehouseKind::Postgres,
            &self.settings(&self.admin_user()),
            secret(""),
        )
        .unwrap()
    }
}

pub fn secret(s: &str) -> SecretMaterial {
    SecretMaterial(secrecy::SecretString::from(s.to_string()))
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let database = self.database.clone();
        let roles = self.roles.clone();
        let admin = admin_url();
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let Ok(mut c) = PgConnection::connect(&admin).await else {
                    return;
                };
                let _ = c
                    .execute(
                        format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)").as_str(),
                    )
                    .await;
                for role in roles {
                    let _ = c
                        .execute(format!("DROP ROLE IF EXISTS \"{role}\"").as_str())
                        .await;
                }
                let _ = c.close().await;
            });
        })
        .join();
    }
}
