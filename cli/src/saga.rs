//! `kommerce saga trace <payment-or-order-id>`: every step of one checkout saga, from every
//! service that took part, merged by time.

use std::fmt::Write as _;

use std::time::Duration;

use anyhow::{Context, bail};
use kommerce_kit::credential::{COMMAND, HEADER, credential};
use kommerce_kit::saga::Step;
use uuid::Uuid;

/// The services that keep a saga timeline, by name and internal base URL, asked with the
/// command's credential key (`service_key`, the `kommerce` key of `kommerce up`'s
/// `service-keys`).
pub async fn trace(
    id: Uuid,
    services: &[(&str, String)],
    service_key: &str,
) -> anyhow::Result<Vec<Step>> {
    let http = reqwest::Client::new();
    let mut steps = Vec::new();
    let mut saga = id;
    // The first service that knows the id tells the saga key (an order id becomes its
    // payment id); the others are asked by that key.
    for (name, base) in services {
        let url = format!("{base}/internal/v1/saga/{saga}");
        let credential = credential(service_key, COMMAND, name, Duration::from_secs(60))
            .context("the service key is not a usable key")?;
        let found: Vec<Step> = http
            .get(&url)
            .header(HEADER, credential)
            .send()
            .await
            .with_context(|| format!("the {name} service does not answer at {base}"))?
            .error_for_status()
            .with_context(|| format!("the {name} service refused {url}"))?
            .json()
            .await?;
        if let Some(first) = found.first() {
            saga = first.saga_id;
        }
        steps.extend(found);
    }
    if steps.is_empty() {
        bail!("no service recorded a saga step for {id}");
    }
    Ok(merge(steps))
}

/// Oldest first; steps at the same instant keep the order they were given in.
pub fn merge(mut steps: Vec<Step>) -> Vec<Step> {
    steps.sort_by_key(|s| s.at);
    steps
}

/// One line per step: time, service, step, outcome, detail.
pub fn render(steps: &[Step]) -> String {
    let mut out = format!(
        "{:<30} {:<7} {:<24} {}\n",
        "TIME", "SERVICE", "STEP", "OUTCOME"
    );
    for s in steps {
        let at =
            s.at.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default();
        let detail = s
            .detail
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "{at:<30} {:<7} {:<24} {}{detail}",
            s.service, s.step, s.outcome
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use time::OffsetDateTime;

    use super::*;

    fn step(service: &str, name: &str, secs: i64) -> Step {
        Step {
            saga_id: Uuid::nil(),
            order_id: None,
            service: service.into(),
            step: name.into(),
            outcome: "ok".into(),
            detail: None,
            at: OffsetDateTime::from_unix_timestamp(1_700_000_000 + secs).unwrap(),
        }
    }

    #[test]
    fn steps_from_every_service_interleave_by_time() {
        let merged = merge(vec![
            step("order", "order.created", 2),
            step("pay", "payment.completed", 1),
            step("pay", "order.created", 3),
        ]);
        let names: Vec<_> = merged
            .iter()
            .map(|s| (s.service.as_str(), s.step.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                ("pay", "payment.completed"),
                ("order", "order.created"),
                ("pay", "order.created")
            ]
        );
        let text = render(&merged);
        assert_eq!(text.lines().count(), 4);
        assert!(text.lines().nth(1).unwrap().contains("payment.completed"));
    }
}
