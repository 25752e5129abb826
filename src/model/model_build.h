/*
** model_build.h - private: how format readers fill a struct mq_model.
**
** Readers (formats/) call these to append files, tensors, metadata and warnings; the model owns
** everything appended. On any failure the caller frees the half-built model with mq_model_free().
*/
#ifndef MODELQ_MODEL_BUILD_H
#define MODELQ_MODEL_BUILD_H

#include "model_impl.h"

/* A new empty model; NULL when out of memory. */
struct mq_model *mq_model_new(const char *input_path);

/* Appends an open file (the model closes fd). */
enum mq_status mq_model_add_file(struct mq_model *m, const char *path, int fd, uint64_t size,
                                 uint32_t *index, struct mq_error *err);
/* Opens `path` (a regular file: mq_open_regular) and appends it; the model owns the descriptor
** from then on. *fd, *size and *file (its index) describe it. */
enum mq_status mq_model_open_file(struct mq_model *m, const char *path, int *fd, uint64_t *size, uint32_t *file,
                                  struct mq_error *err);
/* Appends a tensor; the model takes ownership of t->name. */
enum mq_status mq_model_add_tensor(struct mq_model *m, const struct mq_tensor *t, struct mq_error *err);
/* Appends a copy of key/value. */
enum mq_status mq_model_add_kv(struct mq_model *m, const char *key, const char *value, struct mq_error *err);
/* Appends a formatted warning. */
enum mq_status mq_model_warn(struct mq_model *m, struct mq_error *err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/*
** One GGUF file read on its own, also when it is a part of a split model (its keys become the
** model's): verify checks each part's own checksums this way. input.c; free with mq_model_free().
*/
enum mq_status mq_model_open_gguf_part(const char *path, struct mq_model **out, struct mq_error *err);

/* Parses config.json at `path` into m->config (errors name the file); m->config.json keeps the tree. */
enum mq_status mq_config_load(struct mq_model *m, const char *path, struct mq_error *err);

/* Parses the adapter_config.json at `path` into a new m->lora (errors name the file and key). */
enum mq_status mq_lora_config_load(struct mq_model *m, const char *path, struct mq_error *err);

struct cJSON;
/*
** The one reader of config.json: at most 16 MiB and 2^19 JSON values, scanned strictly
** (json_strict.h, duplicate keys refused naming the key) and parsed. *out (freed by the caller
** with cJSON_Delete) is a JSON object; *bytes (may be NULL) gets the file's size.
*/
enum mq_status mq_config_read_json(const char *path, struct cJSON **out, size_t *bytes, struct mq_error *err);

/* A JSON value for a one-line message: the number ("%.10g"), or what it is ("a string", "true",
** "an array" ...); never the text of a string (it may hold anything). Returns buf. */
const char *mq_json_describe(const struct cJSON *v, char *buf, size_t cap);

#endif /* MODELQ_MODEL_BUILD_H */
