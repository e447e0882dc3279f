//! DeleteGroups (42): remove share groups that have no members, with their configs, sessions and
//! share-group state — what a sharecheck run does with the groups it made (Kafka answers
//! GROUP_ID_NOT_FOUND for an unknown group and NON_EMPTY_GROUP while members remain).

use std::time::Instant;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse, RequestHeader};

use crate::server::{ConnCtx, Shared};

pub fn handle(
    shared: &Shared,
    _ctx: &ConnCtx,
    _header: &RequestHeader,
    _version: i16,
    req: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut st = shared.state();
    st.expire_members(&shared.config, Instant::now());
    let results = req
        .groups_names
        .into_iter()
        .map(|g| {
            let code = st.delete_group(g.0.as_str());
            DeletableGroupResult::default()
                .with_group_id(g)
                .with_error_code(code.0)
        })
        .collect();
    DeleteGroupsResponse::default().with_results(results)
}
