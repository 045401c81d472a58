//! `make bench`: the Postgres connector against sqlx on the same local PostgreSQL, in
//! the same run (issue 9, acceptance 7).
//!
//! 1. Streaming: a 1,000,000-row relation read to the end with raw
//!    `COPY (select * from t) TO STDOUT` (text and binary; bytes discarded) and with the
//!    connector (`stream`, binary COPY decoded into Arrow batches). Prints rows/s of each
//!    and the connector's ratio to raw COPY (target ≥ 0.8).
//! 2. Preview latency: connector `stream` with `max_rows = 10` against the same
//!    `select * from t limit 10` run directly with sqlx (a fresh connection each time, as
//!    the connector does, and on a warm connection). Medians of 21 runs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/pg.rs"]
mod pg;

use std::time::{Duration, Instant};

use backflow_warehouse::{QueryOptions, ReadOnlyQuery};
use futures::StreamExt;
use sqlx::{Connection, Executor};

const ROWS: i64 = 1_000_000;
const RUNS: usize = 3;
const PREVIEWS: usize = 21;

#[tokio::main]
async fn main() {
    let db = pg::Scratch::new("bench").await;
    println!("creating a {ROWS}-row relation (bigint, numeric(12,2), text, timestamptz, boolean, integer, double precision)");
    db.exec(&format!(
        "create table t as select g::bigint as id, (g * 1.5)::numeric(12,2) as amount, md5(g::text) as name, \
         timestamptz '2024-01-01' + g * interval '1 second' as at, g % 2 = 0 as flag, (g % 1000)::int as small, \
         g::float8 / 7 as ratio from generate_series(1, {ROWS}) g; analyze t;"
    ))
    .await;
    let connector = db.connector();

    let raw_text = best_of(RUNS, || raw_copy(&db, "COPY (select * from t) TO STDOUT")).await;
    let raw_binary = best_of(RUNS, || {
        raw_copy(&db, "COPY (select * from t) TO STDOUT (FORMAT binary)")
    })
    .await;
    let ours = best_of(RUNS, || async {
        let started = Instant::now();
        let q = ReadOnlyQuery::from_sql("select * from t").unwrap();
        let options = QueryOptions::default();
        let mut s = connector.stream(&q, &options).await.unwrap();
        let mut rows = 0;
        while let Some(b) = s.batches.next().await {
            rows += b.unwrap().num_rows();
        }
        assert_eq!(rows as i64, ROWS);
        started.elapsed()
    })
    .await;
    let rate = |d: Duration| ROWS as f64 / d.as_secs_f64();
    println!("streaming {ROWS} rows (best of {RUNS}):");
    println!(
        "  raw COPY text    (sqlx copy_out_raw) {:>12.0} rows/s  {:>8.1} ms",
        rate(raw_text),
        ms(raw_text)
    );
    println!(
        "  raw COPY binary  (sqlx copy_out_raw) {:>12.0} rows/s  {:>8.1} ms",
        rate(raw_binary),
        ms(raw_binary)
    );
    println!(
        "  connector → Arrow batches            {:>12.0} rows/s  {:>8.1} ms",
        rate(ours),
        ms(ours)
    );
    let fastest_raw = raw_text.min(raw_binary);
    println!(
        "  ratio connector / raw COPY: {:.2}× (vs the faster raw COPY), {:.2}× vs text, {:.2}× vs binary (target ≥ 0.80×)",
        rate(ours) / rate(fastest_raw),
        rate(ours) / rate(raw_text),
        rate(ours) / rate(raw_binary)
    );

    let mut ours = Vec::new();
    let mut direct_fresh = Vec::new();
    let mut direct_warm = Vec::new();
    let mut warm = db.conn().await;
    for _ in 0..PREVIEWS {
        let started = Instant::now();
        let q = ReadOnlyQuery::from_sql("select * from t").unwrap();
        let options = QueryOptions {
            max_rows: Some(10),
            ..QueryOptions::default()
        };
        let mut s = connector.stream(&q, &options).await.unwrap();
        let mut rows = 0;
        while let Some(b) = s.batches.next().await {
            rows += b.unwrap().num_rows();
        }
        assert_eq!(rows, 10);
        ours.push(started.elapsed());

        let started = Instant::now();
        let mut c = db.conn().await;
        let r = c.fetch_all("select * from t limit 10").await.unwrap();
        assert_eq!(r.len(), 10);
        c.close().await.unwrap();
        direct_fresh.push(started.elapsed());

        let started = Instant::now();
        let r = warm.fetch_all("select * from t limit 10").await.unwrap();
        assert_eq!(r.len(), 10);
        direct_warm.push(started.elapsed());
    }
    println!("preview latency, 10 rows (median of {PREVIEWS}):");
    println!(
        "  connector stream(max_rows = 10)           {:>7.2} ms",
        ms(median(&mut ours))
    );
    println!(
        "  sqlx, fresh connection + select … limit 10 {:>7.2} ms",
        ms(median(&mut direct_fresh))
    );
    println!(
        "  sqlx, warm connection, select … limit 10   {:>7.2} ms",
        ms(median(&mut direct_warm))
    );
}

async fn raw_copy(db: &pg::Scratch, statement: &str) -> Duration {
    let mut c = db.conn().await;
    let started = Instant::now();
    let mut s = c.copy_out_raw(statement).await.unwrap();
    let mut bytes = 0usize;
    while let Some(chunk) = s.next().await {
        bytes += chunk.unwrap().len();
    }
    let elapsed = started.elapsed();
    drop(s);
    assert!(bytes > 0);
    c.close().await.unwrap();
    elapsed
}

async fn best_of<F, Fut>(runs: usize, mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Duration>,
{
    let mut best = Duration::MAX;
    for _ in 0..runs {
        best = best.min(f().await);
    }
    best
}

fn median(v: &mut [Duration]) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}
