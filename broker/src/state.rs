//! Everything the broker knows, behind one mutex: topics and their logs, group configs, share
//! groups (membership), share partitions, share sessions and acquisition-lock deadlines.
//!
//! Every record-state transition goes through [`sharecheck_model::spec::SharePartition`]; this
//! module only routes requests to the right share partition, keeps clocks (lock deadlines) and
//! sessions, and turns spec outcomes into wire data.

use sharecheck_model::ErrorCode;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use sharecheck_model::spec::{
    dlq_cause, AckBatch, AckType, AcquiredRange, Change, DlqCause, MemberIdx, Offset, RecordState,
    Rules, SharePartition,
};
use uuid::Uuid;

use crate::config::{BrokerConfig, GroupOverrides, GroupSettings};
use crate::coordinator::ShareGroup;
use crate::log::{AppendError, PartitionLog};
use crate::mutant::BrokerMutant;

/// One topic.
#[derive(Debug)]
pub struct Topic {
    pub name: String,
    pub id: Uuid,
    pub partitions: Vec<PartitionLog>,
    /// Partitions it was created with (the `added-partition-unassigned` mutant assigns only these).
    pub created_with: usize,
    /// The topic configs it was created with (kept, not interpreted, except
    /// `errors.deadletterqueue.group.enable`).
    pub configs: BTreeMap<String, String>,
}

/// Index of a share partition in [`State`].
pub type SpId = usize;

/// One share partition (group, topic, partition) on this broker, the partition leader.
#[derive(Debug)]
pub struct SpEntry {
    pub group: String,
    pub topic_id: Uuid,
    pub partition: i32,
    /// The spec's state of the share partition: the only place record states live.
    pub sp: SharePartition,
    /// The deadline of the latest acquisition lock of each offset ever acquired since the last
    /// restart. A deadline outlives its lock: when it passes, [`SharePartition::expire_lock`]
    /// decides whether a lock is still held (it is cancelled when the record leaves Acquired).
    pub deadlines: HashMap<Offset, Instant>,
}

/// One share session: (group, member) on this broker (docs/semantics.md §6.1).
#[derive(Clone, Debug)]
pub struct ShareSession {
    /// The connection that opened it; dropping that connection ends it (§6.3, 4.1+).
    pub conn: u64,
    /// The epoch the next request must carry.
    pub next_epoch: i32,
    /// The share partitions in the session.
    pub partitions: BTreeSet<(Uuid, i32)>,
}

/// Member ids of one group mapped to the spec's member indices.
#[derive(Debug, Default)]
struct MemberTable {
    ids: HashMap<String, MemberIdx>,
}

/// The records one ShareFetch acquired from one share partition.
#[derive(Debug, Default)]
pub struct Acquisition {
    /// AcquiredRecords, from the spec.
    pub ranges: Vec<AcquiredRange>,
    /// The record batches holding them.
    pub records: Bytes,
    /// Records acquired.
    pub count: usize,
}

/// A per-partition failure: Kafka error code and message.
pub type PartitionError = (i16, String);

/// The broker state.
#[derive(Debug, Default)]
pub struct State {
    pub topics: BTreeMap<String, Topic>,
    pub topic_names: HashMap<Uuid, String>,
    pub group_configs: HashMap<String, GroupOverrides>,
    pub groups: HashMap<String, ShareGroup>,
    member_tables: HashMap<String, MemberTable>,
    sps: Vec<Option<SpEntry>>,
    sp_ids: HashMap<(String, Uuid, i32), SpId>,
    sp_by_tp: HashMap<(Uuid, i32), Vec<SpId>>,
    pub sessions: HashMap<(String, String), ShareSession>,
    /// Start offsets set by AlterShareGroupOffsets for share partitions not loaded yet: the first
    /// fetch starts there instead of at `share.auto.offset.reset`.
    altered_starts: HashMap<(String, Uuid, i32), Offset>,
    /// Records archived for a dead-letter reason, waiting to be written to their group's DLQ
    /// topic: (share partition, offset, delivery count, cause).
    dlq_pending: Vec<(SpId, Offset, u8, DlqCause)>,
    timers: BTreeMap<Instant, Vec<(SpId, Offset, Offset)>>,
    next_producer_id: i64,
}

/// The rules of one group's share partitions now: profile and mutant from the broker, delivery
/// limit and in-flight window from the group's configs (read on every use, as 4.3+ does).
pub fn rules_for(cfg: &BrokerConfig, overrides: Option<&GroupOverrides>) -> Rules {
    let s = overrides.cloned().unwrap_or_default().settings(cfg);
    Rules {
        profile: cfg.profile,
        delivery_limit: s.delivery_limit,
        max_in_flight: s.max_record_locks,
        mutant: cfg.mutant.and_then(BrokerMutant::spec_mutant),
        renew_enabled: s.renew_enabled || cfg.mutant == Some(BrokerMutant::RenewIgnoresDisable),
    }
}

/// Why a topic name is illegal (Kafka's message).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidTopicName(pub String);

/// Kafka's topic name rule (`Topic.validate`): 1–249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn valid_topic_name(name: &str) -> Result<(), InvalidTopicName> {
    if name.is_empty() || name == "." || name == ".." {
        return Err(InvalidTopicName(format!("Topic name {name:?} is illegal")));
    }
    if name.len() > 249 {
        return Err(InvalidTopicName(
            "Topic name is illegal, it can't be longer than 249 characters".to_string(),
        ));
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return Err(InvalidTopicName(format!(
            "Topic name {name:?} is illegal, it contains a character other than ASCII alphanumerics, '.', '_' and '-'"
        )));
    }
    Ok(())
}

impl State {
    pub fn new() -> State {
        State {
            next_producer_id: 1000,
            ..State::default()
        }
    }

    // ------------------------------------------------------------------------------------
    // Topics and logs

    pub fn topic_by_id(&self, id: Uuid) -> Option<&Topic> {
        self.topic_names.get(&id).and_then(|n| self.topics.get(n))
    }

    pub fn create_topic(&mut self, name: &str, partitions: i32) -> Result<Uuid, PartitionError> {
        valid_topic_name(name).map_err(|m| (ErrorCode::INVALID_TOPIC_EXCEPTION.0, m.0))?;
        if self.topics.contains_key(name) {
            return Err((
                ErrorCode::TOPIC_ALREADY_EXISTS.0,
                format!("Topic '{name}' already exists."),
            ));
        }
        if !(1..=10_000).contains(&partitions) {
            return Err((
                ErrorCode::INVALID_PARTITIONS.0,
                format!("Number of partitions must be in 1..=10000, not {partitions}"),
            ));
        }
        let id = loop {
            let id = Uuid::new_v4();
            if !self.topic_names.contains_key(&id) && !id.is_nil() {
                break id;
            }
        };
        self.topics.insert(
            name.to_string(),
            Topic {
                name: name.to_string(),
                id,
                partitions: (0..partitions).map(|_| PartitionLog::default()).collect(),
                created_with: partitions as usize,
                configs: BTreeMap::new(),
            },
        );
        self.topic_names.insert(id, name.to_string());
        Ok(id)
    }

    /// Grows topic `name` to `total` partitions (CreatePartitions); new partitions start empty.
    /// Kafka's messages: `AdminUtils` / `ReplicationControlManager.createPartitions`.
    pub fn add_partitions(&mut self, name: &str, total: i32) -> Result<(), PartitionError> {
        let Some(topic) = self.topics.get_mut(name) else {
            return Err((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                format!("The topic '{name}' does not exist."),
            ));
        };
        let now = topic.partitions.len() as i32;
        if total < now {
            return Err((
                ErrorCode::INVALID_PARTITIONS.0,
                format!("The topic {name} currently has {now} partition(s); {total} would not be an increase."),
            ));
        }
        if total == now {
            return Err((
                ErrorCode::INVALID_PARTITIONS.0,
                format!("Topic already has {now} partition(s)."),
            ));
        }
        if total > 10_000 {
            return Err((
                ErrorCode::INVALID_PARTITIONS.0,
                format!("Number of partitions must be at most 10000, not {total}"),
            ));
        }
        topic
            .partitions
            .extend((now..total).map(|_| PartitionLog::default()));
        Ok(())
    }

    /// Deletes a topic with its logs and share partitions. Sessions keep listing its partitions;
    /// fetching them answers UNKNOWN_TOPIC_ID.
    pub fn delete_topic(&mut self, name: &str) -> Option<Uuid> {
        let topic = self.topics.remove(name)?;
        self.topic_names.remove(&topic.id);
        for p in 0..topic.partitions.len() as i32 {
            for id in self.sp_by_tp.remove(&(topic.id, p)).unwrap_or_default() {
                if let Some(e) = self.sps.get_mut(id).and_then(Option::take) {
                    self.sp_ids.remove(&(e.group, e.topic_id, e.partition));
                }
            }
        }
        Some(topic.id)
    }

    /// Appends the one record batch of a Produce and makes its records part of every share
    /// partition of that topic partition. Returns the base offset.
    pub fn produce(
        &mut self,
        topic_id: Uuid,
        partition: i32,
        records: &Bytes,
    ) -> Result<i64, AppendError> {
        let unknown = AppendError {
            code: ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
            message: "This server does not host this topic-partition.".to_string(),
        };
        let Some(name) = self.topic_names.get(&topic_id) else {
            return Err(unknown);
        };
        let Some(log) = self.topics.get_mut(name).and_then(|t| {
            usize::try_from(partition)
                .ok()
                .and_then(|p| t.partitions.get_mut(p))
        }) else {
            return Err(unknown);
        };
        let (base, count) = log.append(records)?;
        for id in self
            .sp_by_tp
            .get(&(topic_id, partition))
            .into_iter()
            .flatten()
        {
            if let Some(e) = self.sps.get_mut(*id).and_then(Option::as_mut) {
                e.sp.produce(count as usize);
            }
        }
        Ok(base)
    }

    pub fn next_producer_id(&mut self) -> i64 {
        self.next_producer_id += 1;
        self.next_producer_id
    }

    // ------------------------------------------------------------------------------------
    // Groups

    pub fn settings(&self, cfg: &BrokerConfig, group: &str) -> GroupSettings {
        self.group_configs
            .get(group)
            .cloned()
            .unwrap_or_default()
            .settings(cfg)
    }

    pub fn rules(&self, cfg: &BrokerConfig, group: &str) -> Rules {
        rules_for(cfg, self.group_configs.get(group))
    }

    /// The spec's index for `member` of `group`, allocated on first use (the partition leader
    /// does not check membership, §7.3). `None` when the group has used every index.
    pub fn member_idx(&mut self, group: &str, member: &str) -> Option<MemberIdx> {
        let table = self.member_tables.entry(group.to_string()).or_default();
        if let Some(i) = table.ids.get(member) {
            return Some(*i);
        }
        let next = MemberIdx::try_from(table.ids.len()).ok()?;
        table.ids.insert(member.to_string(), next);
        Some(next)
    }

    fn known_member_idx(&self, group: &str, member: &str) -> Option<MemberIdx> {
        self.member_tables
            .get(group)
            .and_then(|t| t.ids.get(member))
            .copied()
    }

    // ------------------------------------------------------------------------------------
    // Share partitions

    /// Checks the topic partition exists: UNKNOWN_TOPIC_ID (100) or UNKNOWN_TOPIC_OR_PARTITION (3).
    pub fn check_partition(&self, topic_id: Uuid, partition: i32) -> Result<(), PartitionError> {
        let Some(topic) = self.topic_by_id(topic_id) else {
            return Err((
                ErrorCode::UNKNOWN_TOPIC_ID.0,
                "This server does not host this topic ID.".to_string(),
            ));
        };
        if partition < 0 || partition as usize >= topic.partitions.len() {
            return Err((
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                "This server does not host this topic-partition.".to_string(),
            ));
        }
        Ok(())
    }

    /// The share partition if it was loaded (fetched) here.
    pub fn loaded(&self, group: &str, topic_id: Uuid, partition: i32) -> Option<SpId> {
        self.sp_ids
            .get(&(group.to_string(), topic_id, partition))
            .copied()
    }

    /// The share partition, loaded now if this is its first fetch: the SPSO comes from
    /// `share.auto.offset.reset` applied to the log as it is at this instant (§4.3).
    fn load(
        &mut self,
        cfg: &BrokerConfig,
        group: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Result<SpId, PartitionError> {
        self.check_partition(topic_id, partition)?;
        if let Some(id) = self.loaded(group, topic_id, partition) {
            return Ok(id);
        }
        let reset = self.settings(cfg, group).auto_offset_reset;
        let log = self
            .topic_by_id(topic_id)
            .and_then(|t| t.partitions.get(partition as usize))
            .ok_or_else(|| {
                (
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                    "no such partition".to_string(),
                )
            })?;
        let added_later = self
            .topic_by_id(topic_id)
            .is_some_and(|t| partition as usize >= t.created_with);
        let altered = self
            .altered_starts
            .get(&(group.to_string(), topic_id, partition))
            .copied();
        let spso = if let Some(start) = altered {
            start.clamp(log.start(), log.end())
        } else if added_later && cfg.mutant == Some(BrokerMutant::AddedPartitionAtLogEnd) {
            log.end()
        } else {
            reset.initial_spso(log.start(), log.end())
        };
        let mut sp = SharePartition::new(spso);
        sp.produce((log.end() - spso).max(0) as usize);
        self.altered_starts
            .remove(&(group.to_string(), topic_id, partition));
        let id = self.sps.len();
        self.sps.push(Some(SpEntry {
            group: group.to_string(),
            topic_id,
            partition,
            sp,
            deadlines: HashMap::new(),
        }));
        self.sp_ids
            .insert((group.to_string(), topic_id, partition), id);
        self.sp_by_tp
            .entry((topic_id, partition))
            .or_default()
            .push(id);
        Ok(id)
    }

    /// A read-only view of a share partition (for tests and introspection).
    pub fn share_partition(
        &self,
        group: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> Option<&SharePartition> {
        let id = self.loaded(group, topic_id, partition)?;
        self.sps.get(id)?.as_ref().map(|e| &e.sp)
    }

    /// The acquisition part of a ShareFetch for one share partition: the spec picks the records
    /// ([`SharePartition::next_acquisition`]) and acquires them; the broker trims the pick to
    /// `max_bytes` at record-batch granularity (the first batch of a response always goes),
    /// starts their lock timers and collects the batches.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &mut self,
        cfg: &BrokerConfig,
        group: &str,
        member: MemberIdx,
        topic_id: Uuid,
        partition: i32,
        max_records: usize,
        max_bytes: &mut usize,
        first_in_response: bool,
        now: Instant,
    ) -> Result<Acquisition, PartitionError> {
        let id = self.load(cfg, group, topic_id, partition)?;
        if max_records == 0 {
            return Ok(Acquisition::default());
        }
        let rules = self.rules(cfg, group);
        let settings = self.settings(cfg, group);
        let State {
            topics,
            topic_names,
            sps,
            timers,
            ..
        } = self;
        let log = topic_names
            .get(&topic_id)
            .and_then(|n| topics.get(n))
            .and_then(|t| t.partitions.get(partition as usize))
            .ok_or_else(|| {
                (
                    ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                    "no such partition".to_string(),
                )
            })?;
        let entry = sps.get_mut(id).and_then(Option::as_mut).ok_or_else(|| {
            (
                ErrorCode::UNKNOWN_SERVER_ERROR.0,
                "share partition vanished".to_string(),
            )
        })?;
        let mut offsets = entry
            .sp
            .next_acquisition(&rules, u32::try_from(max_records).unwrap_or(u32::MAX));
        let mut batches: Vec<usize> = Vec::new();
        let mut bytes = 0usize;
        let mut keep = 0usize;
        for (i, &o) in offsets.iter().enumerate() {
            let Some(bi) = log.batch_index(o) else {
                break;
            };
            if !batches.contains(&bi) {
                let size = log.batch(bi).map(|b| b.bytes.len()).unwrap_or(0);
                let first = batches.is_empty() && first_in_response;
                if bytes + size > *max_bytes && !first {
                    break;
                }
                batches.push(bi);
                bytes += size;
            }
            keep = i + 1;
        }
        offsets.truncate(keep);
        if offsets.is_empty() {
            return Ok(Acquisition::default());
        }
        let ranges = entry.sp.acquire(&rules, member, &offsets).map_err(|e| {
            (
                ErrorCode::UNKNOWN_SERVER_ERROR.0,
                format!("acquire at offset {}: {}", e.offset, e.reason),
            )
        })?;
        *max_bytes = max_bytes.saturating_sub(bytes);
        let deadline = now + lock_duration(cfg, &settings);
        schedule_locks(timers, entry, id, &offsets, deadline);
        batches.sort_unstable();
        batches.dedup();
        let mut out = BytesMut::with_capacity(bytes);
        for bi in batches {
            if let Some(b) = log.batch(bi) {
                out.extend_from_slice(&b.bytes);
            }
        }
        Ok(Acquisition {
            count: offsets.len(),
            ranges: ranges.into_iter().collect(),
            records: out.freeze(),
        })
    }

    /// Applies one partition's acknowledgement batches of `member` through
    /// [`SharePartition::acknowledge`]. Returns the per-partition error code and message, and
    /// whether records became acquirable.
    ///
    /// With `is_renew_ack` (v2), RENEW (4) is allowed: a renewed record keeps its owner and count
    /// and its lock restarts now, for the group's lock duration (T7, `SP.acknowledge@4.2:2295-2305`).
    #[allow(clippy::too_many_arguments)]
    pub fn acknowledge(
        &mut self,
        cfg: &BrokerConfig,
        group: &str,
        member: &str,
        (topic_id, partition): (Uuid, i32),
        batches: &[AckBatch],
        is_renew_ack: bool,
        now: Instant,
    ) -> (i16, Option<String>, bool) {
        if let Err((c, m)) = self.check_partition(topic_id, partition) {
            return (c, Some(m), false);
        }
        let Some(id) = self.loaded(group, topic_id, partition) else {
            // §5.3: a share partition never fetched on this broker is not known here.
            return (
                ErrorCode::UNKNOWN_TOPIC_OR_PARTITION.0,
                Some("The share partition is not loaded on this broker.".to_string()),
                false,
            );
        };
        let Some(idx) = self.member_idx(group, member) else {
            return (
                ErrorCode::UNKNOWN_SERVER_ERROR.0,
                Some("the broker's member table for this group is full".to_string()),
                false,
            );
        };
        let rules = self.rules(cfg, group);
        let deadline = now + lock_duration(cfg, &self.settings(cfg, group));
        let State {
            sps,
            timers,
            dlq_pending,
            ..
        } = self;
        let Some(entry) = sps.get_mut(id).and_then(Option::as_mut) else {
            return (
                ErrorCode::UNKNOWN_SERVER_ERROR.0,
                Some("share partition vanished".to_string()),
                false,
            );
        };
        let out = match entry.sp.acknowledge(&rules, idx, batches, is_renew_ack) {
            Ok(changes) => {
                let renewed: Vec<Offset> = changes
                    .iter()
                    .filter(|c| {
                        c.to.state == RecordState::Acquired(idx)
                            && batches.iter().any(|b| {
                                b.type_at(c.offset) == Some(sharecheck_model::AckType::Renew.code())
                            })
                    })
                    .map(|c| c.offset)
                    .collect();
                if cfg.mutant == Some(BrokerMutant::RenewIncrementsCount) {
                    for &o in &renewed {
                        if let Some(r) = entry.sp.record(o) {
                            entry
                                .sp
                                .force_record(o, r.state, r.delivery_count.saturating_add(1));
                        }
                    }
                }
                if cfg.mutant != Some(BrokerMutant::RenewKeepsOldDeadline) {
                    schedule_locks(timers, entry, id, &renewed, deadline);
                }
                for ch in &changes {
                    let ty = batches
                        .iter()
                        .find_map(|b| b.type_at(ch.offset))
                        .and_then(AckType::from_code);
                    note_dlq(dlq_pending, id, ty, ch);
                }
                // Released records are acquirable again, and terminal ones may move the SPSO
                // and make room in the in-flight window: either way waiting fetches look again.
                (ErrorCode::NONE.0, None, !changes.is_empty())
            }
            Err(e) => {
                let mut c = e.code.0;
                if c == ErrorCode::INVALID_RECORD_STATE.0
                    && cfg.mutant == Some(BrokerMutant::WrongAckErrorCode)
                {
                    c = ErrorCode::INVALID_REQUEST.0;
                }
                let msg = match e.offset {
                    Some(o) => format!("{} (offset {o})", e.reason),
                    None => e.reason.to_string(),
                };
                // A failed request may still have changed records under a planted bug.
                (c, Some(msg), rules.mutant.is_some())
            }
        };
        self.flush_dlq(cfg);
        out
    }

    /// Releases the records `member` holds in `partitions` ([`SharePartition::release_session`],
    /// T9). Returns whether any record changed.
    pub fn release_member(
        &mut self,
        cfg: &BrokerConfig,
        group: &str,
        member: &str,
        partitions: &BTreeSet<(Uuid, i32)>,
    ) -> bool {
        let Some(idx) = self.known_member_idx(group, member) else {
            return false;
        };
        let rules = self.rules(cfg, group);
        let mut changed = false;
        for (t, p) in partitions {
            let Some(id) = self.loaded(group, *t, *p) else {
                continue;
            };
            if let Some(e) = self.sps.get_mut(id).and_then(Option::as_mut) {
                let changes = e.sp.release_session(&rules, idx);
                for ch in &changes {
                    note_dlq(&mut self.dlq_pending, id, None, ch);
                }
                changed |= !changes.is_empty();
            }
        }
        self.flush_dlq(cfg);
        changed
    }

    // ------------------------------------------------------------------------------------
    // Sessions

    /// Ends the sessions opened on connection `conn` (the connection dropped, §6.3): their
    /// members' records are released, unless the `disconnect-keeps-locks` mutant is planted.
    /// Returns whether any record changed.
    pub fn connection_closed(&mut self, cfg: &BrokerConfig, conn: u64) -> bool {
        let keys: Vec<(String, String)> = self
            .sessions
            .iter()
            .filter(|(_, s)| s.conn == conn)
            .map(|(k, _)| k.clone())
            .collect();
        let mut changed = false;
        for key in keys {
            let Some(session) = self.sessions.remove(&key) else {
                continue;
            };
            if cfg.mutant != Some(BrokerMutant::DisconnectKeepsLocks) {
                changed |= self.release_member(cfg, &key.0, &key.1, &session.partitions);
            }
        }
        changed
    }

    // ------------------------------------------------------------------------------------
    // Timers and restart

    /// Fires every acquisition-lock deadline at or before `now` through
    /// [`SharePartition::expire_lock`]. Returns whether any record changed.
    pub fn expire_due(&mut self, cfg: &BrokerConfig, now: Instant) -> bool {
        let mut changed = false;
        while let Some(entry) = self.timers.first_entry() {
            if *entry.key() > now {
                break;
            }
            let (deadline, items) = entry.remove_entry();
            for (id, first, last) in items {
                let Some(e) = self.sps.get_mut(id).and_then(Option::as_mut) else {
                    continue;
                };
                let rules = rules_for(cfg, self.group_configs.get(&e.group));
                for o in first..=last {
                    if e.deadlines.get(&o) == Some(&deadline) {
                        e.deadlines.remove(&o);
                        if let Some(ch) = e.sp.expire_lock(&rules, o) {
                            note_dlq(&mut self.dlq_pending, id, None, &ch);
                            changed = true;
                        }
                    }
                }
            }
        }
        self.flush_dlq(cfg);
        changed
    }

    /// Writes the records archived for a dead-letter reason to their group's DLQ topic (KIP-1191,
    /// docs/semantics.md §19): one record per offset, no key or value, the `__dlq.errors.*`
    /// headers, to partition `source partition % DLQ partitions`. Nothing is written — the record
    /// stays archived — when the group names no DLQ topic, the name starts with `__` or lacks the
    /// broker's prefix (`dlq.`), the topic does not exist (no auto-creation) or its
    /// `errors.deadletterqueue.group.enable` is not `true` (`ShareGroupDLQStateManager.validateDlqTopic@4.4`).
    pub fn flush_dlq(&mut self, cfg: &BrokerConfig) {
        let pending = std::mem::take(&mut self.dlq_pending);
        for (k, (id, offset, count, cause)) in pending.into_iter().enumerate() {
            if k == 0 && cfg.mutant == Some(BrokerMutant::DlqRecordMissing) {
                continue;
            }
            let Some(e) = self.sps.get(id).and_then(Option::as_ref) else {
                continue;
            };
            let (group, topic_id, partition) = (e.group.clone(), e.topic_id, e.partition);
            let Some(dlq) = self
                .group_configs
                .get(&group)
                .and_then(|g| g.dlq_topic.clone())
                .filter(|n| !n.is_empty() && !n.starts_with("__"))
                .filter(|n| n.starts_with(&cfg.dlq_topic_prefix))
            else {
                continue;
            };
            let Some(target) = self.topics.get(&dlq).filter(|t| {
                t.configs
                    .get("errors.deadletterqueue.group.enable")
                    .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            }) else {
                continue;
            };
            let (dlq_id, dlq_partitions) = (target.id, target.partitions.len() as i32);
            let source = self
                .topic_by_id(topic_id)
                .map_or_else(|| topic_id.to_string(), |t| t.name.clone());
            let batch = dlq_batch(&source, partition, offset, &group, count, cause);
            let copies = if cfg.mutant == Some(BrokerMutant::DlqWrittenTwice) {
                2
            } else {
                1
            };
            for _ in 0..copies {
                let _ = self.produce(dlq_id, partition % dlq_partitions.max(1), &batch);
            }
        }
    }

    /// The earliest pending lock deadline.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.timers.keys().next().copied()
    }

    /// The broker restarts (T14, §10.2): share sessions and lock timers are lost and every share
    /// partition is rebuilt from what was persisted ([`SharePartition::restart`]). Logs, topics,
    /// group configs and memberships stay.
    pub fn restart(&mut self, cfg: &BrokerConfig) {
        self.sessions.clear();
        if cfg.mutant == Some(BrokerMutant::RestartKeepsLocks) {
            return;
        }
        self.timers.clear();
        let ids: Vec<SpId> = (0..self.sps.len()).collect();
        self.reload(cfg, &ids);
    }

    /// Rebuilds these share partitions from what was persisted, each under its group's rules.
    fn reload(&mut self, cfg: &BrokerConfig, ids: &[SpId]) {
        for id in ids {
            let Some(group) = self
                .sps
                .get(*id)
                .and_then(Option::as_ref)
                .map(|e| e.group.clone())
            else {
                continue;
            };
            let rules = self.rules(cfg, &group);
            if let Some(e) = self.sps.get_mut(*id).and_then(Option::as_mut) {
                e.sp.restart(&rules);
                e.deadlines.clear();
                if cfg.mutant == Some(BrokerMutant::RestartLowersCounts) {
                    let lowered: Vec<_> = e
                        .sp
                        .records()
                        .filter(|(_, r)| r.state == RecordState::Available && r.delivery_count > 0)
                        .collect();
                    for (o, r) in lowered {
                        e.sp.force_record(o, r.state, r.delivery_count - 1);
                    }
                }
            }
        }
    }

    /// A new leader takes over `topic_id`-`partition` (the reference broker is its own new
    /// leader): every group's share partition of it reloads from what was written (T14 for that
    /// partition alone); sessions stay. Returns how many share partitions reloaded.
    pub fn reload_partition(
        &mut self,
        cfg: &BrokerConfig,
        topic_id: Uuid,
        partition: i32,
    ) -> usize {
        let ids = self
            .sp_by_tp
            .get(&(topic_id, partition))
            .cloned()
            .unwrap_or_default();
        if cfg.mutant != Some(BrokerMutant::RestartKeepsLocks) {
            self.reload(cfg, &ids);
        }
        ids.len()
    }

    /// DeleteGroups of one share group: GROUP_ID_NOT_FOUND when there is none, NON_EMPTY_GROUP
    /// while it has members; else the group goes with its configs, sessions and share partitions.
    pub fn delete_group(&mut self, group: &str) -> ErrorCode {
        if !self.groups.contains_key(group) {
            return ErrorCode::GROUP_ID_NOT_FOUND;
        }
        if self.group_has_members(group) {
            return ErrorCode::NON_EMPTY_GROUP;
        }
        self.groups.remove(group);
        self.group_configs.remove(group);
        self.member_tables.remove(group);
        self.sessions.retain(|(g, _), _| g != group);
        self.altered_starts.retain(|(g, _, _), _| g != group);
        let ids: Vec<SpId> = self
            .sp_ids
            .iter()
            .filter(|((g, _, _), _)| g == group)
            .map(|(_, id)| *id)
            .collect();
        self.sp_ids.retain(|(g, _, _), _| g != group);
        for list in self.sp_by_tp.values_mut() {
            list.retain(|i| !ids.contains(i));
        }
        for id in ids {
            if let Some(slot) = self.sps.get_mut(id) {
                *slot = None;
            }
        }
        ErrorCode::NONE
    }

    /// Whether the group has members (Alter/DeleteShareGroupOffsets need it empty).
    pub fn group_has_members(&self, group: &str) -> bool {
        self.groups
            .get(group)
            .is_some_and(|g| !g.members.is_empty())
    }

    /// AlterShareGroupOffsets of one partition (§18.1): the share partition starts again at `start`
    /// with no state ([`SharePartition::altered`]); one not loaded yet starts there when it is.
    pub fn alter_start(
        &mut self,
        cfg: &BrokerConfig,
        group: &str,
        topic_id: Uuid,
        partition: i32,
        start: Offset,
    ) -> Result<(), PartitionError> {
        self.check_partition(topic_id, partition)?;
        match self.loaded(group, topic_id, partition) {
            Some(id) => {
                if cfg.mutant == Some(BrokerMutant::AlterKeepsOlderRecords) {
                    return Ok(());
                }
                if let Some(e) = self.sps.get_mut(id).and_then(Option::as_mut) {
                    e.sp = e.sp.altered(start);
                    e.deadlines.clear();
                }
            }
            None => {
                self.altered_starts
                    .insert((group.to_string(), topic_id, partition), start);
            }
        }
        Ok(())
    }

    /// DeleteShareGroupOffsets of a topic (§18.1): every share partition of the group on it is
    /// dropped, so the next fetch starts by `share.auto.offset.reset`. `false` when the group had no
    /// state for the topic.
    pub fn delete_offsets(&mut self, cfg: &BrokerConfig, group: &str, topic_id: Uuid) -> bool {
        let partitions = self.topic_by_id(topic_id).map_or(0, |t| t.partitions.len()) as i32;
        let mut any = false;
        for p in 0..partitions {
            let key = (group.to_string(), topic_id, p);
            any |= self.altered_starts.remove(&key).is_some();
            let Some(id) = self.sp_ids.get(&key).copied() else {
                continue;
            };
            any = true;
            if cfg.mutant == Some(BrokerMutant::DeleteKeepsState) {
                continue;
            }
            self.sp_ids.remove(&key);
            if let Some(ids) = self.sp_by_tp.get_mut(&(topic_id, p)) {
                ids.retain(|i| *i != id);
            }
            if let Some(slot) = self.sps.get_mut(id) {
                *slot = None;
            }
        }
        any
    }

    /// DescribeShareGroupOffsets of one partition: the start offset and the lag
    /// ([`SharePartition::lag`]); −1 and −1 when the share partition was never initialised.
    pub fn describe_offsets(
        &self,
        cfg: &BrokerConfig,
        group: &str,
        topic_id: Uuid,
        partition: i32,
    ) -> (Offset, i64) {
        let key = (group.to_string(), topic_id, partition);
        let off_by_one = i64::from(cfg.mutant == Some(BrokerMutant::LagOffByOne));
        if let Some(e) = self
            .sp_ids
            .get(&key)
            .and_then(|id| self.sps.get(*id))
            .and_then(Option::as_ref)
        {
            return (e.sp.spso(), e.sp.lag() + off_by_one);
        }
        match (self.altered_starts.get(&key), self.topic_by_id(topic_id)) {
            (Some(start), Some(t)) => {
                let end = t
                    .partitions
                    .get(partition as usize)
                    .map_or(*start, |l| l.end());
                (*start, end - start + off_by_one)
            }
            _ => (-1, -1),
        }
    }

    /// The id of a topic by name.
    pub fn topic_id(&self, name: &str) -> Option<Uuid> {
        self.topics.get(name).map(|t| t.id)
    }

    /// Numbers for [`crate::BrokerStats`].
    pub fn counts(&self) -> (usize, usize, usize) {
        (
            self.sessions.len(),
            self.sps.iter().flatten().count(),
            self.topics.len(),
        )
    }
}

/// Queues `change` for the dead-letter queue when the spec says it goes there ([`dlq_cause`]).
fn note_dlq(
    pending: &mut Vec<(SpId, Offset, u8, DlqCause)>,
    id: SpId,
    by_ack: Option<AckType>,
    change: &Change,
) {
    if let Some(cause) = dlq_cause(by_ack, change) {
        pending.push((id, change.offset, change.to.delivery_count, cause));
    }
}

/// One DLQ record as Kafka 4.4 writes it: no key or value (`errors.deadletterqueue.copy.record.enable`
/// is false), the headers in Kafka's order, every value a UTF-8 string
/// (`ShareGroupDLQStateManager@4.4:310-315, 581-606`).
fn dlq_batch(
    topic: &str,
    partition: i32,
    offset: Offset,
    group: &str,
    count: u8,
    cause: DlqCause,
) -> Bytes {
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    use kafka_protocol::records::{Record, TimestampType};
    let mut headers: IndexMap<StrBytes, Option<Bytes>> = IndexMap::new();
    for (k, v) in [
        ("__dlq.errors.topic", topic.to_string()),
        ("__dlq.errors.partition", partition.to_string()),
        ("__dlq.errors.offset", offset.to_string()),
        ("__dlq.errors.group", group.to_string()),
        ("__dlq.errors.delivery.count", count.to_string()),
        ("__dlq.errors.message", cause.message().to_string()),
    ] {
        headers.insert(StrBytes::from_static_str(k), Some(Bytes::from(v)));
    }
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let record = Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: -1,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: TimestampType::Creation,
        offset: 0,
        sequence: -1,
        timestamp: now_ms,
        key: None,
        value: None,
        headers,
    };
    sharecheck_client::admin::encode_batch(&[record]).unwrap_or_default()
}

/// How long an acquisition lock lasts in this group (the `early-lock-expiry` mutant halves it).
fn lock_duration(cfg: &BrokerConfig, settings: &GroupSettings) -> Duration {
    let mut lock_ms = u64::try_from(settings.record_lock_duration_ms.max(1)).unwrap_or(1);
    if cfg.mutant == Some(BrokerMutant::EarlyLockExpiry) {
        lock_ms /= 2;
    }
    Duration::from_millis(lock_ms)
}

/// Starts (or restarts) the locks of `offsets` (ascending) of share partition `id`: each ends at
/// `deadline`, and an earlier deadline of the same offset no longer fires.
fn schedule_locks(
    timers: &mut BTreeMap<Instant, Vec<(SpId, Offset, Offset)>>,
    entry: &mut SpEntry,
    id: SpId,
    offsets: &[Offset],
    deadline: Instant,
) {
    if offsets.is_empty() {
        return;
    }
    let timer = timers.entry(deadline).or_default();
    let mut run: Option<(Offset, Offset)> = None;
    for &o in offsets {
        entry.deadlines.insert(o, deadline);
        run = match run {
            Some((a, b)) if b + 1 == o => Some((a, o)),
            Some((a, b)) => {
                timer.push((id, a, b));
                Some((o, o))
            }
            None => Some((o, o)),
        };
    }
    if let Some((a, b)) = run {
        timer.push((id, a, b));
    }
}
