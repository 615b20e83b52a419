//! How long a saga participant (inventory-svc's stock, customer-svc's
//! credit) keeps a hold that no order decision ever releases.
//!
//! [`HoldSettings`]: `OMS_HOLD_GRACE_SECS` (how long after its order's
//! deadline an undecided hold is released, `HOLD_EXPIRED`) and
//! `OMS_SAGA_DEADLINE_SECS` (the deadline of an order whose `OrderPlaced`,
//! version 1, carries none; the same variable order-svc sets its deadlines
//! by). Defaults and help: `docs/configuration.md`.
//!
//! [`HoldSweeper`] runs the expiry in each participant; the rules are
//! [`event_runtime::participant`]'s.

use std::time::Duration;

/// The participants' hold expiry settings.
#[derive(Debug, Clone, clap::Args)]
pub struct HoldSettings {
    /// Seconds after an order's deadline when a hold nobody decided is
    /// released.
    ///
    /// The release is a `StockReleased` or `CreditReleased` with reason
    /// `HOLD_EXPIRED`.
    #[arg(long, env = "OMS_HOLD_GRACE_SECS", default_value_t = 300)]
    pub hold_grace_secs: u64,
    /// Seconds after placement of an order's deadline, for OrderPlaced
    /// records (version 1) that carry none.
    #[arg(long, env = "OMS_SAGA_DEADLINE_SECS", default_value_t = 30)]
    pub saga_deadline_secs: u64,
}

impl Default for HoldSettings {
    fn default() -> Self {
        Self {
            hold_grace_secs: 300,
            saga_deadline_secs: 30,
        }
    }
}

impl HoldSettings {
    /// The grace period after an order's deadline.
    pub fn grace(&self) -> Duration {
        Duration::from_secs(self.hold_grace_secs)
    }

    /// The deadline of orders whose record names none, after placement.
    pub fn default_deadline(&self) -> Duration {
        Duration::from_secs(self.saga_deadline_secs)
    }
}

/// How often a participant's hold sweeper looks for expired holds: far
/// below the default grace of five minutes.
const HOLD_SWEEP_IDLE: Duration = Duration::from_secs(5);

impl crate::ServiceBuilder {
    /// Takes part in the order saga as `participant`: consumes the `orders`
    /// topic with the protocol's handler (consumer `saga`), and gives back
    /// the holds nobody decides (the [`HoldSweeper`]), on `clock`.
    ///
    /// # Errors
    /// When the consumer cannot be created or subscribed.
    pub fn take_part_in_saga<P: event_runtime::Participant + Clone>(
        &mut self,
        participant: P,
        holds: &HoldSettings,
        clock: &crate::Clock,
    ) -> anyhow::Result<&mut Self> {
        let topics = events::topics::subscription(self.service_name(), "saga");
        let handler =
            event_runtime::ParticipantHandler::new(participant.clone(), holds.default_deadline());
        self.consume_by_state("saga", topics, handler)?;
        let sweeper = HoldSweeper {
            participant,
            db: self.db().clone(),
            outbox: self.outbox().clone(),
            clock: clock.clone(),
            grace: holds.grace(),
            idle: HOLD_SWEEP_IDLE,
            kafka: self.kafka().clone(),
            group: self.consumer_group("saga"),
        };
        let token = self.shutdown_token();
        Ok(self.spawn("hold sweeper", sweeper.run_until_stopped(token)))
    }
}

/// Gives back the holds nobody decided ([`event_runtime::expire_holds`]),
/// in rounds: a round that finds a full batch is followed at once by the
/// next, otherwise the sweeper sleeps [`HoldSweeper::idle`] on its clock
/// (a test moves a manual clock instead of waiting). Several instances
/// share the work safely: each round locks the holds it releases and
/// checks them again under the lock. A hold expires only once the
/// participant has applied every `orders` record published before the
/// cutoff (its deadline plus the grace), so that a broker outage or a
/// lagging consumer never expires a hold whose order was decided in time.
pub struct HoldSweeper<P> {
    /// The participant whose holds expire.
    pub participant: P,
    /// The database.
    pub db: sea_orm::DatabaseConnection,
    /// The outbox for the release events.
    pub outbox: event_runtime::Outbox,
    /// What "now" is.
    pub clock: crate::Clock,
    /// The grace period after an order's deadline.
    pub grace: Duration,
    /// The sleep between two rounds that found less than a batch.
    pub idle: Duration,
    /// The broker, asked whether the participant has seen every decision
    /// published before the cutoff.
    pub kafka: event_runtime::KafkaSettings,
    /// The participant's consumer group of the `orders` topic.
    pub group: String,
}

/// Holds released per round at most.
const BATCH: u64 = 100;

impl<P: event_runtime::Participant> HoldSweeper<P> {
    /// Sweeps until `shutdown` is cancelled.
    pub async fn run_until_stopped(self, shutdown: tokio_util::sync::CancellationToken) {
        loop {
            let wait = match self.round().await {
                Ok(Round::Released(released)) if released as u64 >= BATCH => Duration::ZERO,
                Ok(Round::Released(_)) => self.idle,
                Ok(Round::ConsumerBehind) => {
                    // Real time, not the clock's: the consumer catches up
                    // (and commits) in real time whatever the clock says.
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep(CONSUMER_RECHECK) => continue,
                    }
                }
                Err(error) => {
                    tracing::warn!(
                        error = format!("{error:#}"),
                        "hold expiry sweep failed; retrying"
                    );
                    self.idle
                }
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = self.clock.sleep(wait) => {}
            }
        }
        tracing::info!("hold sweeper stopped");
    }

    /// One round: releases up to a batch of expired holds, but only once
    /// the participant's consumer has applied every `orders` record
    /// published before the cutoff. A decision (OrderConfirmed,
    /// OrderCancelled) that order-svc published in time is then applied
    /// first; during a broker outage, or while the consumer lags, no hold
    /// expires.
    async fn round(&self) -> anyhow::Result<Round> {
        let now = self.clock.now();
        let cutoff = now - chrono::Duration::from_std(self.grace)?;
        if self
            .participant
            .expired(&self.db, cutoff, 1)
            .await?
            .is_empty()
        {
            return Ok(Round::Released(0));
        }
        let seen = event_runtime::kafka::applied_everything_before(
            &self.kafka,
            &self.group,
            events::Topic::Orders,
            cutoff,
        )
        .await?;
        if !seen {
            tracing::debug!(
                group = self.group,
                "expired holds wait: the orders consumer has not applied every record \
                 published before their cutoff yet"
            );
            return Ok(Round::ConsumerBehind);
        }
        let released = event_runtime::expire_holds(
            &self.participant,
            &self.db,
            &self.outbox,
            now,
            self.grace,
            BATCH,
        )
        .await?;
        Ok(Round::Released(released))
    }
}

/// What one sweep round did.
enum Round {
    /// Released this many holds.
    Released(usize),
    /// Expired holds wait for the consumer to apply what came before them.
    ConsumerBehind,
}

/// How soon a sweep that waits for the consumer looks again: about the
/// consumer's offset-commit interval.
const CONSUMER_RECHECK: Duration = Duration::from_secs(1);

/// The OpenAPI schema of a participant's record state: a string, one of
/// the participant's phase names (for a field's `schema_with`), described
/// by `description`.
pub fn phase_schema(
    names: &event_runtime::PhaseNames,
    description: &str,
) -> utoipa::openapi::Object {
    use event_runtime::Phase;
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
        .enum_values(Some(
            [
                Phase::Held,
                Phase::Refused,
                Phase::Released,
                Phase::Finished,
            ]
            .map(|phase| names.name(phase)),
        ))
        .build()
}

/// Which holds a participant's hold listing shows (`GET /reservations`,
/// `GET /credit/reservations`), one page at a time.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HeldQuery {
    /// Only holds at least this old: a duration (`90s`, `5m`, `2h`, `1d`)
    /// or an RFC 3339 time; default: every hold.
    pub older_than: Option<String>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<events::OrderId>,
    /// Page size, 1-100 (default 50).
    pub limit: Option<u64>,
}

impl HeldQuery {
    /// The latest creation time of a hold to show, as of `now`; `None`
    /// for every hold.
    ///
    /// # Errors
    /// 422 `INVALID_INPUT` for an `older_than` that is neither.
    pub fn made_before(
        &self,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<Option<chrono::DateTime<chrono::Utc>>, crate::Problem> {
        Ok(self
            .older_than
            .as_deref()
            .map(OlderThan::parse)
            .transpose()?
            .map(|older_than| older_than.cutoff(now)))
    }
}

/// The `older_than` of the hold listings: a duration (`90s`, `5m`, `2h`,
/// `1d`; a bare number is seconds) or an RFC 3339 instant. Parsed at the
/// edge; [`OlderThan::cutoff`] is the latest creation time it admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OlderThan {
    /// Made at least this long ago.
    Age(Duration),
    /// Made at or before this instant.
    Instant(chrono::DateTime<chrono::Utc>),
}

impl OlderThan {
    /// Parses `older_than`.
    ///
    /// # Errors
    /// 422 `INVALID_INPUT` (field `older_than`) for anything else.
    pub fn parse(raw: &str) -> Result<Self, crate::Problem> {
        let invalid = || {
            crate::Problem::invalid_input(
                "older_than",
                "older_than: a duration such as 90s, 5m, 2h or 1d, or an RFC 3339 time",
            )
        };
        let raw = raw.trim();
        if let Ok(at) = chrono::DateTime::parse_from_rfc3339(raw) {
            return Ok(Self::Instant(at.with_timezone(&chrono::Utc)));
        }
        let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
        let (number, unit) = raw.split_at(split);
        let number: u64 = number.parse().map_err(|_| invalid())?;
        let unit_secs = match unit {
            "" | "s" => 1,
            "m" => 60,
            "h" => 3600,
            "d" => 86_400,
            _ => return Err(invalid()),
        };
        number
            .checked_mul(unit_secs)
            .filter(|&secs| i64::try_from(secs).is_ok_and(|s| s < i64::MAX / 1000))
            .map(|secs| Self::Age(Duration::from_secs(secs)))
            .ok_or_else(invalid)
    }

    /// The latest creation time of a hold this old, as of `now`.
    pub fn cutoff(self, now: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
        match self {
            Self::Age(age) => chrono::Duration::from_std(age)
                .ok()
                .and_then(|age| now.checked_sub_signed(age))
                .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC),
            Self::Instant(at) => at,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_than_takes_durations_and_instants() {
        assert_eq!(
            OlderThan::parse("5m").unwrap(),
            OlderThan::Age(Duration::from_secs(300))
        );
        assert_eq!(
            OlderThan::parse("90").unwrap(),
            OlderThan::Age(Duration::from_secs(90))
        );
        assert!(matches!(
            OlderThan::parse("2026-12-01T10:00:00Z").unwrap(),
            OlderThan::Instant(_)
        ));
        for bad in ["", "5 weeks", "-1s", "1y", "99999999999999999999d"] {
            assert_eq!(
                OlderThan::parse(bad).unwrap_err().code,
                "INVALID_INPUT",
                "{bad}"
            );
        }
    }
}
