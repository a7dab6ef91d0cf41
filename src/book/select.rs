//! Choosing whom to dial, and whom to probe with a feeler.
//!
//! Every slot is filled the same way: "tried" or "new" with even odds (the
//! one that has a candidate when only one has), then, within the table, a
//! unit of fairness at random (an address group in "tried", a bucket in
//! "new"), then an address of that unit. Addresses that failed more often
//! weigh less (0.66 per failure, as in Bitcoin Core), and a unit weighs as
//! much as its best address. A group already connected or chosen is skipped
//! while any candidate in a fresh group is left.
//!
//! Choosing the unit before the address is what keeps a crowd small: a
//! /16 holding 500 reached addresses weighs as much in "tried" as a /16
//! holding one, and one source group can fill at most
//! [`NEW_BUCKETS_PER_SOURCE_GROUP`](super::NEW_BUCKETS_PER_SOURCE_GROUP)
//! buckets of "new", however much it gossips.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;

use rand::RngExt;

use super::state::{State, Unit};
use super::tables::Table;
use super::{AddrGroup, address_group};

/// The weight of an address that failed `failures` dials in a row.
fn chance(failures: u32) -> f64 {
    0.66f64.powi(failures.min(8) as i32)
}

/// One address that may be dialed now.
#[derive(Debug)]
struct Candidate {
    addr: SocketAddr,
    group: AddrGroup,
    table: Table,
    unit: Unit,
    chance: f64,
    /// In a slot of "new" (not kept aside).
    in_new_table: bool,
}

impl State {
    /// Every address that is not busy, banned or backing off, by address.
    fn candidates(&self, busy: &HashSet<SocketAddr>, now: u64) -> Vec<Candidate> {
        let mut out: Vec<Candidate> = self
            .records
            .values()
            .filter(|r| {
                !busy.contains(&r.addr) && !r.is_banned_at(now) && !self.in_backoff(r.addr, now)
            })
            .map(|r| {
                let (table, unit) = self.pool(r);
                Candidate {
                    addr: r.addr,
                    group: address_group(r.addr.ip()),
                    table,
                    unit,
                    chance: chance(r.failures),
                    in_new_table: r.slot.is_some_and(|s| s.table == Table::New),
                }
            })
            .collect();
        out.sort_unstable_by_key(|c| c.addr);
        out
    }

    /// A weighted draw: the index of one of `weights` (none when they are
    /// all zero or there are none).
    fn draw(&mut self, weights: &[f64]) -> Option<usize> {
        let total: f64 = weights.iter().sum();
        if weights.is_empty() || total <= 0.0 {
            return None;
        }
        let mut x = self.rng.random::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return Some(i);
            }
            x -= w;
        }
        weights.iter().rposition(|w| *w > 0.0)
    }

    /// A unit at random (weighted by its best candidate), then one of its
    /// candidates (weighted by chance), among the `allowed` ones.
    fn pick(&mut self, cands: &[Candidate], allowed: &[bool]) -> Option<usize> {
        let mut units: BTreeMap<Unit, (f64, Vec<usize>)> = BTreeMap::new();
        for (i, c) in cands.iter().enumerate().filter(|(i, _)| allowed[*i]) {
            let u = units.entry(c.unit).or_insert((0.0, Vec::new()));
            u.0 = u.0.max(c.chance);
            u.1.push(i);
        }
        let units: Vec<(f64, Vec<usize>)> = units.into_values().collect();
        let weights: Vec<f64> = units.iter().map(|u| u.0).collect();
        let members = &units.get(self.draw(&weights)?)?.1;
        let weights: Vec<f64> = members.iter().map(|&i| cands[i].chance).collect();
        members.get(self.draw(&weights)?).copied()
    }

    pub(crate) fn select_for_dial(
        &mut self,
        n: usize,
        connected: &[SocketAddr],
        now: u64,
    ) -> Vec<SocketAddr> {
        if n == 0 {
            return Vec::new();
        }
        let busy: HashSet<SocketAddr> = connected.iter().copied().collect();
        let cands = self.candidates(&busy, now);
        let mut per_group: HashMap<AddrGroup, usize> = HashMap::new();
        for a in connected {
            *per_group.entry(address_group(a.ip())).or_default() += 1;
        }
        let mut taken = vec![false; cands.len()];
        let mut picked = Vec::with_capacity(n.min(cands.len()));
        // One new group before a second address in any group: `limit` rises
        // only when no candidate in a less used group is left.
        let mut limit = 1;
        while picked.len() < n && picked.len() < cands.len() {
            let open: Vec<bool> = cands
                .iter()
                .zip(&taken)
                .map(|(c, &t)| !t && per_group.get(&c.group).copied().unwrap_or(0) < limit)
                .collect();
            let has = |table| cands.iter().zip(&open).any(|(c, &o)| o && c.table == table);
            let table = match (has(Table::Tried), has(Table::New)) {
                (false, false) => {
                    limit += 1;
                    continue;
                }
                (true, true) if self.rng.random_bool(0.5) => Table::Tried,
                (true, true) => Table::New,
                (true, false) => Table::Tried,
                (false, true) => Table::New,
            };
            let allowed: Vec<bool> = cands
                .iter()
                .zip(&open)
                .map(|(c, &o)| o && c.table == table)
                .collect();
            let Some(i) = self.pick(&cands, &allowed) else {
                break;
            };
            taken[i] = true;
            *per_group.entry(cands[i].group).or_default() += 1;
            picked.push(cands[i].addr);
        }
        picked
    }

    /// Whom a feeler should dial: the occupant of "tried" that a waiting
    /// collision needs tested, else an address of the "new" table in a group
    /// none of `connected` is in.
    pub(crate) fn select_feeler(
        &mut self,
        connected: &[SocketAddr],
        now: u64,
    ) -> Option<SocketAddr> {
        self.resolve_collisions(now);
        let busy: HashSet<SocketAddr> = connected.iter().copied().collect();
        if let Some(rival) = self.collision_to_test(&busy, now) {
            return Some(rival);
        }
        let used: HashSet<AddrGroup> = connected.iter().map(|a| address_group(a.ip())).collect();
        let cands = self.candidates(&busy, now);
        let allowed: Vec<bool> = cands
            .iter()
            .map(|c| c.in_new_table && !used.contains(&c.group))
            .collect();
        let i = self.pick(&cands, &allowed)?;
        Some(cands[i].addr)
    }
}
