//! The book's state and every rule over it, fed explicit instants (Unix
//! milliseconds) so that tests can use made-up times.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use super::tables::{BucketKey, Slot, Table, Tables};
use super::{
    AddrGroup, AddrRecord, BookConfig, Connected, GETADDR_MAX_AGE, GOSSIP_TIME_PENALTY, HORIZON,
    MAX_ANCHORS, MAX_KEPT, MAX_TRIED_COLLISIONS, REPLACEMENT, Source, TEST_WINDOW, address_group,
    duration_ms, is_dialable,
};
use crate::protocol::GossipAddr;

/// Never reached, and this many failed dials: the address is worthless.
const RETRIES: u32 = 3;
/// This many failed dials in a row, and no success for [`MIN_FAIL`]: the
/// address is worthless even if it once answered.
const MAX_FAILURES: u32 = 10;
const MIN_FAIL: Duration = Duration::from_secs(7 * 24 * 3600);
/// An address dialed this recently is never judged worthless (its dial may
/// still be under way), and an occupant of "tried" attempted this recently
/// is still being tested.
const TEST_GRACE: Duration = Duration::from_secs(60);

/// This run's dials of one address: the backoff, kept in memory only, so
/// that a restart dials every good peer at once.
#[derive(Debug, Clone, Copy)]
struct Tries {
    /// When the last dial started, or failed.
    at: u64,
    /// Failed dials in a row in this run.
    failures: u32,
}

pub(crate) struct State {
    pub(crate) config: BookConfig,
    pub(super) key: BucketKey,
    pub(crate) records: HashMap<SocketAddr, AddrRecord>,
    tables: Tables,
    /// Reached addresses whose "tried" slot is taken, waiting for the
    /// occupant to be tested (at most [`MAX_TRIED_COLLISIONS`]).
    pub(super) collisions: Vec<SocketAddr>,
    anchors: Vec<SocketAddr>,
    /// Anchors changed since the last flush.
    pub(crate) anchors_dirty: bool,
    /// This run's dials, per known address.
    run: HashMap<SocketAddr, Tries>,
    /// Changed since the last flush.
    pub(crate) dirty: HashSet<SocketAddr>,
    /// Forgotten since the last flush.
    pub(crate) removed: HashSet<SocketAddr>,
    pub(super) rng: StdRng,
}

impl State {
    pub(crate) fn new(config: BookConfig, key: BucketKey, rng: StdRng) -> Self {
        State {
            config,
            key,
            records: HashMap::new(),
            tables: Tables::new(),
            collisions: Vec::new(),
            anchors: Vec::new(),
            anchors_dirty: false,
            run: HashMap::new(),
            dirty: HashSet::new(),
            removed: HashSet::new(),
            rng,
        }
    }

    /// Takes in what a store held. Each record goes back to its stored slot
    /// when that slot is still where the key puts the address; otherwise
    /// (a file from before the tables, another key) it is placed again:
    /// reached addresses in "tried", the others in "new", manual ones kept
    /// aside; what finds no room is forgotten, unless banned (then it is
    /// kept aside). A record whose place changed is written at the next
    /// flush; with `rewrite`, every record is (the file's layout changes).
    pub(crate) fn load(
        &mut self,
        mut stored: Vec<AddrRecord>,
        anchors: Vec<SocketAddr>,
        rewrite: bool,
        now: u64,
    ) {
        // Tried first, then new, each in slot order, so that every stored
        // slot is free when its record comes.
        stored.sort_by_key(|r| {
            let rank = match r.slot.map(|s| s.table) {
                Some(Table::Tried) => 0,
                Some(Table::New) => 1,
                None => 2,
            };
            (rank, r.slot, r.addr)
        });
        for mut r in stored {
            let addr = r.addr;
            let wanted = r.slot.take();
            self.records.insert(addr, r);
            let back = wanted.is_some_and(|s| self.home_of(addr, s.table) == Some(s.bucket))
                && wanted.is_some_and(|s| self.set_slot(addr, s));
            if !back {
                self.replace_loaded(addr, now);
            }
            let moved = self.records.get(&addr).is_some_and(|r| r.slot != wanted);
            if moved || (rewrite && self.records.contains_key(&addr)) {
                self.touch(addr);
            }
        }
        self.anchors = anchors;
        self.anchors.truncate(MAX_ANCHORS);
        self.enforce_kept(now);
    }

    /// Finds a place for a loaded record whose stored slot cannot be used.
    fn replace_loaded(&mut self, addr: SocketAddr, now: u64) {
        let Some(r) = self.records.get(&addr) else {
            return;
        };
        if r.source == Source::Manual {
            return;
        }
        let reached = r.last_success_ms.is_some() && r.source != Source::Inbound;
        let placed = (reached && self.place_tried(addr)) || self.place_new(addr, now);
        let banned = self.records.get(&addr).is_some_and(|r| r.is_banned_at(now));
        if !placed && !banned {
            self.forget(addr);
        }
    }

    pub(crate) fn touch(&mut self, addr: SocketAddr) {
        self.removed.remove(&addr);
        self.dirty.insert(addr);
    }

    /// The bucket `addr` belongs in, in `table`.
    fn home_of(&self, addr: SocketAddr, table: Table) -> Option<u16> {
        let r = self.records.get(&addr)?;
        Some(match table {
            Table::Tried => self.key.tried_bucket(addr),
            Table::New => {
                let source = r
                    .learned_from
                    .map_or(address_group(addr.ip()), address_group);
                self.key.new_bucket(address_group(addr.ip()), source)
            }
        })
    }

    /// Puts `addr` (a record with no slot) in `slot`.
    fn set_slot(&mut self, addr: SocketAddr, slot: Slot) -> bool {
        let Some(r) = self.records.get_mut(&addr) else {
            return false;
        };
        if r.slot.is_some() || !self.tables.put(slot, addr) {
            return false;
        }
        r.slot = Some(slot);
        true
    }

    /// Takes `addr` out of its slot (it is then kept aside, or forgotten).
    fn unplace(&mut self, addr: SocketAddr) {
        if let Some(slot) = self.records.get_mut(&addr).and_then(|r| r.slot.take()) {
            self.tables.clear(slot);
        }
    }

    /// Drops `addr` altogether.
    pub(crate) fn forget(&mut self, addr: SocketAddr) {
        self.unplace(addr);
        if self.records.remove(&addr).is_some() {
            self.dirty.remove(&addr);
            self.removed.insert(addr);
        }
        self.run.remove(&addr);
        self.collisions.retain(|&a| a != addr);
    }

    /// Places `addr` (a record with no slot) in its "new" bucket: the first
    /// free slot from its start position, else the slot of a worthless
    /// occupant, which is forgotten. False if the bucket is full of good
    /// addresses.
    fn place_new(&mut self, addr: SocketAddr, now: u64) -> bool {
        let Some(bucket) = self.home_of(addr, Table::New) else {
            return false;
        };
        let start = self.key.start(Table::New, bucket, addr);
        if let Some(slot) = self.tables.free(Table::New, bucket, start) {
            return self.set_slot(addr, slot);
        }
        let worthless = self
            .tables
            .occupants(Table::New, bucket, start)
            .into_iter()
            .find(|(_, a)| {
                self.records
                    .get(a)
                    .is_some_and(|r| self.is_terrible(r, now))
            });
        match worthless {
            Some((slot, old)) => {
                self.forget(old);
                self.set_slot(addr, slot)
            }
            None => false,
        }
    }

    /// Places `addr` (a record with no slot) in a free slot of its "tried"
    /// bucket; false if the bucket is full.
    fn place_tried(&mut self, addr: SocketAddr) -> bool {
        let bucket = self.key.tried_bucket(addr);
        let start = self.key.start(Table::Tried, bucket, addr);
        match self.tables.free(Table::Tried, bucket, start) {
            Some(slot) => self.set_slot(addr, slot),
            None => false,
        }
    }

    /// The occupant of the slot `addr` would take first in "tried".
    pub(super) fn tried_rival(&self, addr: SocketAddr) -> Option<SocketAddr> {
        let bucket = self.key.tried_bucket(addr);
        let position = self.key.start(Table::Tried, bucket, addr);
        self.tables.get(Slot {
            table: Table::Tried,
            bucket,
            position,
        })
    }

    /// Records with no slot: manual addresses and bans of addresses the
    /// tables have no room for.
    pub(crate) fn kept(&self) -> usize {
        self.records.values().filter(|r| r.slot.is_none()).count()
    }

    /// Beyond [`MAX_KEPT`] records kept aside, forgets first those whose ban
    /// ends soonest (or has ended), manual ones last, oldest first.
    fn enforce_kept(&mut self, now: u64) {
        let kept = self.kept();
        if kept <= MAX_KEPT {
            return;
        }
        let mut order: Vec<(bool, u64, u64, SocketAddr)> = self
            .records
            .values()
            .filter(|r| r.slot.is_none())
            .map(|r| {
                let ban = r.banned_until_ms.filter(|&u| u > now).unwrap_or(0);
                (r.source == Source::Manual, ban, r.first_seen_ms, r.addr)
            })
            .collect();
        order.sort_unstable();
        for (.., addr) in order.into_iter().take(kept - MAX_KEPT) {
            self.forget(addr);
        }
    }

    /// A new record: kept aside if manual, else in "new"; false (and
    /// nothing stored) if its bucket has no room.
    fn insert(&mut self, r: AddrRecord, now: u64) -> bool {
        let addr = r.addr;
        let manual = r.source == Source::Manual;
        self.records.insert(addr, r);
        if manual {
            self.touch(addr);
            self.enforce_kept(now);
            return self.records.contains_key(&addr);
        }
        if self.place_new(addr, now) {
            self.touch(addr);
            true
        } else {
            self.records.remove(&addr);
            false
        }
    }

    pub(crate) fn add(&mut self, addr: SocketAddr, source: Source, now: u64) -> bool {
        if !is_dialable(addr) {
            return false;
        }
        if let Some(r) = self.records.get_mut(&addr) {
            if source.rank() > r.source.rank() {
                r.source = source;
                if source == Source::Manual {
                    self.unplace(addr);
                    self.collisions.retain(|&a| a != addr);
                }
                self.touch(addr);
                self.enforce_kept(now);
            }
            return false;
        }
        self.insert(AddrRecord::new(addr, source, now), now)
    }

    pub(crate) fn learn(
        &mut self,
        from: Option<SocketAddr>,
        addrs: &[GossipAddr],
        now: u64,
    ) -> usize {
        let source = from.map(|a| a.ip());
        let mut new = 0;
        let mut ignored = 0;
        for g in addrs {
            if !is_dialable(g.addr) {
                ignored += 1;
                continue;
            }
            // A node speaking of itself is believed; anyone else's claim is
            // aged by the penalty, and never reaches past now.
            let penalty = if source == Some(g.addr.ip()) {
                0
            } else {
                duration_ms(GOSSIP_TIME_PENALTY)
            };
            let seen = (u64::from(g.timestamp) * 1000)
                .min(now)
                .saturating_sub(penalty);
            match self.records.get_mut(&g.addr) {
                Some(r) => {
                    let mut changed = false;
                    if r.services == 0 && g.services != 0 {
                        r.services = g.services;
                        changed = true;
                    }
                    if r.last_success_ms.is_none() && seen > r.last_seen_ms {
                        r.last_seen_ms = seen;
                        changed = true;
                    }
                    if changed {
                        self.touch(g.addr);
                    }
                }
                None => {
                    let mut r = AddrRecord::new(g.addr, Source::Gossip, now);
                    r.services = g.services;
                    r.last_seen_ms = seen;
                    r.learned_from = source;
                    if self.insert(r, now) {
                        new += 1;
                    }
                }
            }
        }
        if ignored > 0 {
            tracing::debug!(?from, ignored, "undialable gossiped addresses ignored");
        }
        new
    }

    pub(crate) fn update(&mut self, addr: SocketAddr, f: impl FnOnce(&mut AddrRecord)) {
        match self.records.get_mut(&addr) {
            Some(r) => {
                f(r);
                self.touch(addr);
            }
            None => tracing::debug!(%addr, "not in the address book; update ignored"),
        }
    }

    pub(crate) fn attempt(&mut self, addr: SocketAddr, now: u64) {
        if !self.records.contains_key(&addr) {
            return;
        }
        self.run
            .entry(addr)
            .or_insert(Tries {
                at: now,
                failures: 0,
            })
            .at = now;
        self.update(addr, |r| r.last_attempt_ms = Some(now));
    }

    pub(crate) fn failure(&mut self, addr: SocketAddr, now: u64) {
        if !self.records.contains_key(&addr) {
            return;
        }
        let t = self.run.entry(addr).or_insert(Tries {
            at: now,
            failures: 0,
        });
        t.at = now;
        t.failures = t.failures.saturating_add(1);
        self.update(addr, |r| {
            r.failures = r.failures.saturating_add(1);
            r.last_attempt_ms = Some(now);
        });
    }

    fn store_facts(r: &mut AddrRecord, facts: &Connected, now: u64) {
        r.user_agent = Some(facts.user_agent.clone());
        r.services = facts.services;
        r.capabilities = facts.capabilities.clone();
        r.start_height = facts.start_height;
        r.last_height = r.last_height.max(facts.start_height);
        r.last_seen_ms = r.last_seen_ms.max(now);
    }

    /// A dial of ours completed the handshake: the facts are stored, the
    /// failures reset, and the address moves to "tried" (or waits for its
    /// rival there to be tested).
    pub(crate) fn success(&mut self, addr: SocketAddr, facts: &Connected, now: u64) {
        if !self.records.contains_key(&addr) {
            tracing::debug!(%addr, "not in the address book; success ignored");
            return;
        }
        if let Some(t) = self.run.get_mut(&addr) {
            t.failures = 0;
        }
        self.update(addr, |r| {
            Self::store_facts(r, facts, now);
            r.last_success_ms = Some(now);
            r.failures = 0;
        });
        self.promote(addr, now);
    }

    /// An inbound node completed the handshake: its facts are stored, but it
    /// stays where it is (nobody proved it can be dialed).
    pub(crate) fn inbound(&mut self, addr: SocketAddr, facts: &Connected, now: u64) {
        self.update(addr, |r| Self::store_facts(r, facts, now));
    }

    /// Moves a reached address to "tried": into a free slot of its bucket;
    /// when the bucket is full, it stays in "new" and the occupant of its
    /// slot is tested first (test-before-evict).
    fn promote(&mut self, addr: SocketAddr, now: u64) {
        let Some(r) = self.records.get(&addr) else {
            return;
        };
        if r.source == Source::Manual || r.slot.is_some_and(|s| s.table == Table::Tried) {
            return;
        }
        let old = r.slot;
        self.unplace(addr);
        if self.place_tried(addr) {
            self.collisions.retain(|&a| a != addr);
            self.touch(addr);
            return;
        }
        // Back where it was.
        let back = old.is_some_and(|s| self.set_slot(addr, s)) || self.place_new(addr, now);
        if !back && !self.records.get(&addr).is_some_and(|r| r.is_banned_at(now)) {
            self.forget(addr);
            return;
        }
        if !self.collisions.contains(&addr) && self.collisions.len() < MAX_TRIED_COLLISIONS {
            self.collisions.push(addr);
        }
    }

    /// Settles the "tried" collisions that can be settled now: an occupant
    /// reached within [`REPLACEMENT`] stays; one tested and not answering
    /// (attempted within [`REPLACEMENT`], more than a minute ago, no success
    /// since) gives its slot up; after [`TEST_WINDOW`] without a test the
    /// newcomer wins. A loser goes back to "new".
    pub(crate) fn resolve_collisions(&mut self, now: u64) {
        let replacement = duration_ms(REPLACEMENT);
        for addr in std::mem::take(&mut self.collisions) {
            let Some(r) = self.records.get(&addr) else {
                continue;
            };
            if r.slot.is_none_or(|s| s.table != Table::New) {
                continue;
            }
            let newcomer_success = r.last_success_ms.unwrap_or(0);
            let bucket = self.key.tried_bucket(addr);
            let start = self.key.start(Table::Tried, bucket, addr);
            if self.tables.free(Table::Tried, bucket, start).is_some() {
                // A slot came free meanwhile.
                self.promote(addr, now);
                continue;
            }
            let Some(rival) = self.tried_rival(addr) else {
                continue;
            };
            let Some(o) = self.records.get(&rival) else {
                continue;
            };
            let recent = |t: Option<u64>| t.is_some_and(|t| now.saturating_sub(t) < replacement);
            if recent(o.last_success_ms) {
                continue;
            }
            let tested = recent(o.last_attempt_ms)
                && o.last_attempt_ms
                    .is_some_and(|t| now.saturating_sub(t) > duration_ms(TEST_GRACE));
            let waited = now.saturating_sub(newcomer_success) > duration_ms(TEST_WINDOW);
            if tested || waited {
                self.swap_into_tried(addr, rival, now);
            } else {
                self.collisions.push(addr);
            }
        }
    }

    /// `addr` takes `rival`'s slot in "tried"; `rival` goes back to "new"
    /// (or is forgotten if its bucket there has no room).
    fn swap_into_tried(&mut self, addr: SocketAddr, rival: SocketAddr, now: u64) {
        let Some(slot) = self.records.get(&rival).and_then(|r| r.slot) else {
            return;
        };
        self.unplace(rival);
        self.unplace(addr);
        self.set_slot(addr, slot);
        self.touch(addr);
        tracing::debug!(%addr, %rival, "tried slot taken over after a test");
        if self.place_new(rival, now)
            || self
                .records
                .get(&rival)
                .is_some_and(|r| r.is_banned_at(now))
        {
            self.touch(rival);
        } else {
            self.forget(rival);
        }
    }

    /// The occupant of "tried" that a waiting collision needs tested, if
    /// any may be dialed now (not dialed within the last minute: a test
    /// that just ended is settled by the next resolution).
    pub(crate) fn collision_to_test(
        &mut self,
        busy: &HashSet<SocketAddr>,
        now: u64,
    ) -> Option<SocketAddr> {
        let mut waiting = self.collisions.clone();
        waiting.shuffle(&mut self.rng);
        waiting
            .into_iter()
            .filter_map(|a| self.tried_rival(a))
            .find(|&o| {
                let testable = |r: &AddrRecord| {
                    !r.is_banned_at(now)
                        && r.last_attempt_ms
                            .is_none_or(|t| now.saturating_sub(t) > duration_ms(TEST_GRACE))
                };
                !busy.contains(&o)
                    && !self.in_backoff(o, now)
                    && self.records.get(&o).is_some_and(testable)
            })
    }

    pub(crate) fn ban(&mut self, addr: SocketAddr, duration: Duration, reason: &str, now: u64) {
        let until = now.saturating_add(duration_ms(duration));
        // An unknown address is kept aside, so that the ban outlives a full
        // table.
        let r = self
            .records
            .entry(addr)
            .or_insert_with(|| AddrRecord::new(addr, Source::Inbound, now));
        if r.banned_until_ms.is_some_and(|u| u > until) {
            return;
        }
        r.banned_until_ms = Some(until);
        r.ban_reason = Some(reason.to_string());
        self.touch(addr);
        self.enforce_kept(now);
    }

    pub(crate) fn is_banned(&self, addr: SocketAddr, now: u64) -> bool {
        self.records.get(&addr).is_some_and(|r| r.is_banned_at(now))
    }

    /// Whether this run's backoff holds `addr` back: the base wait after any
    /// dial, longer after failures in a row.
    pub(crate) fn in_backoff(&self, addr: SocketAddr, now: u64) -> bool {
        self.run.get(&addr).is_some_and(|t| {
            let wait = self
                .config
                .backoff(t.failures)
                .max(self.config.backoff_base);
            now < t.at.saturating_add(duration_ms(wait))
        })
    }

    /// Worthless: not heard of for [`HORIZON`], never reached after
    /// [`RETRIES`] dials, or failing [`MAX_FAILURES`] times with no success
    /// for a week. An address dialed within the last minute is never
    /// worthless.
    pub(crate) fn is_terrible(&self, r: &AddrRecord, now: u64) -> bool {
        if r.last_attempt_ms
            .is_some_and(|t| now.saturating_sub(t) <= duration_ms(TEST_GRACE))
        {
            return false;
        }
        let seen = r.last_seen_ms.max(r.last_success_ms.unwrap_or(0));
        if now.saturating_sub(seen) > duration_ms(HORIZON) {
            return true;
        }
        match r.last_success_ms {
            None => r.failures >= RETRIES,
            Some(ok) => {
                r.failures >= MAX_FAILURES && now.saturating_sub(ok) > duration_ms(MIN_FAIL)
            }
        }
    }

    pub(crate) fn for_getaddr(&mut self, max: usize, now: u64) -> Vec<GossipAddr> {
        let oldest = now.saturating_sub(duration_ms(GETADDR_MAX_AGE));
        let mut reached = Vec::new();
        let mut heard = Vec::new();
        for r in self.records.values() {
            let seen = r.last_seen_ms.max(r.last_success_ms.unwrap_or(0));
            let ok = seen >= oldest
                && r.failures == 0
                && !r.is_banned_at(now)
                && !self.is_terrible(r, now)
                && (r.source != Source::Inbound || r.last_success_ms.is_some());
            if !ok {
                continue;
            }
            let g = GossipAddr {
                addr: r.addr,
                timestamp: u32::try_from(seen / 1000).unwrap_or(u32::MAX),
                services: r.services,
            };
            if r.last_success_ms.is_some() {
                reached.push(g);
            } else {
                heard.push(g);
            }
        }
        // What we reached ourselves first, then what we only heard of.
        reached.shuffle(&mut self.rng);
        heard.shuffle(&mut self.rng);
        reached.extend(heard);
        reached.truncate(max);
        reached
    }

    pub(crate) fn set_anchors(&mut self, addrs: &[SocketAddr], now: u64) {
        let mut anchors: Vec<SocketAddr> = Vec::new();
        for &a in addrs {
            let known = self.records.get(&a).is_some_and(|r| !r.is_banned_at(now));
            if known && !anchors.contains(&a) && anchors.len() < MAX_ANCHORS {
                anchors.push(a);
            }
        }
        if anchors != self.anchors {
            self.anchors = anchors;
            self.anchors_dirty = true;
        }
    }

    pub(crate) fn take_anchors(&mut self, now: u64) -> Vec<SocketAddr> {
        let taken = std::mem::take(&mut self.anchors);
        if !taken.is_empty() {
            self.anchors_dirty = true;
        }
        taken
            .into_iter()
            .filter(|&a| !self.is_banned(a, now))
            .collect()
    }

    pub(crate) fn anchors(&self) -> &[SocketAddr] {
        &self.anchors
    }

    /// The pool an address is chosen from when dialing, and its unit of
    /// fairness there: "tried" by address group, "new" by bucket (records
    /// kept aside: by their group).
    pub(super) fn pool(&self, r: &AddrRecord) -> (Table, Unit) {
        let group = address_group(r.addr.ip());
        match r.slot {
            Some(s) if s.table == Table::Tried => (Table::Tried, Unit::Group(group)),
            Some(s) => (Table::New, Unit::Bucket(s.bucket)),
            None if r.last_success_ms.is_some() => (Table::Tried, Unit::Group(group)),
            None => (Table::New, Unit::Group(group)),
        }
    }

    /// Addresses per table.
    pub(crate) fn table_len(&self, table: Table) -> usize {
        self.tables.len(table)
    }
}

/// A unit of fairness when choosing within a table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(super) enum Unit {
    Group(AddrGroup),
    Bucket(u16),
}
