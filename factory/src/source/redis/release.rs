//! Handing an order back to the stream, for another factory (or this one) to take.

use anyhow::Context;
use fred::prelude::*;
use fred::types::Value;
use minifig_common::redis::{TRACEPARENT_FIELD, stream_cap};

use super::{CONSUMER_GROUP, Delivery, ORDER_ID_FIELD, RedisStreamSource, mentions};

/// `release`: hand the order back as a new entry (capping the stream at about ARGV[5]
/// entries) and drop the old one, atomically. Only when the old entry was still pending,
/// or is gone from the stream: if it was acknowledged meanwhile the order is final and
/// re-adding it would be a pointless delivery, but an entry trimmed away while pending
/// was dropped from the pending list by Redis, and its order still needs a factory. The
/// new entry keeps the old one's `traceparent` (ARGV[6] and ARGV[7], when it had one), so
/// that whoever takes the order next stays in its trace.
const RELEASE_SCRIPT: &str = r"
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
if acked == 1 or #redis.call('XRANGE', KEYS[1], ARGV[2], ARGV[2]) == 0 then
  if ARGV[7] then
    return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', ARGV[3], ARGV[4], ARGV[6], ARGV[7])
  end
  return redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[5], '*', ARGV[3], ARGV[4])
end
return false
";

impl RedisStreamSource {
    pub(super) async fn hand_back(&self, delivery: &Delivery) -> anyhow::Result<()> {
        let max_len = self.max_len.to_string();
        let mut args = vec![CONSUMER_GROUP, delivery.id.as_str(), ORDER_ID_FIELD, delivery.order_id.as_str(), &max_len];
        let mut fields = vec![(ORDER_ID_FIELD, delivery.order_id.as_str())];
        if let Some(traceparent) = delivery.traceparent.as_deref() {
            args.extend([TRACEPARENT_FIELD, traceparent]);
            fields.push((TRACEPARENT_FIELD, traceparent));
        }
        let released: Result<Value, Error> = self.writer.eval(RELEASE_SCRIPT, vec![self.stream.as_str()], args).await;
        match released {
            Ok(_) => Ok(()),
            Err(err) if mentions(&err, "NOGROUP") => {
                // Redis lost the stream and the entry with it; hand the order back anew so
                // that it is not left to the server's redelivery alone.
                self.ensure_group().await.with_context(|| format!("re-creating the group on {}", self.stream))?;
                self.writer
                    .xadd::<Value, _, _, _, _>(&self.stream, false, stream_cap(self.max_len), "*", fields)
                    .await
                    .with_context(|| format!("XADD order {} to {}", delivery.order_id, self.stream))?;
                Ok(())
            }
            Err(err) => Err(anyhow::Error::new(err).context(format!("releasing {} on {}", delivery.id, self.stream))),
        }
    }
}
