/*
** checksums.h - what modelq's integrity checksums cover; shared by the writers (formats/) and
** `modelq verify` (src/verify.c). All are XXH3-64 (seed 0); together they cover every byte modelq
** writes, so one flipped byte anywhere makes verify fail.
**
** GGUF (formats/gguf_out.c), the last two metadata keys, in this order:
**   modelq.tensor_xxh3  ARRAY of UINT64, one per tensor in tensor-info order: the tensor's data
**                       bytes (nbytes, without the alignment padding that follows them).
**   modelq.header_xxh3  UINT64: the file bytes [0, D), D = the start of the data section =
**                       PAD(end of the tensor infos, general.alignment) - magic, counts, every
**                       key/value (the tensor checksums included), every tensor info and the zero
**                       padding - with the 8 value bytes of modelq.header_xxh3 itself read as zero.
**   The rest of the file is the data section: tensor i's bytes, then zeros up to the next
**   multiple of the alignment, and the file ends right after the last tensor's padding. verify
**   checks those zeros and that size itself (they need no checksum).
**   Files of older modelq versions have modelq.tensor_xxh3 as their last key and no header
**   checksum: verify checks their tensor data and says the header is not covered.
**
** bitsandbytes folder (formats/bnb_out.c): every safetensors shard's __metadata__ holds
**   modelq.header_xxh3  16 lower-case hex digits: the shard's bytes [0, 8 + N) (the u64 length
**                       prefix, the JSON header and its space padding), with these 16 digits read
**                       as '0' characters. The header begins with exactly MQ_ST_HEADER_SUM_PREFIX,
**                       so the digits are at file offset MQ_ST_HEADER_SUM_AT.
**   modelq.tensor_xxh3  "<16 hex>:<name>,..." one per stored entry of the shard, header order.
**   modelq.files_xxh3   "<16 hex>:<file>,..." the folder's other files modelq wrote (config.json,
**                       model.safetensors.index.json, the copied tokenizer files), the same list
**                       in every shard.
**   Every entry of a shard must have its checksum, every shard its three keys. Folders of older
**   versions have __metadata__ = {"format": "pt", "modelq.tensor_xxh3": ...} only.
*/
#ifndef MODELQ_CHECKSUMS_H
#define MODELQ_CHECKSUMS_H

/* The key names and the safetensors header-sum position are public (plug-in writers use them). */
#include "modelq/plugin.h"

#endif
