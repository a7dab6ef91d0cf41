//! The metrics of `neo_peer::telemetry`, read back through a Prometheus
//! recorder installed in this process: a node and a client (both peer
//! managers) over loopback, a header sync between them, a failed
//! handshake and a ban.

use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;

use metrics_exporter_prometheus::PrometheusBuilder;
use neo_peer::book::{AddressBook, BookConfig};
use neo_peer::chain::{ChainServer, N3Chain, Synthetic};
use neo_peer::executor::SmolGlobal;
use neo_peer::manager::sync::{SyncOptions, sync_n3};
use neo_peer::manager::{ManagerConfig, PeerManager};
use neo_peer::peer::{Direction, DisconnectReason, IgnoreAll, LocalConfig, Peer, PeerError};
use neo_peer::protocol::{N3, Protocol};
use neo_peer::telemetry::{METRICS, MetricKind};
use neo_peer::wire::n3::{MAINNET_MAGIC, PRIVNET_MAGIC};

const BLOCKS: u32 = 3000;

fn book() -> AddressBook {
    AddressBook::in_memory(BookConfig::new(N3::NAME, PRIVNET_MAGIC))
}

/// The value of one series (`name{labels}` as rendered), if present.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn a_sync_between_managers_records_the_documented_metrics() {
    let handle = PrometheusBuilder::new().install_recorder().unwrap();
    neo_peer::telemetry::describe();
    smol::block_on(async {
        let chain = Arc::new(N3Chain::synthetic(&Synthetic {
            blocks: BLOCKS,
            txs_per_block: 0,
            seed: 3,
            with_bodies: false,
        }));
        let mut local = LocalConfig::new(PRIVNET_MAGIC);
        local.identity.current_height = Arc::new(|| BLOCKS);
        let config = ManagerConfig::new(local);
        let node =
            PeerManager::<N3>::new(config, book(), ChainServer::new(chain), SmolGlobal).unwrap();
        let addr = node
            .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();

        // A peer of another network: no handshake, on either side.
        let conn = smol::Async::<TcpStream>::connect(addr).await.unwrap();
        let stranger: Peer<N3> = Peer::new(
            conn,
            Direction::Outbound,
            LocalConfig::new(MAINNET_MAGIC),
            IgnoreAll,
            SmolGlobal,
        );
        let failed = stranger.run().await.unwrap_err();
        assert!(
            matches!(
                failed,
                PeerError::Disconnected(DisconnectReason::Handshake(_))
            ),
            "{failed}"
        );

        // A client syncs the whole chain, then bans the node.
        let client = PeerManager::<N3>::new(
            ManagerConfig::new(LocalConfig::new(PRIVNET_MAGIC)),
            book(),
            IgnoreAll,
            SmolGlobal,
        )
        .unwrap();
        let peer = client.connect(addr).await.unwrap();
        let synced = sync_n3(&client, 0, &SyncOptions::default(), |_| {}, |_, _| {})
            .await
            .unwrap();
        assert_eq!(synced.count, u64::from(BLOCKS) + 1);
        let live = handle.render();
        assert_eq!(
            value(&live, "neo_peer_peers_connected{direction=\"outbound\"}"),
            Some(1.0),
            "{live}"
        );
        assert!(client.report(peer.id(), 100, "test"));
        // Shutdown waits for every task of the client: its peer's end is counted.
        client.shutdown().await;
        let text = handle.render();
        let get = |series: &str| value(&text, series);

        assert_eq!(
            get("neo_peer_peers_connected{direction=\"outbound\"}"),
            Some(0.0)
        );
        assert_eq!(
            get("neo_peer_handshakes_completed_total{direction=\"outbound\"}"),
            Some(1.0)
        );
        assert_eq!(
            get("neo_peer_handshakes_completed_total{direction=\"inbound\"}"),
            Some(1.0)
        );
        assert_eq!(
            get("neo_peer_handshake_duration_seconds_count{direction=\"outbound\"}"),
            Some(1.0)
        );
        for direction in ["inbound", "outbound"] {
            let failed = format!(
                "neo_peer_handshakes_failed_total{{direction=\"{direction}\",reason=\"wrong_network\"}}"
            );
            assert_eq!(get(&failed), Some(1.0), "{text}");
        }
        assert_eq!(
            get("neo_peer_disconnects_total{direction=\"outbound\",reason=\"misbehaviour\"}"),
            Some(1.0),
            "{text}"
        );
        assert_eq!(get("neo_peer_bans_total"), Some(1.0));
        assert_eq!(get("neo_peer_misbehaviour_points_total"), Some(100.0));
        let book: Option<f64> = ["new", "tried", "kept"]
            .iter()
            .map(|table| get(&format!("neo_peer_book_addresses{{table=\"{table}\"}}")))
            .sum();
        assert_eq!(book, Some(1.0), "{text}");
        let headers = f64::from(BLOCKS + 1);
        assert_eq!(get("neo_peer_sync_headers"), Some(headers));
        assert_eq!(get("neo_peer_sync_target_headers"), Some(headers));
        assert_eq!(
            get("neo_peer_request_duration_seconds_count{request=\"getheaders\"}"),
            Some(2.0),
            "{text}"
        );
        assert_eq!(
            get("neo_peer_received_messages_total{command=\"headers\"}"),
            Some(2.0)
        );
        assert_eq!(
            get("neo_peer_sent_messages_total{command=\"headers\"}"),
            Some(2.0)
        );
        assert_eq!(
            get("neo_peer_handler_duration_seconds_count{command=\"getheaders\"}"),
            Some(2.0)
        );

        // Every metric seen here is described, with its kind.
        for m in METRICS.iter().filter(|m| text.contains(m.name)) {
            let kind = match m.kind {
                MetricKind::Counter => "counter",
                MetricKind::Gauge => "gauge",
                // Without buckets the recorder shows distributions as summaries.
                MetricKind::Histogram => "summary",
            };
            assert!(
                text.contains(&format!("# TYPE {} {kind}", m.name)),
                "{}",
                m.name
            );
            assert!(text.contains(&format!("# HELP {} {}", m.name, m.help)));
        }
        node.shutdown().await;
    });
}
