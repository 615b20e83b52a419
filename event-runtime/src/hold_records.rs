//! The record a participant keeps of each order it heard of: its
//! [`Phase`] (spelt the participant's way, [`PhaseNames`]), why, until
//! when an undecided hold may stay, and what it holds; and the records one
//! batch reads and changes ([`HoldRecords`]). The protocol's rules over
//! them are [`crate::participant`]'s; their table's queries
//! [`crate::hold_table`]'s.

use chrono::{DateTime, Utc};
use events::OrderId;

use crate::handler::{Changes, Tracked};

/// Where an order's hold stands: the one state of every participant's
/// record. Each participant spells the phases its own way in its table and
/// its API ([`PhaseNames`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// The order's resource is held.
    Held,
    /// The order was refused; nothing is held.
    Refused,
    /// The hold was given back, or the order was released before it was
    /// placed (a tombstone).
    Released,
    /// The finishing event took the resource for good.
    Finished,
}

/// How a participant spells each [`Phase`], stored and shown: inventory's
/// stock is `RESERVED`, `REJECTED`, `RELEASED` or `COMMITTED`, customer-svc's
/// credit the same but `SETTLED`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PhaseNames {
    /// [`Phase::Held`].
    pub held: &'static str,
    /// [`Phase::Refused`].
    pub refused: &'static str,
    /// [`Phase::Released`].
    pub released: &'static str,
    /// [`Phase::Finished`].
    pub finished: &'static str,
}

impl PhaseNames {
    /// The name of `phase`.
    pub fn name(&self, phase: Phase) -> &'static str {
        match phase {
            Phase::Held => self.held,
            Phase::Refused => self.refused,
            Phase::Released => self.released,
            Phase::Finished => self.finished,
        }
    }

    /// The phase named `name`; `None` for a name of no phase.
    pub fn parse(&self, name: &str) -> Option<Phase> {
        [
            Phase::Held,
            Phase::Refused,
            Phase::Released,
            Phase::Finished,
        ]
        .into_iter()
        .find(|&phase| self.name(phase) == name)
    }
}

/// One order's record at a participant: its phase, why it is there, until
/// when an undecided hold may stay, and what it holds (`H`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRecord<H> {
    /// The order.
    pub order_id: OrderId,
    /// Where it stands.
    pub phase: Phase,
    /// Why it was refused, or released by the participant itself.
    pub reason: Option<String>,
    /// The order's deadline while the record holds and the order is
    /// undecided; `None` otherwise.
    pub deadline_at: Option<DateTime<Utc>>,
    /// The first decision.
    pub created_at: DateTime<Utc>,
    /// The last change.
    pub updated_at: DateTime<Utc>,
    /// What it holds, or held.
    pub held: H,
}

/// The records one batch read, and which it changed or added, at the
/// batch's time.
#[derive(Debug)]
pub struct HoldRecords<H> {
    records: Tracked<OrderId, HoldRecord<H>>,
    now: DateTime<Utc>,
}

impl<H> HoldRecords<H> {
    /// The records as read, for a batch at `now`.
    pub fn loaded(records: impl IntoIterator<Item = HoldRecord<H>>, now: DateTime<Utc>) -> Self {
        Self {
            records: Tracked::loaded(records.into_iter().map(|r| (r.order_id, r))),
            now,
        }
    }

    /// The batch's time.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// `order_id`'s record.
    pub fn get(&self, order_id: OrderId) -> Option<&HoldRecord<H>> {
        self.records.get(order_id)
    }

    /// `order_id`'s record, to change.
    pub fn get_mut(&mut self, order_id: OrderId) -> Option<&mut HoldRecord<H>> {
        self.records.get_mut(order_id)
    }

    /// Records the first decision about `order_id`, made now.
    pub fn decide(
        &mut self,
        order_id: OrderId,
        phase: Phase,
        reason: Option<String>,
        held: H,
        deadline_at: Option<DateTime<Utc>>,
    ) {
        let record = HoldRecord {
            order_id,
            phase,
            reason,
            deadline_at,
            created_at: self.now,
            updated_at: self.now,
            held,
        };
        self.records.add(order_id, record);
    }

    /// What the batch added and changed, each stamped with its time.
    pub fn into_changes(self) -> Changes<OrderId, HoldRecord<H>> {
        let now = self.now;
        let mut changes = self.records.into_changes();
        for (_, record) in changes.added.iter_mut().chain(changes.changed.iter_mut()) {
            record.updated_at = now;
        }
        changes
    }
}
