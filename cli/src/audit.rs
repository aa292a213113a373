//! `kommerce audit`: whether money, orders and stock still add up, read-only, across the
//! services' databases and the broker (ADR 0016).
//!
//! [`gather`] reads the facts (pay's payments, refunds and wallets; order's orders; item's
//! stock, ledger and reservations; every service's outbox; consumer positions against the
//! broker's watermarks; dead-letter topics); [`check`] is a pure function from those facts to
//! a [`Report`]: every invariant, with its violations named. Something still in flight (a
//! payment waiting for its order, a reservation without its order yet, an unsent outbox row)
//! counts as a violation only once it is older than the grace period.

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;
use sqlx::PgPool;
use uuid::Uuid;

/// One payment, with what pay knows of its settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentFact {
    pub id: Uuid,
    pub user_id: Uuid,
    pub method: String,
    pub status: String,
    pub amount: i64,
    pub age_secs: i64,
    /// The refund row's amount, if one exists.
    pub refund: Option<i64>,
    /// The wallet entries naming this payment: (kind, delta).
    pub wallet_entries: Vec<(String, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderFact {
    pub id: Uuid,
    pub payment_id: Uuid,
    pub status: String,
    pub total: i64,
    pub age_secs: i64,
    /// (item, qty), sorted.
    pub lines: Vec<(Uuid, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalletFact {
    pub user_id: Uuid,
    pub balance: i64,
    pub ledger_sum: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemFact {
    pub id: Uuid,
    pub stock: i64,
    /// Σ of the ledger entries folded into `stock`.
    pub applied: i64,
    /// Σ of the entries not folded yet (held by the Redis counters until then).
    pub unapplied: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReservationFact {
    /// The payment's id.
    pub id: Uuid,
    pub status: String,
    pub age_secs: i64,
    /// (item, qty), sorted.
    pub lines: Vec<(Uuid, i64)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxFact {
    pub service: String,
    pub unsent: i64,
    pub oldest_unsent_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LagFact {
    pub group: String,
    pub topic: String,
    pub lag: i64,
}

/// Everything [`check`] judges.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub payments: Vec<PaymentFact>,
    pub orders: Vec<OrderFact>,
    pub refunds_without_payment: Vec<Uuid>,
    pub wallets: Vec<WalletFact>,
    pub top_ups: i64,
    pub items: Vec<ItemFact>,
    pub reservations: Vec<ReservationFact>,
    pub outboxes: Vec<OutboxFact>,
    /// `None`: the broker was not asked.
    pub lag: Option<Vec<LagFact>>,
    /// Dead-letter topic → messages in it.
    pub dead_letters: Option<Vec<(String, i64)>>,
}

/// One invariant's verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: &'static str,
    pub what: &'static str,
    /// How many things were looked at.
    pub checked: usize,
    /// Still in flight, within the grace period.
    pub in_flight: usize,
    pub violations: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub grace_secs: i64,
    pub checks: Vec<Check>,
    /// Consumer lag per group and topic (informational), when the broker was asked.
    pub lag: Option<Vec<(String, String, i64)>>,
}

impl Report {
    pub fn violations(&self) -> usize {
        self.checks.iter().map(|c| c.violations.len()).sum()
    }

    /// A table, then every violation.
    pub fn render(&self) -> String {
        let mut out = format!(
            "{:<26} {:>8} {:>9} {:>10}  {}\n",
            "CHECK", "CHECKED", "IN FLIGHT", "VIOLATIONS", "WHAT"
        );
        for c in &self.checks {
            let _ = writeln!(
                out,
                "{:<26} {:>8} {:>9} {:>10}  {}",
                c.name,
                c.checked,
                c.in_flight,
                c.violations.len(),
                c.what
            );
        }
        if let Some(lag) = &self.lag {
            for (group, topic, n) in lag {
                let _ = writeln!(out, "lag {group} on {topic}: {n}");
            }
        }
        for c in self.checks.iter().filter(|c| !c.violations.is_empty()) {
            let _ = writeln!(out, "\n{} ({}):", c.name, c.what);
            for v in c.violations.iter().take(20) {
                let _ = writeln!(out, "  - {v}");
            }
            if c.violations.len() > 20 {
                let _ = writeln!(out, "  … and {} more", c.violations.len() - 20);
            }
        }
        let _ = writeln!(
            out,
            "\n{}",
            match self.violations() {
                0 => "consistent".to_owned(),
                n => format!("{n} violation(s)"),
            }
        );
        out
    }
}

impl Report {
    /// The report as Prometheus text: violations and in-flight counts per check, consumer lag
    /// per group and topic (what `kommerce audit --serve` exports for alerts).
    pub fn prometheus(&self) -> String {
        let mut out = String::from(
            "# HELP kommerce_audit_violations Violations of each invariant at the last audit.\n\
             # TYPE kommerce_audit_violations gauge\n",
        );
        for c in &self.checks {
            let _ = writeln!(
                out,
                "kommerce_audit_violations{{check=\"{}\"}} {}",
                c.name,
                c.violations.len()
            );
        }
        out.push_str(
            "# HELP kommerce_audit_in_flight Things still in flight, within the grace period.\n\
             # TYPE kommerce_audit_in_flight gauge\n",
        );
        for c in &self.checks {
            let _ = writeln!(
                out,
                "kommerce_audit_in_flight{{check=\"{}\"}} {}",
                c.name, c.in_flight
            );
        }
        if let Some(lag) = &self.lag {
            out.push_str(
                "# HELP kommerce_audit_consumer_lag Messages a consumer group has not applied yet.\n\
                 # TYPE kommerce_audit_consumer_lag gauge\n",
            );
            for (group, topic, n) in lag {
                let _ = writeln!(
                    out,
                    "kommerce_audit_consumer_lag{{group=\"{group}\",topic=\"{topic}\"}} {n}"
                );
            }
        }
        out
    }
}

const LIVE_ORDER: [&str; 3] = ["created", "shipped", "delivered"];

/// Every invariant over `facts`; things younger than `grace` may still be in flight.
#[allow(clippy::too_many_lines)] // one block per invariant, in the order the report lists them
pub fn check(facts: &Facts, grace: Duration) -> Report {
    let grace_secs = i64::try_from(grace.as_secs()).unwrap_or(i64::MAX);
    let orders_by_payment: HashMap<Uuid, &OrderFact> =
        facts.orders.iter().map(|o| (o.payment_id, o)).collect();
    let payments: HashMap<Uuid, &PaymentFact> = facts.payments.iter().map(|p| (p.id, p)).collect();
    let mut checks = Vec::new();

    // Every payment ends in exactly one order or one refund.
    let mut c = new_check(
        "payments-settle",
        "every payment is completed with its order, or refunded once, or within its deadline",
        facts.payments.len(),
    );
    for p in &facts.payments {
        let order = orders_by_payment.get(&p.id);
        let refunded_once = p.refund == Some(p.amount);
        let problem = match p.status.as_str() {
            "pending_order" if p.age_secs <= grace_secs => {
                c.in_flight += 1;
                None
            }
            "pending_order" => Some(format!("pending for {} s, past the deadline", p.age_secs)),
            "completed" if order.is_none() => Some("completed without an order".to_owned()),
            "completed" if p.refund.is_some() => Some("completed and refunded".to_owned()),
            "refunded" | "cancelled" if !refunded_once => Some(format!(
                "{} but its refund is {:?} of {}",
                p.status, p.refund, p.amount
            )),
            "cancelled" if order.is_some_and(|o| o.status != "cancelled") => {
                Some("cancelled while its order lives".to_owned())
            }
            _ => None,
        };
        if let Some(problem) = problem {
            c.violations.push(format!("payment {}: {problem}", p.id));
        }
    }
    checks.push(c);

    // No order without its payment; the order's state follows the payment's.
    let mut c = new_check(
        "orders-have-payments",
        "every order has its payment, for its total, in a matching state",
        facts.orders.len(),
    );
    for o in &facts.orders {
        let Some(p) = payments.get(&o.payment_id) else {
            c.violations
                .push(format!("order {}: no payment {}", o.id, o.payment_id));
            continue;
        };
        if o.total != p.amount {
            c.violations.push(format!(
                "order {}: total {} but payment {} is {}",
                o.id, o.total, p.id, p.amount
            ));
        }
        let matching = match o.status.as_str() {
            s if LIVE_ORDER.contains(&s) => p.status == "completed",
            "cancel_requested" => ["completed", "refunded"].contains(&p.status.as_str()),
            "cancelled" => ["refunded", "cancelled"].contains(&p.status.as_str()),
            _ => false,
        };
        if !matching && o.age_secs > grace_secs {
            c.violations.push(format!(
                "order {} is {} but its payment is {}",
                o.id, o.status, p.status
            ));
        } else if !matching {
            c.in_flight += 1;
        }
    }
    checks.push(c);

    let mut c = new_check(
        "refunds-have-payments",
        "no refund without its payment",
        facts.refunds_without_payment.len(),
    );
    for id in &facts.refunds_without_payment {
        c.violations.push(format!("refund of unknown payment {id}"));
    }
    checks.push(c);

    // Per wallet: the balance is its ledger.
    let mut c = new_check(
        "wallet-ledger",
        "every wallet's balance = top-ups − charges + refunds in its ledger",
        facts.wallets.len(),
    );
    for w in &facts.wallets {
        if w.balance != w.ledger_sum {
            c.violations.push(format!(
                "wallet of {}: balance {} but ledger {}",
                w.user_id, w.balance, w.ledger_sum
            ));
        }
        if w.balance < 0 {
            c.violations
                .push(format!("wallet of {}: negative balance", w.user_id));
        }
    }
    checks.push(c);

    // A wallet payment is charged once, and refunded once when it is refunded.
    let mut c = new_check(
        "wallet-charges",
        "a wallet payment is charged once (and refunded once if refunded); a card payment never touches a wallet",
        facts.payments.len(),
    );
    for p in &facts.payments {
        let sum = |kind: &str| -> (usize, i64) {
            let of: Vec<i64> = p
                .wallet_entries
                .iter()
                .filter(|(k, _)| k == kind)
                .map(|(_, d)| *d)
                .collect();
            (of.len(), of.iter().sum())
        };
        let (charge_count, charge_sum) = sum("charge");
        let (refund_count, refund_sum) = sum("refund");
        let returned = ["refunded", "cancelled"].contains(&p.status.as_str());
        let expected = if p.method == "wallet" {
            (
                (1, -p.amount),
                if returned { (1, p.amount) } else { (0, 0) },
            )
        } else {
            ((0, 0), (0, 0))
        };
        if ((charge_count, charge_sum), (refund_count, refund_sum)) != expected {
            c.violations.push(format!(
                "payment {} ({}, {}): {charge_count} charge(s) of {charge_sum}, \
                 {refund_count} refund(s) of {refund_sum}",
                p.id, p.method, p.status
            ));
        }
    }
    checks.push(c);

    // Σ money: what was topped up is in wallets or in live wallet payments.
    let balances: i64 = facts.wallets.iter().map(|w| w.balance).sum();
    let kept: i64 = facts
        .payments
        .iter()
        .filter(|p| {
            p.method == "wallet" && ["pending_order", "completed"].contains(&p.status.as_str())
        })
        .map(|p| p.amount)
        .sum();
    let mut c = new_check(
        "money",
        "Σ top-ups = Σ balances + Σ wallet payments not refunded",
        1,
    );
    if facts.top_ups != balances + kept {
        c.violations.push(format!(
            "top-ups {} ≠ balances {balances} + live wallet payments {kept}",
            facts.top_ups
        ));
    }
    checks.push(c);

    // Per item: stock is its ledger, never negative, nothing oversold.
    let mut c = new_check(
        "stock-ledger",
        "every item's stock = its folded ledger, and stock + unfolded entries ≥ 0",
        facts.items.len(),
    );
    for i in &facts.items {
        if i.stock != i.applied {
            c.violations.push(format!(
                "item {}: stock {} but folded ledger {}",
                i.id, i.stock, i.applied
            ));
        }
        if i.stock < 0 || i.stock + i.unapplied < 0 {
            c.violations.push(format!(
                "item {}: oversold (stock {}, unfolded {})",
                i.id, i.stock, i.unapplied
            ));
        }
    }
    checks.push(c);

    // Reserved stock is exactly the stock of orders that hold it.
    let reservations: HashMap<Uuid, &ReservationFact> =
        facts.reservations.iter().map(|r| (r.id, r)).collect();
    let mut c = new_check(
        "reservations-match-orders",
        "every held reservation belongs to a live order with the same lines, and every live order holds one",
        facts.reservations.len() + facts.orders.len(),
    );
    for r in facts.reservations.iter().filter(|r| r.status == "reserved") {
        let order = orders_by_payment.get(&r.id);
        let problem = match order {
            None => Some("no order".to_owned()),
            Some(o) if o.status == "cancelled" => Some("its order is cancelled".to_owned()),
            Some(o) if o.lines != r.lines => Some(format!(
                "lines {:?} but its order's are {:?}",
                r.lines, o.lines
            )),
            Some(_) => None,
        };
        match problem {
            Some(_) if r.age_secs <= grace_secs => c.in_flight += 1,
            Some(p) => c.violations.push(format!("reservation {}: {p}", r.id)),
            None => {}
        }
    }
    for o in facts
        .orders
        .iter()
        .filter(|o| LIVE_ORDER.contains(&o.status.as_str()) || o.status == "cancel_requested")
    {
        if reservations
            .get(&o.payment_id)
            .is_none_or(|r| r.status != "reserved")
        {
            c.violations.push(format!(
                "order {} ({}) holds no reservation",
                o.id, o.status
            ));
        }
    }
    checks.push(c);

    let mut c = new_check(
        "outboxes-drain",
        "no event waits in an outbox longer than the grace period",
        facts.outboxes.len(),
    );
    for o in &facts.outboxes {
        match o.oldest_unsent_secs {
            Some(age) if age > grace_secs => c.violations.push(format!(
                "{}: {} unsent, the oldest for {age} s",
                o.service, o.unsent
            )),
            Some(_) => c.in_flight += 1,
            None => {}
        }
    }
    checks.push(c);

    if let Some(dead) = &facts.dead_letters {
        let mut c = new_check(
            "dead-letters",
            "no message waits in a dead-letter topic unreplayed (kommerce dlq)",
            dead.len(),
        );
        for (topic, n) in dead.iter().filter(|(_, n)| *n > 0) {
            c.violations.push(format!("{topic}: {n} message(s)"));
        }
        checks.push(c);
    }

    Report {
        grace_secs,
        checks,
        lag: facts.lag.as_ref().map(|lag| {
            lag.iter()
                .map(|l| (l.group.clone(), l.topic.clone(), l.lag))
                .collect()
        }),
    }
}

fn new_check(name: &'static str, what: &'static str, checked: usize) -> Check {
    Check {
        name,
        what,
        checked,
        in_flight: 0,
        violations: Vec::new(),
    }
}

/// The databases to read, by service.
#[derive(Debug, Clone)]
pub struct Sources {
    pub pay: PgPool,
    pub order: PgPool,
    pub item: PgPool,
    /// Every service's database with an outbox: (service, pool).
    pub outboxes: Vec<(String, PgPool)>,
    /// The broker and the topic namespace, when the broker is to be asked.
    pub kafka: Option<crate::dlq::Broker>,
}

impl Sources {
    /// The databases of a platform on the server `database_url` names (`kommerce up`'s, or the
    /// one of `namespace`), and the broker if given.
    pub fn connect(
        database_url: &str,
        namespace: Option<&str>,
        kafka: Option<&str>,
    ) -> anyhow::Result<Self> {
        let pool = |service: &str| {
            let name = crate::supervisor::database_name_in(namespace, service);
            let url = kommerce_kit::db::with_database_name(database_url, &name);
            Ok::<_, sqlx::Error>(
                sqlx::postgres::PgPoolOptions::new()
                    .max_connections(2)
                    .connect_lazy_with(kommerce_kit::db::connect_options(&url)?),
            )
        };
        let mut outboxes = Vec::new();
        for c in kommerce_kit::topology::COMPONENTS
            .iter()
            .filter(|c| c.uses_kafka)
        {
            outboxes.push((c.name.to_owned(), pool(c.name)?));
        }
        Ok(Self {
            pay: pool("pay")?,
            order: pool("order")?,
            item: pool("item")?,
            outboxes,
            kafka: kafka.map(|k| crate::dlq::Broker {
                bootstrap: k.to_owned(),
                namespace: namespace.unwrap_or_default().to_owned(),
            }),
        })
    }
}

fn lines(json: Option<serde_json::Value>) -> Vec<(Uuid, i64)> {
    let mut out: Vec<(Uuid, i64)> = json
        .and_then(|v| v.as_array().cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|l| Some((l["item_id"].as_str()?.parse().ok()?, l["qty"].as_i64()?)))
        .collect();
    out.sort();
    out
}

#[derive(sqlx::FromRow)]
struct PaymentRow {
    id: Uuid,
    user_id: Uuid,
    method: String,
    status: String,
    amount: i64,
    age: f64,
    refund: Option<i64>,
}

#[derive(sqlx::FromRow)]
struct OrderRow {
    id: Uuid,
    payment_id: Uuid,
    status: String,
    total: i64,
    age: f64,
    lines: Option<serde_json::Value>,
}

/// Reads the facts. Each database is read in one repeatable-read transaction.
#[allow(clippy::too_many_lines)]
pub async fn gather(s: &Sources) -> anyhow::Result<Facts> {
    let mut facts = Facts::default();

    let mut tx = s.pay.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let rows: Vec<PaymentRow> = sqlx::query_as(
        "SELECT p.id, p.user_id, p.method, p.status, p.amount_minor AS amount, \
         extract(epoch FROM now() - p.created_at)::float8 AS age, r.amount_minor AS refund \
         FROM payments p LEFT JOIN refunds r ON r.payment_id = p.id",
    )
    .fetch_all(&mut *tx)
    .await?;
    let entries: Vec<(Uuid, String, i64)> = sqlx::query_as(
        "SELECT payment_id, kind, delta_minor FROM wallet_entries WHERE payment_id IS NOT NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut by_payment: HashMap<Uuid, Vec<(String, i64)>> = HashMap::new();
    for (payment, kind, delta) in entries {
        by_payment.entry(payment).or_default().push((kind, delta));
    }
    #[allow(clippy::cast_possible_truncation)] // ages in seconds
    for r in rows {
        facts.payments.push(PaymentFact {
            id: r.id,
            user_id: r.user_id,
            method: r.method,
            status: r.status,
            amount: r.amount,
            age_secs: r.age as i64,
            refund: r.refund,
            wallet_entries: by_payment.remove(&r.id).unwrap_or_default(),
        });
    }
    facts.refunds_without_payment = sqlx::query_scalar(
        "SELECT r.payment_id FROM refunds r LEFT JOIN payments p ON p.id = r.payment_id \
         WHERE p.id IS NULL",
    )
    .fetch_all(&mut *tx)
    .await?;
    let wallets: Vec<(Uuid, i64, i64)> = sqlx::query_as(
        "SELECT w.user_id, w.balance_minor, COALESCE(sum(e.delta_minor), 0)::int8 \
         FROM wallets w LEFT JOIN wallet_entries e ON e.user_id = w.user_id \
         GROUP BY w.user_id, w.balance_minor",
    )
    .fetch_all(&mut *tx)
    .await?;
    facts.wallets = wallets
        .into_iter()
        .map(|(user_id, balance, ledger_sum)| WalletFact {
            user_id,
            balance,
            ledger_sum,
        })
        .collect();
    facts.top_ups = sqlx::query_scalar(
        "SELECT COALESCE(sum(delta_minor), 0)::int8 FROM wallet_entries WHERE kind = 'top_up'",
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;

    let mut tx = s.order.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let orders: Vec<OrderRow> = sqlx::query_as(
        "SELECT o.id, o.payment_id, o.status, o.total_minor AS total, \
         extract(epoch FROM now() - o.created_at)::float8 AS age, \
         (SELECT jsonb_agg(jsonb_build_object('item_id', l.item_id, 'qty', l.qty)) \
          FROM order_lines l WHERE l.order_id = o.id) AS lines \
         FROM orders o",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    #[allow(clippy::cast_possible_truncation)]
    for o in orders {
        facts.orders.push(OrderFact {
            id: o.id,
            payment_id: o.payment_id,
            status: o.status,
            total: o.total,
            age_secs: o.age as i64,
            lines: lines(o.lines),
        });
    }

    let mut tx = s.item.begin().await?;
    sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
        .execute(&mut *tx)
        .await?;
    let items: Vec<(Uuid, i64, i64, i64)> = sqlx::query_as(
        "SELECT i.id, i.stock::int8, \
         COALESCE(sum(l.delta) FILTER (WHERE l.applied), 0)::int8, \
         COALESCE(sum(l.delta) FILTER (WHERE NOT l.applied), 0)::int8 \
         FROM items i LEFT JOIN stock_ledger l ON l.item_id = i.id GROUP BY i.id, i.stock",
    )
    .fetch_all(&mut *tx)
    .await?;
    facts.items = items
        .into_iter()
        .map(|(id, stock, applied, unapplied)| ItemFact {
            id,
            stock,
            applied,
            unapplied,
        })
        .collect();
    let reservations: Vec<(Uuid, String, f64, Option<serde_json::Value>)> = sqlx::query_as(
        "SELECT r.id, r.status, extract(epoch FROM now() - r.created_at)::float8, \
         (SELECT jsonb_agg(jsonb_build_object('item_id', l.item_id, 'qty', l.qty)) \
          FROM reservation_lines l WHERE l.reservation_id = r.id) \
         FROM reservations r",
    )
    .fetch_all(&mut *tx)
    .await?;
    tx.commit().await?;
    #[allow(clippy::cast_possible_truncation)]
    for (id, status, age, l) in reservations {
        facts.reservations.push(ReservationFact {
            id,
            status,
            age_secs: age as i64,
            lines: lines(l),
        });
    }

    for (service, pool) in &s.outboxes {
        let (unsent, oldest): (i64, Option<f64>) = sqlx::query_as(
            "SELECT count(*), extract(epoch FROM now() - min(created_at))::float8 \
             FROM outbox WHERE sent_at IS NULL",
        )
        .fetch_one(pool)
        .await?;
        #[allow(clippy::cast_possible_truncation)]
        facts.outboxes.push(OutboxFact {
            service: service.clone(),
            unsent,
            oldest_unsent_secs: oldest.map(|a| a as i64),
        });
    }

    if let Some(broker_at) = &s.kafka {
        let mut positions: Vec<(String, String, i32, i64)> = Vec::new();
        for (_, pool) in &s.outboxes {
            let rows: Vec<(String, String, i32, i64)> = sqlx::query_as(
                "SELECT consumer, topic, partition, next_offset FROM consumer_positions",
            )
            .fetch_all(pool)
            .await?;
            positions.extend(rows);
        }
        let (lag, dead) = broker(broker_at, &positions).await?;
        facts.lag = Some(lag);
        facts.dead_letters = Some(dead);
    }
    Ok(facts)
}

/// Audits every `every` and serves the latest report as Prometheus text at `/metrics` (with
/// `kommerce_audit_up` 0 while the last audit could not run) until SIGTERM or Ctrl-C: the
/// periodic job an alert watches (`kommerce_audit_violations > 0`).
pub async fn serve(
    sources: Sources,
    grace: Duration,
    every: Duration,
    listener: tokio::net::TcpListener,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    let latest = Arc::new(std::sync::RwLock::new(String::new()));
    let writer = latest.clone();
    let audits = tokio::spawn(async move {
        let mut last_report = String::new();
        let mut last_success = 0u64;
        loop {
            let up = match gather(&sources).await {
                Ok(facts) => {
                    last_report = check(&facts, grace).prometheus();
                    last_success = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs());
                    1
                }
                Err(e) => {
                    tracing::warn!(error = %e, "the audit could not run");
                    0
                }
            };
            let text = format!(
                "{last_report}# HELP kommerce_audit_up Whether the last audit ran.\n\
                 # TYPE kommerce_audit_up gauge\nkommerce_audit_up {up}\n\
                 # HELP kommerce_audit_last_success_timestamp_seconds When an audit last ran.\n\
                 # TYPE kommerce_audit_last_success_timestamp_seconds gauge\n\
                 kommerce_audit_last_success_timestamp_seconds {last_success}\n"
            );
            *writer
                .write()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = text;
            tokio::time::sleep(every).await;
        }
    });
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let text = latest
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    text,
                )
            }
        }),
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(kommerce_kit::server::shutdown_signal())
        .await?;
    audits.abort();
    Ok(())
}

/// The saga's topics, whose dead-letter topics are looked at.
const TOPICS: [&str; 3] = [
    kommerce_contracts::saga::PAYMENTS_TOPIC,
    kommerce_contracts::saga::ORDERS_TOPIC,
    kommerce_contracts::reviews::REVIEWS_TOPIC,
];

/// Consumer lag per (group, topic) from the stored positions against the high watermarks,
/// and the size of each dead-letter topic.
async fn broker(
    broker: &crate::dlq::Broker,
    positions: &[(String, String, i32, i64)],
) -> anyhow::Result<(Vec<LagFact>, Vec<(String, i64)>)> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    let broker = broker.clone();
    let positions = positions.to_vec();
    tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &broker.bootstrap)
            .create()?;
        let timeout = Duration::from_secs(5);
        let mut lag: BTreeMap<(String, String), i64> = BTreeMap::new();
        for (group, topic, partition, next) in positions {
            let (_, high) = consumer.fetch_watermarks(&topic, partition, timeout)?;
            *lag.entry((group, topic)).or_default() += (high - next).max(0);
        }
        // What waits in each dead-letter topic: past the replay mark (`kommerce dlq`).
        let mut dead = Vec::new();
        for topic in TOPICS {
            let waiting = crate::dlq::waiting(&broker, topic)?;
            dead.push((broker.topic(&format!("{topic}.dlq")), waiting));
        }
        let lag = lag
            .into_iter()
            .map(|((group, topic), lag)| LagFact { group, topic, lag })
            .collect();
        Ok((lag, dead))
    })
    .await?
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(60);

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    /// A consistent shop: one wallet payment completed with its order, one refunded after a
    /// cancel, one card payment completed; the wallet topped up 1,000.
    fn shop() -> Facts {
        let (user, item) = (id(100), id(200));
        let wallet_payment = |n: u128, status: &str, refunded: bool| PaymentFact {
            id: id(n),
            user_id: user,
            method: "wallet".into(),
            status: status.into(),
            amount: 100,
            age_secs: 600,
            refund: refunded.then_some(100),
            wallet_entries: if refunded {
                vec![("charge".into(), -100), ("refund".into(), 100)]
            } else {
                vec![("charge".into(), -100)]
            },
        };
        let order = |n: u128, status: &str| OrderFact {
            id: id(n + 10),
            payment_id: id(n),
            status: status.into(),
            total: 100,
            age_secs: 600,
            lines: vec![(item, 1)],
        };
        let reservation = |n: u128, status: &str| ReservationFact {
            id: id(n),
            status: status.into(),
            age_secs: 600,
            lines: vec![(item, 1)],
        };
        Facts {
            payments: vec![
                wallet_payment(1, "completed", false),
                wallet_payment(2, "refunded", true),
                PaymentFact {
                    method: "card".into(),
                    wallet_entries: vec![],
                    ..wallet_payment(3, "completed", false)
                },
            ],
            orders: vec![
                order(1, "created"),
                order(2, "cancelled"),
                order(3, "shipped"),
            ],
            refunds_without_payment: vec![],
            wallets: vec![WalletFact {
                user_id: user,
                balance: 900,
                ledger_sum: 900,
            }],
            top_ups: 1000,
            items: vec![ItemFact {
                id: item,
                stock: 8,
                applied: 8,
                unapplied: 0,
            }],
            reservations: vec![
                reservation(1, "reserved"),
                reservation(2, "released"),
                reservation(3, "reserved"),
            ],
            outboxes: vec![OutboxFact {
                service: "pay".into(),
                unsent: 0,
                oldest_unsent_secs: None,
            }],
            lag: None,
            dead_letters: Some(vec![("payments.dlq".into(), 0)]),
        }
    }

    fn violated(report: &Report) -> Vec<&str> {
        report
            .checks
            .iter()
            .filter(|c| !c.violations.is_empty())
            .map(|c| c.name)
            .collect()
    }

    #[test]
    fn a_consistent_shop_is_consistent() {
        let report = check(&shop(), GRACE);
        assert_eq!(report.violations(), 0, "{}", report.render());
        assert!(report.render().ends_with("consistent\n"));
    }

    #[test]
    fn the_metrics_name_every_check() {
        let mut facts = shop();
        facts.wallets[0].balance = 950;
        let text = check(&facts, GRACE).prometheus();
        assert!(text.contains("kommerce_audit_violations{check=\"wallet-ledger\"} 1\n"));
        assert!(text.contains("kommerce_audit_violations{check=\"stock-ledger\"} 0\n"));
        assert!(text.contains("# TYPE kommerce_audit_in_flight gauge\n"));
        assert_eq!(
            text.lines()
                .filter(|l| l.starts_with("kommerce_audit_violations{"))
                .count(),
            check(&facts, GRACE).checks.len()
        );
    }

    #[test]
    fn a_payment_past_its_deadline_is_a_violation_and_one_within_it_is_in_flight() {
        let mut facts = shop();
        facts.payments.push(PaymentFact {
            id: id(9),
            status: "pending_order".into(),
            age_secs: 10,
            wallet_entries: vec![("charge".into(), -100)],
            ..facts.payments[0].clone()
        });
        facts.top_ups += 100; // the pending payment's money came from a top-up
        let report = check(&facts, GRACE);
        assert_eq!(report.violations(), 0, "{}", report.render());
        assert_eq!(report.checks[0].in_flight, 1);
        facts.payments.last_mut().unwrap().age_secs = 600;
        assert_eq!(violated(&check(&facts, GRACE)), ["payments-settle"]);
    }

    #[test]
    fn each_kind_of_damage_is_named() {
        type Damage = Box<dyn Fn(&mut Facts)>;
        let cases: Vec<(&str, Damage)> = vec![
            ("orders-have-payments", Box::new(|f| f.orders[0].total = 99)),
            ("payments-settle", Box::new(|f| f.payments[1].refund = None)),
            (
                "refunds-have-payments",
                Box::new(|f| f.refunds_without_payment.push(id(7))),
            ),
            ("wallet-ledger", Box::new(|f| f.wallets[0].balance = 901)),
            (
                "wallet-charges",
                Box::new(|f| f.payments[2].wallet_entries.push(("charge".into(), -100))),
            ),
            ("stock-ledger", Box::new(|f| f.items[0].unapplied = -9)),
            (
                "reservations-match-orders",
                Box::new(|f| f.reservations[0].status = "released".into()),
            ),
            (
                "outboxes-drain",
                Box::new(|f| f.outboxes[0].oldest_unsent_secs = Some(3600)),
            ),
            (
                "dead-letters",
                Box::new(|f| f.dead_letters = Some(vec![("payments.dlq".into(), 2)])),
            ),
        ];
        for (name, damage) in cases {
            let mut facts = shop();
            damage(&mut facts);
            let report = check(&facts, GRACE);
            assert!(
                violated(&report).contains(&name),
                "{name}: {}",
                report.render()
            );
        }
        // A wallet balance that moved without a ledger entry breaks the sums as well.
        let mut facts = shop();
        facts.wallets[0].balance = 950;
        assert_eq!(violated(&check(&facts, GRACE)), ["wallet-ledger", "money"]);
    }
}
