//! Header sync through a [`PeerManager`]: many peers, ranges fetched in
//! parallel, every header checked to link to the one before.
//!
//! - **N3** asks by index: the chain is cut into ranges of up to 2000
//!   headers, each range goes to a free peer that has all of it, and the
//!   answers are put back in order as they arrive.
//! - **Legacy** asks by hash, so the driver first learns the hashes ahead
//!   (`getblocks` returns up to 500 at a time, 32 bytes each), then asks
//!   free peers for the headers between two known hashes (`getheaders` with
//!   a stop hash), checking each header's hash against the list.
//!
//! A range whose answer fails is retried on another peer by the manager; a
//! peer whose headers do not fit is penalised. A range that finds every
//! peer high enough busy (more ranges run than the peers take at once)
//! waits for one to be free, past the manager's route timeout. At most
//! `parallel` ranges are in flight, so memory stays bounded whatever the
//! chain's length.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_io::Timer;
use futures_lite::future;
use thiserror::Error;

use super::{ManagerError, PeerManager};
use crate::peer::PeerError;
use crate::protocol::{Legacy, N3, Protocol, RequestKind};
use crate::telemetry;
use crate::wire::{UInt256, legacy, n3};

/// Why a sync stopped.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum SyncError {
    /// A range could not be fetched.
    #[error("headers from {from}: {error}")]
    Fetch {
        /// Where the range starts (N3: index; Legacy: the height after the known hash).
        from: u32,
        /// What the manager said.
        error: ManagerError,
    },
    /// Headers did not link to the chain so far.
    #[error("header {index} does not link: {why}")]
    Linkage {
        /// The header's index.
        index: u32,
        /// How.
        why: String,
    },
    /// No peer is connected.
    #[error("no peers to sync from")]
    NoPeers,
}

/// How a sync runs.
#[derive(Debug, Clone)]
pub struct SyncOptions {
    /// Ranges in flight at once (default 8).
    pub parallel: usize,
    /// Index of the last header wanted (default: the best height of the
    /// live peers when the sync starts).
    pub target: Option<u32>,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            parallel: 8,
            target: None,
        }
    }
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// Headers fetched and checked (a Legacy sync counts the start header too).
    pub count: u64,
    /// Index of the last one.
    pub tip_index: u32,
    /// Its hash.
    pub tip_hash: UInt256,
    /// How long it took.
    pub elapsed: Duration,
}

/// What the consumer of [`in_order`] says after a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Next {
    /// Go on.
    More,
    /// The chain ends here: stop making jobs, drop the results still to come.
    End,
}

/// Runs fetches on the manager's executor, `parallel` at a time, and hands
/// their results to `consume` in the order the jobs were made, until the
/// jobs run out or `consume` says the end is reached (fetches still running
/// then finish on their own, their results unread).
async fn in_order<P, J, T, Fut>(
    manager: &PeerManager<P>,
    parallel: usize,
    mut next_job: impl AsyncFnMut() -> Result<Option<J>, SyncError>,
    fetch: impl Fn(&J) -> Fut,
    mut consume: impl FnMut(J, T) -> Result<Next, SyncError>,
) -> Result<(), SyncError>
where
    P: Protocol,
    J: Send + 'static,
    T: Send + 'static,
    Fut: Future<Output = Result<T, SyncError>> + Send + 'static,
{
    let (done_tx, done_rx) = async_channel::unbounded::<(u64, Result<T, SyncError>)>();
    let mut jobs: BTreeMap<u64, J> = BTreeMap::new();
    let mut ready: BTreeMap<u64, T> = BTreeMap::new();
    let (mut made, mut consumed) = (0u64, 0u64);
    let mut exhausted = false;
    loop {
        while !exhausted && made - consumed < parallel.max(1) as u64 {
            match next_job().await? {
                Some(job) => {
                    let seq = made;
                    made += 1;
                    let work = fetch(&job);
                    jobs.insert(seq, job);
                    let tx = done_tx.clone();
                    manager.inner.spawn(async move {
                        let _ = tx.send((seq, work.await)).await;
                    });
                }
                None => exhausted = true,
            }
        }
        if consumed == made {
            return Ok(());
        }
        let Ok((seq, result)) = done_rx.recv().await else {
            return Ok(());
        };
        ready.insert(seq, result?);
        while let Some(value) = ready.remove(&consumed) {
            let Some(job) = jobs.remove(&consumed) else {
                break;
            };
            consumed += 1;
            if consume(job, value)? == Next::End {
                return Ok(());
            }
        }
    }
}

/// Most headers one N3 request returns.
const N3_BATCH: u64 = n3::MAX_HEADERS as u64;

/// Fetches the N3 headers from index `from` to the target through
/// `manager`, in parallel ranges; `on_headers` gets them in order, checked;
/// `progress` gets (headers so far, headers wanted).
///
/// The target is what the peers claim; a claim is not trusted further than
/// the peers' answers go. A range that comes back short (its peer had less
/// than it claimed, and is penalised for it) is completed from the other
/// peers; when no live peer claims the next header any more, the sync ends
/// there, at the highest header the peers really served.
pub async fn sync_n3(
    manager: &PeerManager<N3>,
    from: u32,
    options: &SyncOptions,
    mut on_headers: impl FnMut(&[n3::Header]),
    mut progress: impl FnMut(u64, u64),
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    if manager.is_empty() {
        return Err(SyncError::NoPeers);
    }
    let target = u64::from(options.target.unwrap_or_else(|| manager.best_height()));
    let from = u64::from(from);
    let mut wanted = target.saturating_sub(from) + 1;
    let mut next_start = from;
    let mut last: Option<(u32, UInt256)> = None;
    let mut have = 0u64;
    in_order(
        manager,
        options.parallel,
        async || {
            if next_start > target {
                return Ok(None);
            }
            let start = next_start;
            let end = (start + N3_BATCH - 1).min(target);
            next_start = end + 1;
            Ok(Some((start as u32, end as u32)))
        },
        |&(start, end)| {
            let manager = manager.clone();
            async move {
                fetch_n3_range(&manager, start, end)
                    .await
                    .map_err(|error| SyncError::Fetch { from: start, error })
            }
        },
        |(start, end), (headers, hashes): (Vec<n3::Header>, Vec<UInt256>)| {
            link_n3(&mut last, &headers, &hashes)?;
            have += headers.len() as u64;
            on_headers(&headers);
            let got_all = u64::from(start) + headers.len() as u64 > u64::from(end);
            if !got_all {
                // No peer has more: the chain ends at the last header served.
                wanted = have;
            }
            telemetry::sync_progress(have, wanted);
            progress(have, wanted);
            Ok(if got_all { Next::More } else { Next::End })
        },
    )
    .await?;
    let (tip_index, tip_hash) = last.ok_or(SyncError::NoPeers)?;
    Ok(SyncOutcome {
        count: have,
        tip_index,
        tip_hash,
        elapsed: started.elapsed(),
    })
}

/// The headers of heights `start..=end` and their hashes, from as many peers
/// as it takes: a peer that answers short (it had less than it claimed) is
/// followed by the next that claims the rest. Short only when no live peer
/// claims the next header.
async fn fetch_n3_range(
    manager: &PeerManager<N3>,
    start: u32,
    end: u32,
) -> Result<(Vec<n3::Header>, Vec<UInt256>), ManagerError> {
    let mut headers: Vec<n3::Header> = Vec::new();
    let mut hashes: Vec<UInt256> = Vec::new();
    loop {
        let next = u64::from(start) + headers.len() as u64;
        if next > u64::from(end) {
            return Ok((headers, hashes));
        }
        let next = next as u32;
        // Nobody claims the next header (any more): the range ends here.
        if manager.best_height() < next && !headers.is_empty() {
            return Ok((headers, hashes));
        }
        let count = (end - next + 1).min(N3_BATCH as u32);
        // A peer that has the whole range if there is one; else any that has its start.
        let min_height = end.min(manager.best_height()).max(next);
        let (more, more_hashes) = request_headers(manager, min_height, |peer| async move {
            let got = peer.get_headers_payload(next, count as i16).await?;
            check_n3_range(&got, next, count)?;
            // Hashed here, off the received bytes, in parallel.
            Ok((got.to_vec(), got.hashes().collect::<Vec<_>>()))
        })
        .await?;
        headers.extend(more);
        hashes.extend(more_hashes);
    }
}

/// A header request routed by `manager` to a peer at least `min_height`
/// high, asked again while no such peer is free but one is live: a sync
/// runs more ranges than its peers take at once, and on a slow machine the
/// ranges waiting can outlast the route timeout. It is asked again at the
/// next change among the peers (a request ending, a peer joining or
/// leaving), or after the route timeout (at least 100 ms) when none comes;
/// the peers' requests end by their own deadlines, so the wait is bounded.
/// With no live peer high enough, the manager's error is returned.
async fn request_headers<P: Protocol, T, F, Fut>(
    manager: &PeerManager<P>,
    min_height: u32,
    mut call: F,
) -> Result<T, ManagerError>
where
    F: FnMut(crate::peer::Peer<P>) -> Fut,
    Fut: Future<Output = Result<T, PeerError>>,
{
    let pause = manager
        .config()
        .route_timeout
        .max(Duration::from_millis(100));
    loop {
        let changed = manager.inner.changed.listen();
        match manager
            .request(RequestKind::Headers, min_height, &mut call)
            .await
        {
            Err(ManagerError::NoAvailablePeers { .. }) if manager.best_height() >= min_height => {
                tracing::debug!(min_height, "no peer free for headers: asking again");
                future::or(changed, async {
                    Timer::after(pause).await;
                })
                .await;
            }
            other => return other,
        }
    }
}

/// Checks that `headers` (whose hashes are `hashes`) follow `last`, the
/// height and hash of the header before them, and each other; moves `last`
/// to the final one.
fn link_n3(
    last: &mut Option<(u32, UInt256)>,
    headers: &[n3::Header],
    hashes: &[UInt256],
) -> Result<(), SyncError> {
    for (h, &own) in headers.iter().zip(hashes) {
        if let Some((index, hash)) = *last {
            if h.prev_hash != hash {
                return Err(SyncError::Linkage {
                    index: h.index,
                    why: format!("previous hash {} is not {hash} of {index}", h.prev_hash),
                });
            }
        }
        *last = Some((h.index, own));
    }
    Ok(())
}

/// The headers of one N3 answer are the first of the ones asked, in order
/// (fewer only when the peer has no more: its height was checked by the
/// peer itself, which corrects it and reports a false claim).
fn check_n3_range(headers: &n3::HeadersPayload, start: u32, count: u32) -> Result<(), PeerError> {
    if headers.is_empty() || headers.len() > count as usize {
        return Err(PeerError::UnexpectedAnswer(
            "headers not of the range asked",
        ));
    }
    let asked = (0..count).map(|i| u64::from(start) + u64::from(i));
    if !headers
        .indices()
        .map(u64::from)
        .eq(asked.take(headers.len()))
    {
        return Err(PeerError::UnexpectedAnswer(
            "headers not of the range asked",
        ));
    }
    Ok(())
}

/// One Legacy range: the headers after `after` whose hashes are `hashes`.
struct LegacyRange {
    after: UInt256,
    /// The hash after the range (zero: unknown).
    stop: UInt256,
    first_index: u32,
    hashes: Vec<UInt256>,
}

/// Fetches the Legacy headers after `start` (the hash of the header at
/// `start_index`, e.g. genesis at 0) to the target through `manager`: hash
/// lists from `getblocks`, then headers in parallel ranges between known
/// hashes. `on_headers` gets them in order, checked.
pub async fn sync_legacy(
    manager: &PeerManager<Legacy>,
    start: UInt256,
    start_index: u32,
    options: &SyncOptions,
    mut on_headers: impl FnMut(&[legacy::Header]),
    mut progress: impl FnMut(u64, u64),
) -> Result<SyncOutcome, SyncError> {
    let started = Instant::now();
    if manager.is_empty() {
        return Err(SyncError::NoPeers);
    }
    let target = options.target.unwrap_or_else(|| manager.best_height());
    let wanted = u64::from(target.saturating_sub(start_index)) + 1;
    // The skeleton: the last hash whose successors are not listed yet.
    let mut cursor = (start_index, start);
    let mut last = (start_index, start);
    let mut have = 1u64;
    in_order(
        manager,
        options.parallel,
        async || {
            let (index, hash) = cursor;
            if index >= target {
                return Ok(None);
            }
            let mut hashes = manager
                .get_block_hashes(hash, index + 1)
                .await
                .map_err(|error| SyncError::Fetch {
                    from: index + 1,
                    error,
                })?;
            let listed = hashes.len();
            hashes.truncate((target - index) as usize);
            // Nodes differ on whether `hash_stop` itself is sent: stop at the
            // hash after the range (known when the list was full) and keep
            // only the range; without a next hash, ask without a stop.
            let stop = if listed == legacy::MAX_INV_HASHES as usize && hashes.len() == listed {
                hashes.pop().unwrap_or(UInt256::ZERO)
            } else {
                UInt256::ZERO
            };
            let Some(&tip) = hashes.last() else {
                return Ok(None);
            };
            cursor = (index + hashes.len() as u32, tip);
            Ok(Some(LegacyRange {
                after: hash,
                stop,
                first_index: index + 1,
                hashes,
            }))
        },
        |range: &LegacyRange| {
            let manager = manager.clone();
            let (after, stop, first) = (range.after, range.stop, range.first_index);
            let hashes = range.hashes.clone();
            async move {
                let top = first + hashes.len() as u32 - 1;
                request_headers(&manager, top, |peer| {
                    let hashes = &hashes;
                    async move {
                        let mut headers = peer.get_headers(after, stop).await?;
                        headers.truncate(hashes.len());
                        check_legacy_range(&headers, first, hashes)?;
                        Ok(headers)
                    }
                })
                .await
                .map_err(|error| SyncError::Fetch { from: first, error })
            }
        },
        |range, headers: Vec<legacy::Header>| {
            let (index, hash) = last;
            match headers.first() {
                Some(h) if h.base.prev_hash == hash && range.first_index == index + 1 => {}
                _ => {
                    return Err(SyncError::Linkage {
                        index: index + 1,
                        why: format!("range does not follow {hash}"),
                    });
                }
            }
            if let Some(&tip) = range.hashes.last() {
                last = (index + headers.len() as u32, tip);
            }
            have += headers.len() as u64;
            on_headers(&headers);
            telemetry::sync_progress(have, wanted);
            progress(have, wanted);
            Ok(Next::More)
        },
    )
    .await?;
    Ok(SyncOutcome {
        count: have,
        tip_index: last.0,
        tip_hash: last.1,
        elapsed: started.elapsed(),
    })
}

/// The headers of one Legacy range are exactly the listed ones, in order,
/// each linking to the one before.
fn check_legacy_range(
    headers: &[legacy::Header],
    first_index: u32,
    hashes: &[UInt256],
) -> Result<(), PeerError> {
    if headers.len() != hashes.len() {
        return Err(PeerError::UnexpectedAnswer(
            "headers do not match the range",
        ));
    }
    let mut prev: Option<UInt256> = None;
    for ((h, want), index) in headers.iter().zip(hashes).zip(first_index..) {
        let hash = h.hash();
        let links = prev.is_none_or(|p| h.base.prev_hash == p);
        if hash != *want || h.base.index != index || !links {
            return Err(PeerError::UnexpectedAnswer(
                "headers do not match the range",
            ));
        }
        prev = Some(hash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::{N3Chain, Synthetic};

    #[test]
    fn n3_ranges_must_link_and_be_the_ones_asked() {
        let chain = N3Chain::synthetic(&Synthetic {
            blocks: 5,
            ..Synthetic::default()
        });
        let headers: Vec<n3::Header> = chain.headers().cloned().collect();
        let payload = n3::HeadersPayload::new(&headers[1..4]);
        check_n3_range(&payload, 1, 3).unwrap();
        check_n3_range(&payload, 1, 4).unwrap();
        assert!(check_n3_range(&payload, 1, 2).is_err(), "more than asked");
        assert!(
            check_n3_range(&payload, 2, 3).is_err(),
            "not the range asked"
        );

        // Linked in two ranges, from genesis.
        let mut last = Some((0, headers[0].hash()));
        let hashes: Vec<UInt256> = payload.hashes().collect();
        link_n3(&mut last, &payload.to_vec(), &hashes).unwrap();
        assert_eq!(last, Some((3, headers[3].hash())));
        let rest = &headers[4..];
        let rest_hashes: Vec<UInt256> = rest.iter().map(n3::Header::hash).collect();
        link_n3(&mut last, rest, &rest_hashes).unwrap();
        assert_eq!(last, Some((5, chain.tip_hash())));

        // A range that does not follow the one before is refused where it breaks.
        let mut last = Some((0, headers[0].hash()));
        let err = link_n3(&mut last, &headers[2..4], &hashes[1..]).unwrap_err();
        assert!(matches!(err, SyncError::Linkage { index: 2, .. }), "{err}");
        let mut forged = headers[2].clone();
        forged.prev_hash = UInt256([0xEE; 32]);
        let mut last = Some((1, headers[1].hash()));
        let err = link_n3(&mut last, &[forged], &[headers[2].hash()]).unwrap_err();
        assert!(err.to_string().contains("previous hash"), "{err}");
    }
}
