//! A consumer's position on a partition, kept in its database (`consumer_positions`) in the same
//! transaction as the effects: the truth about what a group has applied, whatever the broker's
//! committed offsets say.

use std::collections::HashMap;
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection, PgExecutor};

/// What to do with a message at `offset`, given the stored position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// The next message to apply (or the first this group ever sees on the partition).
    Apply,
    /// Already applied or dead-lettered: skip it.
    Behind,
    /// Messages before it were never applied: fetch again from `from` (messages before the
    /// stored position are then skipped as `Behind`).
    Seek { from: i64 },
}

/// A search for the stored position `target` that has fetched from `from` so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Sought {
    pub target: i64,
    pub from: i64,
}

/// `next`: the stored position; `sought`: where this consumer last went back to on the
/// partition. A message past the position is a gap. The consumer first goes back to the
/// position itself; a broker that answers a fetch from inside a stored batch with the batches
/// after it (tansu's object-store engine does) hands back the same gap, so the consumer goes
/// back further, doubling, until the broker delivers from at or before the position. Only when
/// even the start of the log has nothing before this message is the gap real (retention): then
/// it is applied.
pub(crate) fn judge(next: Option<i64>, offset: i64, sought: Option<Sought>) -> Verdict {
    const FIRST_STEP: i64 = 64;
    match next {
        None => Verdict::Apply,
        Some(n) if offset < n => Verdict::Behind,
        Some(n) if offset == n => Verdict::Apply,
        Some(n) => match sought {
            Some(s) if s.target == n && s.from == 0 => Verdict::Apply,
            Some(s) if s.target == n => Verdict::Seek {
                from: (s.from - (n - s.from).max(FIRST_STEP)).max(0),
            },
            _ => Verdict::Seek { from: n },
        },
    }
}

/// The stored position of `group` on `topic`/`partition`, locked until the transaction ends so
/// that two members never apply one partition side by side.
pub(crate) async fn lock<'e>(
    db: impl PgExecutor<'e>,
    group: &str,
    topic: &str,
    partition: i32,
) -> Result<Option<i64>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT next_offset FROM consumer_positions \
         WHERE consumer = $1 AND topic = $2 AND partition = $3 FOR UPDATE",
    )
    .bind(group)
    .bind(topic)
    .bind(partition)
    .fetch_optional(db)
    .await
}

/// Moves the position to `next` (never backwards).
pub(crate) async fn advance<'e>(
    db: impl PgExecutor<'e>,
    group: &str,
    topic: &str,
    partition: i32,
    next: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO consumer_positions (consumer, topic, partition, next_offset) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (consumer, topic, partition) DO UPDATE \
         SET next_offset = GREATEST(consumer_positions.next_offset, EXCLUDED.next_offset), \
             updated_at = clock_timestamp()",
    )
    .bind(group)
    .bind(topic)
    .bind(partition)
    .bind(next)
    .execute(db)
    .await
    .map(drop)
}

/// Every stored position of `group` on `topics`, read on a thread of its own with a connection
/// of its own: librdkafka's rebalance callback, where this is needed, is synchronous and runs
/// on the async runtime's thread.
pub(crate) fn read_blocking(
    options: &PgConnectOptions,
    group: &str,
    topics: &[String],
) -> Result<HashMap<(String, i32), i64>, String> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            rt.block_on(async {
                let read = async {
                    let mut conn = PgConnection::connect_with(options).await?;
                    let rows: Vec<(String, i32, i64)> = sqlx::query_as(
                        "SELECT topic, partition, next_offset FROM consumer_positions \
                         WHERE consumer = $1 AND topic = ANY($2)",
                    )
                    .bind(group)
                    .bind(topics)
                    .fetch_all(&mut conn)
                    .await?;
                    let _ = conn.close().await;
                    Ok::<_, sqlx::Error>(rows)
                };
                match tokio::time::timeout(Duration::from_secs(10), read).await {
                    Ok(Ok(rows)) => Ok(rows.into_iter().map(|(t, p, n)| ((t, p), n)).collect()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("timed out".to_owned()),
                }
            })
        })
        .join()
        .map_err(|_| "the position reader panicked".to_owned())?
    })
}

#[cfg(test)]
mod tests {
    use super::{Sought, Verdict, judge};

    #[test]
    fn judges_a_message_against_the_stored_position() {
        assert_eq!(
            judge(None, 7, None),
            Verdict::Apply,
            "a partition never seen"
        );
        assert_eq!(judge(Some(7), 7, None), Verdict::Apply);
        assert_eq!(judge(Some(7), 6, None), Verdict::Behind);
        assert_eq!(judge(Some(700), 11, None), Verdict::Behind);
        assert_eq!(judge(Some(7), 11, None), Verdict::Seek { from: 7 });
    }

    #[test]
    fn a_gap_the_broker_hands_back_sends_the_consumer_further_back_until_the_log_start() {
        let n = 1_000;
        let mut sought = None;
        let mut froms = Vec::new();
        while let Verdict::Seek { from } = judge(Some(n), 1_005, sought) {
            froms.push(from);
            sought = Some(Sought { target: n, from });
        }
        assert_eq!(
            froms,
            [1_000, 936, 872, 744, 488, 0],
            "the distance doubles"
        );
        assert_eq!(
            judge(Some(n), 1_005, sought),
            Verdict::Apply,
            "the log really has nothing before it"
        );
        let elsewhere = Some(Sought { target: 7, from: 0 });
        assert_eq!(
            judge(Some(n), 1_005, elsewhere),
            Verdict::Seek { from: 1_000 },
            "a search for another position starts over"
        );
    }
}
