/*
 * log_murmur2.c: Kafka's key hash and default partitioner for keyed
 * records.
 *
 * log__murmur2 is MurmurHash2 exactly as Kafka's
 * org.apache.kafka.common.utils.Utils.murmur2 computes it (seed 0x9747b28c,
 * m 0x5bd1e995, r 24, the body read as little-endian 4-byte words, the tail
 * bytes taken unsigned (Java's `& 0xff`)), so a key lands on the same
 * partition here as with a Java producer, librdkafka's "murmur2_random"
 * partitioner, or Kafka Streams. Java's int arithmetic wraps; here it is
 * done in uint32_t, where wrapping is defined, and `>>>` is the unsigned
 * shift of a uint32_t.
 */
#include "log_int.h"

int32_t log__murmur2(const void *data, int32_t len) {
  const uint8_t *p = data;
  const uint32_t m = 0x5bd1e995u;
  const int r = 24;
  if (len < 0)
    len = 0;
  uint32_t h = 0x9747b28cu ^ (uint32_t)len;

  int32_t len4 = len / 4;
  for (int32_t i = 0; i < len4; i++) {
    const uint8_t *q = p + 4 * (size_t)i;
    uint32_t k = (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 |
                 (uint32_t)q[3] << 24;
    k *= m;
    k ^= k >> r;
    k *= m;
    h *= m;
    h ^= k;
  }

  const uint8_t *tail = p + 4 * (size_t)len4;
  switch (len % 4) {
  case 3:
    h ^= (uint32_t)tail[2] << 16;
    /* fall through */
  case 2:
    h ^= (uint32_t)tail[1] << 8;
    /* fall through */
  case 1:
    h ^= tail[0];
    h *= m;
    break;
  default:
    break;
  }

  h ^= h >> 13;
  h *= m;
  h ^= h >> 15;
  return (int32_t)h; /* two's complement, as Java's int */
}

/*
 * As Kafka's DefaultPartitioner (and BuiltInPartitioner.partitionForKey):
 * Utils.toPositive(murmur2(key)) % numPartitions, where toPositive masks
 * the sign bit (not abs(), which would keep INT32_MIN negative).
 *
 * Unkeyed records: a NULL key (or a negative key_len, the null-key
 * convention of log_record_t) has no partition of its own; this returns -1
 * and the caller (the partition layer) spreads such records round-robin
 * per topic. -1 is also returned when partitions < 1. An empty, non-NULL
 * key is a real key and hashes like any other.
 */
int32_t log_partition_for_key(const void *key, int32_t key_len, int32_t partitions) {
  if (key == NULL || key_len < 0 || partitions < 1)
    return -1;
  uint32_t positive = (uint32_t)log__murmur2(key, key_len) & 0x7fffffffu;
  return (int32_t)(positive % (uint32_t)partitions);
}
