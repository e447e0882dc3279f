//! One handler per Kafka API, each in a file named by its API key (as franz-go's kfake does), so
//! protocol coverage is visible from `ls`.

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::*;

use crate::server::{decode_body, encode_response, ConnCtx, ProtocolError, Reply, Shared};
use sharecheck_client::offsets::DescribeOffsetsRequest;
use sharecheck_client::v2::{
    AcquireMode, ShareAcknowledgeV2Request, ShareAcknowledgeV2Response, ShareFetchV2Request,
    ShareFetchV2Response,
};

pub mod session;

#[path = "91_alter_share_group_offsets.rs"]
pub mod alter_share_group_offsets;
#[path = "18_api_versions.rs"]
pub mod api_versions;
#[path = "37_create_partitions.rs"]
pub mod create_partitions;
#[path = "19_create_topics.rs"]
pub mod create_topics;
#[path = "42_delete_groups.rs"]
pub mod delete_groups;
#[path = "92_delete_share_group_offsets.rs"]
pub mod delete_share_group_offsets;
#[path = "20_delete_topics.rs"]
pub mod delete_topics;
#[path = "60_describe_cluster.rs"]
pub mod describe_cluster;
#[path = "32_describe_configs.rs"]
pub mod describe_configs;
#[path = "90_describe_share_group_offsets.rs"]
pub mod describe_share_group_offsets;
#[path = "01_fetch.rs"]
pub mod fetch;
#[path = "10_find_coordinator.rs"]
pub mod find_coordinator;
#[path = "44_incremental_alter_configs.rs"]
pub mod incremental_alter_configs;
#[path = "22_init_producer_id.rs"]
pub mod init_producer_id;
#[path = "16_list_groups.rs"]
pub mod list_groups;
#[path = "02_list_offsets.rs"]
pub mod list_offsets;
#[path = "03_metadata.rs"]
pub mod metadata;
#[path = "00_produce.rs"]
pub mod produce;
#[path = "79_share_acknowledge.rs"]
pub mod share_acknowledge;
#[path = "78_share_fetch.rs"]
pub mod share_fetch;
#[path = "77_share_group_describe.rs"]
pub mod share_group_describe;
#[path = "76_share_group_heartbeat.rs"]
pub mod share_group_heartbeat;

/// The APIs served, with the versions advertised: every version kafka-protocol 0.18 implements
/// (Kafka 4.1 schemas), ShareFetch/ShareAcknowledge v2 (Kafka 4.2's RENEW), which the client
/// crate writes on top of kafka-protocol's v1, and DescribeShareGroupOffsets v1 (`Lag`), which it
/// writes itself.
pub const SERVED: [ApiKey; 22] = [
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::FindCoordinator,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::InitProducerId,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::ShareGroupHeartbeat,
    ApiKey::ShareGroupDescribe,
    ApiKey::ShareFetch,
    ApiKey::ShareAcknowledge,
    ApiKey::DescribeShareGroupOffsets,
    ApiKey::AlterShareGroupOffsets,
    ApiKey::DeleteShareGroupOffsets,
    ApiKey::DeleteGroups,
    ApiKey::ListGroups,
];

/// The (min, max) version of `key` this broker serves, or `None`. ShareFetch and ShareAcknowledge
/// go to v2 (`sharecheck_client::v2`, beyond kafka-protocol 0.18).
pub fn served(key: ApiKey) -> Option<(i16, i16)> {
    SERVED.contains(&key).then(|| match key {
        ApiKey::ShareFetch | ApiKey::ShareAcknowledge => (1, sharecheck_client::v2::V2),
        ApiKey::DescribeShareGroupOffsets => (0, sharecheck_client::offsets::LAG_VERSION),
        _ => {
            let v = key.valid_versions();
            (v.min, v.max)
        }
    })
}

macro_rules! sync_api {
    ($module:ident, $req:ty, $shared:expr, $ctx:expr, $version:expr, $header:expr, $body:expr) => {{
        let req: $req = decode_body(&mut $body, $version)?;
        let resp = $module::handle($shared, $ctx, &$header, $version, req);
        Ok(Reply::Send(encode_response(
            &resp,
            $version,
            $header.correlation_id,
        )?))
    }};
}

/// Decodes the body of a request whose header was read and whose body passed the guard, runs its
/// handler and encodes the answer.
pub async fn serve(
    shared: &Arc<Shared>,
    ctx: &ConnCtx,
    key: ApiKey,
    version: i16,
    header: RequestHeader,
    mut body: Bytes,
) -> Result<Reply, ProtocolError> {
    match key {
        ApiKey::Produce => {
            let req: ProduceRequest = decode_body(&mut body, version)?;
            match produce::handle(shared, ctx, &header, version, req) {
                Some(resp) => Ok(Reply::Send(encode_response(
                    &resp,
                    version,
                    header.correlation_id,
                )?)),
                None => Ok(Reply::Nothing),
            }
        }
        ApiKey::Fetch => {
            let req: FetchRequest = decode_body(&mut body, version)?;
            match fetch::handle(shared, ctx, version, req).await {
                Some(resp) => Ok(Reply::Send(encode_response(
                    &resp,
                    version,
                    header.correlation_id,
                )?)),
                None => Err(ProtocolError("connection ended during a Fetch".to_string())),
            }
        }
        ApiKey::ListOffsets => {
            sync_api!(
                list_offsets,
                ListOffsetsRequest,
                shared,
                ctx,
                version,
                header,
                body
            )
        }
        ApiKey::Metadata => {
            sync_api!(
                metadata,
                MetadataRequest,
                shared,
                ctx,
                version,
                header,
                body
            )
        }
        ApiKey::FindCoordinator => sync_api!(
            find_coordinator,
            FindCoordinatorRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::ApiVersions => {
            sync_api!(
                api_versions,
                ApiVersionsRequest,
                shared,
                ctx,
                version,
                header,
                body
            )
        }
        ApiKey::CreateTopics => {
            sync_api!(
                create_topics,
                CreateTopicsRequest,
                shared,
                ctx,
                version,
                header,
                body
            )
        }
        ApiKey::CreatePartitions => sync_api!(
            create_partitions,
            CreatePartitionsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::DeleteTopics => {
            sync_api!(
                delete_topics,
                DeleteTopicsRequest,
                shared,
                ctx,
                version,
                header,
                body
            )
        }
        ApiKey::InitProducerId => sync_api!(
            init_producer_id,
            InitProducerIdRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::DescribeConfigs => sync_api!(
            describe_configs,
            DescribeConfigsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::IncrementalAlterConfigs => sync_api!(
            incremental_alter_configs,
            IncrementalAlterConfigsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::DescribeCluster => sync_api!(
            describe_cluster,
            DescribeClusterRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::ShareGroupHeartbeat => sync_api!(
            share_group_heartbeat,
            ShareGroupHeartbeatRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::ShareGroupDescribe => sync_api!(
            share_group_describe,
            ShareGroupDescribeRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::ShareFetch => {
            let req: ShareFetchV2Request = decode_body(&mut body, version)?;
            let record_limit = req.acquire_mode == AcquireMode::RecordLimit;
            match share_fetch::handle(shared, ctx, version, req.v1, req.is_renew_ack, record_limit)
                .await
            {
                Some(resp) => Ok(Reply::Send(encode_response(
                    &ShareFetchV2Response(resp),
                    version,
                    header.correlation_id,
                )?)),
                None => Err(ProtocolError(
                    "connection ended during a ShareFetch".to_string(),
                )),
            }
        }
        ApiKey::ShareAcknowledge => {
            let req: ShareAcknowledgeV2Request = decode_body(&mut body, version)?;
            let (resp, lock_ms) =
                share_acknowledge::handle(shared, ctx, version, req.v1, req.is_renew_ack);
            let resp = ShareAcknowledgeV2Response {
                v1: resp,
                acquisition_lock_timeout_ms: lock_ms,
            };
            Ok(Reply::Send(encode_response(
                &resp,
                version,
                header.correlation_id,
            )?))
        }
        ApiKey::DescribeShareGroupOffsets => sync_api!(
            describe_share_group_offsets,
            DescribeOffsetsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::AlterShareGroupOffsets => sync_api!(
            alter_share_group_offsets,
            AlterShareGroupOffsetsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::DeleteShareGroupOffsets => sync_api!(
            delete_share_group_offsets,
            DeleteShareGroupOffsetsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::DeleteGroups => sync_api!(
            delete_groups,
            DeleteGroupsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        ApiKey::ListGroups => sync_api!(
            list_groups,
            ListGroupsRequest,
            shared,
            ctx,
            version,
            header,
            body
        ),
        other => Err(ProtocolError(format!("API {other:?} is not served"))),
    }
}

/// Helpers shared by handlers.
pub mod util {
    use kafka_protocol::protocol::StrBytes;

    /// An owned `StrBytes`.
    pub fn s(v: impl Into<String>) -> StrBytes {
        StrBytes::from_string(v.into())
    }
}
