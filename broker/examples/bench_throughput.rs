//! Share-fetch-and-acknowledge throughput: M members of one share group drain N records from one
//! partition, each fetching (MaxRecords 500, MaxWaitMs 500) and accepting what it got with a
//! ShareAcknowledge before fetching again. Same client (sharecheck's wire
//! client and share member), same record count, against the in-process reference broker and, if
//! `KAFKA_BOOTSTRAP` is set, against that broker too (e.g. Apache Kafka 4.2 from `scripts/kafka`).
//!
//!     cargo run --release -p sharecheck-broker --example bench_throughput [-- RECORDS [MEMBERS]]
//!
//! Defaults: 100000 records, 4 members. Reports records/s from the first fetch until every record
//! was accepted (acknowledged with NONE), plus the produce rate. A benchmark, not a test: it
//! asserts nothing about time.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sharecheck_broker::{Broker, BrokerConfig};
use sharecheck_client::admin::{Client, ClientConfig};
use sharecheck_client::member::{
    AckBatch, AckType, Epoch, FetchLimits, FetchSpec, MemberConfig, PartitionAcks, ShareMember,
};

struct Measurement {
    target: String,
    records: usize,
    members: usize,
    produce: Duration,
    consume: Duration,
    fetches: usize,
    redelivered: usize,
}

type BenchResult<T> = Result<T, String>;

/// One member: ShareFetch, then ShareAcknowledge (ACCEPT) of what it got, until every record
/// is accepted — the Java client's explicit-acknowledgement loop (poll, acknowledge, commitSync).
/// The member that accepts the last record stamps the end time.
async fn member_loop(
    mut m: ShareMember,
    tid: uuid::Uuid,
    total: usize,
    accepted: Arc<AtomicUsize>,
    finished: Arc<std::sync::Mutex<Option<Instant>>>,
    deadline: Instant,
) -> BenchResult<(ShareMember, usize, usize)> {
    let (mut requests, mut redelivered) = (0usize, 0usize);
    let limits = FetchLimits {
        max_wait_ms: 500,
        min_bytes: 1,
        max_bytes: 8 * 1024 * 1024,
        max_records: 500,
        batch_size: 500,
    };
    let spec = FetchSpec::partitions(vec![(tid, 0)]).with_limits(limits);
    while accepted.load(Ordering::Relaxed) < total {
        if Instant::now() > deadline {
            return Err(format!(
                "deadline: {} of {total} accepted",
                accepted.load(Ordering::Relaxed)
            ));
        }
        let out = m.fetch(&spec).await.map_err(|e| e.to_string())?;
        requests += 1;
        if !out.error_code.is_none() {
            return Err(format!("ShareFetch answered {:?}", out.error_code));
        }
        let Some(p) = out.partition(tid, 0) else {
            continue;
        };
        if p.acquired.is_empty() {
            continue;
        }
        let mut n = 0usize;
        let batches: Vec<AckBatch> = p
            .acquired
            .iter()
            .map(|r| {
                let k = (r.last_offset - r.first_offset + 1) as usize;
                n += k;
                if r.delivery_count > 1 {
                    redelivered += k;
                }
                AckBatch::new(r.first_offset, r.last_offset, AckType::Accept)
            })
            .collect();
        let acks = [PartitionAcks {
            topic_id: tid,
            partition: 0,
            batches,
        }];
        let out = m
            .acknowledge(&acks, Epoch::Auto)
            .await
            .map_err(|e| e.to_string())?;
        requests += 1;
        let code = out.partition_error(tid, 0).unwrap_or(out.error_code);
        if !code.is_none() {
            return Err(format!("ShareAcknowledge answered {code:?}"));
        }
        if accepted.fetch_add(n, Ordering::Relaxed) + n >= total {
            if let Ok(mut f) = finished.lock() {
                f.get_or_insert_with(Instant::now);
            }
        }
    }
    Ok((m, requests, redelivered))
}

async fn measure(
    target: &str,
    bootstrap: &str,
    records: usize,
    members: usize,
) -> BenchResult<Measurement> {
    let mut client =
        Client::connect(ClientConfig::new(bootstrap).with_timeout(Duration::from_secs(30)))
            .await
            .map_err(|e| e.to_string())?;
    let suffix = &uuid::Uuid::new_v4().simple().to_string()[..10];
    let (topic, group) = (format!("bench-{suffix}"), format!("bench-{suffix}"));
    let tid = client
        .create_topic(&topic, 1)
        .await
        .map_err(|e| e.to_string())?;
    client
        .set_group_configs(&group, &[("share.auto.offset.reset", "earliest")])
        .await
        .map_err(|e| e.to_string())?;
    let value = Bytes::from(vec![b'x'; 100]);
    let started = Instant::now();
    let batches = vec![500usize; records.div_ceil(500)];
    let produced: usize = batches.iter().sum();
    client
        .produce(&topic, 0, &batches, |_| (None, Some(value.clone())))
        .await
        .map_err(|e| e.to_string())?;
    let produce = started.elapsed();
    let mut joined = Vec::new();
    for _ in 0..members {
        let mut mc = MemberConfig::new(group.clone(), vec![topic.clone()]);
        mc.join_timeout = Duration::from_secs(60);
        joined.push(
            ShareMember::join(&mut client, mc)
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    let accepted = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(std::sync::Mutex::new(None));
    let deadline = Instant::now() + Duration::from_secs(600);
    let started = Instant::now();
    let tasks: Vec<_> = joined
        .into_iter()
        .map(|m| {
            tokio::spawn(member_loop(
                m,
                tid,
                produced,
                accepted.clone(),
                finished.clone(),
                deadline,
            ))
        })
        .collect();
    let (mut fetches, mut redelivered) = (0, 0);
    let mut done = Vec::new();
    for t in tasks {
        let (m, f, r) = t.await.map_err(|e| e.to_string())??;
        fetches += f;
        redelivered += r;
        done.push(m);
    }
    let consume = finished
        .lock()
        .ok()
        .and_then(|f| *f)
        .map_or_else(|| started.elapsed(), |end| end - started);
    for m in done {
        let _ = m.close().await;
    }
    let _ = client.delete_topic(&topic).await;
    Ok(Measurement {
        target: target.to_string(),
        records: produced,
        members,
        produce,
        consume,
        fetches,
        redelivered,
    })
}

fn report(m: &Measurement) {
    println!(
        "{:<28} {:>8} records {:>2} members: consume {:>8.0} ms = {:>8.0} records/s ({} requests, {} redelivered); produce {:>6.0} ms = {:>8.0} records/s",
        m.target,
        m.records,
        m.members,
        m.consume.as_secs_f64() * 1000.0,
        m.records as f64 / m.consume.as_secs_f64(),
        m.fetches,
        m.redelivered,
        m.produce.as_secs_f64() * 1000.0,
        m.records as f64 / m.produce.as_secs_f64(),
    );
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let mut args = std::env::args().skip(1);
    let records: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(100_000);
    let members: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(4);
    let mut failed = false;
    match Broker::start(BrokerConfig::default()).await {
        Ok(broker) => {
            match measure("reference broker", &broker.bootstrap(), records, members).await {
                Ok(m) => report(&m),
                Err(e) => {
                    eprintln!("reference broker: {e}");
                    failed = true;
                }
            }
            broker.shutdown().await;
        }
        Err(e) => {
            eprintln!("reference broker: {e}");
            failed = true;
        }
    }
    if let Ok(bootstrap) = std::env::var("KAFKA_BOOTSTRAP") {
        let first = bootstrap.split(',').next().unwrap_or("").trim().to_string();
        match measure(
            &format!("KAFKA_BOOTSTRAP {first}"),
            &first,
            records,
            members,
        )
        .await
        {
            Ok(m) => report(&m),
            Err(e) => {
                eprintln!("{first}: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    }
}
