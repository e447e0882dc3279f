//! ListGroups (16): every share group this broker coordinates (all of them: one node), as Kafka
//! lists a share group — protocol type and group type `share`, state `Empty` or `Stable`
//! (`ModernGroup.asListedGroup@4.2.1:147-153`, `ShareGroup.PROTOCOL_TYPE@4.2.1:45`). The states and
//! types filters are applied as Kafka applies them: an empty filter lists everything.

use std::time::Instant;

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse, RequestHeader};
use kafka_protocol::protocol::StrBytes;

use crate::server::{ConnCtx, Shared};

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: ListGroupsRequest,
) -> ListGroupsResponse {
    let mut st = shared.state();
    st.expire_members(&shared.config, Instant::now());
    let wanted = |filter: &[StrBytes], value: &str| {
        filter.is_empty() || filter.iter().any(|f| f.eq_ignore_ascii_case(value))
    };
    let mut names: Vec<String> = st.groups.keys().cloned().collect();
    names.sort();
    let groups = names
        .into_iter()
        .filter_map(|name| {
            let state = if st.group_has_members(&name) {
                "Stable"
            } else {
                "Empty"
            };
            (wanted(&req.states_filter, state) && wanted(&req.types_filter, "share")).then(|| {
                ListedGroup::default()
                    .with_group_id(GroupId(StrBytes::from_string(name)))
                    .with_protocol_type(StrBytes::from_static_str("share"))
                    .with_group_state(StrBytes::from_static_str(state))
                    .with_group_type(StrBytes::from_static_str("share"))
            })
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}
