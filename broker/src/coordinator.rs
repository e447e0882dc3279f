//! The share-group coordinator: membership, epochs and assignment (ShareGroupHeartbeat,
//! ShareGroupDescribe; docs/semantics.md §7).
//!
//! Membership does not touch record state: the share-partition leader never consults it (§7.3), and
//! fencing a member leaves its locks to expire (§7.4). Assignment follows Kafka 4.2's simple
//! assignor in outcome (`SimpleHomogeneousAssignmentBuilder.java@4.2`): with M members and P
//! partitions each partition gets ⌈M/P⌉ members when M > P, otherwise exactly one, and member loads
//! differ by at most one. It is recomputed from scratch (not sticky) whenever membership,
//! subscriptions or the subscribed topics change.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use uuid::Uuid;

use crate::config::BrokerConfig;
use crate::mutant::BrokerMutant;
use crate::state::State;
use sharecheck_model::ErrorCode;

/// Members sharing a set of partitions.
type ShareUnit<'a> = (Vec<&'a str>, Vec<(Uuid, i32)>);

/// One member's assignment: topic id → partitions.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// One member of a share group.
#[derive(Clone, Debug)]
pub struct Member {
    pub epoch: i32,
    pub previous_epoch: i32,
    pub subscribed: BTreeSet<String>,
    pub rack: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// What the member was last told.
    pub assigned: Assignment,
    pub last_seen: Instant,
}

/// One share group as its coordinator knows it.
#[derive(Clone, Debug, Default)]
pub struct ShareGroup {
    pub epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, Member>,
    /// The target assignment computed at `assignment_epoch`.
    pub target: BTreeMap<String, Assignment>,
}

/// What a heartbeat answers.
#[derive(Clone, Debug, Default)]
pub struct HeartbeatAnswer {
    pub error: i16,
    pub message: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// `Some` when the member must be told its (new) assignment.
    pub assignment: Option<Assignment>,
}

/// A heartbeat request, as the coordinator reads it.
#[derive(Clone, Debug)]
pub struct Heartbeat<'a> {
    pub group: &'a str,
    pub member: &'a str,
    pub epoch: i32,
    pub rack: Option<&'a str>,
    pub subscribed: Option<Vec<String>>,
    pub client_id: &'a str,
    pub client_host: &'a str,
}

fn refuse(error: i16, message: impl Into<String>) -> HeartbeatAnswer {
    HeartbeatAnswer {
        error,
        message: Some(message.into()),
        ..HeartbeatAnswer::default()
    }
}

/// The partitions to share among `members` (sorted ids): Kafka 4.2's counts (§7.3), slots dealt
/// round-robin so loads differ by at most one and no partition gets a member twice.
pub fn assign(members: &[&str], partitions: &[(Uuid, i32)]) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> = members
        .iter()
        .map(|m| (m.to_string(), Assignment::new()))
        .collect();
    let (m, p) = (members.len(), partitions.len());
    if m == 0 || p == 0 {
        return out;
    }
    let per_partition = if m > p { m.div_ceil(p) } else { 1 };
    let mut slot = 0usize;
    for (t, part) in partitions {
        for _ in 0..per_partition {
            let member = members[slot % m];
            slot += 1;
            if let Some(a) = out.get_mut(member) {
                a.entry(*t).or_default().insert(*part);
            }
        }
    }
    out
}

impl State {
    /// The target assignment of `group` from its members' subscriptions and the topics that exist
    /// now. Members with the same subscription share its partitions; with different subscriptions
    /// each topic is shared among its subscribers.
    fn target_assignment(
        &self,
        cfg: &BrokerConfig,
        group: &ShareGroup,
    ) -> BTreeMap<String, Assignment> {
        let mut out: BTreeMap<String, Assignment> = group
            .members
            .keys()
            .map(|m| (m.clone(), Assignment::new()))
            .collect();
        let subscriptions: BTreeSet<&BTreeSet<String>> =
            group.members.values().map(|m| &m.subscribed).collect();
        let mut units: Vec<ShareUnit<'_>> = Vec::new();
        if subscriptions.len() <= 1 {
            let members: Vec<&str> = group.members.keys().map(String::as_str).collect();
            let topics = subscriptions
                .into_iter()
                .next()
                .cloned()
                .unwrap_or_default();
            units.push((members, self.partitions_of(cfg, topics.iter())));
        } else {
            let topics: BTreeSet<&String> =
                group.members.values().flat_map(|m| &m.subscribed).collect();
            for t in topics {
                let members: Vec<&str> = group
                    .members
                    .iter()
                    .filter(|(_, m)| m.subscribed.contains(t))
                    .map(|(id, _)| id.as_str())
                    .collect();
                units.push((members, self.partitions_of(cfg, std::iter::once(t))));
            }
        }
        for (members, partitions) in units {
            for (m, a) in assign(&members, &partitions) {
                let entry = out.entry(m).or_default();
                for (t, ps) in a {
                    entry.entry(t).or_default().extend(ps);
                }
            }
        }
        out
    }

    fn partitions_of<'a>(
        &self,
        cfg: &BrokerConfig,
        topics: impl Iterator<Item = &'a String>,
    ) -> Vec<(Uuid, i32)> {
        let created_only = cfg.mutant == Some(BrokerMutant::AddedPartitionUnassigned);
        topics
            .filter_map(|t| self.topics.get(t))
            .flat_map(|t| {
                let n = if created_only {
                    t.created_with
                } else {
                    t.partitions.len()
                };
                (0..n as i32).map(move |p| (t.id, p))
            })
            .collect()
    }

    /// Removes members not heard from within the session timeout (§7.2). Their records stay
    /// acquired until expiry, session close or disconnect (§7.4).
    pub fn expire_members(&mut self, cfg: &BrokerConfig, now: Instant) {
        let names: Vec<String> = self.groups.keys().cloned().collect();
        for name in names {
            let timeout = Duration::from_millis(
                u64::try_from(self.settings(cfg, &name).session_timeout_ms).unwrap_or(0),
            );
            let Some(group) = self.groups.get_mut(&name) else {
                continue;
            };
            let before = group.members.len();
            group
                .members
                .retain(|_, m| now.saturating_duration_since(m.last_seen) <= timeout);
            if group.members.len() != before {
                group.epoch += 1;
                self.reassign(cfg, &name);
            }
        }
    }

    /// Recomputes the target assignment of `group`; a change bumps the group epoch.
    fn reassign(&mut self, cfg: &BrokerConfig, name: &str) {
        let Some(group) = self.groups.get(name) else {
            return;
        };
        let target = self.target_assignment(cfg, group);
        let Some(group) = self.groups.get_mut(name) else {
            return;
        };
        if target != group.target {
            if group.assignment_epoch >= group.epoch {
                group.epoch += 1;
            }
            group.target = target;
        }
        group.assignment_epoch = group.epoch;
    }

    /// ShareGroupHeartbeat (§7.1, `GMM.shareGroupHeartbeat@4.2`).
    pub fn heartbeat(
        &mut self,
        cfg: &BrokerConfig,
        hb: Heartbeat<'_>,
        now: Instant,
    ) -> HeartbeatAnswer {
        if hb.group.is_empty() {
            return refuse(ErrorCode::INVALID_REQUEST.0, "GroupId can't be empty.");
        }
        if hb.member.is_empty() || hb.member.chars().count() > 36 {
            return refuse(
                ErrorCode::INVALID_REQUEST.0,
                "MemberId must be 1 to 36 characters.",
            );
        }
        if hb.epoch < -1 {
            return refuse(
                ErrorCode::INVALID_REQUEST.0,
                format!("MemberEpoch is {}, it must be >= -1.", hb.epoch),
            );
        }
        if hb.rack == Some("") {
            return refuse(ErrorCode::INVALID_REQUEST.0, "RackId can't be empty.");
        }
        if hb.epoch == 0 && hb.subscribed.is_none() {
            return refuse(
                ErrorCode::INVALID_REQUEST.0,
                "SubscribedTopicNames must be set in first request.",
            );
        }
        self.expire_members(cfg, now);
        let interval = self.settings(cfg, hb.group).heartbeat_interval_ms;
        let subscribed: Option<BTreeSet<String>> = hb.subscribed.map(|v| v.into_iter().collect());
        let mut joined = false;
        if hb.epoch == 0 {
            let group = self.groups.entry(hb.group.to_string()).or_default();
            if !group.members.contains_key(hb.member) {
                if group.members.len() >= cfg.max_group_size {
                    return refuse(
                        ErrorCode::GROUP_MAX_SIZE_REACHED.0,
                        format!(
                            "The share group has reached its maximum size of {}.",
                            cfg.max_group_size
                        ),
                    );
                }
                group.members.insert(
                    hb.member.to_string(),
                    Member {
                        epoch: 0,
                        previous_epoch: 0,
                        subscribed: BTreeSet::new(),
                        rack: None,
                        client_id: String::new(),
                        client_host: String::new(),
                        assigned: Assignment::new(),
                        last_seen: now,
                    },
                );
                group.epoch += 1;
            }
            joined = true;
        } else {
            let Some(group) = self.groups.get_mut(hb.group) else {
                return refuse(
                    ErrorCode::GROUP_ID_NOT_FOUND.0,
                    format!("Group {} not found.", hb.group),
                );
            };
            let Some(member) = group.members.get(hb.member) else {
                return refuse(
                    ErrorCode::UNKNOWN_MEMBER_ID.0,
                    format!(
                        "Member {} is not a member of group {}.",
                        hb.member, hb.group
                    ),
                );
            };
            if hb.epoch == -1 {
                group.members.remove(hb.member);
                group.epoch += 1;
                self.reassign(cfg, hb.group);
                return HeartbeatAnswer {
                    member_epoch: -1,
                    heartbeat_interval_ms: interval,
                    ..HeartbeatAnswer::default()
                };
            }
            if hb.epoch != member.epoch && hb.epoch != member.previous_epoch {
                return refuse(
                    ErrorCode::FENCED_MEMBER_EPOCH.0,
                    format!(
                        "The share group member has a member epoch ({}) that does not match the expected {}.",
                        hb.epoch, member.epoch
                    ),
                );
            }
        }
        let Some(group) = self.groups.get_mut(hb.group) else {
            return refuse(ErrorCode::GROUP_ID_NOT_FOUND.0, "group vanished");
        };
        let Some(member) = group.members.get_mut(hb.member) else {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID.0, "member vanished");
        };
        member.last_seen = now;
        member.client_id = hb.client_id.to_string();
        member.client_host = hb.client_host.to_string();
        if let Some(r) = hb.rack {
            member.rack = Some(r.to_string());
        }
        if let Some(s) = subscribed {
            if s != member.subscribed {
                member.subscribed = s;
                group.epoch += 1;
            }
        }
        self.reassign(cfg, hb.group);
        let Some(group) = self.groups.get_mut(hb.group) else {
            return refuse(ErrorCode::GROUP_ID_NOT_FOUND.0, "group vanished");
        };
        let target = group.target.get(hb.member).cloned().unwrap_or_default();
        let assignment_epoch = group.assignment_epoch;
        let Some(member) = group.members.get_mut(hb.member) else {
            return refuse(ErrorCode::UNKNOWN_MEMBER_ID.0, "member vanished");
        };
        let changed = member.assigned != target;
        if member.epoch != assignment_epoch {
            member.previous_epoch = member.epoch;
            member.epoch = assignment_epoch;
        }
        member.assigned = target.clone();
        HeartbeatAnswer {
            error: ErrorCode::NONE.0,
            message: None,
            member_epoch: member.epoch,
            heartbeat_interval_ms: interval,
            assignment: (changed || joined).then_some(target),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(a: &BTreeMap<String, Assignment>) -> (Vec<usize>, BTreeMap<(Uuid, i32), usize>) {
        let mut loads: Vec<usize> = a
            .values()
            .map(|x| x.values().map(BTreeSet::len).sum())
            .collect();
        loads.sort_unstable();
        let mut per: BTreeMap<(Uuid, i32), usize> = BTreeMap::new();
        for x in a.values() {
            for (t, ps) in x {
                for p in ps {
                    *per.entry((*t, *p)).or_default() += 1;
                }
            }
        }
        (loads, per)
    }

    #[test]
    fn assignment_follows_kafka_4_2_counts() {
        let t = Uuid::from_u128(7);
        let parts = |n: i32| (0..n).map(|p| (t, p)).collect::<Vec<_>>();
        // 5 members, 2 partitions: ceil(5/2) = 3 members per partition, loads 1 or 2.
        let a = assign(&["a", "b", "c", "d", "e"], &parts(2));
        let (loads, per) = counts(&a);
        assert_eq!(per.values().copied().collect::<Vec<_>>(), [3, 3]);
        assert_eq!(loads, [1, 1, 1, 1, 2]);
        // 2 members, 5 partitions: one member each, loads 2 and 3.
        let a = assign(&["a", "b"], &parts(5));
        let (loads, per) = counts(&a);
        assert!(per.values().all(|n| *n == 1));
        assert_eq!(loads, [2, 3]);
        // 64 members, 1 partition: everyone shares it.
        let names: Vec<String> = (0..64).map(|i| format!("m{i:02}")).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let (loads, per) = counts(&assign(&refs, &parts(1)));
        assert_eq!(per.values().copied().collect::<Vec<_>>(), [64]);
        assert!(loads.iter().all(|l| *l == 1));
    }
}
