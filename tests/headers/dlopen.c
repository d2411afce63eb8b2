/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * dlopen.c: loads libqblock.so.1 with dlopen (as language bindings do),
 * resolves every public function by name with dlsym, prints the names it
 * resolved (the calling script compares them with the headers), calls a few
 * through the pointers, and unloads it again.
 *
 * Usage: dlopen PATH-TO-libqblock.so.1
 */
#include <libqblock.h>

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

/*
 * __typeof__(&fn) gives each pointer the exact prototype of the header
 * without referencing the symbol, so this program does not link libqblock.
 */
#define RESOLVE(handle, fn, var)                                                  \
    do {                                                                          \
        void *p_ = dlsym((handle), #fn);                                          \
        if (!p_) {                                                                \
            fprintf(stderr, "dlsym %s: %s\n", #fn, dlerror());                    \
            failed = 1;                                                           \
        } else {                                                                  \
            printf("%s\n", #fn);                                                  \
        }                                                                         \
        memcpy(&(var), &p_, sizeof(p_));                                          \
    } while (0)

int main(int argc, char **argv)
{
    void *h;
    int failed = 0;
    QBroker *broker = NULL;
    __typeof__(&qb_broker_new) p_broker_new;
    __typeof__(&qb_broker_delete) p_broker_delete;
    __typeof__(&qb_strerror) p_strerror;
    __typeof__(&qb_error_get_human_str) p_human;
    __typeof__(&qb_error_get_errno) p_errno;
    __typeof__(&qb_state_new) p_state_new;
    __typeof__(&qb_state_set_policy) p_state_set_policy;
    __typeof__(&qb_state_get_policy) p_state_get_policy;
    __typeof__(&qb_state_delete) p_state_delete;
    __typeof__(&qb_prot_info_new) p_prot_new;
    __typeof__(&qb_prot_info_delete) p_prot_delete;
    __typeof__(&qb_fmt_info_new) p_fmt_new;
    __typeof__(&qb_fmt_info_delete) p_fmt_delete;
    __typeof__(&qb_fmt_info_set_options) p_set_options;
    __typeof__(&qb_create) p_create;
    __typeof__(&qb_open) p_open;
    __typeof__(&qb_close) p_close;
    __typeof__(&qb_read) p_read;
    __typeof__(&qb_write) p_write;
    __typeof__(&qb_flush) p_flush;
    __typeof__(&qb_discard) p_discard;
    __typeof__(&qb_check_allocation) p_check_allocation;
    __typeof__(&qb_block_status) p_block_status;
    __typeof__(&qb_info_image_static_get) p_info_get;
    __typeof__(&qb_info_image_static_delete) p_info_delete;
    __typeof__(&qb_info_image_specific_get) p_specific_get;
    __typeof__(&qb_info_image_specific_delete) p_specific_delete;
    __typeof__(&qb_get_allocated_file_size) p_alloc_size;
    __typeof__(&qb_is_dirty) p_is_dirty;
    __typeof__(&qb_has_zero_init) p_zero_init;
    __typeof__(&qb_str2fmttype) p_str2fmttype;
    __typeof__(&qb_fmttype2str) p_fmttype2str;
    __typeof__(&qb_check) p_check;
    __typeof__(&qb_truncate) p_truncate;
    __typeof__(&qb_write_zeroes) p_write_zeroes;
    __typeof__(&qb_write_compressed) p_write_compressed;
    __typeof__(&qb_measure) p_measure;
    __typeof__(&qb_fmt_get_caps) p_fmt_get_caps;
    __typeof__(&qb_fmt_get_create_options) p_fmt_get_create_options;
    __typeof__(&qb_snapshot_list) p_snapshot_list;
    __typeof__(&qb_snapshot_list_free) p_snapshot_list_free;
    __typeof__(&qb_snapshot_create) p_snapshot_create;
    __typeof__(&qb_snapshot_apply) p_snapshot_apply;
    __typeof__(&qb_snapshot_delete) p_snapshot_delete;
    __typeof__(&qb_readv) p_readv;
    __typeof__(&qb_writev) p_writev;
    __typeof__(&qb_aio_read) p_aio_read;
    __typeof__(&qb_aio_write) p_aio_write;
    __typeof__(&qb_aio_readv) p_aio_readv;
    __typeof__(&qb_aio_writev) p_aio_writev;
    __typeof__(&qb_aio_flush) p_aio_flush;
    __typeof__(&qb_aio_discard) p_aio_discard;
    __typeof__(&qb_aio_get_fd) p_aio_get_fd;
    __typeof__(&qb_aio_run_completions) p_aio_run_completions;
    __typeof__(&qb_aio_cancel) p_aio_cancel;
    __typeof__(&qb_aio_drain) p_aio_drain;
    __typeof__(&qb_aio_set_max_queue_depth) p_aio_set_max_queue_depth;
    __typeof__(&qb_convert) p_convert;
    __typeof__(&qb_compare) p_compare;
    __typeof__(&qb_change_backing) p_change_backing;
    __typeof__(&qb_rebase) p_rebase;
    __typeof__(&qb_commit) p_commit;
    __typeof__(&qb_amend) p_amend;

    if (argc != 2) {
        fprintf(stderr, "usage: dlopen LIBRARY\n");
        return 2;
    }
    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        fprintf(stderr, "dlopen %s: %s\n", argv[1], dlerror());
        return 1;
    }
    RESOLVE(h, qb_broker_new, p_broker_new);
    RESOLVE(h, qb_broker_delete, p_broker_delete);
    RESOLVE(h, qb_strerror, p_strerror);
    RESOLVE(h, qb_error_get_human_str, p_human);
    RESOLVE(h, qb_error_get_errno, p_errno);
    RESOLVE(h, qb_state_new, p_state_new);
    RESOLVE(h, qb_state_set_policy, p_state_set_policy);
    RESOLVE(h, qb_state_get_policy, p_state_get_policy);
    RESOLVE(h, qb_state_delete, p_state_delete);
    RESOLVE(h, qb_prot_info_new, p_prot_new);
    RESOLVE(h, qb_prot_info_delete, p_prot_delete);
    RESOLVE(h, qb_fmt_info_new, p_fmt_new);
    RESOLVE(h, qb_fmt_info_delete, p_fmt_delete);
    RESOLVE(h, qb_fmt_info_set_options, p_set_options);
    RESOLVE(h, qb_create, p_create);
    RESOLVE(h, qb_open, p_open);
    RESOLVE(h, qb_close, p_close);
    RESOLVE(h, qb_read, p_read);
    RESOLVE(h, qb_write, p_write);
    RESOLVE(h, qb_flush, p_flush);
    RESOLVE(h, qb_discard, p_discard);
    RESOLVE(h, qb_check_allocation, p_check_allocation);
    RESOLVE(h, qb_block_status, p_block_status);
    RESOLVE(h, qb_info_image_static_get, p_info_get);
    RESOLVE(h, qb_info_image_static_delete, p_info_delete);
    RESOLVE(h, qb_info_image_specific_get, p_specific_get);
    RESOLVE(h, qb_info_image_specific_delete, p_specific_delete);
    RESOLVE(h, qb_get_allocated_file_size, p_alloc_size);
    RESOLVE(h, qb_is_dirty, p_is_dirty);
    RESOLVE(h, qb_has_zero_init, p_zero_init);
    RESOLVE(h, qb_str2fmttype, p_str2fmttype);
    RESOLVE(h, qb_fmttype2str, p_fmttype2str);
    RESOLVE(h, qb_check, p_check);
    RESOLVE(h, qb_truncate, p_truncate);
    RESOLVE(h, qb_write_zeroes, p_write_zeroes);
    RESOLVE(h, qb_write_compressed, p_write_compressed);
    RESOLVE(h, qb_measure, p_measure);
    RESOLVE(h, qb_fmt_get_caps, p_fmt_get_caps);
    RESOLVE(h, qb_fmt_get_create_options, p_fmt_get_create_options);
    RESOLVE(h, qb_snapshot_list, p_snapshot_list);
    RESOLVE(h, qb_snapshot_list_free, p_snapshot_list_free);
    RESOLVE(h, qb_snapshot_create, p_snapshot_create);
    RESOLVE(h, qb_snapshot_apply, p_snapshot_apply);
    RESOLVE(h, qb_snapshot_delete, p_snapshot_delete);
    RESOLVE(h, qb_readv, p_readv);
    RESOLVE(h, qb_writev, p_writev);
    RESOLVE(h, qb_aio_read, p_aio_read);
    RESOLVE(h, qb_aio_write, p_aio_write);
    RESOLVE(h, qb_aio_readv, p_aio_readv);
    RESOLVE(h, qb_aio_writev, p_aio_writev);
    RESOLVE(h, qb_aio_flush, p_aio_flush);
    RESOLVE(h, qb_aio_discard, p_aio_discard);
    RESOLVE(h, qb_aio_get_fd, p_aio_get_fd);
    RESOLVE(h, qb_aio_run_completions, p_aio_run_completions);
    RESOLVE(h, qb_aio_cancel, p_aio_cancel);
    RESOLVE(h, qb_aio_drain, p_aio_drain);
    RESOLVE(h, qb_aio_set_max_queue_depth, p_aio_set_max_queue_depth);
    RESOLVE(h, qb_convert, p_convert);
    RESOLVE(h, qb_compare, p_compare);
    RESOLVE(h, qb_change_backing, p_change_backing);
    RESOLVE(h, qb_rebase, p_rebase);
    RESOLVE(h, qb_commit, p_commit);
    RESOLVE(h, qb_amend, p_amend);
    /* Internal names must not be reachable. */
    if (dlsym(h, "bdrv_open") || dlsym(h, "bdrv_pread") || dlsym(h, "bdrv_find_format")) {
        fprintf(stderr, "a block-layer symbol is visible through dlsym\n");
        failed = 1;
    }
    if (failed) {
        return 1;
    }

    /* A few calls through the pointers. */
    if (p_broker_new(&broker) != 0 || !broker) {
        fprintf(stderr, "qb_broker_new through dlsym failed\n");
        return 1;
    }
    if (p_state_new(broker, NULL) != QB_ERR_INVALID_PARAM ||
        (p_errno(broker) != 0 && p_errno(broker) != EINVAL)) {
        fprintf(stderr, "qb_state_new(NULL) through dlsym did not fail as documented\n");
        return 1;
    }
    if (p_state_set_policy(broker, NULL, NULL) != QB_ERR_INVALID_PARAM ||
        p_state_get_policy(broker, NULL, NULL) != QB_ERR_INVALID_PARAM) {
        fprintf(stderr, "qb_state_{set,get}_policy(NULL) through dlsym did not fail\n");
        return 1;
    }
    if (p_str2fmttype("qcow2") != QB_FMT_QCOW2 || strcmp(p_fmttype2str(QB_FMT_RAW), "raw") != 0 ||
        strcmp(p_strerror(-9999), "unknown error") != 0) {
        fprintf(stderr, "format names or qb_strerror through dlsym are wrong\n");
        return 1;
    }
    p_broker_delete(&broker);
    if (broker) {
        return 1;
    }
    if (dlclose(h) != 0) {
        fprintf(stderr, "dlclose: %s\n", dlerror());
        return 1;
    }
    return 0;
}
