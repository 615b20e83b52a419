//! What must hold once the system is quiet, whatever failed: read from the
//! services' databases, their audits and the broker.

use std::collections::{BTreeMap, BTreeSet};

use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::Value;
use uuid::Uuid;

use super::cluster::{Service, Target};

async fn rows(db: &DatabaseConnection, sql: &str) -> anyhow::Result<Vec<sea_orm::QueryResult>> {
    Ok(db
        .query_all_raw(Statement::from_string(db.get_database_backend(), sql))
        .await?)
}

/// The state the checks read.
pub struct Snapshot {
    orders: BTreeMap<Uuid, (String, Uuid, i64)>,
    order_lines: Vec<(Uuid, Uuid, i64)>,
    decisions_in_timeline: BTreeMap<(Uuid, String), i64>,
    stock_reserved: BTreeMap<Uuid, i64>,
    held_stock: BTreeMap<Uuid, Vec<(Uuid, i64)>>,
    credit_reserved: BTreeMap<Uuid, i64>,
    held_credit: BTreeMap<Uuid, (Uuid, i64)>,
    pending_outbox: i64,
    lag: i64,
}

impl Snapshot {
    /// Reads it.
    ///
    /// # Errors
    /// When a database or the broker cannot be read.
    pub async fn read(target: &Target) -> anyhow::Result<Self> {
        let order_db = Database::connect(target.database(Service::Order)).await?;
        let inventory_db = Database::connect(target.database(Service::Inventory)).await?;
        let customer_db = Database::connect(target.database(Service::Customer)).await?;
        let mut snapshot = Self {
            orders: BTreeMap::new(),
            order_lines: Vec::new(),
            decisions_in_timeline: BTreeMap::new(),
            stock_reserved: BTreeMap::new(),
            held_stock: BTreeMap::new(),
            credit_reserved: BTreeMap::new(),
            held_credit: BTreeMap::new(),
            pending_outbox: 0,
            lag: 0,
        };
        for row in rows(
            &order_db,
            "SELECT id, status, customer_id, total_minor FROM orders",
        )
        .await?
        {
            snapshot.orders.insert(
                row.try_get("", "id")?,
                (
                    row.try_get("", "status")?,
                    row.try_get("", "customer_id")?,
                    row.try_get("", "total_minor")?,
                ),
            );
        }
        for row in rows(
            &order_db,
            "SELECT order_id, product_id, quantity FROM order_lines",
        )
        .await?
        {
            snapshot.order_lines.push((
                row.try_get("", "order_id")?,
                row.try_get("", "product_id")?,
                row.try_get("", "quantity")?,
            ));
        }
        for row in rows(
            &order_db,
            "SELECT order_id, event_type, COUNT(*) AS n FROM order_events \
             WHERE event_type IN ('OrderConfirmed', 'OrderRejected', 'OrderCancelled') \
             GROUP BY order_id, event_type",
        )
        .await?
        {
            snapshot.decisions_in_timeline.insert(
                (row.try_get("", "order_id")?, row.try_get("", "event_type")?),
                row.try_get("", "n")?,
            );
        }
        for row in rows(&inventory_db, "SELECT id, reserved FROM products").await? {
            snapshot
                .stock_reserved
                .insert(row.try_get("", "id")?, row.try_get("", "reserved")?);
        }
        for row in rows(
            &inventory_db,
            "SELECT l.order_id, l.product_id, l.quantity FROM reservation_lines l \
             JOIN reservations r ON r.order_id = l.order_id WHERE r.state = 'RESERVED'",
        )
        .await?
        {
            snapshot
                .held_stock
                .entry(row.try_get("", "order_id")?)
                .or_default()
                .push((row.try_get("", "product_id")?, row.try_get("", "quantity")?));
        }
        for row in rows(
            &customer_db,
            "SELECT id, credit_reserved_minor FROM customers",
        )
        .await?
        {
            snapshot.credit_reserved.insert(
                row.try_get("", "id")?,
                row.try_get("", "credit_reserved_minor")?,
            );
        }
        for row in rows(
            &customer_db,
            "SELECT order_id, customer_id, amount_minor FROM credit_reservations \
             WHERE state = 'RESERVED'",
        )
        .await?
        {
            snapshot.held_credit.insert(
                row.try_get("", "order_id")?,
                (
                    row.try_get("", "customer_id")?,
                    row.try_get("", "amount_minor")?,
                ),
            );
        }
        for db in [&order_db, &inventory_db, &customer_db] {
            let pending = rows(
                db,
                "SELECT COUNT(*) AS n FROM outbox_messages WHERE published_at IS NULL",
            )
            .await?;
            snapshot.pending_outbox += pending[0].try_get::<i64>("", "n")?;
        }
        let connection = target.connection.clone();
        let report =
            tokio::task::spawn_blocking(move || crate::ops::topics::report(&connection)).await??;
        snapshot.lag = report.lag.iter().map(|l| l.lag.max(0)).sum();
        for db in [order_db, inventory_db, customer_db] {
            db.close().await?;
        }
        Ok(snapshot)
    }

    /// Orders by status, e.g. `CONFIRMED 270, REJECTED 30`.
    pub fn statuses(&self) -> String {
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for (status, _, _) in self.orders.values() {
            *counts.entry(status.as_str()).or_default() += 1;
        }
        counts
            .iter()
            .map(|(status, n)| format!("{status} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Whether the system is quiet: no order pending, every outbox
    /// drained, every group at the end of its partitions.
    pub fn quiet(&self) -> bool {
        self.pending_outbox == 0
            && self.lag == 0
            && self
                .orders
                .values()
                .all(|(status, _, _)| status != "PENDING")
    }

    /// Every rule the system broke, in words (empty when all hold).
    /// `accepted` are the orders the load was answered 202 for.
    pub fn violations(&self, accepted: &BTreeSet<Uuid>) -> Vec<String> {
        let mut violations = Vec::new();
        for id in accepted {
            if !self.orders.contains_key(id) {
                violations.push(format!("accepted order {id} was lost"));
            }
        }
        let confirmed: BTreeSet<Uuid> = self
            .orders
            .iter()
            .filter(|(_, (status, _, _))| status == "CONFIRMED")
            .map(|(id, _)| *id)
            .collect();
        for (id, (status, _, _)) in &self.orders {
            if !matches!(status.as_str(), "CONFIRMED" | "REJECTED" | "CANCELLED") {
                violations.push(format!("order {id} is {status}, not decided"));
            }
            let decision = match status.as_str() {
                "CONFIRMED" => "OrderConfirmed",
                "REJECTED" => "OrderRejected",
                _ => "OrderCancelled",
            };
            let recorded = self
                .decisions_in_timeline
                .get(&(*id, decision.to_owned()))
                .copied()
                .unwrap_or(0);
            if recorded != 1 {
                violations.push(format!(
                    "order {id} is {status} but its timeline records {decision} {recorded} times"
                ));
            }
            let stock = self.held_stock.contains_key(id);
            let credit = self.held_credit.contains_key(id);
            let holds = confirmed.contains(id);
            if stock != holds {
                violations.push(format!("order {id} is {status}; stock held: {stock}"));
            }
            if credit != holds {
                violations.push(format!("order {id} is {status}; credit held: {credit}"));
            }
        }
        for id in self.held_stock.keys().chain(self.held_credit.keys()) {
            if !self.orders.contains_key(id) {
                violations.push(format!("stock or credit held for unknown order {id}"));
            }
        }
        // Applied once: what each product and customer holds is exactly
        // what the confirmed orders asked for.
        let mut wanted_stock: BTreeMap<Uuid, i64> = BTreeMap::new();
        for (order, product, quantity) in &self.order_lines {
            if confirmed.contains(order) {
                *wanted_stock.entry(*product).or_default() += quantity;
            }
        }
        for (product, reserved) in &self.stock_reserved {
            let wanted = wanted_stock.get(product).copied().unwrap_or(0);
            if *reserved != wanted {
                violations.push(format!(
                    "product {product} holds {reserved} units for orders that asked for {wanted}"
                ));
            }
        }
        let mut wanted_credit: BTreeMap<Uuid, i64> = BTreeMap::new();
        for id in &confirmed {
            let (_, customer, total) = &self.orders[id];
            *wanted_credit.entry(*customer).or_default() += total;
        }
        for (customer, reserved) in &self.credit_reserved {
            let wanted = wanted_credit.get(customer).copied().unwrap_or(0);
            if *reserved != wanted {
                violations.push(format!(
                    "customer {customer} holds {reserved} of credit for orders worth {wanted}"
                ));
            }
        }
        if self.pending_outbox != 0 {
            violations.push(format!(
                "{} outbox rows never published",
                self.pending_outbox
            ));
        }
        if self.lag != 0 {
            violations.push(format!("consumer groups lag by {} records", self.lag));
        }
        violations
    }
}

/// Whether the two audits balance.
pub async fn audits_balance(target: &Target, http: &reqwest::Client, token: &str) -> Vec<String> {
    let mut violations = Vec::new();
    for (service, path) in [
        (Service::Inventory, "/stock/audit"),
        (Service::Customer, "/credit/audit"),
    ] {
        let answer: Option<Value> = async {
            http.get(format!("{}{path}", target.url(service)))
                .bearer_auth(token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()
        }
        .await;
        if !answer.as_ref().is_some_and(|a| a["balanced"] == true) {
            violations.push(format!("{path} does not balance: {answer:?}"));
        }
    }
    violations
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One confirmed order of 2 units of one product for 500, one rejected.
    fn consistent() -> (Snapshot, BTreeSet<Uuid>, [Uuid; 4]) {
        let [confirmed, rejected, product, customer] = [1, 2, 3, 4].map(Uuid::from_u128);
        let snapshot = Snapshot {
            orders: BTreeMap::from([
                (confirmed, ("CONFIRMED".into(), customer, 500)),
                (rejected, ("REJECTED".into(), customer, 700)),
            ]),
            order_lines: vec![(confirmed, product, 2), (rejected, product, 1)],
            decisions_in_timeline: BTreeMap::from([
                ((confirmed, "OrderConfirmed".into()), 1),
                ((rejected, "OrderRejected".into()), 1),
            ]),
            stock_reserved: BTreeMap::from([(product, 2)]),
            held_stock: BTreeMap::from([(confirmed, vec![(product, 2)])]),
            credit_reserved: BTreeMap::from([(customer, 500)]),
            held_credit: BTreeMap::from([(confirmed, (customer, 500))]),
            pending_outbox: 0,
            lag: 0,
        };
        let accepted = BTreeSet::from([confirmed, rejected]);
        (snapshot, accepted, [confirmed, rejected, product, customer])
    }

    #[test]
    fn a_consistent_system_breaks_no_promise_and_each_broken_one_is_reported() {
        let (snapshot, accepted, [confirmed, rejected, product, customer]) = consistent();
        assert!(snapshot.quiet());
        assert_eq!(snapshot.violations(&accepted), Vec::<String>::new());

        let broken = |change: &dyn Fn(&mut Snapshot, &mut BTreeSet<Uuid>)| {
            let (mut snapshot, mut accepted, _) = consistent();
            change(&mut snapshot, &mut accepted);
            snapshot.violations(&accepted)
        };
        let lost = Uuid::now_v7();
        assert_eq!(
            broken(&|_, a| {
                a.insert(lost);
            })
            .len(),
            1,
            "a lost order"
        );
        assert!(
            !broken(&|s, _| {
                s.orders.get_mut(&rejected).unwrap().0 = "PENDING".into();
            })
            .is_empty(),
            "an undecided order"
        );
        assert!(
            !broken(&|s, _| {
                s.stock_reserved.insert(product, 4);
            })
            .is_empty(),
            "a reservation applied twice"
        );
        assert!(
            !broken(&|s, _| {
                s.credit_reserved.insert(customer, 1000);
            })
            .is_empty(),
            "credit reserved twice"
        );
        assert!(
            !broken(&|s, _| {
                s.held_credit.remove(&confirmed);
            })
            .is_empty(),
            "a confirmed order without credit"
        );
        assert!(
            !broken(&|s, _| {
                s.held_stock.insert(rejected, vec![(product, 1)]);
            })
            .is_empty(),
            "stock leaked to a rejected order"
        );
        assert!(
            !broken(&|s, _| {
                s.decisions_in_timeline
                    .insert((confirmed, "OrderConfirmed".into()), 2);
            })
            .is_empty(),
            "a decision recorded twice"
        );
        assert!(
            !broken(&|s, _| s.pending_outbox = 3).is_empty(),
            "an outbox not drained"
        );
        assert!(!broken(&|s, _| s.lag = 1).is_empty(), "a group behind");
    }
}
