/*
 * log_cleaner.c: log compaction (cleanup.policy=compact).
 *
 * NOT IMPLEMENTED YET. This is the hook log_maintain calls for every
 * partition whose cleanup.policy includes compact; it does nothing, so a
 * compacted topic currently keeps every record (and, with compact only, is
 * never trimmed by retention either). The compaction engineer replaces this
 * file: keep the last record per key in non-active segments, drop
 * tombstones older than delete.retention.ms, respect min.compaction.lag.ms,
 * write cleaned segments beside the old ones and swap them in a way that
 * recovery (log_recovery.c) can complete after a crash. Storage internals
 * are in log_store_int.h.
 */
#include "log_store_int.h"

int log__cleaner_run(log_partition_t *p, int64_t now_ms, log_error_t *err) {
  (void)p;
  (void)now_ms;
  (void)err;
  return 0; /* compaction is not implemented yet */
}
