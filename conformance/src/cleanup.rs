//! Removing what a run made: every topic and share group whose name starts with the run's prefix
//! (`sharecheck cleanup --prefix P`, the end of an interrupted `conform`), and one group at a time
//! (the end of each case and of each run).
//!
//! A share group whose members were dropped without leaving (a rejoin, a restart, a killed run)
//! keeps them until their session times out — 45 s by default, and on Kafka 4.2.2 after a restart
//! the coordinator took 61 s. The coordinator does not tie a member to a connection, so
//! [`delete_group_emptying`] makes each remaining member leave on its behalf (ShareGroupHeartbeat
//! with MemberEpoch −1) and deletes the group at once.

use sharecheck_client::admin::{Client, ClientConfig, ClientError};
use sharecheck_model::ErrorCode;
use std::time::{Duration, Instant};

/// Deletes share group `group` (DeleteGroups); when it still has members, makes each leave on
/// its behalf first and deletes it again. A group that is already gone is not an error.
pub async fn delete_group_emptying(client: &mut Client, group: &str) -> Result<(), ClientError> {
    match client.delete_group(group).await {
        Err(e) if e.kafka_code() == Some(ErrorCode::NON_EMPTY_GROUP) => {
            let described = client.describe_share_group(group).await?;
            for m in &described.members {
                client
                    .leave_share_group(group, m.member_id.as_str())
                    .await?;
            }
            client.delete_group(group).await
        }
        other => other,
    }
}

/// A prefix refused by [`check_prefix`], and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BadPrefix {
    /// The prefix.
    pub prefix: String,
    /// Why it could name what no run made.
    pub why: &'static str,
}

impl std::fmt::Display for BadPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "prefix {:?} {}", self.prefix, self.why)
    }
}

impl std::error::Error for BadPrefix {}

/// Whether `prefix` names only what a run made.
pub fn check_prefix(prefix: &str) -> Result<(), BadPrefix> {
    let why = if prefix.chars().count() < 3 {
        "is too short: at least 3 characters, so that it names only what a run made"
    } else if prefix.len() > 100 {
        "is longer than 100 characters: with the case's name a topic would pass Kafka's 249"
    } else if prefix.starts_with('_') {
        "starts with '_', which names internal topics (__consumer_offsets, __share_group_state)"
    } else if !prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        "has a character Kafka does not allow in a topic name (letters, digits, '.', '_', '-')"
    } else {
        return Ok(());
    };
    Err(BadPrefix {
        prefix: prefix.to_string(),
        why,
    })
}

/// What [`cleanup_prefix`] found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// Topics with the prefix (deleted unless a dry run).
    pub topics: Vec<String>,
    /// Groups with the prefix (deleted unless a dry run, or listed in `left`).
    pub groups: Vec<String>,
    /// Topics and groups still there at the end, each with why.
    pub left: Vec<(String, String)>,
    /// The first refusal for want of a permission (no retry can help then), if any.
    pub denied: Option<String>,
}

/// Finds every topic (Metadata) and group (ListGroups on every broker) whose name starts with
/// `prefix` — internal topics never — and, unless `dry_run`, deletes them: topics with
/// DeleteTopics, groups with [`delete_group_emptying`], retrying what fails for up to `patience`.
/// The prefix must pass [`check_prefix`]. Every request has the client's deadline `timeout`.
pub async fn cleanup_prefix(
    config: ClientConfig,
    prefix: &str,
    dry_run: bool,
    patience: Duration,
) -> Result<Cleanup, ClientError> {
    let deadline = Instant::now() + patience;
    let mut client = Client::connect(config).await?;
    let mut out = Cleanup::default();
    // List, delete, and list again until a listing finds nothing: a case dropped by an interrupt
    // may have sent a CreateTopics that lands after the first listing.
    loop {
        let topics: Vec<String> = client
            .list_topics()
            .await?
            .into_iter()
            .filter(|(name, internal)| !internal && name.starts_with(prefix))
            .map(|(name, _)| name)
            .collect();
        let groups: Vec<String> = client
            .list_groups()
            .await?
            .into_iter()
            .filter(|(name, _)| name.starts_with(prefix))
            .map(|(name, _)| name)
            .collect();
        for t in &topics {
            if !out.topics.contains(t) {
                out.topics.push(t.clone());
            }
        }
        for g in &groups {
            if !out.groups.contains(g) {
                out.groups.push(g.clone());
            }
        }
        if dry_run || (topics.is_empty() && groups.is_empty()) {
            return Ok(out);
        }
        // Groups first: a group's share state goes with it, and its members would otherwise be
        // told UNKNOWN_TOPIC_ID while we wait.
        let mut left = Vec::new();
        for g in groups {
            match delete_group_emptying(&mut client, &g).await {
                Ok(()) => {}
                Err(e) if e.is_unreachable() => return Err(e),
                Err(e) => {
                    out.denied = out.denied.take().or(e.denied());
                    left.push((g, e.to_string()))
                }
            }
        }
        for t in topics {
            match client.delete_topic(&t).await {
                // Gone already (its case deleted it meanwhile).
                Ok(()) => {}
                Err(e) if e.kafka_code() == Some(ErrorCode::UNKNOWN_TOPIC_OR_PARTITION) => {}
                Err(e) if e.is_unreachable() => return Err(e),
                Err(e) => {
                    out.denied = out.denied.take().or(e.denied());
                    left.push((t, e.to_string()))
                }
            }
        }
        // A refused permission stays refused: waiting out the patience would change nothing.
        if Instant::now() >= deadline || out.denied.is_some() {
            out.left = left;
            return Ok(out);
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
