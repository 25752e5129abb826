/*
** convert_run.c - the streaming engine: chunks of rows through the codecs into planned offsets.
**
** Work list: every output tensor is cut into chunks of whole rows (about CHUNK_ELEMS elements;
** whole Q/K head groups when rows are permuted; whole bitsandbytes blocks for flat codecs); rows
** longer than a chunk into block-aligned pieces (piece_elems), so one enormous row costs no more
** memory than any other chunk. Tensors copied unchanged go in byte ranges; block-quantized ones
** in whole blocks, each dequantized to check that no scale or value is NaN/Inf. N
** threads take chunks in order from an atomic counter; each owns its buffers (so memory is
** N x a few MB whatever the model size), reads its rows with pread, converts them to f32 (or
** dequantizes a GGUF source), checks the values, quantizes, and pwrites the bytes at their
** final offset. No chunk depends on another, so the bytes do not depend on the thread count.
**
** Value errors (NaN/Inf, f16/bf16 overflow, blocks their fp16 scale cannot hold, non-finite
** blocks of a copied tensor) stop the run; the report is made deterministic by
** rescanning, single-threaded, the tensors up to the first one that failed.
** After the data, a second pass over tensors computes each one's XXH3-64 from the bytes read back.
*/
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "ckd.h"
#include "modelq/half.h"
#include "modelq/quant.h"
#include "modelq/testing.h"
#include "outfile.h"
#include "modelq/imatrix.h"
#include "plan.h"

#define CHUNK_ELEMS (256u * 1024u)
#define RAW_CHUNK_BYTES (1u << 20)
#define HASH_CHUNK_BYTES (1u << 20)

/*
** One chunk. Converted tensors: the flat elements [first, first+n); whole rows [row0, row0+nrows)
** unless `piece` (a tensor whose rows are longer than a chunk, cut into block-aligned pieces
** that may start and end inside rows). Raw copies: the bytes [row0, row0+nrows).
*/
struct job {
    size_t t;
    uint64_t row0, nrows;
    uint64_t first, n;
    bool piece;
};

struct run {
    struct mq_plan *p;
    struct mq_outfile *out;
    bool stats, fast;
    struct job *jobs;
    size_t njobs;
    _Atomic size_t next;
    _Atomic bool stop;
    _Atomic uint64_t done_bytes;
    _Atomic unsigned running;
    uint64_t total_bytes;
    struct mq_qstats_acc *job_stats;   /* per job, merged in job order */
    _Atomic uint64_t *chunks_done;     /* per tensor */
    uint64_t *chunks_total;
    pthread_mutex_t mu;
    bool failed;                       /* I/O or internal error in err */
    struct mq_error err;
    bool range_failed;
    uint64_t chunk_elems;              /* CHUNK_ELEMS, or the test hook's (many small chunks) */
    unsigned delay_ms;                 /* test hook: slow runs for the signal tests */
    /* buffer sizes every worker allocates */
    size_t max_src, max_elems, max_out, max_side;
};

/* Stored source bytes of one row of a filtered (bitsandbytes) tensor t: progress only. */
static uint64_t filter_row_bytes(const struct mq_plan *p, const struct mq_plan_tensor *t)
{
    return mq_plan_src_bytes(p, t) / (t->rows ? t->rows : 1);
}

static uint64_t gcd_u64(uint64_t a, uint64_t b)
{
    while (b) {
        uint64_t r = a % b;
        a = b;
        b = r;
    }
    return a;
}

/*
** Elements per piece when the rows of converted tensor t are longer than a chunk, or 0 when its
** rows must stay whole. Pieces are block-aligned in the flattened tensor, for the output codec
** and for a block-quantized source, so every block is quantized (and every source block
** dequantized) whole, exactly as in a whole-row chunk: no ggml kernel keeps state across the
** blocks of a row (without an importance matrix), and the flat codecs (NF4/FP4/INT8_ASYM) are
** blocks over the flattened tensor. Rows stay whole for INT8_ROW (one scale per row) and for
** the transforms that move whole rows or columns (mq_xform_whole_rows).
*/
static uint64_t piece_elems(const struct run *r, const struct mq_plan_tensor *t)
{
    /* importances: the legacy types weigh by the whole row (weighted.c), so rows stay whole */
    if (t->row_len <= r->chunk_elems || t->codec == MQ_CODEC_INT8_ROW || mq_xform_whole_rows(t) || t->imatrix)
        return 0;
    uint64_t align = mq_codec_block(t->codec, &t->params);
    if (t->kind == MQ_SRC_QUANT) {
        uint64_t sb = mq_codec_info(t->src_codec)->block_elems;
        align = align / gcd_u64(align, sb) * sb;
    }
    if (align == 0 || align > r->chunk_elems) return align;
    return r->chunk_elems / align * align;
}

/* Bytes of the first `elems` elements of a FLOAT / QUANT source (through its segments: the same
 * function): whole blocks of its codec (F32/F16/BF16: 4 or 2 bytes per element). */
static uint64_t src_bytes(const struct mq_plan_tensor *t, uint64_t elems)
{
    return mq_codec_data_bytes(t->src_codec, NULL, elems);
}

/* A job to the list (grown by doubling). */
static enum mq_status push_job(struct run *r, size_t *cap, struct job j, struct mq_error *err)
{
    if (r->njobs == *cap) {
        *cap = *cap ? *cap * 2 : 256;
        struct job *nj = realloc(r->jobs, *cap * sizeof *nj);
        if (!nj) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory planning chunks");
        r->jobs = nj;
    }
    r->jobs[r->njobs++] = j;
    r->chunks_total[j.t]++;
    return MQ_OK;
}

/* Buffer sizes for a chunk of `elems` elements of converted tensor t. */
static enum mq_status size_buffers(struct run *r, const struct mq_plan_tensor *t, uint64_t elems, struct mq_error *err)
{
    if (elems > SIZE_MAX / 8) return MQ_FAIL(err, MQ_E_LIMIT, "chunk", "tensor %s: rows too long", t->name);
    if (elems > r->max_elems) r->max_elems = (size_t)elems;
    uint64_t sb = t->kind == MQ_SRC_GENERATED || t->kind == MQ_SRC_FILTER ? elems * 4 : src_bytes(t, elems);
    if (sb > r->max_src) r->max_src = (size_t)sb;
    uint64_t ob = mq_codec_data_bytes(t->codec, &t->params, elems);
    if (ob > r->max_out) r->max_out = (size_t)ob;
    uint64_t sc = mq_codec_side_count(t->codec, &t->params, elems, t->row_len);
    if (sc > r->max_side) r->max_side = (size_t)sc;
    return MQ_OK;
}

static enum mq_status build_jobs(struct run *r, struct mq_error *err)
{
    struct mq_plan *p = r->p;
    size_t cap = 0;
    for (size_t i = 0; i < p->n; i++) {
        struct mq_plan_tensor *t = &p->t[i];
        r->chunks_total[i] = 0;
        r->total_bytes += mq_plan_src_bytes(p, t);
        if (!t->convert) {
            /* raw copies: byte ranges; a block-quantized copy is checked block by block (its
             * blocks are dequantized), so its chunks are whole blocks of at most a chunk */
            uint64_t unit = RAW_CHUNK_BYTES;
            if (t->kind == MQ_SRC_QUANT) {
                const struct mq_codec_info *ci = mq_codec_info(t->src_codec);
                uint64_t blocks = r->chunk_elems / ci->block_elems ? r->chunk_elems / ci->block_elems : 1;
                unit = blocks * ci->block_bytes;
                MQ_TRY(size_buffers(r, t, blocks * ci->block_elems, err));
            }
            for (uint64_t b0 = 0; b0 < t->bytes || b0 == 0; b0 += unit) {
                uint64_t n = t->bytes - b0 < unit ? t->bytes - b0 : unit;
                MQ_TRY(push_job(r, &cap, (struct job){i, b0, n, 0, 0, false}, err));
                if (t->bytes == 0) break;
            }
            continue;
        }
        if (t->numel == 0 || t->row_len == 0) {
            /* a zero-sized tensor (a 0 in its shape): one empty chunk, nothing to read or write */
            MQ_TRY(push_job(r, &cap, (struct job){i, 0, 0, 0, 0, false}, err));
            continue;
        }
        uint64_t piece = piece_elems(r, t);
        if (piece) {
            MQ_TRY(size_buffers(r, t, piece, err));
            for (uint64_t e0 = 0; e0 < t->numel; e0 += piece) {
                uint64_t n = t->numel - e0 < piece ? t->numel - e0 : piece;
                MQ_TRY(push_job(r, &cap, (struct job){i, e0 / t->row_len, 0, e0, n, true}, err));
            }
            continue;
        }
        uint64_t unit = t->row_len >= r->chunk_elems ? 1 : r->chunk_elems / t->row_len; /* rows per chunk */
        uint64_t group = mq_xform_row_group(t);
        if (group) unit = (unit + group - 1) / group * group;
        const struct mq_codec_info *ci = mq_codec_info(t->codec);
        if (ci->flat_blocks) {
            uint64_t b = mq_codec_block(t->codec, &t->params);
            uint64_t step = b / gcd_u64(t->row_len % b ? t->row_len % b : b, b);
            if (t->row_len % b == 0) step = 1;
            unit = (unit + step - 1) / step * step;
        }
        MQ_TRY(size_buffers(r, t, unit * t->row_len, err));
        for (uint64_t row0 = 0; row0 < t->rows; row0 += unit) {
            uint64_t n = t->rows - row0 < unit ? t->rows - row0 : unit;
            MQ_TRY(push_job(r, &cap, (struct job){i, row0, n, row0 * t->row_len, n * t->row_len, false}, err));
        }
    }
    if (r->max_src < RAW_CHUNK_BYTES) r->max_src = RAW_CHUNK_BYTES;
    return MQ_OK;
}

struct worker_buf {
    uint8_t *src, *perm, *out, *side_le;
    float *f32, *deq, *scales;
    int8_t *zeros;
};

static void free_buf(struct worker_buf *b)
{
    free(b->src); free(b->perm); free(b->out); free(b->side_le); free(b->f32); free(b->deq); free(b->scales); free(b->zeros);
}

static bool alloc_buf(struct run *r, struct worker_buf *b)
{
    memset(b, 0, sizeof *b);
    size_t side = r->max_side ? r->max_side : 1;
    b->src = malloc(r->max_src);
    /* perm: scratch of the loader and the transforms (the chunk as f32 before a transpose's scatter
     * or a row permutation) */
    size_t perm = r->max_src > r->max_elems * sizeof(float) ? r->max_src : r->max_elems * sizeof(float);
    b->perm = malloc(perm ? perm : 1);
    b->out = malloc(r->max_out ? r->max_out : 1);
    b->f32 = malloc((r->max_elems ? r->max_elems : 1) * sizeof(float));
    b->deq = r->stats ? malloc((r->max_elems ? r->max_elems : 1) * sizeof(float)) : NULL;
    b->scales = malloc(side * sizeof(float));
    b->zeros = malloc(side);
    b->side_le = malloc(side * 4);
    return b->src && b->perm && b->out && b->f32 && (b->deq || !r->stats) && b->scales && b->zeros && b->side_le;
}

/* n source elements (F32/F16/BF16 little-endian bytes, or a ggml block type) as f32: the codec's
** own dequantize kernel reads them. */
static enum mq_status to_f32(enum mq_codec c, const uint8_t *s, float *dst, size_t n, size_t row_len,
                             struct mq_error *err)
{
    struct mq_qbuf in = {(uint8_t *)s, NULL, NULL};
    return mq_dequantize(c, NULL, &in, n, row_len, dst, err);
}

/*
** Output rows [row0, row0+nrows) of a transposed tensor are source columns: from each of the
** row_len source rows read the nrows consecutive elements (one pread each), then scatter.
*/
static enum mq_status load_transposed(struct run *r, const struct mq_plan_tensor *t, const struct job *j,
                                      struct worker_buf *b, struct mq_error *err)
{
    size_t esz = t->src_codec == MQ_CODEC_F32 ? 4 : 2;
    uint64_t in = t->row_len, out = t->rows;
    size_t k = (size_t)j->nrows;
    for (uint64_t i = 0; i < in; i++)
        MQ_TRY(mq_src_read_bytes(r->p, t, (i * out + j->row0) * esz, b->src + i * k * esz, k * esz, err));
    float *tmp = (float *)b->perm; /* [in][k] */
    MQ_TRY(to_f32(t->src_codec, b->src, tmp, (size_t)(in * k), (size_t)(in * k), err));
    for (size_t rr = 0; rr < k; rr++)
        for (uint64_t i = 0; i < in; i++) b->f32[rr * in + i] = tmp[i * k + rr];
    return MQ_OK;
}

/* The chunk's elements as f32 in b->f32 (j->n elements): the source read by its reader's op
** (generated floats, a filter, or stored bytes decoded by the source codec's kernel), then the
** tensor's transforms. */
static enum mq_status load_f32(struct run *r, const struct mq_plan_tensor *t, const struct job *j,
                               struct worker_buf *b, struct mq_error *err)
{
    size_t n = (size_t)j->n;
    if (t->kind == MQ_SRC_GENERATED) {
        memcpy(b->f32, t->generated + j->first, n * sizeof(float));
    } else if (mq_xform_transposed(t)) {
        MQ_TRY(load_transposed(r, t, j, b, err));
    } else if (t->kind == MQ_SRC_FILTER) {
        MQ_TRY(mq_src_read_filtered(r->p, t, j->first, n, b->f32, err));
    } else {
        MQ_TRY(mq_src_read_bytes(r->p, t, src_bytes(t, j->first), b->src, (size_t)src_bytes(t, j->n), err));
        /* F32/F16/BF16 and ggml block types alike; a piece of a row is whole source blocks */
        MQ_TRY(to_f32(t->src_codec, b->src, b->f32, n, j->piece ? n : (size_t)t->row_len, err));
    }
    mq_xform_apply(t, j->row0, j->nrows, j->first, n, b->f32, (float *)b->perm);
    return MQ_OK;
}

/* A chunk's side values (absmax / SCB): to the file, or into the tensor's collection buffer. */
static enum mq_status put_side(struct run *r, struct mq_plan_tensor *t, struct worker_buf *b, uint64_t first,
                               size_t n, struct mq_error *err)
{
    uint64_t ns = mq_codec_side_count(t->codec, &t->params, n, t->row_len);
    if (ns == 0 || !r->out) return MQ_OK;
    uint64_t before = mq_codec_side_count(t->codec, &t->params, first, t->row_len);
    if (t->side_keep) {
        pthread_mutex_lock(&r->mu);
        if (!t->side_buf) {
            uint64_t total = mq_codec_side_count(t->codec, &t->params, t->numel, t->row_len);
            t->side_buf = malloc((size_t)(total ? total : 1) * sizeof(float));
        }
        pthread_mutex_unlock(&r->mu);
        if (!t->side_buf) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for the block scales");
        memcpy(t->side_buf + before, b->scales, (size_t)ns * sizeof(float));
        return MQ_OK;
    }
    if (!t->side_offset) return MQ_OK;
    struct mq_qbuf le = {b->side_le, NULL, NULL}; /* float32 little-endian: the F32 codec */
    MQ_TRY(mq_quantize(MQ_CODEC_F32, NULL, b->scales, (size_t)ns, (size_t)ns, &le, true, err));
    return mq_outfile_pwrite(r->out, b->side_le, (size_t)ns * 4, t->side_offset + before * 4, err);
}

/*
** A block-quantized tensor copied unchanged: its blocks, dequantized into b->f32, must all be
** finite (a NaN/Inf fp16 scale makes every value of its block NaN/Inf). The chunk is whole
** blocks from byte j->row0. rc collects the non-finite values (flat indices) as for converted
** tensors.
*/
static enum mq_status check_copied(const struct mq_plan_tensor *t, const struct job *j, struct worker_buf *b,
                                   struct mq_range_check *rc, struct mq_error *err)
{
    const struct mq_codec_info *ci = mq_codec_info(t->src_codec);
    uint64_t blocks = j->nrows / ci->block_bytes;
    size_t n = (size_t)(blocks * ci->block_elems);
    rc->seen = j->row0 / ci->block_bytes * ci->block_elems;
    MQ_TRY(to_f32(t->src_codec, b->src, b->f32, n, n, err));
    mq_range_scan(rc, MQ_CODEC_F32, NULL, b->f32, n, n);
    return MQ_OK;
}

/* The error for a copied tensor with a non-finite block (rc from check_copied). */
static enum mq_status copied_block_error(const struct mq_plan_tensor *t, const struct mq_range_check *rc,
                                         struct mq_error *err)
{
    const struct mq_codec_info *ci = mq_codec_info(t->src_codec);
    return MQ_FAIL(err, MQ_E_RANGE, "copied-block",
                   "tensor '%s': block %" PRIu64 " of this %s tensor (copied unchanged) decodes to %g: "
                   "its scale or values are NaN/Inf",
                   t->name, rc->first_bad / ci->block_elems, ci->name, (double)rc->first_value);
}

static enum mq_status do_job(struct run *r, size_t ji, struct worker_buf *b, struct mq_error *err,
                             bool *range_bad)
{
    const struct job *j = &r->jobs[ji];
    struct mq_plan_tensor *t = &r->p->t[j->t];
    if (r->delay_ms) {
        struct timespec ts = {(time_t)(r->delay_ms / 1000), (long)(r->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    if (!t->convert) {
        if (j->nrows == 0) return MQ_OK;
        MQ_TRY(mq_src_read_bytes(r->p, t, j->row0, b->src, (size_t)j->nrows, err));
        if (t->kind == MQ_SRC_QUANT) {
            struct mq_range_check rc;
            mq_range_init(&rc);
            MQ_TRY(check_copied(t, j, b, &rc, err));
            if (rc.bad) {
                *range_bad = true;
                return MQ_E_RANGE;
            }
        }
        if (r->out) MQ_TRY(mq_outfile_pwrite(r->out, b->src, (size_t)j->nrows, t->offset + j->row0, err));
        atomic_fetch_add(&r->done_bytes, j->nrows);
        return MQ_OK;
    }
    size_t n = (size_t)j->n;
    if (n == 0) return MQ_OK;
    /* rows for the codecs (INT8_ROW's scale); a piece of a row is whole blocks of the codec */
    size_t row_len = j->piece ? n : (size_t)t->row_len;
    MQ_TRY(load_f32(r, t, j, b, err));
    struct mq_range_check rc;
    mq_range_init(&rc);
    rc.seen = j->first;
    mq_range_scan(&rc, t->codec, &t->params, b->f32, n, row_len);
    if (rc.bad) {
        *range_bad = true;
        return MQ_E_RANGE;
    }
    struct mq_qbuf q = {b->out, b->scales, b->zeros};
    if (t->imatrix) {
        /* row k of the chunk is row row0 + k of the tensor: matrix (row0 + k) / imatrix_mat_rows */
        const size_t row_bytes = (size_t)mq_codec_data_bytes(t->codec, &t->params, row_len);
        for (size_t k = 0; k < n / row_len; k++) {
            const float *w = t->imatrix + (j->row0 + k) / t->imatrix_mat_rows * t->row_len;
            MQ_TRY(mq_quantize_weighted(t->codec, b->f32 + k * row_len, row_len, row_len, w, b->out + k * row_bytes,
                                        err));
        }
    } else {
        MQ_TRY(mq_quantize(t->codec, &t->params, b->f32, n, row_len, &q, r->fast, err));
    }
    uint64_t first = j->first;
    if (r->out) {
        uint64_t off = mq_codec_data_bytes(t->codec, &t->params, first);
        size_t len = (size_t)mq_codec_data_bytes(t->codec, &t->params, n);
        MQ_TRY(mq_outfile_pwrite(r->out, b->out, len, t->offset + off, err));
    }
    MQ_TRY(put_side(r, t, b, first, n, err));
    bool tapped = r->p->tap && j->t == r->p->tap_tensor;
    if (r->stats && (t->quantized || tapped)) {
        MQ_TRY(mq_dequantize(t->codec, &t->params, &q, n, row_len, b->deq, err));
        if (t->quantized) mq_qstats_add(&r->job_stats[ji], b->f32, b->deq, n);
        if (tapped) r->p->tap->chunk(r->p->tap->ctx, first, n, b->f32, b->deq);
    }
    if (t->kind != MQ_SRC_GENERATED)
        atomic_fetch_add(&r->done_bytes, t->kind == MQ_SRC_FILTER ? j->n * filter_row_bytes(r->p, t) / t->row_len
                                                                   : src_bytes(t, n));
    return MQ_OK;
}

/* Keeps the first failure of any thread (prefixed with the tensor when one is named) and stops
** the others from taking new work. */
static void fail_run(struct run *r, const struct mq_error *err, const char *tensor)
{
    pthread_mutex_lock(&r->mu);
    if (!r->failed) {
        r->failed = true;
        r->err = *err;
        if (tensor) mq_error_prefix(&r->err, "tensor %s", tensor);
    }
    pthread_mutex_unlock(&r->mu);
    atomic_store(&r->stop, true);
}

static void *worker(void *arg)
{
    struct run *r = arg;
    struct worker_buf b;
    struct mq_error err;
    mq_error_clear(&err);
    if (!alloc_buf(r, &b)) {
        MQ_FAIL(&err, MQ_E_NOMEM, "alloc", "out of memory for conversion buffers");
        fail_run(r, &err, NULL);
    }
    while (!atomic_load(&r->stop)) {
        size_t ji = atomic_fetch_add(&r->next, 1);
        if (ji >= r->njobs) break;
        bool range_bad = false;
        enum mq_status s = do_job(r, ji, &b, &err, &range_bad);
        if (s != MQ_OK) {
            if (range_bad) {
                /* reported after the run, deterministically (see rescan) */
                pthread_mutex_lock(&r->mu);
                r->range_failed = true;
                pthread_mutex_unlock(&r->mu);
                atomic_store(&r->stop, true);
            } else {
                fail_run(r, &err, r->p->t[r->jobs[ji].t].name);
            }
            break;
        }
        size_t ti = r->jobs[ji].t;
        if (atomic_fetch_add(&r->chunks_done[ti], 1) + 1 == r->chunks_total[ti] && r->p->t[ti].side_keep && r->out) {
            /* the last chunk of a tensor whose side data the writer wants whole */
            struct mq_plan_tensor *t = &r->p->t[ti];
            uint64_t total = mq_codec_side_count(t->codec, &t->params, t->numel, t->row_len);
            enum mq_status s2 = t->side_buf || total == 0
                                    ? r->p->writer->tensor_side(r->p, ti, t->side_buf, total, r->out, &err)
                                    : MQ_FAIL(&err, MQ_E_INTERNAL, "side", "no side data collected");
            free(t->side_buf);
            t->side_buf = NULL;
            if (s2 != MQ_OK) {
                fail_run(r, &err, t->name);
                break;
            }
        }
    }
    free_buf(&b);
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

/* Single-threaded range scan of one whole tensor (the deterministic error report). */
static enum mq_status rescan(struct run *r, size_t ti, struct mq_error *err)
{
    struct mq_plan_tensor *t = &r->p->t[ti];
    struct worker_buf b;
    if (!alloc_buf(r, &b)) {
        free_buf(&b);
        return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    }
    struct mq_range_check rc;
    mq_range_init(&rc);
    enum mq_status s = MQ_OK;
    for (size_t ji = 0; ji < r->njobs && s == MQ_OK; ji++) {
        const struct job *j = &r->jobs[ji];
        if (j->t != ti) continue;
        if (!t->convert) {
            if (j->nrows == 0) continue;
            s = mq_src_read_bytes(r->p, t, j->row0, b.src, (size_t)j->nrows, err);
            if (s == MQ_OK) s = check_copied(t, j, &b, &rc, err);
            if (s == MQ_OK && rc.bad) s = copied_block_error(t, &rc, err);
            continue;
        }
        if (j->n == 0) continue;
        s = load_f32(r, t, j, &b, err);
        if (s == MQ_OK)
            mq_range_scan(&rc, t->codec, &t->params, b.f32, (size_t)j->n, j->piece ? (size_t)j->n : (size_t)t->row_len);
    }
    free_buf(&b);
    if (s != MQ_OK || !t->convert) return s;
    return mq_range_finish(&rc, t->name, t->codec, err);
}

static enum mq_status run_threads(struct run *r, unsigned threads, void *(*fn)(void *), struct mq_error *err)
{
    pthread_t *tid = calloc(threads, sizeof *tid);
    if (!tid) return MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory for threads");
    unsigned started = 0;
    atomic_store(&r->running, threads);
    for (; started < threads; started++)
        if (pthread_create(&tid[started], NULL, fn, r) != 0) break;
    atomic_fetch_sub(&r->running, threads - started);
    if (started == 0) {
        free(tid);
        return MQ_FAIL(err, MQ_E_INTERNAL, "threads", "cannot start worker threads");
    }
    const struct mq_convert_options *o = r->p->opt;
    /* poll every 5 ms (finishing promptly), report progress every 200 ms */
    for (unsigned tick = 0; atomic_load(&r->running) > 0; tick++) {
        if (o->progress && tick % 40 == 0) o->progress(o->progress_ctx, atomic_load(&r->done_bytes), r->total_bytes);
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    for (unsigned i = 0; i < started; i++) pthread_join(tid[i], NULL);
    if (o->progress) o->progress(o->progress_ctx, atomic_load(&r->done_bytes), r->total_bytes);
    free(tid);
    return MQ_OK;
}

/* ---- checksums: one tensor per job, bytes read back from the temporary file ---- */

static void *hash_worker(void *arg)
{
    struct run *r = arg;
    uint8_t *buf = malloc(HASH_CHUNK_BYTES);
    XXH3_state_t *st = XXH3_createState();
    struct mq_error err;
    while (buf && st && !atomic_load(&r->stop)) {
        size_t ti = atomic_fetch_add(&r->next, 1);
        if (ti >= r->p->n) break;
        struct mq_plan_tensor *t = &r->p->t[ti];
        XXH3_64bits_reset(st);
        for (uint64_t off = 0; off < t->bytes; off += HASH_CHUNK_BYTES) {
            size_t len = t->bytes - off < HASH_CHUNK_BYTES ? (size_t)(t->bytes - off) : HASH_CHUNK_BYTES;
            if (mq_outfile_pread(r->out, buf, len, t->offset + off, &err) != MQ_OK) {
                fail_run(r, &err, NULL);
                break;
            }
            XXH3_64bits_update(st, buf, len);
        }
        t->xxh3 = XXH3_64bits_digest(st);
    }
    if (!buf || !st) {
        MQ_FAIL(&err, MQ_E_NOMEM, "alloc", "out of memory for checksums");
        fail_run(r, &err, NULL);
    }
    free(buf);
    XXH3_freeState(st);
    atomic_fetch_sub(&r->running, 1);
    return NULL;
}

static void run_free(struct run *r)
{
    for (size_t i = 0; i < r->p->n; i++) {
        free(r->p->t[i].side_buf);
        r->p->t[i].side_buf = NULL;
    }
    free(r->jobs);
    free(r->job_stats);
    free((void *)r->chunks_done);
    free(r->chunks_total);
    pthread_mutex_destroy(&r->mu);
}

enum mq_status mq_plan_run(struct mq_plan *p, struct mq_outfile *out, unsigned threads, bool stats,
                           struct mq_error *err)
{
    struct run r;
    memset(&r, 0, sizeof r);
    r.p = p;
    r.out = out;
    r.stats = stats;
    r.fast = !p->opt->reference_kernels;
    const struct mq_test_hooks *hooks = mq_testing_hooks(); /* tests: small chunks, slow runs */
    r.chunk_elems = hooks->chunk_elems ? hooks->chunk_elems : CHUNK_ELEMS;
    r.delay_ms = hooks->chunk_delay_ms;
    pthread_mutex_init(&r.mu, NULL);
    r.chunks_done = calloc(p->n ? p->n : 1, sizeof *r.chunks_done);
    r.chunks_total = calloc(p->n ? p->n : 1, sizeof *r.chunks_total);
    enum mq_status s = r.chunks_done && r.chunks_total ? build_jobs(&r, err)
                                                       : MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
    if (s == MQ_OK && stats) {
        r.job_stats = calloc(r.njobs ? r.njobs : 1, sizeof *r.job_stats);
        if (!r.job_stats) s = MQ_FAIL(err, MQ_E_NOMEM, "alloc", "out of memory");
        for (size_t i = 0; s == MQ_OK && i < r.njobs; i++) mq_qstats_init(&r.job_stats[i]);
    }
    if (threads == 0) threads = 1;
    if (threads > r.njobs && r.njobs) threads = (unsigned)r.njobs;
    if (s == MQ_OK) s = run_threads(&r, threads, worker, err);
    if (s == MQ_OK && r.failed) {
        *err = r.err;
        s = err->code;
    }
    if (s == MQ_OK && r.range_failed) {
        /* deterministic report: the first tensor (in plan order) with a bad value */
        for (size_t i = 0; i < p->n && s == MQ_OK; i++) {
            if (atomic_load(&r.chunks_done[i]) == r.chunks_total[i]) continue;
            if (p->t[i].convert || p->t[i].kind == MQ_SRC_QUANT) s = rescan(&r, i, err);
        }
        if (s == MQ_OK) s = MQ_FAIL(err, MQ_E_INTERNAL, "range", "a value check failed but no tensor reproduces it");
    }
    if (s == MQ_OK && stats) {
        size_t ji = 0;
        struct mq_qstats_acc total;
        mq_qstats_init(&total);
        for (size_t i = 0; i < p->n; i++) {
            struct mq_qstats_acc acc;
            mq_qstats_init(&acc);
            for (; ji < r.njobs && r.jobs[ji].t == i; ji++) mq_qstats_merge(&acc, &r.job_stats[ji]);
            p->t[i].have_stats = p->t[i].convert && p->t[i].quantized;
            mq_qstats_result(&acc, &p->t[i].stats);
            if (p->t[i].have_stats) mq_qstats_merge(&total, &acc);
        }
        p->have_stats = true;
        mq_qstats_result(&total, &p->total_stats);
    }
    if (s == MQ_OK && out && !p->writer->own_checksums) {
        atomic_store(&r.next, 0);
        unsigned ht = threads > p->n ? (unsigned)(p->n ? p->n : 1) : threads;
        s = run_threads(&r, ht, hash_worker, err);
        if (s == MQ_OK && r.failed) {
            *err = r.err;
            s = err->code;
        }
    }
    run_free(&r);
    return s;
}
